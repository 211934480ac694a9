//! The real `hb` binary under load: SIGTERM while clients are scheduling
//! exits 0; restarted on the same data dir, every assignment a client saw
//! acknowledged is in the schedule at its slot with the same hash chain,
//! and every state a client saw computed is recomputed identically.

mod cli_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hb_message::json::to_json;
use hb_message::{Message, NodeKey};
use parking_lot::Mutex;

const COUNTER: &str = include_str!("../../../examples/lua/counter.lua");

async fn get_json(url: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut res = cli_support::http()
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = res.status().as_u16();
    Ok((
        status,
        res.json::<serde_json::Value>().limit(64 << 20).await?,
    ))
}

/// Every stored slot's `hash-chain`, paging through the schedule.
async fn hash_chains(url: &str, pid: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut chains = BTreeMap::new();
    let mut from = 0u64;
    loop {
        let (status, page) = get_json(&format!(
            "{url}/~scheduler@1.0/schedule?target={pid}&from={from}"
        ))
        .await?;
        anyhow::ensure!(status == 200, "schedule page: {page}");
        let assignments = page["assignments"]
            .as_object()
            .ok_or_else(|| anyhow::anyhow!("no assignments in {page}"))?;
        for (slot, a) in assignments {
            let chain = a["hash-chain"].as_str().unwrap_or_default().to_string();
            chains.insert(slot.parse()?, chain);
        }
        let last = chains.keys().next_back().copied().unwrap_or(0);
        if page["continues"].as_bool() != Some(true) || last < from {
            return Ok(chains);
        }
        from = last + 1;
    }
}

#[actix_rt::test]
async fn sigterm_under_load_exits_0_and_a_restart_keeps_every_acknowledgement() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let node = cli_support::Serve::start(dir.path());
    let url = node.url.clone();
    let user = NodeKey::from_seed(&[7; 32]);
    let def = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", node.address.as_str())?
        .with("execution-device", "lua@5.3a")?
        .with("script", COUNTER)?
        .commit(&user, None)?;
    let pid = def.id_all()?.to_human();
    let schedule_url = format!("{url}/~scheduler@1.0/schedule");
    let mut res = cli_support::http()
        .post(&schedule_url)
        .send_json(&to_json(&def))
        .await
        .map_err(|e| anyhow::anyhow!("registering: {e}"))?;
    let status = res.status().as_u16();
    let a0 = res.json::<serde_json::Value>().await?;
    assert_eq!(status, 200, "{a0}");

    // Eight clients schedule `Inc` messages until the node goes away.
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    let refused: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..8u8 {
        let (acked, refused, stop) = (acked.clone(), refused.clone(), stop.clone());
        let (schedule_url, pid) = (schedule_url.clone(), pid.clone());
        let sender = NodeKey::from_seed(&[100 + c; 32]);
        clients.push(actix_rt::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let Ok(m) = Message::new()
                    .with("target", pid.as_str())
                    .and_then(|m| m.with("action", "Inc"))
                    .and_then(|m| m.with("n", n as i64))
                    .and_then(|m| m.commit(&sender, None))
                else {
                    panic!("a well-formed message");
                };
                match cli_support::post_json(&schedule_url, &m).await {
                    Some((200, a)) => {
                        let slot = a["slot"].as_u64().expect("an acknowledged slot");
                        let chain = a["hash-chain"].as_str().unwrap_or_default().to_string();
                        acked.lock().insert(slot, chain);
                    }
                    Some((_, error)) => refused.lock().push(error),
                    // The node stopped accepting connections.
                    None => break,
                }
            }
        }));
    }
    // Let the load run, compute a state in the middle of it, then stop.
    let computed = loop {
        let have = acked.lock().keys().next_back().copied().unwrap_or(0);
        if have >= 40 {
            let (status, state) =
                get_json(&format!("{url}/{pid}~process@1.0/compute?slot=30")).await?;
            assert_eq!(status, 200, "{state}");
            break state;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(computed["state"]["count"].as_i64(), Some(30), "{computed}");
    while acked.lock().len() < 150 {
        actix_rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // SIGTERM, waited for off the runtime while the clients keep going.
    let code = actix_rt::task::spawn_blocking(move || node.stop()).await?;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await?;
    }
    assert_eq!(code, 0, "SIGTERM under load exits 0");
    // Whatever was refused during shutdown was refused as `unavailable`.
    for error in refused.lock().iter() {
        assert_eq!(error["error"], "unavailable", "{error}");
    }

    let node = cli_support::Serve::start(dir.path());
    let url = node.url.clone();
    let stored = hash_chains(&url, &pid).await?;
    let acked = acked.lock().clone();
    assert!(acked.len() >= 150);
    for (slot, chain) in &acked {
        assert_eq!(
            stored.get(slot),
            Some(chain),
            "acknowledged slot {slot} is stored with its hash chain"
        );
    }
    // Slots are gapless from 0, and the stored schedule is at least what
    // was acknowledged.
    let last = *stored.keys().next_back().expect("slots");
    assert_eq!(stored.len() as u64, last + 1, "gapless");
    let (status, again) = get_json(&format!("{url}/{pid}~process@1.0/compute?slot=30")).await?;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, computed, "slot 30 recomputes identically");
    let (status, tip) = get_json(&format!("{url}/{pid}~process@1.0/compute?slot={last}")).await?;
    assert_eq!(status, 200, "{tip}");
    assert_eq!(tip["state"]["count"].as_u64(), Some(last));
    assert_eq!(node.stop(), 0);
    Ok(())
}
