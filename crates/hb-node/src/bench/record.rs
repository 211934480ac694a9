//! `--record FILE`: one JSON line per event the node acknowledged, so a
//! later check can find each of them on the node:
//!
//! ```text
//! {"event":"spawned","pid":"<id>"}
//! {"event":"scheduled","pid":"<id>","slot":12,"message":"<id>"}
//! {"event":"computed","pid":"<id>","slot":12,"state":"<id>"}
//! ```
//!
//! `scheduled` is written once the schedule call was answered (at the
//! node's scheduling mode, `local_confirmation` by default: stored);
//! `computed` carries the hb-message ID of the answered state and the slot
//! of its `x-ao-slot` header.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hb_message::Id;
use parking_lot::Mutex;

use super::BenchError;

/// One acknowledged event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A process was registered.
    Spawned {
        /// The process.
        pid: Id,
    },
    /// A message was assigned `slot`.
    Scheduled {
        /// The process.
        pid: Id,
        /// The slot.
        slot: u64,
        /// id(message, all).
        message: Id,
    },
    /// The state at `slot` was answered.
    Computed {
        /// The process.
        pid: Id,
        /// The slot the answer reflects.
        slot: u64,
        /// id(answer, all).
        state: Id,
    },
}

impl Event {
    /// `spawned`, `scheduled` or `computed`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Spawned { .. } => "spawned",
            Event::Scheduled { .. } => "scheduled",
            Event::Computed { .. } => "computed",
        }
    }

    /// The event's JSON line (without the newline).
    pub fn to_line(&self) -> String {
        let j = match self {
            Event::Spawned { pid } => serde_json::json!({
                "event": "spawned", "pid": pid.to_human(),
            }),
            Event::Scheduled { pid, slot, message } => serde_json::json!({
                "event": "scheduled", "pid": pid.to_human(), "slot": slot,
                "message": message.to_human(),
            }),
            Event::Computed { pid, slot, state } => serde_json::json!({
                "event": "computed", "pid": pid.to_human(), "slot": slot,
                "state": state.to_human(),
            }),
        };
        j.to_string()
    }
}

/// Writes events (if given a file) and counts them.
#[derive(Debug)]
pub struct Recorder {
    out: Option<(PathBuf, Mutex<BufWriter<File>>)>,
    counts: [AtomicU64; 3],
}

impl Recorder {
    /// A recorder appending to `path` (created if missing), or only
    /// counting.
    pub fn open(path: Option<&Path>) -> Result<Recorder, BenchError> {
        let out = match path {
            Some(p) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| BenchError::File {
                        option: "--record",
                        path: p.to_path_buf(),
                        detail: e.to_string(),
                    })?;
                Some((p.to_path_buf(), Mutex::new(BufWriter::new(file))))
            }
            None => None,
        };
        Ok(Recorder {
            out,
            counts: Default::default(),
        })
    }

    /// Records one event.
    pub fn note(&self, event: &Event) -> Result<(), BenchError> {
        let i = match event {
            Event::Spawned { .. } => 0,
            Event::Scheduled { .. } => 1,
            Event::Computed { .. } => 2,
        };
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        if let Some((path, out)) = &self.out {
            let mut line = event.to_line();
            line.push('\n');
            out.lock()
                .write_all(line.as_bytes())
                .map_err(|e| BenchError::File {
                    option: "--record",
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Writes what is buffered to the file.
    pub fn flush(&self) -> Result<(), BenchError> {
        if let Some((path, out)) = &self.out {
            out.lock().flush().map_err(|e| BenchError::File {
                option: "--record",
                path: path.clone(),
                detail: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Events recorded so far, by name.
    pub fn counts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        ["spawned", "scheduled", "computed"]
            .into_iter()
            .zip(&self.counts)
            .map(|(k, n)| (k, n.load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_lines_that_are_counted() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("events.jsonl");
        let pid = Id::hash(b"p");
        let message = Id::hash(b"m");
        let r = Recorder::open(Some(&path)).expect("opens");
        for e in [
            Event::Spawned { pid },
            Event::Scheduled {
                pid,
                slot: 3,
                message,
            },
            Event::Computed {
                pid,
                slot: 3,
                state: message,
            },
        ] {
            r.note(&e).expect("written");
        }
        r.flush().expect("flushed");
        let text = std::fs::read_to_string(&path).expect("readable");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["event"], "spawned");
        assert_eq!(lines[1]["slot"], 3);
        assert_eq!(lines[1]["message"], message.to_human());
        assert_eq!(lines[2]["state"], message.to_human());
        assert_eq!(lines[2]["pid"], pid.to_human());
        assert_eq!(r.counts()["scheduled"], 1);
    }
}
