//! `hb-verify-chain`: checks a process's stored schedule from slot 0 —
//! every assignment's signature, slot continuity and hash chain — and
//! reports the first fault precisely (SPEC §5.7).
//!
//! Usage: `hb-verify-chain --data-dir <dir> [--scheduler <address>]
//! <process-id>`. Every assignment must be committed by the expected
//! scheduler: `--scheduler`, else the `scheduler` named by the definition at
//! slot 0 (a valid signature by another key is a `wrong-signer` fault). The
//! node must be stopped (the store is opened exclusively). Exit codes: 0 the
//! schedule verifies, 1 a fault was found or the store failed, 2 bad usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use hb_message::Id;
use hb_scheduler::verify_chain::{verify_stored, ExpectedSigner};
use hb_store::{SledStore, Store};

const USAGE: &str = "usage: hb-verify-chain --data-dir <dir> [--scheduler <address>] <process-id>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, pid, expected) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(why) => {
            eprintln!("hb-verify-chain: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let store: Arc<dyn Store> = match SledStore::open(&dir) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("hb-verify-chain: {e}");
            return ExitCode::from(1);
        }
    };
    let started = Instant::now();
    let mut last_report = Instant::now();
    let outcome = verify_stored(store, pid, expected, |checked| {
        if last_report.elapsed().as_secs() >= 1 {
            eprintln!("checked {checked} slots…");
            last_report = Instant::now();
        }
    });
    match outcome {
        Ok(Ok(report)) => {
            println!(
                "ok: process {pid}: {} slots verified from slot 0, all signed by {}, in {:.1} s",
                report.slots,
                report.signer.as_deref().unwrap_or("-"),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Ok(Err(fault)) => {
            println!("fault: process {pid}: {fault}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("hb-verify-chain: {e}");
            ExitCode::from(1)
        }
    }
}

fn parse(args: &[String]) -> Result<(PathBuf, Id, ExpectedSigner), String> {
    let mut dir = None;
    let mut pid = None;
    let mut expected = ExpectedSigner::FromDefinition;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data-dir" => dir = Some(PathBuf::from(it.next().ok_or("--data-dir needs a value")?)),
            "--scheduler" => {
                let address = it.next().ok_or("--scheduler needs an address")?;
                if !hb_message::is_id_shaped(address) {
                    return Err(format!(
                        "--scheduler {address:?} is not a 43-character address"
                    ));
                }
                expected = ExpectedSigner::Address(address.clone());
            }
            "-h" | "--help" => return Err("help requested".into()),
            other if pid.is_none() && !other.starts_with('-') => {
                pid = Some(Id::parse(other).map_err(|e| e.to_string())?)
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok((
        dir.ok_or("--data-dir is required")?,
        pid.ok_or("a process ID is required")?,
        expected,
    ))
}
