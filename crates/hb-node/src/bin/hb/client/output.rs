//! Writing results on stdout: text for people, one JSON document with
//! `--json`.

use std::io::Write;

use hb_message::json::{to_json, value_to_json};
use hb_message::{Message, Value};

use super::Failure;

/// Writes `text` and a newline on stdout.
pub fn line(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure::failed("output", format!("cannot write to stdout: {e}")))
}

/// Writes `json` compactly on one line of stdout.
pub fn json(json: &serde_json::Value) -> Result<(), Failure> {
    line(&json.to_string())
}

/// A message's JSON form.
pub fn message_json(m: &Message) -> serde_json::Value {
    to_json(m)
}

/// A value for people: text as it is, numbers and booleans bare, anything
/// else as indented JSON.
pub fn human_value(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Float(_) => value_to_json(v).to_string(),
        other => serde_json::to_string_pretty(&value_to_json(other))
            .unwrap_or_else(|_| value_to_json(other).to_string()),
    }
}

/// A short, one-line view of a value inside a summary.
fn short(v: &Value) -> String {
    match v {
        Value::Text(t) => {
            let one_line = t.replace(['\n', '\r', '\t'], " ");
            if one_line.chars().count() > 48 {
                let cut: String = one_line.chars().take(47).collect();
                format!("{cut}…")
            } else {
                one_line
            }
        }
        Value::Bytes(b) => format!("<{} bytes>", b.len()),
        Value::List(l) => format!("[{} items]", l.len()),
        Value::Message(m) => format!("{{{} keys}}", m.len()),
        other => human_value(other),
    }
}

/// A message's fields as `key=value …`, one line, without `commitments`,
/// `target`, `anchor` and `script`; `data` as its size.
pub fn summary(m: &Message) -> String {
    let mut parts = Vec::new();
    for (key, value) in m.iter() {
        match key.as_str() {
            "target" | "anchor" | "script" | hb_message::COMMITMENTS => {}
            "data" => match value {
                Value::Text(t) => parts.push(format!("data=<{} bytes>", t.len())),
                other => parts.push(format!("data={}", short(other))),
            },
            k => parts.push(format!("{k}={}", short(value))),
        }
    }
    if parts.is_empty() {
        "(no fields)".to_string()
    } else {
        parts.join(" ")
    }
}

/// Makes `text` one line: runs of whitespace become one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
