//! The client subcommands (SPEC §7.6): they talk to a node over HTTP
//! through [`hb_node::client::Client`].
//!
//! Output is text by default and one JSON document with `--json`. Errors
//! are one line on stderr, `hb: <code>: <detail>`. Exit codes: 0 success,
//! 1 failure (the node refused, could not be reached, a chain fault), 2 bad
//! usage (malformed arguments, unreadable files, a malformed key file).

mod args;
mod copy_store;
mod output;
mod progress;
mod schedule;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hb_message::{Id, Message, MessageError, Value};
use hb_node::client::ClientError;

pub use args::KeyArgs;
use args::{parse_address, parse_pid, read_file, MessageArgs, NodeArgs};
use output::{human_value, json, line, message_json, one_line};
pub use progress::Progress;

/// The execution device of `hb spawn` unless `--execution-device` is given.
const LUA: &str = "lua@5.3a";

/// The client subcommands.
#[derive(clap::Subcommand)]
pub enum ClientCommand {
    /// Create a client key file (mode 0600), or read an existing one, and
    /// print its address.
    Keygen {
        /// Where the key lives.
        #[arg(long, value_name = "FILE", default_value = args::DEFAULT_KEY_FILE)]
        key_file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register a process (a Lua script by default) and print its ID.
    Spawn(SpawnArgs),
    /// Sign and schedule a message on a process; print its slot.
    Send(SendArgs),
    /// Print a process's schedule, paging through it.
    Schedule(schedule::ScheduleArgs),
    /// Print the last assigned slot of a process.
    Slot(PidArgs),
    /// Print a process's state at a slot, or a value inside it.
    Compute(ComputeArgs),
    /// Print a process's state at its last scheduled slot, or a value
    /// inside it.
    Now(NowArgs),
    /// Evaluate a message on a process's latest state without scheduling it.
    DryRun(SendArgs),
    /// Print the node's status, or one process's.
    Status(StatusArgs),
    /// Check a schedule's signatures, signer, slots and hash chain from
    /// slot 0; exit 1 at the first fault.
    VerifyChain(verify::VerifyArgs),
    /// Make the node back its store up into a new subdirectory of its
    /// backup_dir; print the backup's path.
    Backup(NodeArgs),
    /// Copy a stopped node's store into a new store of either embedded
    /// backend (sled or fjall).
    CopyStore(copy_store::CopyStoreArgs),
}

/// `hb spawn`.
#[derive(clap::Args)]
pub struct SpawnArgs {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    key: KeyArgs,
    /// The Lua script (the definition's `script`).
    #[arg(long, value_name = "FILE")]
    lua: Option<PathBuf>,
    /// The process's execution device.
    #[arg(long, value_name = "DEVICE", default_value = LUA)]
    execution_device: String,
    /// The scheduler's address (default: the node's).
    #[arg(long, value_name = "ADDRESS", value_parser = parse_address)]
    scheduler: Option<String>,
    #[command(flatten)]
    message: MessageArgs,
}

/// `hb send` and `hb dry-run`.
#[derive(clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    key: KeyArgs,
    /// The process.
    #[arg(value_name = "PID", value_parser = parse_pid, allow_hyphen_values = true)]
    pid: Id,
    #[command(flatten)]
    message: MessageArgs,
}

/// A subcommand about one process.
#[derive(clap::Args)]
pub struct PidArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The process.
    #[arg(value_name = "PID", value_parser = parse_pid, allow_hyphen_values = true)]
    pid: Id,
}

/// `hb compute`.
#[derive(clap::Args)]
pub struct ComputeArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The process.
    #[arg(value_name = "PID", value_parser = parse_pid, allow_hyphen_values = true)]
    pid: Id,
    /// The slot.
    #[arg(long)]
    slot: u64,
    /// A path inside the state, such as `state/count`.
    #[arg(value_name = "SUB/PATH")]
    sub_path: Option<String>,
}

/// `hb now`.
#[derive(clap::Args)]
pub struct NowArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The process.
    #[arg(value_name = "PID", value_parser = parse_pid, allow_hyphen_values = true)]
    pid: Id,
    /// A path inside the state, such as `state/count`.
    #[arg(value_name = "SUB/PATH")]
    sub_path: Option<String>,
}

/// `hb status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// A process (default: the node).
    #[arg(value_name = "PID", value_parser = parse_pid, allow_hyphen_values = true)]
    pid: Option<Id>,
}

/// Why a subcommand failed: its code and one-line detail, and the exit
/// code (2 for bad usage, 1 otherwise).
#[derive(Debug)]
pub struct Failure {
    code: String,
    detail: String,
    usage: bool,
}

impl Failure {
    /// Bad usage (exit 2).
    pub fn usage(code: &str, detail: impl Into<String>) -> Failure {
        Failure {
            code: code.to_string(),
            detail: detail.into(),
            usage: true,
        }
    }

    /// A failure (exit 1).
    pub fn failed(code: &str, detail: impl Into<String>) -> Failure {
        Failure {
            code: code.to_string(),
            detail: detail.into(),
            usage: false,
        }
    }

    /// The one-line detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Prints `hb: <code>: <detail>` on stderr, one line.
    fn report(self) -> ExitCode {
        eprintln!("hb: {}: {}", self.code, one_line(&self.detail));
        ExitCode::from(if self.usage { 2 } else { 1 })
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        match e {
            ClientError::InvalidUrl { .. } => Failure::usage(e.code(), e.detail()),
            other => Failure::failed(other.code(), other.detail()),
        }
    }
}

impl From<MessageError> for Failure {
    fn from(e: MessageError) -> Failure {
        use hb_message::ErrorCode;
        Failure::failed(e.code(), e.to_string())
    }
}

/// Runs one client subcommand.
pub fn run(command: ClientCommand) -> ExitCode {
    let outcome = match command {
        ClientCommand::Keygen { key_file, json } => keygen(&key_file, json),
        ClientCommand::VerifyChain(args) if args.on_store() => verify::on_store(args),
        ClientCommand::CopyStore(args) => copy_store::run(args),
        other => actix_rt::System::new().block_on(run_remote(other)),
    };
    outcome.unwrap_or_else(Failure::report)
}

async fn run_remote(command: ClientCommand) -> Result<ExitCode, Failure> {
    match command {
        ClientCommand::Keygen { key_file, json } => keygen(&key_file, json),
        ClientCommand::Spawn(args) => spawn(args).await,
        ClientCommand::Send(args) => send(args).await,
        ClientCommand::Schedule(args) => schedule::run(args).await,
        ClientCommand::Slot(args) => slot(args).await,
        ClientCommand::Compute(args) => {
            let path = args.sub_path.unwrap_or_default();
            let answer = args
                .node
                .client()?
                .compute(&args.pid, args.slot, &path)
                .await?;
            print_value(&answer.value, args.node.json)
        }
        ClientCommand::Now(args) => {
            let path = args.sub_path.unwrap_or_default();
            let answer = args.node.client()?.now(&args.pid, &path).await?;
            print_value(&answer.value, args.node.json)
        }
        ClientCommand::DryRun(args) => dry_run(args).await,
        ClientCommand::Status(args) => status(args).await,
        ClientCommand::VerifyChain(args) => verify::over_http(args).await,
        ClientCommand::CopyStore(args) => copy_store::run(args),
        ClientCommand::Backup(args) => {
            let made = args.client()?.backup().await?;
            if args.json {
                json(&message_json(&made))?;
            } else {
                line(made.get_text("path").unwrap_or_default())?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn keygen(key_file: &Path, as_json: bool) -> Result<ExitCode, Failure> {
    let key = KeyArgs {
        key_file: key_file.to_path_buf(),
    }
    .load()?;
    if as_json {
        json(&serde_json::json!({
            "address": key.address(),
            "key-file": key_file.display().to_string(),
        }))?;
    } else {
        line(key.address())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds the tags and data to `m`, then a fresh random `anchor` (32 bytes,
/// base64url, as ao's) unless a tag set one: ed25519 signatures are
/// deterministic, so without it two sends of the same tags would be one
/// message ID (and a duplicate under `signed-id` de-duplication).
fn with_anchor(m: Message, fields: &MessageArgs) -> Result<Message, Failure> {
    let mut m = fields.add_to(m)?;
    if !m.contains_key("anchor") {
        let anchor: [u8; 32] = rand::random();
        m.insert("anchor", hb_message::human(&anchor))?;
    }
    Ok(m)
}

async fn spawn(args: SpawnArgs) -> Result<ExitCode, Failure> {
    let script = match &args.lua {
        Some(path) => {
            let bytes = read_file(path, "--lua")?;
            Some(String::from_utf8(bytes).map_err(|_| {
                Failure::usage(
                    "unreadable-file",
                    format!("--lua {}: not UTF-8 text", path.display()),
                )
            })?)
        }
        None => None,
    };
    let script_tag = args
        .message
        .tags
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("script") || k.eq_ignore_ascii_case("script-id"));
    if args.execution_device == LUA && script.is_none() && !script_tag {
        return Err(Failure::usage(
            "missing-script",
            "a lua@5.3a process needs --lua <file> (or -t script-id=<id>)",
        ));
    }
    // Every local check before the first request. The anchor makes two
    // spawns of one script two processes.
    let mut definition = with_anchor(Message::new(), &args.message)?;
    let mut fixed = vec![
        ("type", Value::from("Process")),
        ("device", Value::from("process@1.0")),
        (
            "execution-device",
            Value::from(args.execution_device.as_str()),
        ),
    ];
    if let Some(script) = script {
        fixed.push(("script", Value::from(script)));
    }
    for (key, value) in fixed {
        definition.insert_new(key, value).map_err(|_| {
            Failure::usage("invalid-tag", format!("-t {key}=…: hb spawn sets `{key}`"))
        })?;
    }
    if definition.contains_key("scheduler") {
        return Err(Failure::usage(
            "invalid-tag",
            "-t scheduler=…: use --scheduler <address>",
        ));
    }
    let key = args.key.load()?;
    let client = args.node.client()?;
    let scheduler = match args.scheduler {
        Some(address) => address,
        None => client.address().await?,
    };
    definition.insert("scheduler", scheduler)?;
    let definition = definition.commit(&key, None)?;
    let pid = definition.id_all()?;
    let assignment = client.schedule(&definition).await?;
    scheduled(pid, &definition, &assignment, args.node.json, true)
}

async fn send(args: SendArgs) -> Result<ExitCode, Failure> {
    let message = with_anchor(
        Message::new().with("target", args.pid.to_human())?,
        &args.message,
    )?;
    let key = args.key.load()?;
    let message = message.commit(&key, None)?;
    let assignment = args.node.client()?.schedule(&message).await?;
    scheduled(args.pid, &message, &assignment, args.node.json, false)
}

/// Prints what `spawn` (the process ID) or `send` (the slot) scheduled.
fn scheduled(
    pid: Id,
    message: &Message,
    assignment: &Message,
    as_json: bool,
    spawned: bool,
) -> Result<ExitCode, Failure> {
    let slot = assignment.get_int("slot");
    if as_json {
        json(&serde_json::json!({
            "process": pid.to_human(),
            "slot": slot,
            "message": message.id_all()?.to_human(),
            "assignment": message_json(assignment),
        }))?;
    } else if spawned {
        line(&pid.to_human())?;
    } else {
        line(&slot.map_or_else(|| "-".to_string(), |s| s.to_string()))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn slot(args: PidArgs) -> Result<ExitCode, Failure> {
    let slot = args.node.client()?.slot(&args.pid).await?;
    if args.node.json {
        json(&message_json(&slot))?;
    } else {
        let current = slot.get("current").map_or_else(|| "-".into(), human_value);
        line(&current)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_value(value: &Value, as_json: bool) -> Result<ExitCode, Failure> {
    if as_json {
        json(&hb_message::json::value_to_json(value))?;
    } else {
        line(&human_value(value))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn dry_run(args: SendArgs) -> Result<ExitCode, Failure> {
    let message = args
        .message
        .add_to(Message::new().with("target", args.pid.to_human())?)?;
    let key = args.key.load()?;
    let message = message.commit(&key, None)?;
    let answer = args.node.client()?.dry_run(&args.pid, &message).await?;
    if args.node.json {
        json(&message_json(&answer))?;
        return Ok(ExitCode::SUCCESS);
    }
    let output = answer
        .get_path("results/output")
        .map(human_value)
        .unwrap_or_default();
    let outbox = answer
        .get_path("results/outbox")
        .and_then(Value::as_list)
        .unwrap_or_default();
    let error = answer.get_path("results/error").and_then(Value::as_message);
    if !output.is_empty() {
        line(output.strip_suffix('\n').unwrap_or(&output))?;
    }
    for (i, m) in outbox.iter().enumerate() {
        line(&format!(
            "outbox {}: {}",
            i + 1,
            hb_message::json::value_to_json(m)
        ))?;
    }
    if let Some(error) = error {
        let text = |k: &str| error.get(k).map(human_value).unwrap_or_default();
        line(&format!("error: {}: {}", text("code"), text("message")))?;
    }
    if output.is_empty() && outbox.is_empty() && error.is_none() {
        line("(no output)")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(args: StatusArgs) -> Result<ExitCode, Failure> {
    let client = args.node.client()?;
    let Some(pid) = args.pid else {
        let status = client.scheduler_status().await?;
        if args.node.json {
            json(&message_json(&status))?;
            return Ok(ExitCode::SUCCESS);
        }
        let processes = status
            .get("processes")
            .and_then(Value::as_list)
            .unwrap_or_default();
        let address = status.get("address").map(human_value).unwrap_or_default();
        line(&format!("node {address}"))?;
        line(&format!("processes {}", processes.len()))?;
        for p in processes {
            line(&format!("  {}", human_value(p)))?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let status = client.process_status(&pid).await?;
    if args.node.json {
        json(&message_json(&status))?;
        return Ok(ExitCode::SUCCESS);
    }
    for key in [
        "process",
        "scheduled-slot",
        "computed-slot",
        "snapshot-slot",
        "worker",
    ] {
        if let Some(v) = status.get(key) {
            line(&format!("{key:<15} {}", human_value(v)))?;
        }
    }
    if let Some(e) = status.get("last-error").and_then(Value::as_message) {
        let text = |k: &str| e.get(k).map(human_value).unwrap_or_default();
        line(&format!(
            "{:<15} slot {} ({}): {}: {}",
            "last-error",
            text("slot"),
            text("phase"),
            text("code"),
            text("detail")
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
