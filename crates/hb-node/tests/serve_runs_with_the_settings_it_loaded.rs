//! `hb serve` runs with the settings it loaded from its file, variables
//! and flags: it prints its address, URL and data dir, `/~meta@1.0/info`
//! shows the loaded values, `test-device@1.0` is refused while
//! `enable_test_devices` is off (the default), and SIGTERM exits 0.

mod config_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use config_support::hb;
use hb_message::json::to_json;
use hb_message::{Message, NodeKey};

#[actix_rt::test]
async fn the_loaded_settings_are_the_running_nodes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let file = dir.path().join("hb.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\nmax_body_bytes = 4096\nmax_json_depth = 9\nport = 1\n",
            data.to_string_lossy()
        ),
    )?;
    let mut child = hb()
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .args(["--scheduling-mode", "aggressive"])
        .env("HB_PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut next = || -> String {
        lines
            .next()
            .expect("hb prints its start-up lines")
            .expect("a line")
    };
    let (node, listening, data_line) = (next(), next(), next());
    std::thread::spawn(move || lines.for_each(drop));
    let key = NodeKey::load(&data.join("node.key"))?;
    assert_eq!(node, format!("hb node {}", key.address()));
    let url = listening
        .strip_prefix("listening on ")
        .expect("the URL line")
        .to_string();
    assert_eq!(data_line, format!("data dir {}", data.display()));

    let mut info = awc::Client::new()
        .get(format!("{url}/~meta@1.0/info"))
        .send()
        .await
        .expect("answers");
    let info = info.json::<serde_json::Value>().await?;
    assert_eq!(info["scheduling-mode"], "aggressive", "from the flag");
    assert_eq!(info["max-body-bytes"], 4096, "from the file");
    assert_eq!(info["max-json-depth"], 9, "from the file");
    assert_ne!(info["port"], 1, "HB_PORT=0 overrode the file");

    let def = Message::new()
        .with("type", "Process")?
        .with("scheduler", key.address())?
        .with("execution-device", "test-device@1.0")?
        .commit(&NodeKey::from_seed(&[2; 32]), None)?;
    let mut res = awc::Client::new()
        .post(format!("{url}/~scheduler@1.0/schedule"))
        .send_json(&to_json(&def))
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 400);
    let body = res.json::<serde_json::Value>().await?;
    assert_eq!(body["error"], "unknown-device", "{body}");

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()?
        .success());
    assert_eq!(child.wait()?.code(), Some(0), "SIGTERM exits 0");
    Ok(())
}
