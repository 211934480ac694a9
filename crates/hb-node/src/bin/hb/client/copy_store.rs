//! `hb copy-store`: copies a stopped node's embedded store into a new store
//! of either backend (sled or fjall), so that a node can move between them
//! (docs/operations.md, "Moving between sled and fjall").

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use hb_store::{FjallStore, SledStore, Store, StoreError};

use super::output::{json, line};
use super::Failure;

/// Entries between two progress lines.
const PROGRESS_EVERY: u64 = 100_000;

/// `hb copy-store`.
#[derive(clap::Args)]
pub struct CopyStoreArgs {
    /// The data dir of a stopped node (sled or fjall, whichever is there).
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// A new directory for the copy; it must not exist.
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// The backend of the copy: `sled` or `fjall`.
    #[arg(long, value_name = "BACKEND", value_parser = ["sled", "fjall"])]
    store: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Report progress on stderr even when it is no terminal.
    #[arg(long)]
    progress: bool,
}

/// Runs `hb copy-store`.
pub fn run(args: CopyStoreArgs) -> Result<ExitCode, Failure> {
    let Some(found) = hb_store::embedded_backend_in(&args.from) else {
        return Err(Failure::usage(
            "no-store",
            format!(
                "--from {}: no sled or fjall store there",
                args.from.display()
            ),
        ));
    };
    if args.to.exists() {
        return Err(Failure::failed(
            "conflict",
            format!(
                "--to {} exists: the copy goes into a new directory",
                args.to.display()
            ),
        ));
    }
    let from = hb_store::open_embedded(&args.from).map_err(|e| store_failure(&args.from, &e))?;
    let made = match args.store.as_str() {
        "fjall" => FjallStore::open(&args.to).map(|s| Arc::new(s) as Arc<dyn Store>),
        _ => SledStore::open(&args.to).map(|s| Arc::new(s) as Arc<dyn Store>),
    };
    let to = match made {
        Ok(to) => to,
        Err(e) => {
            remove_partial(&args.to);
            return Err(store_failure(&args.to, &e));
        }
    };
    let shown = args.progress || std::io::stderr().is_terminal();
    let mut next = PROGRESS_EVERY;
    let copied = hb_store::copy_store(from.as_ref(), to.as_ref(), |done| {
        if shown && done >= next {
            eprintln!("hb: copy-store: {done} entries copied");
            next = done + PROGRESS_EVERY;
        }
    });
    drop(to);
    let report = match copied {
        Ok(report) => report,
        Err(e) => {
            // A partial copy is no store: remove what this call made.
            remove_partial(&args.to);
            return Err(store_failure(&args.to, &e));
        }
    };
    if args.json {
        json(&serde_json::json!({
            "from": args.from.display().to_string(),
            "from_store": found,
            "to": args.to.display().to_string(),
            "to_store": args.store,
            "entries": report.entries,
            "bytes": report.bytes,
        }))?;
    } else {
        line(&format!(
            "copied {} entries ({} bytes) from the {found} store in {} to a new {} store in {}",
            report.entries,
            report.bytes,
            args.from.display(),
            args.store,
            args.to.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn store_failure(dir: &Path, e: &StoreError) -> Failure {
    use hb_message::ErrorCode;
    Failure::failed(
        e.code(),
        format!("{}: {e} (is its node stopped?)", dir.display()),
    )
}

fn remove_partial(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("hb: cannot remove the partial copy {}: {e}", dir.display());
    }
}
