//! Arguments shared by the client subcommands, and turning them into a
//! signed message.

use std::io::Read;
use std::path::{Path, PathBuf};

use hb_message::{Id, Message, NodeKey, Value};
use hb_node::client::{Client, DEFAULT_NODE_URL};

use super::Failure;

/// Where the client key lives unless `--key-file` says otherwise.
pub const DEFAULT_KEY_FILE: &str = "./hb-client.key";

/// The node to talk to, and how to print.
#[derive(clap::Args)]
pub struct NodeArgs {
    /// The node's URL (default: `HB_NODE`, else the local default).
    #[arg(long, value_name = "URL", env = "HB_NODE", default_value = DEFAULT_NODE_URL)]
    pub node: String,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

impl NodeArgs {
    /// A client of `--node` (a malformed URL is bad usage).
    pub fn client(&self) -> Result<Client, Failure> {
        Client::new(&self.node).map_err(|e| Failure::usage(e.code(), e.detail()))
    }
}

/// The key that signs messages.
#[derive(clap::Args)]
pub struct KeyArgs {
    /// The client key that signs (created with mode 0600 on first use).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_KEY_FILE)]
    pub key_file: PathBuf,
}

impl KeyArgs {
    /// Loads the key, creating it on first use; an unreadable or malformed
    /// key file is bad usage.
    pub fn load(&self) -> Result<NodeKey, Failure> {
        NodeKey::load_or_create(&self.key_file)
            .map_err(|e| Failure::usage("invalid-key-file", e.to_string()))
    }
}

/// The fields of a message given on the command line.
#[derive(clap::Args)]
pub struct MessageArgs {
    /// A field `Key=Value` (a text value); repeatable.
    #[arg(short = 't', long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// The message's `data`: a file, or `-` for stdin (text if it is
    /// UTF-8, else bytes).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
}

impl MessageArgs {
    /// Adds the tags and the data to `m`. A key that `m` already has, or
    /// two tags that normalise alike, are bad usage.
    pub fn add_to(&self, mut m: Message) -> Result<Message, Failure> {
        for (key, value) in &self.tags {
            m.insert_new(key, value.as_str()).map_err(|e| {
                Failure::usage(
                    "invalid-tag",
                    format!("-t {key}={value}: {e} (set by another tag or by hb itself)"),
                )
            })?;
        }
        if let Some(path) = &self.data {
            let data = read_data(path)?;
            m.insert_new("data", data).map_err(|e| {
                Failure::usage("invalid-tag", format!("--data: {e} (a `data` tag is set)"))
            })?;
        }
        Ok(m)
    }
}

/// `Key=Value` with a non-empty key.
fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => {
            hb_message::Key::new(k.trim()).map_err(|e| e.to_string())?;
            Ok((k.trim().to_string(), v.to_string()))
        }
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// A process ID (43 characters of base64url).
pub fn parse_pid(s: &str) -> Result<Id, String> {
    if !hb_message::is_id_shaped(s) {
        return Err(format!("{s:?} is not a 43-character process ID"));
    }
    Id::parse(s).map_err(|e| e.to_string())
}

/// A 43-character address.
pub fn parse_address(s: &str) -> Result<String, String> {
    if hb_message::is_id_shaped(s) {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a 43-character address"))
    }
}

/// A file's bytes, or stdin's for `-`; unreadable is bad usage.
pub fn read_file(path: &Path, option: &str) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(path).map(|b| bytes = b)
    };
    read.map_err(|e| {
        Failure::usage(
            "unreadable-file",
            format!("{option} {}: {e}", path.display()),
        )
    })?;
    Ok(bytes)
}

/// `--data`: text if UTF-8, else bytes.
fn read_data(path: &Path) -> Result<Value, Failure> {
    let bytes = read_file(path, "--data")?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => Value::Text(text),
        Err(e) => Value::Bytes(e.into_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_key_equals_value() {
        assert_eq!(parse_tag("Action=Inc"), Ok(("Action".into(), "Inc".into())));
        assert_eq!(parse_tag("k=a=b"), Ok(("k".into(), "a=b".into())));
        assert_eq!(parse_tag("k="), Ok(("k".into(), String::new())));
        assert!(parse_tag("Inc").is_err());
        assert!(parse_tag("=x").is_err());
        assert!(parse_tag("@k=x").is_err());
    }
}
