//! docs/operations.md, "Backup and restore", with the real binary: `hb
//! backup` makes a running `hb serve` (with `--backup-dir`) copy its store
//! while clients keep scheduling. The backup verifies offline (`hb
//! verify-chain --data-dir`); restored as a new data dir (plus the node's
//! key), `hb serve` starts on it with the same address, `hb verify-chain`
//! passes for every process over HTTP, and every assignment acknowledged
//! before the backup started is in it at its slot with the same hash
//! chain. `hb backup --json` answers `{path, entries, bytes}` of another
//! new directory. A node without `backup_dir` refuses backups.

mod cli_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hb_message::{Message, NodeKey};
use parking_lot::Mutex;

const COUNTER: &str = include_str!("../../../examples/lua/counter.lua");

/// Every stored slot's `hash-chain`, paging through the schedule.
async fn hash_chains(url: &str, pid: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut chains = BTreeMap::new();
    let mut from = 0u64;
    loop {
        let mut res = cli_support::http()
            .get(format!(
                "{url}/~scheduler@1.0/schedule?target={pid}&from={from}"
            ))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(res.status().as_u16() == 200, "schedule page");
        let page = res.json::<serde_json::Value>().limit(64 << 20).await?;
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

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// `(pid, slot, hash-chain)` of each acknowledged assignment.
type Acked = Arc<Mutex<Vec<(String, u64, String)>>>;

#[actix_rt::test]
async fn a_backup_under_load_restores_to_a_node_that_verifies_and_has_every_earlier_ack(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let backups = dir.path().join("backups");
    let node =
        cli_support::Serve::start_with(&data, &["--backup-dir".as_ref(), backups.as_os_str()]);
    let url = node.url.clone();
    let address = node.address.clone();
    let schedule_url = format!("{url}/~scheduler@1.0/schedule");
    let user = NodeKey::from_seed(&[7; 32]);
    let mut pids = Vec::new();
    for n in 0..3i64 {
        let def = Message::new()
            .with("type", "Process")?
            .with("device", "process@1.0")?
            .with("scheduler", address.as_str())?
            .with("execution-device", "lua@5.3a")?
            .with("script", COUNTER)?
            .with("nonce", n)?
            .commit(&user, None)?;
        let (status, a) = cli_support::post_json(&schedule_url, &def)
            .await
            .ok_or_else(|| anyhow::anyhow!("registering"))?;
        assert_eq!(status, 200, "{a}");
        pids.push(def.id_all()?.to_human());
    }

    // Four clients schedule `Inc` on the three processes in turn until
    // told to stop.
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4u8 {
        let (acked, stop, schedule_url, pids) = (
            acked.clone(),
            stop.clone(),
            schedule_url.clone(),
            pids.clone(),
        );
        let sender = NodeKey::from_seed(&[100 + c; 32]);
        clients.push(actix_rt::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let pid = &pids[(n + usize::from(c)) % pids.len()];
                let m = Message::new()
                    .with("target", pid.as_str())
                    .and_then(|m| m.with("action", "Inc"))
                    .and_then(|m| m.with("n", n as i64))
                    .and_then(|m| m.commit(&sender, None))
                    .expect("a well-formed message");
                if let Some((200, a)) = cli_support::post_json(&schedule_url, &m).await {
                    let slot = a["slot"].as_u64().expect("an acknowledged slot");
                    let chain = a["hash-chain"].as_str().unwrap_or_default().to_string();
                    acked.lock().push((pid.clone(), slot, chain));
                }
            }
        }));
    }
    while acked.lock().len() < 60 {
        actix_rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Everything acknowledged before the backup starts must be in it.
    let before = acked.lock().clone();
    let (cwd, backup_url) = (dir.path().to_path_buf(), url.clone());
    let made = actix_rt::task::spawn_blocking(move || {
        cli_support::hb(&cwd, &["backup", "--node", &backup_url])
    })
    .await?;
    let backup = PathBuf::from(made.ok());
    let acked_by_backup_end = acked.lock().len();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await?;
    }
    // A second backup, as JSON: another new directory, at least as large.
    let (cwd, backup_url) = (dir.path().to_path_buf(), url.clone());
    let second = actix_rt::task::spawn_blocking(move || {
        cli_support::hb(&cwd, &["backup", "--json", "--node", &backup_url])
    })
    .await?
    .json();
    let second_path = PathBuf::from(second["path"].as_str().unwrap_or_default());
    assert_eq!(second_path.parent(), Some(backups.as_path()), "{second}");
    assert_ne!(second_path, backup);
    assert!(
        second["entries"].as_u64().unwrap_or(0) > before.len() as u64,
        "{second}"
    );
    assert!(second["bytes"].as_u64().unwrap_or(0) > 0, "{second}");
    assert_eq!(
        actix_rt::task::spawn_blocking(move || node.stop()).await?,
        0
    );
    assert_eq!(backup.parent(), Some(backups.as_path()), "{backup:?}");
    assert!(
        backup
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("backup-")),
        "{backup:?}"
    );
    eprintln!(
        "acknowledged before the backup: {}, by its end: {acked_by_backup_end}",
        before.len()
    );

    // The backup verifies as it is, offline.
    for pid in &pids {
        let run = cli_support::hb(
            dir.path(),
            &["verify-chain", pid, "--data-dir", &backup.to_string_lossy()],
        );
        assert_eq!(run.code, 0, "{run:?}");
    }

    // Restore: a new data dir holding the backup and the node's key.
    let restored = dir.path().join("restored");
    copy_dir(&backup, &restored)?;
    std::fs::copy(data.join("node.key"), restored.join("node.key"))?;
    let node = cli_support::Serve::start(&restored);
    assert_eq!(node.address, address);
    let url = node.url.clone();
    for pid in &pids {
        let run = cli_support::hb(dir.path(), &["verify-chain", pid, "--node", &url]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    let mut chains = BTreeMap::new();
    for pid in &pids {
        chains.insert(pid.clone(), hash_chains(&url, pid).await?);
    }
    for (pid, slot, chain) in &before {
        assert_eq!(
            chains[pid].get(slot),
            Some(chain),
            "acknowledged slot {slot} of {pid} is in the restored copy"
        );
    }
    assert_eq!(
        actix_rt::task::spawn_blocking(move || node.stop()).await?,
        0
    );
    Ok(())
}

#[test]
fn a_node_without_backup_dir_refuses_backups() {
    let dir = tempfile::tempdir().unwrap();
    let node = cli_support::Serve::start(&dir.path().join("data"));
    let run = cli_support::hb(dir.path(), &["backup", "--node", &node.url]);
    run.fails(1, "hb: backup-disabled: ");
    assert_eq!(node.stop(), 0);
    // Nothing but the data dir was made.
    let made: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(made, vec![std::ffi::OsString::from("data")]);
}
