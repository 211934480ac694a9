//! The client subcommands (SPEC §7.6): they talk to a node over HTTP.

use std::process::ExitCode;

/// The client subcommands.
#[derive(clap::Subcommand)]
pub enum ClientCommand {
    /// Create a key file (mode 0600) and print its address.
    Keygen {
        /// Where to write the key.
        #[arg(long, default_value = "./hb-client.key")]
        key_file: std::path::PathBuf,
    },
}

/// Runs one client subcommand.
pub fn run(command: ClientCommand) -> ExitCode {
    match command {
        ClientCommand::Keygen { key_file } => {
            match hb_message::NodeKey::load_or_create(&key_file) {
                Ok(key) => {
                    println!("{}", key.address());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hb: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
