//! The real `hb` binary: `hb serve` on a temporary data dir and a random
//! port prints its URL, answers `/healthz`, keeps what it acknowledged
//! across SIGTERM and a restart on the same data dir (exiting 0), on sled
//! and on fjall; an invalid setting stops start-up with exit code 2 naming
//! the setting, as does a data dir holding the other embedded backend's
//! store; a port in use stops it with exit code 1 and one line, no panic.

mod config_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use config_support::hb;
use hb_message::json::to_json;
use hb_message::{Message, NodeKey};

/// Starts `hb serve` on the `store` backend and returns the child and its
/// URL.
fn serve(dir: &std::path::Path, store: &str) -> (Child, String) {
    let mut child = hb()
        // The process below runs on test-device@1.0.
        .args([
            "serve",
            "--enable-test-devices",
            "--store",
            store,
            "--port",
            "0",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hb starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("hb prints its URL before anything fails")
            .expect("a line");
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_string();
        }
    };
    // Keep reading, so the node's later lines find an open pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

fn terminate(mut child: Child) -> i32 {
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    child.wait().expect("hb exits").code().unwrap_or(-1)
}

#[actix_rt::test]
async fn serve_answers_survives_sigterm_and_restart() -> anyhow::Result<()> {
    answers_survives_sigterm_and_restart("sled").await
}

#[actix_rt::test]
async fn serve_on_fjall_answers_survives_sigterm_and_restart() -> anyhow::Result<()> {
    answers_survives_sigterm_and_restart("fjall").await
}

async fn answers_survives_sigterm_and_restart(store: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (child, url) = serve(dir.path(), store);
    let mut health = awc::Client::new()
        .get(format!("{url}/healthz"))
        .send()
        .await
        .expect("answers");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.json::<serde_json::Value>().await?["status"], "ok");
    // The node's address names it as the scheduler.
    let key = hb_message::NodeKey::load(&dir.path().join("node.key"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("node.key"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the node key is private");
    }
    let def = Message::new()
        .with("type", "Process")?
        .with("scheduler", key.address())?
        .with("execution-device", "test-device@1.0")?
        .commit(&NodeKey::from_seed(&[2; 32]), None)?;
    let pid = def.id_all()?.to_human();
    let res = awc::Client::new()
        .post(format!("{url}/~scheduler@1.0/schedule"))
        .send_json(&to_json(&def))
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(terminate(child), 0, "SIGTERM exits 0");

    // Restarted on the same data dir: the acknowledged registration is there.
    let (child, url) = serve(dir.path(), store);
    let mut slot = awc::Client::new()
        .get(format!("{url}/~scheduler@1.0/slot?target={pid}"))
        .send()
        .await
        .expect("answers");
    assert_eq!(slot.status().as_u16(), 200);
    assert_eq!(slot.json::<serde_json::Value>().await?["current"], 0);
    assert_eq!(terminate(child), 0);
    Ok(())
}

#[test]
fn an_invalid_setting_exits_2_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = hb()
        .args([
            "serve",
            "--port",
            "0",
            "--scheduling-mode",
            "eager",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("hb runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scheduling_mode"), "{stderr}");
    let out = hb()
        .args(["serve", "--no-such-flag"])
        .output()
        .expect("hb runs");
    assert_eq!(out.status.code(), Some(2), "bad usage");
}

#[test]
fn a_data_dir_of_the_other_backend_exits_2_and_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, _) = serve(dir.path(), "sled");
    assert_eq!(terminate(child), 0);
    let out = hb()
        .args(["serve", "--store", "fjall", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("hb runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds a sled store"), "{stderr}");
    assert!(!dir.path().join("version").exists(), "no fjall file made");
    // Still the sled store it was.
    let (child, _) = serve(dir.path(), "sled");
    assert_eq!(terminate(child), 0);
}

#[test]
fn a_port_in_use_exits_1_with_one_line_and_no_panic() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("bound").port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = hb()
        .args(["serve", "--port", &port, "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("hb runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
