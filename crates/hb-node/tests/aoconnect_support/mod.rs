//! What the aoconnect interop tests share (SPEC §10.6): where the Node.js
//! side lives (`tests/aoconnect/` at the workspace root, installed by
//! `.ci/install-node-deps`), whether it can run, running one of its scripts
//! with a timeout, and reading the requests it reports. `gateway` is the
//! loopback stand-in for the Arweave gateway.

#![allow(dead_code)]

pub mod gateway;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long one script may run before it is killed (a safety net, not a
/// measurement: a run takes a few seconds, most of it RSA-4096 signing).
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// `tests/aoconnect/` in the workspace.
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/aoconnect")
}

/// Why the Node.js side cannot run here, if it cannot: `node` is not on
/// the PATH, or its packages are not installed.
pub fn skip_reason() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("`node` is not installed (Node.js 20 runs these tests)".into());
    }
    let modules = scripts_dir().join("node_modules/@permaweb/aoconnect");
    if !modules.is_dir() {
        return Some(format!(
            "{} is absent: run .ci/install-node-deps",
            modules.display()
        ));
    }
    None
}

/// Prints why the test skips and returns true, when it must.
pub fn skip() -> bool {
    match skip_reason() {
        Some(why) => {
            eprintln!("skipping the aoconnect test: {why}");
            true
        }
        None => false,
    }
}

/// Runs `node <script>` in `tests/aoconnect/` with `env`, and parses the
/// one JSON line it prints. Blocks: call it off the actix runtime (e.g.
/// `actix_rt::task::spawn_blocking`). An error names the script, its exit
/// status and everything it wrote to stderr (its error and every request
/// it made).
pub fn run_script(script: &str, env: &[(&str, String)]) -> Result<Value, String> {
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .current_dir(scripts_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // aoconnect reads these at load; the scripts pass what they need.
        .env_remove("MU_URL")
        .env_remove("CU_URL")
        .env_remove("GATEWAY_URL")
        .env_remove("GRAPHQL_URL")
        .env_remove("MODULE")
        .env_remove("AUTHORITY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("node {script} did not start: {e}"))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => return Err(format!("waiting for node {script}: {e}")),
        }
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(format!(
            "node {script} was killed after {SCRIPT_TIMEOUT:?}\n--- stderr ---\n{err}\n--- stdout ---\n{out}"
        ));
    };
    if !status.success() {
        return Err(format!(
            "node {script} failed ({status})\n--- stderr ---\n{err}\n--- stdout ---\n{out}"
        ));
    }
    let line = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line).map_err(|e| {
        format!("node {script} printed no JSON line ({e})\n--- stdout ---\n{out}\n--- stderr ---\n{err}")
    })
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// Runs the script off the actix runtime and panics with its stderr when
/// it fails.
pub async fn run(script: &'static str, env: Vec<(&'static str, String)>) -> Value {
    let result = actix_rt::task::spawn_blocking(move || run_script(script, &env))
        .await
        .expect("the script runner does not panic");
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// The requests of a report, each `{method, to, path, status, item?}`.
pub fn requests(report: &Value) -> &[Value] {
    report["requests"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The requests that went to `to` (`node`, `gateway` or `refused`).
pub fn requests_to<'a>(report: &'a Value, to: &str) -> Vec<&'a Value> {
    requests(report)
        .iter()
        .filter(|r| r["to"].as_str() == Some(to))
        .collect()
}

/// The ID of the ANS-104 item a request carried.
pub fn item_id(request: &Value) -> Option<&str> {
    request["item"]["id"].as_str()
}

/// A report's field as text, or a failure naming it.
pub fn text<'a>(report: &'a Value, pointer: &str) -> &'a str {
    report
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text at {pointer} in {report}"))
}
