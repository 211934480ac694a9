//! The `Store` contract (SPEC §3.1, §11.1), written once and run against
//! every backend: each case is a function over `&dyn Store`, and
//! `contract!` instantiates every case for one backend (`memory`, `sled`,
//! `fjall`, `postgres`). A model-based property test compares each backend with a
//! `BTreeMap`.
//!
//! The PostgreSQL cases run on the server `HB_TEST_POSTGRES_URL` names
//! (default: the local one), each in a database of its own that is dropped
//! afterwards; an unreachable server fails them with a message saying so.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use hb_store::pg_testing::TempDatabase;
use hb_store::{
    Batch, Direction, FjallStore, MemoryStore, PgOptions, PgStore, SledStore, Store, StoreError,
};
use proptest::prelude::*;

/// A backend under test, with whatever keeps it alive (a temp dir, a
/// database). Fields drop in order: the store before what holds it.
struct Subject {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _database: Option<TempDatabase>,
}

fn memory() -> Subject {
    Subject {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
        _database: None,
    }
}

fn sled() -> Subject {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path().join("db")).expect("open sled");
    Subject {
        store: Arc::new(store),
        _dir: Some(dir),
        _database: None,
    }
}

fn fjall() -> Subject {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FjallStore::open(dir.path().join("db")).expect("open fjall");
    Subject {
        store: Arc::new(store),
        _dir: Some(dir),
        _database: None,
    }
}

fn postgres() -> Subject {
    let database = TempDatabase::create();
    let store = PgStore::open(database.url(), &PgOptions::default()).expect("open postgres");
    Subject {
        store: Arc::new(store),
        _dir: None,
        _database: Some(database),
    }
}

/// Every entry of the store.
fn everything(s: &dyn Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.range(b"", None, Direction::Forward, usize::MAX).unwrap()
}

fn keys(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<&[u8]> {
    entries.iter().map(|(k, _)| k.as_slice()).collect()
}

fn point_reads_writes_and_deletes(s: &dyn Store) {
    assert_eq!(s.get(b"a").unwrap(), None);
    s.put(b"a", b"1").unwrap();
    assert_eq!(s.get(b"a").unwrap(), Some(b"1".to_vec()));
    s.put(b"a", b"2").unwrap();
    assert_eq!(s.get(b"a").unwrap(), Some(b"2".to_vec()));
    s.delete(b"a").unwrap();
    assert_eq!(s.get(b"a").unwrap(), None);
    // Deleting an absent key is fine.
    s.delete(b"a").unwrap();
    // Empty values and binary keys are values like any other.
    s.put(b"\x00\xff", b"").unwrap();
    assert_eq!(s.get(b"\x00\xff").unwrap(), Some(Vec::new()));
}

fn ranges_are_ordered_bounded_and_limited(s: &dyn Store) {
    for k in [&b"p/1"[..], b"p/2", b"p/3", b"p/\xff", b"o", b"q"] {
        s.put(k, k).unwrap();
    }
    let fwd = s.scan_prefix(b"p/", Direction::Forward, 100).unwrap();
    assert_eq!(keys(&fwd), vec![&b"p/1"[..], b"p/2", b"p/3", b"p/\xff"]);
    assert!(fwd.iter().all(|(k, v)| k == v));
    let rev = s.scan_prefix(b"p/", Direction::Reverse, 2).unwrap();
    assert_eq!(keys(&rev), vec![&b"p/\xff"[..], b"p/3"]);
    // start inclusive, end exclusive.
    let mid = s
        .range(b"p/2", Some(b"p/3"), Direction::Forward, 10)
        .unwrap();
    assert_eq!(keys(&mid), vec![&b"p/2"[..]]);
    let rev_mid = s
        .range(b"p/1", Some(b"p/3"), Direction::Reverse, 10)
        .unwrap();
    assert_eq!(keys(&rev_mid), vec![&b"p/2"[..], b"p/1"]);
    // Unbounded end, limit 0, inverted and empty ranges.
    let tail = s.range(b"p/\xff", None, Direction::Forward, 10).unwrap();
    assert_eq!(keys(&tail), vec![&b"p/\xff"[..], b"q"]);
    assert!(s
        .scan_prefix(b"p/", Direction::Forward, 0)
        .unwrap()
        .is_empty());
    assert!(s
        .range(b"p/3", Some(b"p/1"), Direction::Forward, 10)
        .unwrap()
        .is_empty());
    assert!(s
        .range(b"p/3", Some(b"p/3"), Direction::Reverse, 10)
        .unwrap()
        .is_empty());
    assert!(s
        .scan_prefix(b"z", Direction::Reverse, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        s.last_with_prefix(b"p/").unwrap().map(|e| e.0),
        Some(b"p/\xff".to_vec())
    );
    assert_eq!(s.last_with_prefix(b"none/").unwrap(), None);
}

fn big_endian_slots_sort_numerically(s: &dyn Store) {
    for slot in [0u64, 1, 255, 256, 65_535, 65_536, u64::MAX] {
        let mut key = b"sched/".to_vec();
        key.extend_from_slice(&slot.to_be_bytes());
        s.put(&key, &slot.to_be_bytes()).unwrap();
    }
    let order: Vec<u64> = s
        .scan_prefix(b"sched/", Direction::Forward, 100)
        .unwrap()
        .iter()
        .map(|(_, v)| u64::from_be_bytes(v.as_slice().try_into().unwrap()))
        .collect();
    assert_eq!(order, vec![0, 1, 255, 256, 65_535, 65_536, u64::MAX]);
}

fn batches_apply_in_order(s: &dyn Store) {
    s.put(b"gone", b"x").unwrap();
    let mut b = Batch::new();
    b.put(b"a".to_vec(), b"1".to_vec());
    b.put(b"a".to_vec(), b"2".to_vec());
    b.put(b"b".to_vec(), b"3".to_vec());
    b.delete(b"b".to_vec());
    b.delete(b"gone".to_vec());
    s.apply(b).unwrap();
    assert_eq!(s.get(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(s.get(b"b").unwrap(), None);
    assert_eq!(s.get(b"gone").unwrap(), None);
    s.apply(Batch::new()).unwrap();
}

fn a_failing_put_new_applies_nothing_of_its_batch(s: &dyn Store) {
    s.put(b"taken", b"first").unwrap();
    let mut b = Batch::new();
    b.put(b"other".to_vec(), b"x".to_vec());
    b.put_new(b"taken".to_vec(), b"second".to_vec());
    let err = s.apply(b).unwrap_err();
    assert!(
        matches!(&err, StoreError::KeyExists { key } if key == "taken"),
        "{err:?}"
    );
    assert_eq!(s.get(b"taken").unwrap(), Some(b"first".to_vec()));
    assert_eq!(s.get(b"other").unwrap(), None);
    let mut ok = Batch::new();
    ok.put_new(b"fresh".to_vec(), b"y".to_vec());
    s.apply(ok).unwrap();
    assert_eq!(s.get(b"fresh").unwrap(), Some(b"y".to_vec()));
}

fn put_new_on_a_scheduler_key_is_slot_exists(s: &dyn Store) {
    let pid = hb_message::Id([3; 32]);
    let key = hb_store::keys::sched(&pid, 7);
    let mut b = Batch::new();
    b.put_new(key.clone(), b"a".to_vec());
    s.apply(b.clone()).unwrap();
    let err = s.apply(b).unwrap_err();
    assert_eq!(
        err,
        StoreError::SlotExists {
            pid: pid.to_human(),
            slot: 7
        }
    );
}

fn put_if_absent_keeps_the_first_write(s: &dyn Store) {
    let mut b = Batch::new();
    b.put_if_absent(b"k".to_vec(), b"first".to_vec());
    s.apply(b).unwrap();
    let mut b = Batch::new();
    b.put_if_absent(b"k".to_vec(), b"second".to_vec());
    b.put(b"other".to_vec(), b"applied".to_vec());
    s.apply(b).unwrap();
    assert_eq!(s.get(b"k").unwrap(), Some(b"first".to_vec()));
    assert_eq!(s.get(b"other").unwrap(), Some(b"applied".to_vec()));
}

fn put_content_writes_and_rewriting_identical_content_changes_nothing(s: &dyn Store) {
    let content = |b: &mut Batch| {
        b.put_content(b"msg/1".to_vec(), b"content one".to_vec());
        b.put_content(b"cmt/1/a".to_vec(), b"commitment a".to_vec());
    };
    let mut b = Batch::new();
    content(&mut b);
    s.apply(b).unwrap();
    assert_eq!(s.get(b"msg/1").unwrap(), Some(b"content one".to_vec()));
    assert_eq!(s.get(b"cmt/1/a").unwrap(), Some(b"commitment a".to_vec()));
    let before = everything(s);
    // Rewriting the same content, alone, in a group, beside other writes.
    let mut b = Batch::new();
    content(&mut b);
    s.apply(b).unwrap();
    let mut again = Batch::new();
    content(&mut again);
    let outcomes = s.apply_group(vec![again.clone(), again]);
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(everything(s), before);
    // A content write is a write: later conditions of its batch, and later
    // batches of its group, see the key present.
    let mut b = Batch::new();
    b.put_content(b"msg/2".to_vec(), b"content two".to_vec());
    b.put_new(b"msg/2".to_vec(), b"other".to_vec());
    assert!(matches!(s.apply(b), Err(StoreError::KeyExists { .. })));
    assert_eq!(
        s.get(b"msg/2").unwrap(),
        None,
        "a failed batch writes nothing"
    );
    let mut first = Batch::new();
    first.put_content(b"msg/3".to_vec(), b"content three".to_vec());
    let mut second = Batch::new();
    second.require(b"msg/3".to_vec());
    second.put_new(b"msg/3".to_vec(), b"other".to_vec());
    let outcomes = s.apply_group(vec![first, second]);
    assert!(outcomes[0].is_ok());
    assert!(matches!(outcomes[1], Err(StoreError::KeyExists { .. })));
    assert_eq!(s.get(b"msg/3").unwrap(), Some(b"content three".to_vec()));
}

fn groups_report_each_batch_and_see_earlier_ones(s: &dyn Store) {
    s.put(b"old", b"0").unwrap();
    let mk = |key: &[u8], v: &[u8]| {
        let mut b = Batch::new();
        b.put_new(key.to_vec(), v.to_vec());
        b
    };
    let outcomes = s.apply_group(vec![
        mk(b"x", b"1"),
        mk(b"x", b"2"),   // sees the first batch: fails
        mk(b"old", b"3"), // present before: fails
        mk(b"y", b"4"),
    ]);
    assert!(outcomes[0].is_ok());
    assert!(matches!(outcomes[1], Err(StoreError::KeyExists { .. })));
    assert!(matches!(outcomes[2], Err(StoreError::KeyExists { .. })));
    assert!(outcomes[3].is_ok());
    assert_eq!(s.get(b"x").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.get(b"old").unwrap(), Some(b"0".to_vec()));
    assert_eq!(s.get(b"y").unwrap(), Some(b"4".to_vec()));
    assert!(s.apply_group(Vec::new()).is_empty());
}

fn require_eq_fails_the_whole_batch_and_changes_nothing(s: &dyn Store) {
    s.put(b"lease", b"owner-1/epoch-1").unwrap();
    s.put(b"kept", b"0").unwrap();
    let before = everything(s);
    // Another value, a prefix of the value, a longer one, an absent key:
    // each fails the batch, wherever the precondition stands in it.
    for (key, value) in [
        (&b"lease"[..], &b"owner-2/epoch-2"[..]),
        (b"lease", b"owner-1"),
        (b"lease", b"owner-1/epoch-1/"),
        (b"absent", b""),
    ] {
        let mut b = Batch::new();
        b.put(b"kept".to_vec(), b"1".to_vec());
        b.require_eq(key.to_vec(), value.to_vec());
        b.put_new(b"fresh".to_vec(), b"2".to_vec());
        b.delete(b"kept".to_vec());
        let err = s.apply(b).unwrap_err();
        assert_eq!(
            err,
            StoreError::PreconditionFailed {
                key: String::from_utf8(key.to_vec()).unwrap()
            }
        );
        assert_eq!(everything(s), before, "a failed batch writes nothing");
    }
    // The exact value holds, and the rest of the batch applies.
    let mut b = Batch::new();
    b.require_eq(b"lease".to_vec(), b"owner-1/epoch-1".to_vec());
    b.put(b"kept".to_vec(), b"1".to_vec());
    s.apply(b).unwrap();
    assert_eq!(s.get(b"kept").unwrap(), Some(b"1".to_vec()));
    // An empty value is a value.
    s.put(b"empty", b"").unwrap();
    let mut b = Batch::new();
    b.require_eq(b"empty".to_vec(), Vec::new());
    s.apply(b).unwrap();
}

fn require_eq_sees_a_replaced_value_as_stale(s: &dyn Store) {
    // The fence of SPEC §11.2: a writer holding an old lease value is
    // refused once another writer replaced it, alone or in a group.
    s.put(b"lease/p", b"node-a/1").unwrap();
    assert!(s
        .compare_and_swap(b"lease/p", Some(b"node-a/1"), Some(b"node-b/2"))
        .unwrap());
    let fenced = |slot: &[u8]| {
        let mut b = Batch::new();
        b.require_eq(b"lease/p".to_vec(), b"node-a/1".to_vec());
        b.put_new(slot.to_vec(), b"from a".to_vec());
        b
    };
    assert!(matches!(
        s.apply(fenced(b"slot/1")),
        Err(StoreError::PreconditionFailed { .. })
    ));
    let mut owner = Batch::new();
    owner.require_eq(b"lease/p".to_vec(), b"node-b/2".to_vec());
    owner.put_new(b"slot/1".to_vec(), b"from b".to_vec());
    // In a group: the current owner's batch commits, the stale one fails,
    // and a later batch sees the lease a batch of the group replaced.
    let mut renew = Batch::new();
    renew.require_eq(b"lease/p".to_vec(), b"node-b/2".to_vec());
    renew.put(b"lease/p".to_vec(), b"node-b/3".to_vec());
    let mut after = Batch::new();
    after.require_eq(b"lease/p".to_vec(), b"node-b/3".to_vec());
    after.put_new(b"slot/2".to_vec(), b"from b".to_vec());
    let outcomes = s.apply_group(vec![owner, fenced(b"slot/2"), renew, after]);
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(matches!(
        outcomes[1],
        Err(StoreError::PreconditionFailed { .. })
    ));
    assert!(outcomes[2].is_ok() && outcomes[3].is_ok(), "{outcomes:?}");
    assert_eq!(s.get(b"slot/1").unwrap(), Some(b"from b".to_vec()));
    assert_eq!(s.get(b"slot/2").unwrap(), Some(b"from b".to_vec()));
    assert_eq!(s.get(b"lease/p").unwrap(), Some(b"node-b/3".to_vec()));
}

fn a_group_isolates_each_failing_batch(s: &dyn Store) {
    s.put(b"present", b"p").unwrap();
    s.put(b"lease", b"mine").unwrap();
    let batch = |ops: &[(&str, &str, &str)]| {
        let mut b = Batch::new();
        for (op, k, v) in ops {
            let (k, v) = (k.as_bytes().to_vec(), v.as_bytes().to_vec());
            match *op {
                "put" => b.put(k, v),
                "new" => b.put_new(k, v),
                "delete" => b.delete(k),
                "require" => b.require(k),
                "eq" => b.require_eq(k, v),
                other => unreachable!("{other}"),
            }
        }
        b
    };
    let outcomes = s.apply_group(vec![
        batch(&[("put", "a", "1"), ("eq", "lease", "mine")]),
        // Each of these writes first, then fails: none of it may land.
        batch(&[
            ("put", "b", "1"),
            ("delete", "present", ""),
            ("eq", "lease", "theirs"),
        ]),
        batch(&[("put", "c", "1"), ("require", "missing", "")]),
        batch(&[("put", "d", "1"), ("new", "present", "x")]),
        batch(&[("put", "e", "1"), ("new", "a", "x")]),
        // Sees the first batch's write, not the failed ones'.
        batch(&[("require", "a", ""), ("new", "b", "2"), ("new", "c", "2")]),
    ]);
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(matches!(
        outcomes[1],
        Err(StoreError::PreconditionFailed { .. })
    ));
    assert!(matches!(outcomes[2], Err(StoreError::Missing { .. })));
    assert!(matches!(outcomes[3], Err(StoreError::KeyExists { .. })));
    assert!(matches!(outcomes[4], Err(StoreError::KeyExists { .. })));
    assert!(outcomes[5].is_ok(), "{outcomes:?}");
    let got: Vec<(Vec<u8>, Vec<u8>)> = everything(s)
        .into_iter()
        .filter(|(k, _)| !k.starts_with(b"meta/"))
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = [
        ("a", "1"),
        ("b", "2"),
        ("c", "2"),
        ("lease", "mine"),
        ("present", "p"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    assert_eq!(got, want);
}

fn compare_and_swap_is_conditional(s: &dyn Store) {
    assert!(s.compare_and_swap(b"h", None, Some(b"1")).unwrap());
    assert!(!s.compare_and_swap(b"h", None, Some(b"2")).unwrap());
    assert!(!s.compare_and_swap(b"h", Some(b"0"), Some(b"2")).unwrap());
    assert_eq!(s.get(b"h").unwrap(), Some(b"1".to_vec()));
    assert!(s.compare_and_swap(b"h", Some(b"1"), Some(b"2")).unwrap());
    assert_eq!(s.get(b"h").unwrap(), Some(b"2".to_vec()));
    assert!(s.compare_and_swap(b"h", Some(b"2"), None).unwrap());
    assert_eq!(s.get(b"h").unwrap(), None);
}

fn racing_put_new_writers_have_exactly_one_winner(s: &dyn Store) {
    // Shared through a scope: every thread tries to claim the same slot.
    let threads = 8;
    let barrier = Barrier::new(threads);
    let wins: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let mut b = Batch::new();
                    b.put_new(b"slot".to_vec(), vec![i as u8]);
                    match s.apply(b) {
                        Ok(()) => true,
                        Err(StoreError::KeyExists { .. }) => false,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().filter(|w| **w).count(), 1);
    let winner = wins.iter().position(|w| *w).unwrap() as u8;
    assert_eq!(s.get(b"slot").unwrap(), Some(vec![winner]));
}

fn racing_compare_and_swap_fences_one_writer(s: &dyn Store) {
    s.put(b"head", &0u64.to_be_bytes()).unwrap();
    let threads = 4;
    let per_thread = 50;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut done = 0;
                while done < per_thread {
                    let cur = s.get(b"head").unwrap().unwrap();
                    let n = u64::from_be_bytes(cur.as_slice().try_into().unwrap());
                    if s.compare_and_swap(b"head", Some(&cur), Some(&(n + 1).to_be_bytes()))
                        .unwrap()
                    {
                        done += 1;
                    }
                }
            });
        }
    });
    let end = s.get(b"head").unwrap().unwrap();
    assert_eq!(
        u64::from_be_bytes(end.as_slice().try_into().unwrap()),
        (threads * per_thread) as u64
    );
}

fn flush_returns_after_writes(s: &dyn Store) {
    s.put(b"k", b"v").unwrap();
    s.flush().unwrap();
    assert_eq!(s.get(b"k").unwrap(), Some(b"v".to_vec()));
}

macro_rules! contract {
    ($backend:ident: $($case:ident),+ $(,)?) => {
        mod $backend {
            $(
                #[test]
                fn $case() {
                    let subject = super::$backend();
                    super::$case(subject.store.as_ref());
                }
            )+
        }
    };
}

macro_rules! all_cases {
    ($($backend:ident),+) => {$(
        contract!($backend:
            point_reads_writes_and_deletes,
            ranges_are_ordered_bounded_and_limited,
            big_endian_slots_sort_numerically,
            batches_apply_in_order,
            a_failing_put_new_applies_nothing_of_its_batch,
            put_new_on_a_scheduler_key_is_slot_exists,
            put_if_absent_keeps_the_first_write,
            put_content_writes_and_rewriting_identical_content_changes_nothing,
            groups_report_each_batch_and_see_earlier_ones,
            require_eq_fails_the_whole_batch_and_changes_nothing,
            require_eq_sees_a_replaced_value_as_stale,
            a_group_isolates_each_failing_batch,
            compare_and_swap_is_conditional,
            racing_put_new_writers_have_exactly_one_winner,
            racing_compare_and_swap_fences_one_writer,
            flush_returns_after_writes,
        );
    )+};
}

all_cases!(memory, sled, fjall, postgres);

// ---- model-based property test ----------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Apply(Vec<BOp>),
    Group(Vec<Vec<BOp>>),
    Cas(Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>),
    Range(Vec<u8>, Option<Vec<u8>>, bool, usize),
    Get(Vec<u8>),
}

#[derive(Clone, Debug)]
enum BOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    PutNew(Vec<u8>, Vec<u8>),
    PutIfAbsent(Vec<u8>, Vec<u8>),
    PutContent(Vec<u8>, Vec<u8>),
    Require(Vec<u8>),
    RequireEq(Vec<u8>, Vec<u8>),
}

/// The model: a plain map with the contract's semantics spelled out.
#[derive(Default)]
struct Model(BTreeMap<Vec<u8>, Vec<u8>>);

impl Model {
    fn apply(&mut self, ops: &[BOp]) -> Result<(), Vec<u8>> {
        let mut next = self.0.clone();
        for op in ops {
            match op {
                // A content write is unconditional (its caller guarantees the
                // key fixes the value; arbitrary values here check that it
                // is a plain write).
                BOp::Put(k, v) | BOp::PutContent(k, v) => {
                    next.insert(k.clone(), v.clone());
                }
                BOp::Delete(k) => {
                    next.remove(k);
                }
                BOp::PutNew(k, v) => {
                    if next.contains_key(k) {
                        return Err(k.clone());
                    }
                    next.insert(k.clone(), v.clone());
                }
                BOp::PutIfAbsent(k, v) => {
                    next.entry(k.clone()).or_insert_with(|| v.clone());
                }
                BOp::Require(k) => {
                    if !next.contains_key(k) {
                        return Err(k.clone());
                    }
                }
                BOp::RequireEq(k, v) => {
                    if next.get(k) != Some(v) {
                        return Err(k.clone());
                    }
                }
            }
        }
        self.0 = next;
        Ok(())
    }
}

fn to_batch(ops: &[BOp]) -> Batch {
    let mut b = Batch::new();
    for op in ops {
        match op {
            BOp::Put(k, v) => b.put(k.clone(), v.clone()),
            BOp::Delete(k) => b.delete(k.clone()),
            BOp::PutNew(k, v) => b.put_new(k.clone(), v.clone()),
            BOp::PutIfAbsent(k, v) => b.put_if_absent(k.clone(), v.clone()),
            BOp::PutContent(k, v) => b.put_content(k.clone(), v.clone()),
            BOp::Require(k) => b.require(k.clone()),
            BOp::RequireEq(k, v) => b.require_eq(k.clone(), v.clone()),
        }
    }
    b
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    // A small key space so that operations collide often.
    prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0xff]), 0..3)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..4),
        // A few values, so that `RequireEq` often holds.
        few_values(),
    ]
}

fn few_values() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![vec![], vec![0], vec![1], vec![0, 1]])
}

fn bop() -> impl Strategy<Value = BOp> {
    prop_oneof![
        key().prop_map(BOp::Require),
        (key(), few_values()).prop_map(|(k, v)| BOp::RequireEq(k, v)),
        (key(), value()).prop_map(|(k, v)| BOp::Put(k, v)),
        key().prop_map(BOp::Delete),
        (key(), value()).prop_map(|(k, v)| BOp::PutNew(k, v)),
        (key(), value()).prop_map(|(k, v)| BOp::PutIfAbsent(k, v)),
        (key(), value()).prop_map(|(k, v)| BOp::PutContent(k, v)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        key().prop_map(Op::Delete),
        prop::collection::vec(bop(), 0..5).prop_map(Op::Apply),
        prop::collection::vec(prop::collection::vec(bop(), 0..4), 0..4).prop_map(Op::Group),
        (key(), prop::option::of(value()), prop::option::of(value()))
            .prop_map(|(k, e, n)| Op::Cas(k, e, n)),
        (key(), prop::option::of(key()), any::<bool>(), 0usize..6)
            .prop_map(|(s, e, r, l)| Op::Range(s, e, r, l)),
        key().prop_map(Op::Get),
    ]
}

fn check_against_model(store: &dyn Store, ops: &[Op]) -> Result<(), TestCaseError> {
    // Start from what the backend holds when new (sled: its format marker).
    let initial = store
        .range(b"", None, Direction::Forward, usize::MAX)
        .unwrap();
    let mut model = Model(initial.into_iter().collect());
    for op in ops {
        match op {
            Op::Put(k, v) => {
                store.put(k, v).unwrap();
                model.0.insert(k.clone(), v.clone());
            }
            Op::Delete(k) => {
                store.delete(k).unwrap();
                model.0.remove(k);
            }
            Op::Apply(ops) => {
                let got = store.apply(to_batch(ops));
                let want = model.apply(ops);
                prop_assert_eq!(got.is_ok(), want.is_ok(), "{:?}", got);
            }
            Op::Group(batches) => {
                let got = store.apply_group(batches.iter().map(|b| to_batch(b)).collect());
                prop_assert_eq!(got.len(), batches.len());
                for (g, b) in got.iter().zip(batches) {
                    let want = model.apply(b);
                    prop_assert_eq!(g.is_ok(), want.is_ok(), "{:?}", g);
                }
            }
            Op::Cas(k, expected, new) => {
                let got = store
                    .compare_and_swap(k, expected.as_deref(), new.as_deref())
                    .unwrap();
                let want = model.0.get(k) == expected.as_ref();
                if want {
                    match new {
                        Some(v) => model.0.insert(k.clone(), v.clone()),
                        None => model.0.remove(k),
                    };
                }
                prop_assert_eq!(got, want);
            }
            Op::Range(start, end, reverse, limit) => {
                let dir = if *reverse {
                    Direction::Reverse
                } else {
                    Direction::Forward
                };
                let got = store.range(start, end.as_deref(), dir, *limit).unwrap();
                let inside = |k: &Vec<u8>| k >= start && end.as_ref().is_none_or(|e| k < e);
                let mut want: Vec<(Vec<u8>, Vec<u8>)> = model
                    .0
                    .iter()
                    .filter(|(k, _)| inside(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if *reverse {
                    want.reverse();
                }
                want.truncate(*limit);
                prop_assert_eq!(got, want);
            }
            Op::Get(k) => {
                prop_assert_eq!(store.get(k).unwrap(), model.0.get(k).cloned());
            }
        }
    }
    let all = store
        .range(b"", None, Direction::Forward, usize::MAX)
        .unwrap();
    let want: Vec<_> = model.0.into_iter().collect();
    prop_assert_eq!(all, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn memory_store_behaves_like_the_model(ops in prop::collection::vec(op(), 0..40)) {
        check_against_model(memory().store.as_ref(), &ops)?;
    }

    #[test]
    fn sled_store_behaves_like_the_model(ops in prop::collection::vec(op(), 0..40)) {
        check_against_model(sled().store.as_ref(), &ops)?;
    }

    #[test]
    fn fjall_store_behaves_like_the_model(ops in prop::collection::vec(op(), 0..40)) {
        check_against_model(fjall().store.as_ref(), &ops)?;
    }
}

/// The same on PostgreSQL: one database for all cases (a database per case
/// would take most of the run), emptied of everything but the format
/// marker before each.
#[test]
fn postgres_store_behaves_like_the_model() {
    let subject = postgres();
    let store = subject.store.as_ref();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let result = runner.run(&prop::collection::vec(op(), 0..40), |ops| {
        for (key, _) in everything(store) {
            if key != hb_store::FORMAT_KEY {
                store.delete(&key).unwrap();
            }
        }
        check_against_model(store, &ops)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn sled_and_fjall_report_their_size_on_disk_and_memory_does_not() {
    for s in [sled(), fjall()] {
        s.store.put(b"a", &[7; 4096]).unwrap();
        s.store.flush().unwrap();
        assert!(s.store.bytes_on_disk().is_some_and(|n| n > 0));
    }
    assert_eq!(memory().store.bytes_on_disk(), None);
}

#[test]
fn postgres_reports_its_table_size() {
    let s = postgres();
    s.store.put(b"a", &[7; 4096]).unwrap();
    assert!(s.store.bytes_on_disk().is_some_and(|n| n > 0));
}
