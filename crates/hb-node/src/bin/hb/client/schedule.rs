//! `hb schedule`: a process's schedule, page by page, in the native format
//! or aos-2 (SPEC §5.6.3).

use std::process::ExitCode;

use hb_message::json::to_json;
use hb_message::Id;
use hb_node::client::{Client, SlotRange};

use super::args::{parse_pid, NodeArgs};
use super::output::{json, line, summary};
use super::progress::Progress;
use super::Failure;

/// The schedule's format on the wire.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The native bundle: `{type, process, continues, …, assignments}`.
    Json,
    /// aos-2: `{page_info, edges}`.
    #[value(name = "aos-2")]
    Aos2,
}

/// `hb schedule <pid>`.
#[derive(clap::Args)]
pub struct ScheduleArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The process.
    #[arg(value_name = "PID", value_parser = parse_pid, allow_hyphen_values = true)]
    pid: Id,
    /// The first slot.
    #[arg(long, value_name = "SLOT")]
    from: Option<u64>,
    /// The last slot (default: the last assigned one).
    #[arg(long, value_name = "SLOT")]
    to: Option<u64>,
    /// The format asked of the node.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Report progress on stderr even when it is no terminal.
    #[arg(long)]
    progress: bool,
}

/// Pages from `--from` to `--to` (at most the last assigned slot): one
/// line per slot, or, with `--json`, the pages merged into one document of
/// the chosen format.
pub async fn run(args: ScheduleArgs) -> Result<ExitCode, Failure> {
    let client = args.node.client()?;
    let current = client.current_slot(&args.pid).await?;
    let from = args.from.unwrap_or(0);
    let last = u64::try_from(current)
        .ok()
        .map(|c| args.to.map_or(c, |to| to.min(c)));
    let total = last.filter(|l| *l >= from).map_or(0, |l| l - from + 1);
    let progress = Progress::new("schedule", total, args.progress);
    let pages = Pages {
        client: &client,
        pid: &args.pid,
        from,
        last,
        json: args.node.json,
        progress: &progress,
    };
    let merged = match args.format {
        Format::Json => pages.native().await,
        Format::Aos2 => pages.aos2().await,
    };
    progress.finish();
    if let Some(merged) = merged? {
        json(&merged)?;
    }
    Ok(ExitCode::SUCCESS)
}

struct Pages<'a> {
    client: &'a Client,
    pid: &'a Id,
    from: u64,
    /// The last slot to read; `None` for an empty schedule.
    last: Option<u64>,
    json: bool,
    progress: &'a Progress,
}

impl Pages<'_> {
    /// The native pages: lines as they come, or the merged bundle.
    async fn native(&self) -> Result<Option<serde_json::Value>, Failure> {
        let mut merged = serde_json::Map::new();
        let mut header = None;
        let mut next = self.from;
        while let Some(last) = self.last.filter(|l| next <= *l) {
            let range = SlotRange {
                from: Some(next),
                to: Some(last),
            };
            let page = self.client.schedule_page(self.pid, range).await?;
            let Some(&page_last) = page.assignments.keys().next_back() else {
                header = Some(page.header);
                break;
            };
            for (slot, assignment) in &page.assignments {
                if self.json {
                    merged.insert(slot.to_string(), to_json(assignment));
                } else {
                    let body = assignment.get_message("body");
                    let id = body
                        .and_then(|b| b.id_all().ok())
                        .map_or_else(|| "-".to_string(), |id| id.to_human());
                    let text = body.map_or_else(|| "(no body)".to_string(), summary);
                    self.progress
                        .suspend(|| line(&format!("{slot:>6}  {id}  {text}")))?;
                }
            }
            self.progress.set(page_last - self.from + 1);
            let continues = page.continues;
            header = Some(page.header);
            if !continues || page_last < next {
                break;
            }
            next = page_last + 1;
        }
        if !self.json {
            return Ok(None);
        }
        let mut bundle = match header.map(|h| to_json(&h)) {
            Some(serde_json::Value::Object(o)) => o,
            _ => {
                let mut o = serde_json::Map::new();
                o.insert("type".into(), "schedule".into());
                o.insert("process".into(), self.pid.to_human().into());
                o
            }
        };
        bundle.insert("continues".into(), false.into());
        bundle.insert("assignments".into(), serde_json::Value::Object(merged));
        Ok(Some(serde_json::Value::Object(bundle)))
    }

    /// The aos-2 pages: lines as they come, or `{page_info, edges}` merged.
    async fn aos2(&self) -> Result<Option<serde_json::Value>, Failure> {
        let mut edges = Vec::new();
        let mut page_info = serde_json::Value::Null;
        let mut next = self.from;
        while let Some(last) = self.last.filter(|l| next <= *l) {
            let range = SlotRange {
                from: Some(next),
                to: Some(last),
            };
            let page = self.client.schedule_page_aos2(self.pid, range).await?;
            page_info = page
                .page
                .get("page_info")
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            let Some(page_last) = page.last_cursor else {
                break;
            };
            for edge in page.edges() {
                if self.json {
                    edges.push(edge.clone());
                } else {
                    self.progress.suspend(|| line(&edge_line(edge)))?;
                }
            }
            self.progress.set(page_last.saturating_sub(self.from) + 1);
            if !page.has_next_page || page_last < next {
                break;
            }
            next = page_last + 1;
        }
        if !self.json {
            return Ok(None);
        }
        if let Some(info) = page_info.as_object_mut() {
            info.insert("has_next_page".into(), false.into());
        }
        Ok(Some(
            serde_json::json!({ "page_info": page_info, "edges": edges }),
        ))
    }
}

/// `cursor  Id  Name=value …` of an aos-2 edge's message.
fn edge_line(edge: &serde_json::Value) -> String {
    let cursor = edge
        .get("cursor")
        .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string))
        .unwrap_or_default();
    let message = edge.pointer("/node/message");
    let id = message
        .and_then(|m| m.get("Id"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("-");
    let tags = message
        .and_then(|m| m.get("Tags"))
        .and_then(serde_json::Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(|t| {
                    let name = t.get("name")?.as_str()?;
                    let value = t.get("value")?.as_str()?;
                    (name != "Script").then(|| format!("{name}={}", shorten(value)))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    format!("{cursor:>6}  {id}  {tags}")
}

fn shorten(text: &str) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() > 48 {
        format!("{}…", one_line.chars().take(47).collect::<String>())
    } else {
        one_line
    }
}
