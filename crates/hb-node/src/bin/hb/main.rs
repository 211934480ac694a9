//! `hb`: the node binary. `hb serve` runs a node on the embedded sled
//! store; the client subcommands (SPEC §7.6) talk to a node over HTTP.
//! Exit codes: 0 success, 1 failure, 2 bad usage or configuration.

mod bench;
mod client;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The global allocator (docs/PERFORMANCE.md, "Allocators"): jemalloc when
// the `jemalloc` feature is on, else mimalloc with the `mimalloc` feature,
// else the system's.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hb",
    version,
    about = "hb: HyperBEAM's device and process layer, in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node on the embedded sled store.
    Serve(serve::Serve),
    /// Generate load on a node (or an in-process scheduler) and report
    /// throughput, latency percentiles and errors.
    Bench(bench::BenchArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Client(command) => client::run(command),
    }
}

/// Help and version go out as clap writes them; any other parse error is
/// bad usage, one line on stderr (`hb: usage: …`), exit 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
        _ => {
            let text = e.render().to_string();
            // The first paragraph names the problem; usage and tips follow.
            let first = text.split("\n\n").next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            let line = first.split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("hb: usage: {line} (see hb --help)");
            ExitCode::from(2)
        }
    }
}
