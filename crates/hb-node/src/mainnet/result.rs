//! The ao result shape (SPEC §10.5) of a slot's `results`: what ao's
//! compute unit answers and aoconnect reads.
//!
//! `{"Output": <results/output as text, or "">, "Messages": [{"Target",
//! "Data", "Anchor", "Tags": [{name, value}]}, …], "Spawns": [],
//! "Assignments": [], "Error": <results/error/message, when present>}`, at
//! the top level as SPEC §10.5 says, and the same object again under
//! `"raw"`, which is where aoconnect 0.0.98 reads it
//! (tests/aoconnect/EXCHANGES.md, "Results").
//!
//! Each outbox entry becomes one message: its `target`, `data` and
//! `anchor` keys the fields of the same name (`""` when absent), every other
//! non-private key except `commitments` a tag. hb's keys are lower case
//! (SPEC §2.2), ao's tags conventionally capitalised, so a tag's name is its
//! key with each `-`-separated word capitalised (`from-process` →
//! `From-Process`); a key that is not all lower case (an ID-shaped key)
//! keeps its case. Values are text: integers, floats and booleans in their
//! usual form, bytes in base64url, lists and messages as their JSON (SPEC
//! §2.9).

use hb_message::Value;
use serde_json::{json, Map, Value as Json};

/// The ao result object of `results` (a slot's `results` message; `None`
/// or a non-message is a slot with no results), without `raw`.
pub fn ao_result(results: Option<&Value>) -> Json {
    let results = results.and_then(Value::as_message);
    let output = results
        .and_then(|r| r.get("output"))
        .map(text)
        .unwrap_or_default();
    let messages: Vec<Json> = results
        .and_then(|r| r.get("outbox"))
        .and_then(Value::as_list)
        .map(|outbox| outbox.iter().map(ao_message).collect())
        .unwrap_or_default();
    let mut shape = Map::new();
    shape.insert("Output".into(), Json::String(output));
    shape.insert("Messages".into(), Json::Array(messages));
    shape.insert("Spawns".into(), json!([]));
    shape.insert("Assignments".into(), json!([]));
    if let Some(error) = results.and_then(|r| r.get("error")) {
        let message = match error {
            Value::Message(e) => e.get("message").map(text).unwrap_or_else(|| text(error)),
            other => text(other),
        };
        shape.insert("Error".into(), Json::String(message));
    }
    Json::Object(shape)
}

/// The answer of a result or dry-run route: the ao result at the top
/// level and again under `raw`.
pub fn answer(results: Option<&Value>) -> Json {
    let shape = ao_result(results);
    let mut answer = match &shape {
        Json::Object(m) => m.clone(),
        _ => Map::new(),
    };
    answer.insert("raw".into(), shape);
    Json::Object(answer)
}

/// One outbox entry as an ao message. An entry that is not a message is
/// kept as the data of a message without target or tags.
fn ao_message(entry: &Value) -> Json {
    let Value::Message(m) = entry else {
        return json!({"Target": "", "Data": text(entry), "Anchor": "", "Tags": []});
    };
    let field = |key: &str| m.get(key).map(text).unwrap_or_default();
    let tags: Vec<Json> = m
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "target" | "data" | "anchor" | hb_message::COMMITMENTS
            ) && !k.is_private()
        })
        .map(|(k, v)| json!({"name": tag_name(k.as_str()), "value": text(v)}))
        .collect();
    json!({
        "Target": field("target"),
        "Data": field("data"),
        "Anchor": field("anchor"),
        "Tags": tags,
    })
}

/// `from-process` → `From-Process`; a key with upper case letters (an
/// ID-shaped key) is kept as it is.
pub fn tag_name(key: &str) -> String {
    if key.bytes().any(|b| b.is_ascii_uppercase()) {
        return key.to_string();
    }
    key.split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A value as tag or field text.
fn text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        Value::Int(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Bytes(b) => hb_message::encode_base64url(b),
        Value::Float(_) | Value::List(_) | Value::Message(_) => {
            hb_message::json::value_to_json(v).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::Message;

    fn results(pairs: Vec<(&str, Value)>) -> Value {
        let mut m = Message::new();
        for (k, v) in pairs {
            m.insert(k, v).unwrap();
        }
        Value::Message(m)
    }

    #[test]
    fn lua_results_become_output_and_messages() {
        let sent = Message::new()
            .with("target", "W")
            .unwrap()
            .with("action", "Count")
            .unwrap()
            .with("data", "3")
            .unwrap()
            .with("from-process", "P")
            .unwrap()
            .with("n", 7)
            .unwrap();
        let r = results(vec![
            ("output", "count=3\n".into()),
            ("outbox", Value::List(vec![Value::Message(sent)])),
        ]);
        let shape = ao_result(Some(&r));
        assert_eq!(shape["Output"], "count=3\n");
        assert_eq!(shape["Spawns"], json!([]));
        assert_eq!(shape["Assignments"], json!([]));
        assert!(shape.get("Error").is_none());
        let m = &shape["Messages"][0];
        assert_eq!(m["Target"], "W");
        assert_eq!(m["Data"], "3");
        assert_eq!(m["Anchor"], "");
        assert_eq!(
            m["Tags"],
            json!([
                {"name": "Action", "value": "Count"},
                {"name": "From-Process", "value": "P"},
                {"name": "N", "value": "7"},
            ])
        );
    }

    #[test]
    fn no_results_is_empty_output_and_no_messages() {
        let shape = ao_result(None);
        assert_eq!(shape["Output"], "");
        assert_eq!(shape["Messages"], json!([]));
    }

    #[test]
    fn an_error_gives_its_message() {
        let error = Message::new()
            .with("code", "lua-error")
            .unwrap()
            .with("message", "boom")
            .unwrap();
        let r = results(vec![
            ("output", "".into()),
            ("error", Value::Message(error)),
        ]);
        assert_eq!(ao_result(Some(&r))["Error"], "boom");
    }

    #[test]
    fn the_answer_carries_the_shape_twice() {
        let r = results(vec![("output", "hi".into())]);
        let a = answer(Some(&r));
        assert_eq!(a["Output"], "hi");
        assert_eq!(a["raw"]["Output"], "hi");
        assert_eq!(a["raw"]["Messages"], json!([]));
    }

    #[test]
    fn tag_names_are_capitalised_by_word_unless_id_shaped() {
        assert_eq!(tag_name("action"), "Action");
        assert_eq!(tag_name("x-reference"), "X-Reference");
        assert_eq!(tag_name("a--b"), "A--B");
        assert_eq!(tag_name("AbC"), "AbC");
    }
}
