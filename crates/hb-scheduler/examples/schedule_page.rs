//! A page of 1,000 signed assignments read and encoded as JSON, the two
//! ways `GET schedule` can answer it (docs/PERFORMANCE.md, hb-scheduler,
//! "A schedule page, read and encoded"):
//!
//! ```text
//! cargo run --release -p hb-scheduler --example schedule_page [rounds]
//! ```
//!
//! - `decoded`: `Scheduler::read_schedule` (every message decoded), then
//!   `formats::to_bundle` and `json::to_json`, then the text: how the page
//!   was answered before `read_schedule_json`, and how a caller that wants
//!   `Message`s still reads it.
//! - `from stored`: `Scheduler::read_schedule_json`, each message's JSON
//!   written from its stored bytes.
//!
//! One process on a sled store in a temporary directory, 1,000 signed
//! `Ping` messages of 512 bytes of data, scheduled before the rounds; the
//! two ways alternate, and the medians are printed with their ratio. The
//! two answers are checked to be the same JSON value (timestamps aside).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hb_message::{json, Message, NodeKey};
use hb_scheduler::{formats, ChainTip, ScheduleRequest, SchedulerBuilder};
use hb_store::{SchedulerCache, SledStore};

// The `hb` binary's allocator (docs/PERFORMANCE.md, "Allocators").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[actix_rt::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(30);
    let tmp = tempfile::tempdir()?;
    let store = Arc::new(SledStore::open(tmp.path().join("store"))?);
    let key = NodeKey::from_seed(&[1; 32]);
    let client = NodeKey::from_seed(&[2; 32]);
    let scheduler = SchedulerBuilder::new(Arc::clone(&store) as _, key.clone()).start()?;
    let cache = SchedulerCache::new(store);
    let process = Message::new()
        .with("type", "Process")?
        .with("scheduler", key.address())?
        .commit(&client, None)?;
    let pid = process.id_all()?;
    let request = |message| ScheduleRequest {
        message,
        ..Default::default()
    };
    scheduler.schedule(request(process)).await?;
    for n in 1..=1_000 {
        let ping = Message::new()
            .with("target", pid.to_human())?
            .with("action", "Ping")?
            .with("n", n)?
            .with("data", vec![0x5a_u8; 512])?
            .commit(&client, None)?;
        scheduler.schedule(request(ping)).await?;
    }

    let (mut decoded, mut stored, mut direct) = (Vec::new(), Vec::new(), Vec::new());
    let tip = ChainTip {
        height: 0,
        timestamp: 0,
        hash: hb_message::Id([0; 32]),
    };
    let mut sizes = (0, 0);
    for _ in 0..rounds {
        let started = Instant::now();
        let page = scheduler.read_schedule(pid, Some(1), Some(1_000)).await?;
        let text = json::to_json(&formats::to_bundle(&page)?).to_string();
        decoded.push(started.elapsed());
        assert_eq!(page.assignments.len(), 1_000);

        let started = Instant::now();
        let written = scheduler
            .read_schedule_json(pid, Some(1), Some(1_000))
            .await?;
        stored.push(started.elapsed());

        let started = Instant::now();
        let page = cache.range_stored(&pid, 1, 1_000)?;
        let text_direct = formats::bundle_json(&pid, &page, false, &tip, 0)?;
        direct.push(started.elapsed());
        assert!(text_direct.len() + 100 > written.len());

        let without_time = |text: &[u8]| -> Result<serde_json::Value, serde_json::Error> {
            let mut v: serde_json::Value = serde_json::from_slice(text)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("timestamp");
            }
            Ok(v)
        };
        assert_eq!(without_time(text.as_bytes())?, without_time(&written)?);
        sizes = (text.len(), written.len());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (d, s, r) = (
        median(&mut decoded),
        median(&mut stored),
        median(&mut direct),
    );
    println!(
        "page of 1,000 ({} / {} bytes of JSON), median of {rounds} alternating rounds: \
         decoded {d:.2?}, from stored {s:.2?} ({:.2}x); of which the store's range \
         and the JSON, called directly: {r:.2?}",
        sizes.0,
        sizes.1,
        s.as_secs_f64() / d.as_secs_f64()
    );
    scheduler.shutdown().await;
    Ok(())
}
