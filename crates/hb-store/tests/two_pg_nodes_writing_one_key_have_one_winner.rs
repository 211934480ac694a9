//! Two nodes, two `PgStore`s (each with its own pool and runtime) on one
//! database (SPEC §11.1): the preconditions hold across them, not only
//! within one process.

use std::sync::{Arc, Barrier};

use hb_store::pg_testing::TempDatabase;
use hb_store::{Batch, GroupCommit, PgOptions, PgStore, Store, StoreError};

fn two_nodes(database: &TempDatabase) -> [Arc<dyn Store>; 2] {
    let open = || -> Arc<dyn Store> {
        Arc::new(PgStore::open(database.url(), &PgOptions::default()).expect("open postgres"))
    };
    [open(), open()]
}

#[test]
fn put_new_on_one_key_from_two_nodes_has_exactly_one_winner() {
    let database = TempDatabase::create();
    let nodes = two_nodes(&database);
    let per_node = 4;
    for round in 0..20u8 {
        let key = format!("slot/{round}").into_bytes();
        let barrier = Barrier::new(2 * per_node);
        let wins: Vec<(usize, bool)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2 * per_node)
                .map(|i| {
                    let (node, barrier, key) = (&nodes[i % 2], &barrier, &key);
                    scope.spawn(move || {
                        let mut b = Batch::new();
                        b.put_new(key.clone(), vec![i as u8]);
                        // Each writer also claims a key of its own, so a
                        // loser's batch must leave that key unwritten.
                        b.put_new(format!("own/{round}/{i}").into_bytes(), vec![1]);
                        barrier.wait();
                        match node.apply(b) {
                            Ok(()) => (i, true),
                            Err(StoreError::KeyExists { .. }) => (i, false),
                            Err(e) => panic!("unexpected {e:?}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = wins.iter().filter(|(_, w)| *w).map(|(i, _)| *i).collect();
        assert_eq!(winners.len(), 1, "round {round}: {wins:?}");
        let winner = winners[0];
        // Both nodes read the winner's value, and only the winner's own key.
        for node in &nodes {
            assert_eq!(node.get(&key).unwrap(), Some(vec![winner as u8]));
            for (i, won) in &wins {
                let own = node.get(format!("own/{round}/{i}").as_bytes()).unwrap();
                assert_eq!(own.is_some(), *won, "round {round}, writer {i}");
            }
        }
    }
}

#[test]
fn group_commits_on_two_nodes_racing_for_slots_never_both_win() {
    // Each node's writer thread groups its callers' batches; both nodes try
    // to write the same 200 slots, each slot requiring the one before.
    let database = TempDatabase::create();
    let nodes = two_nodes(&database);
    let writers: Vec<GroupCommit> = nodes
        .iter()
        .map(|n| GroupCommit::start(n.clone()).unwrap())
        .collect();
    let slot = |n: u32| format!("sched/{n:08}").into_bytes();
    let outcomes: Vec<Vec<Result<(), StoreError>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(node, writer)| {
                scope.spawn(move || {
                    let acks: Vec<_> = (0..200u32)
                        .map(|n| {
                            let mut b = Batch::new();
                            b.put_new(slot(n), vec![node as u8]);
                            if let Some(previous) = n.checked_sub(1) {
                                b.require(slot(previous));
                            }
                            writer.submit(b)
                        })
                        .collect();
                    acks.into_iter().map(futures::executor::block_on).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Every slot is stored exactly once, by the node whose write succeeded,
    // and the schedule has no gap.
    for n in 0..200u32 {
        let won: Vec<usize> = (0..2)
            .filter(|&node| outcomes[node][n as usize].is_ok())
            .collect();
        assert_eq!(
            won.len(),
            1,
            "slot {n}: {:?}",
            [&outcomes[0][n as usize], &outcomes[1][n as usize]]
        );
        assert_eq!(nodes[0].get(&slot(n)).unwrap(), Some(vec![won[0] as u8]));
        for node_outcomes in &outcomes {
            if let Err(e) = &node_outcomes[n as usize] {
                assert!(
                    matches!(e, StoreError::KeyExists { .. } | StoreError::Missing { .. }),
                    "{e:?}"
                );
            }
        }
    }
}

#[test]
fn a_node_fenced_by_another_writes_nothing() {
    // Node A holds the lease value it read; node B takes the lease over with
    // a compare-and-swap; A's next batch, fenced on the old value, fails.
    let database = TempDatabase::create();
    let [a, b] = two_nodes(&database);
    a.put(b"lease/p", b"a/1").unwrap();
    let mut first = Batch::new();
    first.require_eq(b"lease/p".to_vec(), b"a/1".to_vec());
    first.put_new(b"sched/p/0".to_vec(), b"a".to_vec());
    a.apply(first).unwrap();
    assert!(b
        .compare_and_swap(b"lease/p", Some(b"a/1"), Some(b"b/2"))
        .unwrap());
    let mut late = Batch::new();
    late.require_eq(b"lease/p".to_vec(), b"a/1".to_vec());
    late.put_new(b"sched/p/1".to_vec(), b"a".to_vec());
    late.require(b"sched/p/0".to_vec());
    assert_eq!(
        a.apply(late),
        Err(StoreError::PreconditionFailed {
            key: "lease/p".into()
        })
    );
    assert_eq!(b.get(b"sched/p/1").unwrap(), None);
    let mut owner = Batch::new();
    owner.require_eq(b"lease/p".to_vec(), b"b/2".to_vec());
    owner.put_new(b"sched/p/1".to_vec(), b"b".to_vec());
    owner.require(b"sched/p/0".to_vec());
    b.apply(owner).unwrap();
    assert_eq!(a.get(b"sched/p/1").unwrap(), Some(b"b".to_vec()));
}

#[test]
fn require_eq_batches_from_two_nodes_never_both_pass_on_one_value() {
    // A counter advanced only by batches "require the value I read, then
    // write the next": if two writers could both pass on one value, an
    // increment would be lost and the counter would end below the number
    // of batches that succeeded.
    let database = TempDatabase::create();
    let nodes = two_nodes(&database);
    nodes[0].put(b"counter", &0u64.to_be_bytes()).unwrap();
    let threads_per_node = 2;
    let tries = 60;
    let successes: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2 * threads_per_node)
            .map(|i| {
                let node = &nodes[i % 2];
                scope.spawn(move || {
                    let mut won = 0;
                    for _ in 0..tries {
                        let read = node.get(b"counter").unwrap().unwrap();
                        let n = u64::from_be_bytes(read.as_slice().try_into().unwrap());
                        let mut b = Batch::new();
                        b.require_eq(b"counter".to_vec(), read);
                        b.put(b"counter".to_vec(), (n + 1).to_be_bytes().to_vec());
                        match node.apply(b) {
                            Ok(()) => won += 1,
                            Err(StoreError::PreconditionFailed { .. }) => {}
                            Err(e) => panic!("unexpected {e:?}"),
                        }
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let end = nodes[1].get(b"counter").unwrap().unwrap();
    assert_eq!(
        u64::from_be_bytes(end.as_slice().try_into().unwrap()),
        successes
    );
    assert!(successes > 0);
}
