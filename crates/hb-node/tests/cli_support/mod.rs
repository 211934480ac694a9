//! What the CLI tests share: the real `hb` binary, and a real node run by
//! `hb serve` on a temporary data dir and a random port.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The Lua counter of examples/ (`Inc` adds one, `Get` prints the count).
pub fn counter_lua() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lua/counter.lua")
}

/// What one run of `hb` did.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// The trimmed stdout of a run that must have succeeded.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "hb failed: {self:?}");
        self.stdout.trim()
    }

    /// The stdout of a successful `--json` run, parsed.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// Stdout parsed as JSON, whatever the exit code.
    pub fn json_of_failure(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// Asserts the run failed with `code`, printing nothing on stdout and
    /// exactly one line on stderr that starts with `prefix`.
    pub fn fails(&self, code: i32, prefix: &str) {
        assert_eq!(self.code, code, "{self:?}");
        assert!(self.stdout.is_empty(), "nothing on stdout: {self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "one line: {self:?}");
        assert!(self.stderr.starts_with(prefix), "{prefix}: {self:?}");
    }
}

/// Runs `hb args…` in `cwd`, with `stdin` as its input.
pub fn hb_in(cwd: &Path, args: &[&str], stdin: &[u8]) -> Run {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hb"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hb starts");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).expect("stdin takes the input");
    }
    let out = child.wait_with_output().expect("hb runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `hb args…` in `cwd` with an empty stdin.
pub fn hb(cwd: &Path, args: &[&str]) -> Run {
    hb_in(cwd, args, b"")
}

/// A node run by `hb serve --port 0`; killed if the test ends without
/// stopping it.
pub struct Serve {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The node's address (the scheduler of its processes).
    pub address: String,
}

impl Serve {
    /// Starts a node on `data_dir`, and reads its address and URL from
    /// what it prints.
    pub fn start(data_dir: &Path) -> Serve {
        Serve::start_with(data_dir, &[])
    }

    /// Starts a node on `data_dir` listening on `port` (0: any free one).
    pub fn start_on(data_dir: &Path, port: u16) -> Serve {
        Serve::spawn(data_dir, port, &[])
    }

    /// As [`Serve::start`], with more flags of `hb serve` (say
    /// `--backup-dir <dir>`).
    pub fn start_with(data_dir: &Path, flags: &[&std::ffi::OsStr]) -> Serve {
        Serve::spawn(data_dir, 0, flags)
    }

    /// As [`Serve::start_on`], with more flags of `hb serve` (say a
    /// cluster's `--store postgres …`).
    pub fn start_on_with(data_dir: &Path, port: u16, flags: &[&str]) -> Serve {
        let flags: Vec<&std::ffi::OsStr> = flags.iter().map(std::ffi::OsStr::new).collect();
        Serve::spawn(data_dir, port, &flags)
    }

    fn spawn(data_dir: &Path, port: u16, flags: &[&std::ffi::OsStr]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hb"))
            // A test's own `HB_*` variable is no setting of `hb serve`,
            // which refuses the ones it does not know.
            .env_remove("HB_TEST_POSTGRES_URL")
            .args(["serve", "--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .args(flags)
            .stdout(Stdio::piped())
            // `TEST_NODE_LOG_DIR=<dir>` keeps each node's log there (with
            // `RUST_LOG` set as wanted), for diagnosing a failed run.
            .stderr(node_log(port))
            .spawn()
            .expect("hb serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut address = String::new();
        let url = loop {
            let line = lines
                .next()
                .expect("hb serve prints its URL before anything fails")
                .expect("a line");
            if let Some(a) = line.strip_prefix("hb node ") {
                address = a.trim().to_string();
            }
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep reading: with the pipe closed, the node's next line on
        // stdout would fail (EPIPE) and stop it.
        std::thread::spawn(move || lines.for_each(drop));
        Serve {
            child: Some(child),
            url,
            address,
        }
    }

    /// SIGTERM, and the node's exit code once it has flushed and stopped.
    pub fn stop(mut self) -> i32 {
        let Some(mut child) = self.child.take() else {
            return -1;
        };
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        child.wait().expect("hb serve exits").code().unwrap_or(-1)
    }
}

impl Serve {
    /// The node's OS process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the node.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal}");
    }

    /// SIGKILL: the node stops at once, flushing nothing.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL is sent");
            child.wait().expect("hb serve is reaped");
        }
    }
}

/// Where a node's stderr goes: a file under `TEST_NODE_LOG_DIR` if set,
/// else nowhere.
fn node_log(port: u16) -> Stdio {
    let Some(dir) = std::env::var_os("TEST_NODE_LOG_DIR") else {
        return Stdio::null();
    };
    let path = std::path::Path::new(&dir).join(format!(
        "node-{port}-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    ));
    std::fs::File::create(path).map_or_else(|_| Stdio::null(), Stdio::from)
}

/// A port free on 127.0.0.1 a moment ago, for a node that must come back
/// on the same URL.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `hb args…` in `cwd` without waiting; stdout piped, stderr
/// inherited.
pub fn hb_child(cwd: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hb"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("hb starts")
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP client for tests that talk to a `hb serve` child: a long
/// timeout, since a loaded machine can be slow.
pub fn http() -> awc::Client {
    awc::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .finish()
}

/// POSTs `m` as JSON; the status and the JSON answer, or `None` when the
/// node could not be reached or did not answer JSON.
pub async fn post_json(url: &str, m: &hb_message::Message) -> Option<(u16, serde_json::Value)> {
    let body = hb_message::json::to_json(m);
    let mut res = http().post(url).send_json(&body).await.ok()?;
    let status = res.status().as_u16();
    let body = res.json::<serde_json::Value>().await.ok()?;
    Some((status, body))
}
