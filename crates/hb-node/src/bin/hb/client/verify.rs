//! `hb verify-chain`: checks a schedule from slot 0 — every assignment's
//! signature and signer, slot continuity and hash chain — and reports the
//! first fault (SPEC §5.7). Over HTTP it pages the node's schedule into a
//! [`ChainVerifier`]; with `--data-dir` it reads a stopped node's store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use hb_message::Id;
use hb_node::client::{Client, ClientError, SlotRange};
use hb_scheduler::verify_chain::verify_stored;
use hb_scheduler::{ChainFault, ChainReport, ChainVerifier, ExpectedSigner};
use hb_store::{SchedulerCache, Store};

use super::args::{parse_address, parse_pid, NodeArgs};
use super::output::{json, line};
use super::progress::Progress;
use super::Failure;

/// `hb verify-chain <pid>`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The process.
    #[arg(value_name = "PID", value_parser = parse_pid, allow_hyphen_values = true)]
    pid: Id,
    /// Read the store of a stopped node in DIR instead of asking --node.
    #[arg(long, value_name = "DIR", conflicts_with = "node")]
    data_dir: Option<PathBuf>,
    /// The scheduler that must have signed every assignment (default: the
    /// `scheduler` of the definition at slot 0).
    #[arg(long, value_name = "ADDRESS", value_parser = parse_address)]
    scheduler: Option<String>,
    /// Report progress on stderr even when it is no terminal.
    #[arg(long)]
    progress: bool,
}

impl VerifyArgs {
    /// Reads a store directly (no runtime needed).
    pub fn on_store(&self) -> bool {
        self.data_dir.is_some()
    }

    fn expected(&self) -> ExpectedSigner {
        self.scheduler
            .clone()
            .map_or(ExpectedSigner::FromDefinition, ExpectedSigner::Address)
    }
}

/// Verifies over HTTP.
pub async fn over_http(args: VerifyArgs) -> Result<ExitCode, Failure> {
    let client = args.node.client()?;
    let outcome = page_through(&client, args.pid, args.expected(), args.progress).await?;
    report(&args, outcome)
}

/// Verifies the store in `--data-dir`.
pub fn on_store(args: VerifyArgs) -> Result<ExitCode, Failure> {
    let Some(dir) = args.data_dir.as_deref() else {
        return Err(Failure::usage("usage", "--data-dir is required"));
    };
    let store = open(dir)?;
    let cache = SchedulerCache::new(Arc::clone(&store));
    let head = cache
        .latest(&args.pid)
        .map_err(|e| Failure::failed("store-error", e.to_string()))?
        .ok_or_else(|| {
            Failure::failed(
                "unknown-process",
                format!("no schedule for {} in {}", args.pid, dir.display()),
            )
        })?;
    let progress = Progress::new("verify-chain", head.slot + 1, args.progress);
    let outcome = verify_stored(store, args.pid, args.expected(), |checked| {
        progress.set(checked)
    })
    .map_err(|e| Failure::failed("store-error", e.to_string()))?;
    progress.finish();
    report(&args, outcome)
}

/// The store in `dir`, which must exist (opening creates a store).
fn open(dir: &Path) -> Result<Arc<dyn Store>, Failure> {
    if !dir.is_dir() {
        return Err(Failure::usage(
            "unreadable-file",
            format!("--data-dir {}: no such directory", dir.display()),
        ));
    }
    let store = hb_store::open_embedded(dir).map_err(|e| {
        Failure::failed(
            "store-error",
            format!(
                "cannot open the store in {} (is its node stopped?): {e}",
                dir.display()
            ),
        )
    })?;
    Ok(store)
}

/// Pages the schedule from slot 0 to the slot current when it starts.
async fn page_through(
    client: &Client,
    pid: Id,
    expected: ExpectedSigner,
    forced: bool,
) -> Result<Result<ChainReport, ChainFault>, ClientError> {
    let current = client.current_slot(&pid).await?;
    let mut verifier = ChainVerifier::new(pid, expected);
    let Ok(head) = u64::try_from(current) else {
        return Ok(Ok(verifier.report()));
    };
    let progress = Progress::new("verify-chain", head + 1, forced);
    while verifier.next_slot() <= head {
        let from = verifier.next_slot();
        let range = SlotRange {
            from: Some(from),
            to: Some(head),
        };
        let page = client.schedule_page(&pid, range).await?;
        if page.assignments.is_empty() {
            progress.finish();
            return Ok(Err(ChainFault {
                slot: from,
                check: "slot",
                expected: format!("an assignment at slot {from}"),
                actual: format!("none (the head is slot {head})"),
            }));
        }
        for assignment in page.assignments.values() {
            if let Err(fault) = verifier.push(assignment) {
                progress.finish();
                return Ok(Err(fault));
            }
        }
        progress.set(verifier.next_slot());
    }
    progress.finish();
    Ok(Ok(verifier.report()))
}

/// Prints the outcome: exit 0 when the chain verifies, 1 at a fault.
fn report(
    args: &VerifyArgs,
    outcome: Result<ChainReport, ChainFault>,
) -> Result<ExitCode, Failure> {
    let pid = args.pid.to_human();
    match outcome {
        Ok(report) => {
            if args.node.json {
                json(&serde_json::json!({
                    "process": pid,
                    "valid": true,
                    "slots": report.slots,
                    "signer": report.signer,
                    "hash-chain": hb_message::encode_base64url(&report.head),
                }))?;
            } else {
                line(&format!(
                    "ok: process {pid}: {} slots verified from slot 0, all signed by {}",
                    report.slots,
                    report.signer.as_deref().unwrap_or("-"),
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(fault) => {
            if args.node.json {
                json(&serde_json::json!({
                    "process": pid,
                    "valid": false,
                    "fault": {
                        "slot": fault.slot,
                        "check": fault.check,
                        "expected": fault.expected,
                        "actual": fault.actual,
                    },
                }))?;
            } else {
                line(&format!("fault: process {pid}: {fault}"))?;
            }
            Ok(ExitCode::from(1))
        }
    }
}
