//! `hb serve`: loads the settings (TOML file < `HB_*` variables < flags,
//! docs/configuration.md), then runs a node on the embedded sled store
//! until SIGTERM or Ctrl-C. An invalid setting stops start-up with exit
//! code 2 and one line naming it, before anything is created.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use hb_node::config::{ValueKind, ENV_PREFIX};
use hb_node::{ConfigError, NodeBuilder, NodeConfig, StoreKind, SETTINGS};

#[derive(clap::Args)]
pub struct Serve {
    /// A TOML file of settings; HB_* variables and flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective settings as TOML and exit without starting.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    settings: SettingFlags,
}

/// One flag per setting, made from the list of settings: setting name →
/// the value as given on the command line.
#[derive(Debug, Default)]
struct SettingFlags(BTreeMap<String, String>);

impl FromArgMatches for SettingFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<SettingFlags, clap::Error> {
        let mut given = BTreeMap::new();
        for setting in SETTINGS {
            if let Some(value) = matches.get_one::<String>(setting.name) {
                given.insert(setting.name.to_string(), value.clone());
            }
        }
        Ok(SettingFlags(given))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = SettingFlags::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for SettingFlags {
    fn augment_args(command: Command) -> Command {
        SETTINGS.iter().fold(command, |command, setting| {
            let long = setting.flag.strip_prefix("--").unwrap_or(setting.flag);
            let mut arg = Arg::new(setting.name)
                .long(long)
                .help(format!(
                    "{} [default: {}] [env: {}]",
                    setting.description, setting.default, setting.env
                ))
                .value_name("VALUE");
            if setting.kind == ValueKind::Boolean {
                // `--flag` alone means true; `--flag false` turns it off.
                arg = arg
                    .value_name("BOOL")
                    .num_args(0..=1)
                    .default_missing_value("true");
            }
            command.arg(arg)
        })
    }

    fn augment_args_for_update(command: Command) -> Command {
        SettingFlags::augment_args(command)
    }
}

/// The process's `HB_*` variables (every other variable is left alone).
fn hb_variables() -> Result<BTreeMap<String, String>, ConfigError> {
    let mut vars = BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if !name.starts_with(ENV_PREFIX) {
            continue;
        }
        let value = value
            .into_string()
            .map_err(|_| ConfigError::new(name.clone(), "is not valid UTF-8"))?;
        vars.insert(name, value);
    }
    Ok(vars)
}

/// The settings from the file named by `--config`, the environment and
/// the flags.
fn load(args: &Serve) -> Result<NodeConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("config", format!("cannot read {}: {e}", path.display()))
        })?),
        None => None,
    };
    NodeConfig::load(file.as_deref(), &hb_variables()?, &args.settings.0)
}

/// A refused setting: one line, exit code 2.
fn refuse(e: &ConfigError) -> ExitCode {
    eprintln!("hb: {}", e.to_string().replace('\n', " "));
    ExitCode::from(2)
}

pub fn run(args: Serve) -> ExitCode {
    let config = match load(&args) {
        Ok(config) => config,
        Err(e) => return refuse(&e),
    };
    if args.print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    let key = match config.prepare() {
        Ok(key) => key,
        Err(e) => return refuse(&e),
    };
    // In a cluster the shared scheduler key signs; the node key names the
    // node (SPEC §11.4).
    let scheduler_key = match config.scheduler_key() {
        Ok(k) => k,
        Err(e) => return refuse(&e),
    };
    let opened = match config.store {
        StoreKind::Sled => hb_store::SledStore::open(&config.data_dir)
            .map(|s| Arc::new(s) as Arc<dyn hb_store::Store>),
        StoreKind::Fjall => hb_store::FjallStore::open(&config.data_dir)
            .map(|s| Arc::new(s) as Arc<dyn hb_store::Store>),
        StoreKind::Postgres => {
            let url = config.postgres_url.clone().unwrap_or_default();
            hb_store::PgStore::open(&url, &hb_store::PgOptions::default())
                .map(|s| Arc::new(s) as Arc<dyn hb_store::Store>)
        }
    };
    let store = match opened {
        Ok(s) => s,
        // A store from a newer hb: the operator runs the wrong binary; a
        // database URL that does not parse, or a data dir holding the other
        // embedded backend's store, is a setting to fix.
        Err(
            e @ (hb_store::StoreError::NewerFormat { .. }
            | hb_store::StoreError::InvalidUrl { .. }
            | hb_store::StoreError::WrongBackend { .. }),
        ) => {
            eprintln!("hb: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("hb: {e}");
            return ExitCode::from(1);
        }
    };
    let (signing, node_key) = match scheduler_key {
        Some(shared) => (shared, Some(key)),
        None => (key, None),
    };
    let address = signing.address().to_string();
    let data_dir = config.data_dir.clone();
    let store_line = match config.store {
        StoreKind::Sled => format!("data dir {}", data_dir.display()),
        StoreKind::Fjall => format!("fjall store in data dir {}", data_dir.display()),
        StoreKind::Postgres => format!(
            "store postgres {}",
            hb_node::config::redact_url(config.postgres_url.as_deref().unwrap_or_default())
        ),
    };
    let system = actix::System::new();
    system.block_on(async move {
        let mut builder = NodeBuilder::new(store, signing);
        if let Some(node_key) = node_key {
            builder = builder.node_key(node_key);
        }
        let node = match builder.config(config).start() {
            Ok(n) => n,
            Err(e) => {
                eprintln!("hb: {e}");
                return ExitCode::from(1);
            }
        };
        // Listening for SIGTERM before saying we listen: a signal sent as
        // soon as the URL is out must stop the node cleanly, not kill it.
        let stopped = stop_signal();
        // A closed stdout (the reader went away) must not stop the node.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "hb node {address}");
        let _ = writeln!(out, "listening on {}", node.url());
        let _ = writeln!(out, "{store_line}");
        if let Some(id) = node.scheduler().node_id() {
            let _ = writeln!(out, "node id {id}");
        }
        let _ = out.flush();
        drop(out);
        stopped.await;
        eprintln!("hb: stopping");
        node.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Resolves on Ctrl-C or SIGTERM; both are caught from the call on.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use actix_rt::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = actix_rt::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = actix_rt::signal::ctrl_c().await;
        }
    }
}
