//! Reads 1,000 assignments with `SchedulerCache::range`, for instruction
//! counts under callgrind (docs/PERFORMANCE.md, `## hb-store`):
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*read_page*' \
//!     target/release/examples/range_decode [sled|memory] [rounds] [full|stored|each]
//! ```
//!
//! Each record is a signed assignment whose body is a signed message with
//! 1 KiB of data. `full` (the default) is `SchedulerCache::range`, every
//! message decoded into the page; `stored` is `range_stored`, messages left
//! packed; `each` is `range_stored`, then each message decoded and dropped
//! in turn; `json` is `range_stored`, then each message's JSON written
//! from its stored bytes into one buffer (`StoredAssignment::write_json`). Prints the median wall time of a page read (noisy on a shared
//! machine; the instruction count is the repeatable figure).

use std::sync::Arc;

use hb_message::{msg, Id, Message, NodeKey};
use hb_store::{
    AssignmentRecord, Batch, MemoryStore, SchedulerCache, SledStore, Store, StoreError,
    StoredAssignment,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map(String::as_str).unwrap_or("sled");
    let rounds: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let mode = args.get(3).map(String::as_str).unwrap_or("full");
    let tmp = tempfile::tempdir()?;
    let store: Arc<dyn Store> = match backend {
        "memory" => Arc::new(MemoryStore::new()),
        _ => Arc::new(SledStore::open(tmp.path().join("sched"))?),
    };
    let node = NodeKey::from_seed(&[9; 32]);
    let pid = Id([3; 32]);
    let body = msg! { "data" => vec![0x5au8; 1024], "action" => "eval" }.commit(&node, None)?;
    let assignment: Message = msg! {
        "process" => pid.to_human(),
        "slot" => 0,
        "body" => body,
    }
    .commit(&node, None)?;
    let mut batch = Batch::new();
    for slot in 0..1_000u64 {
        let record = AssignmentRecord {
            pid,
            slot,
            hash_chain: vec![7; 32],
            assignment_id: Id([slot as u8; 32]),
            assignment: assignment.clone(),
        };
        SchedulerCache::stage_assignment(&mut batch, &record)?;
    }
    store.apply(batch)?;
    let cache = SchedulerCache::new(store);
    let (mut reads, mut drops) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let started = std::time::Instant::now();
        let page = read_page(&cache, &pid, mode)?;
        reads.push(started.elapsed());
        assert_eq!(page.len(), 1_000);
        if let Page::Full(records) = &page {
            assert_eq!(records[999].assignment, assignment);
        }
        let started = std::time::Instant::now();
        drop(page);
        drops.push(started.elapsed());
    }
    reads.sort();
    drops.sort();
    if let (Some(read), Some(dropped)) = (reads.get(rounds / 2), drops.get(rounds / 2)) {
        eprintln!(
            "{backend}, {mode}: median over {rounds} rounds: range of 1,000 {read:.2?}, drop {dropped:.2?}"
        );
    }
    Ok(())
}

/// A page as read by one mode.
enum Page {
    Full(Vec<AssignmentRecord>),
    Stored(Vec<StoredAssignment>),
}

impl Page {
    fn len(&self) -> usize {
        match self {
            Page::Full(v) => v.len(),
            Page::Stored(v) => v.len(),
        }
    }
}

/// The counted part: one page of 1,000 read in `mode`.
#[inline(never)]
fn read_page(cache: &SchedulerCache, pid: &Id, mode: &str) -> Result<Page, StoreError> {
    Ok(match mode {
        "stored" => Page::Stored(cache.range_stored(pid, 0, 999)?),
        "each" => {
            let page = cache.range_stored(pid, 0, 999)?;
            for stored in &page {
                std::hint::black_box(stored.message()?);
            }
            Page::Stored(page)
        }
        "json" => {
            let page = cache.range_stored(pid, 0, 999)?;
            // Sized as `hb_scheduler::formats::bundle_json` sizes it.
            let packed: usize = page
                .iter()
                .map(|a| a.packed_message().map_or(1024, <[u8]>::len))
                .sum();
            let mut json = Vec::with_capacity(packed + packed / 2 + 256);
            for stored in &page {
                stored.write_json(&mut json)?;
            }
            std::hint::black_box(json);
            Page::Stored(page)
        }
        _ => Page::Full(cache.range(pid, 0, 999)?),
    })
}

// The `hb` binary's allocator (docs/PERFORMANCE.md, "Allocators").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
