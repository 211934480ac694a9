//! `hb serve`: runs a node on the embedded sled store until SIGTERM or
//! Ctrl-C.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use hb_node::{NodeBuilder, NodeConfig};
use hb_scheduler::SchedulingMode;

#[derive(clap::Args)]
pub struct Serve {
    /// Where the store and the node key live.
    #[arg(long, default_value = "./hb-data")]
    data_dir: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 8734)]
    port: u16,
    /// The node key (default `<data-dir>/node.key`, created with mode 0600).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// aggressive, local_confirmation, remote_confirmation or disabled.
    #[arg(long, default_value = "local_confirmation")]
    scheduling_mode: String,
}

pub fn run(args: Serve) -> ExitCode {
    let scheduling_mode: SchedulingMode = match args.scheduling_mode.parse() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("hb: invalid setting `scheduling_mode`: {e}");
            return ExitCode::from(2);
        }
    };
    let config = NodeConfig {
        host: args.host,
        port: args.port,
        data_dir: args.data_dir,
        key_file: args.key_file,
        scheduling_mode,
        ..NodeConfig::default()
    };
    if let Err(e) = config.validate() {
        eprintln!("hb: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::create_dir_all(&config.data_dir) {
        eprintln!(
            "hb: invalid setting `data_dir`: {}: {e}",
            config.data_dir.display()
        );
        return ExitCode::from(2);
    }
    let key = match hb_message::NodeKey::load_or_create(&config.key_path()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("hb: invalid setting `key_file`: {e}");
            return ExitCode::from(2);
        }
    };
    let store: Arc<dyn hb_store::Store> = match hb_store::SledStore::open(&config.data_dir) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("hb: {e}");
            return ExitCode::from(1);
        }
    };
    let address = key.address().to_string();
    let data_dir = config.data_dir.clone();
    let system = actix::System::new();
    system.block_on(async move {
        let node = match NodeBuilder::new(store, key).config(config).start() {
            Ok(n) => n,
            Err(e) => {
                eprintln!("hb: {e}");
                return ExitCode::from(1);
            }
        };
        println!("hb node {address}");
        println!("listening on {}", node.url());
        println!("data dir {}", data_dir.display());
        wait_for_signal().await;
        eprintln!("hb: stopping");
        node.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match actix_rt::signal::unix::signal(actix_rt::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = actix_rt::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = actix_rt::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = actix_rt::signal::ctrl_c().await;
    }
}
