//! DESIGN's "every queue is bounded" and SPEC §5.2 / §5.4 under a flood:
//! far more concurrent callers than capacity, signed and unsigned, while
//! the disk is stuck (flushes held at the harness's gate). Every caller is
//! answered without the disk ever completing a write, and only with `Busy`
//! or `Timeout`: signature checks sit behind a bounded queue and inside the
//! call's deadline, and a server's capacity slots are held until writes
//! are acknowledged, so the writes queued for the stuck disk never exceed
//! the server's capacity however many callers give up. Memory is reported
//! and bounded loosely (it must not grow with the number of callers).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use futures::future::join_all;
use hb_message::{ErrorCode, Id, Message};
use hb_scheduler::SchedulerConfig;
use hb_testkit::{wait_until, Harness};

const CAPACITY: usize = 32;
const CALLERS_PER_WAVE: usize = 2_000;
const WAVES: usize = 5;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn message(pid: &Id, n: usize, signed: bool) -> Message {
    let m = Message::new()
        .with("target", pid.to_human())
        .and_then(|m| m.with("n", n as i64))
        .expect("literal keys are valid");
    if signed {
        m.commit(&Harness::client(3), None).expect("commit")
    } else {
        m
    }
}

#[actix_rt::test]
async fn a_flood_on_a_stuck_disk_is_answered_busy_or_timeout_with_bounded_queues(
) -> anyhow::Result<()> {
    let (h, faulty) = Harness::start_faulty(SchedulerConfig {
        server_capacity: CAPACITY,
        verify_queue_capacity: 64,
        schedule_timeout_ms: 300,
        ..SchedulerConfig::default()
    });
    let client = Harness::client(1);
    let (a, _) = h.spawn_process(&client, 0).await?;
    let (b, _) = h.spawn_process(&client, 1).await?;
    // The messages of every wave, signed beforehand (outside the measure).
    let waves: Vec<Vec<Message>> = (0..WAVES)
        .map(|w| {
            (0..CALLERS_PER_WAVE)
                .map(|i| {
                    let n = w * CALLERS_PER_WAVE + i;
                    message(
                        if n.is_multiple_of(2) { &a } else { &b },
                        n,
                        !n.is_multiple_of(3),
                    )
                })
                .collect()
        })
        .collect();
    faulty.gate.close();
    let committed_before = h.writer.stats().committed;
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut rss_after_wave = Vec::new();
    for wave in waves {
        let answers = join_all(wave.into_iter().map(|m| h.schedule(m))).await;
        for answer in answers {
            let kind = match answer {
                Ok(_) => "ok",
                Err(e) => e.code(),
            };
            *outcomes.entry(kind).or_default() += 1;
        }
        let stats = h.writer.stats();
        let queued = stats.submitted - stats.committed - stats.failed;
        // Capacity slots are held until acknowledged: at most CAPACITY
        // writes per server wait for the stuck disk (plus the harness's
        // empty drain batches), however many callers timed out.
        assert!(
            queued <= (2 * CAPACITY + 2) as u64,
            "{queued} writes queued for a stuck disk with capacity {CAPACITY} per server"
        );
        rss_after_wave.push(rss_bytes());
    }
    // Every caller was answered while no write could complete.
    assert_eq!(
        h.writer.stats().committed,
        committed_before,
        "the disk was stuck"
    );
    let answered: usize = outcomes.values().sum();
    assert_eq!(answered, WAVES * CALLERS_PER_WAVE);
    assert_eq!(
        outcomes.get("ok"),
        None,
        "nothing can be durable: {outcomes:?}"
    );
    let other: Vec<_> = outcomes
        .keys()
        .filter(|k| !matches!(**k, "busy" | "schedule-timeout"))
        .collect();
    assert!(other.is_empty(), "only busy or timeout: {outcomes:?}");
    assert!(
        outcomes.get("busy").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
    assert!(
        outcomes.get("schedule-timeout").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
    assert_eq!(
        h.metrics.busy.load(Ordering::Relaxed) as usize,
        outcomes["busy"],
        "every Busy answer is counted"
    );
    // Memory after the first wave does not grow with later callers.
    let first = rss_after_wave[0];
    let last = *rss_after_wave.last().unwrap_or(&first);
    let growth = last.saturating_sub(first);
    eprintln!(
        "flood: {outcomes:?}; RSS after each wave (MiB): {:?}; growth after wave 1: {} KiB",
        rss_after_wave
            .iter()
            .map(|r| r / (1 << 20))
            .collect::<Vec<_>>(),
        growth / 1024
    );
    let later_calls = ((WAVES - 1) * CALLERS_PER_WAVE) as u64;
    assert!(
        growth < later_calls * 1024,
        "memory grew {growth} B over {later_calls} later calls (≥ 1 KiB per call)"
    );
    // Once the disk recovers, the accepted writes land and scheduling goes on.
    faulty.gate.open();
    wait_until(
        "the held writes are acknowledged",
        std::time::Duration::from_secs(20),
        || {
            let s = h.writer.stats();
            s.committed + s.failed == s.submitted
        },
    )
    .await;
    let next = h.schedule(message(&a, usize::MAX >> 1, true)).await?;
    let stored = h.schedule_of(a).await?;
    assert_eq!(
        next.slot as usize + 1,
        stored.len(),
        "gapless after the flood"
    );
    Ok(())
}
