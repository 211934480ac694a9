//! Schedule formats (SPEC §5.6.3): the native bundle, aos-2 JSON, and the
//! conversion of aos-2 JSON back to assignments.

use hb_message::{encode_base64url, json, Id, IdSelector, Message, MessageError, Value};
use serde_json::{json as j, Value as Json};

use hb_store::{StoreError, StoredAssignment};

use crate::chain_tip::ChainTip;

/// A page of a process's schedule, as read from the store.
#[derive(Clone, Debug)]
pub struct SchedulePage {
    /// The process.
    pub pid: Id,
    /// Assignments in slot order, without gaps.
    pub assignments: Vec<(u64, Message)>,
    /// Whether more slots follow below the effective `to`.
    pub continues: bool,
    /// The current chain tip.
    pub tip: ChainTip,
    /// Wall-clock milliseconds at which the page was read.
    pub timestamp: i64,
}

/// The native bundle: `{type: "schedule", process, continues, timestamp,
/// block-height, block-hash, assignments: {"<slot>": assignment}}`.
pub fn to_bundle(page: &SchedulePage) -> Result<Message, MessageError> {
    let mut assignments = Message::new();
    for (slot, a) in &page.assignments {
        assignments.insert_key(hb_message::Key::from_index(*slot), a.clone());
    }
    Message::new()
        .with("type", "schedule")?
        .with("process", page.pid.to_human())?
        .with("continues", page.continues)?
        .with("timestamp", page.timestamp)?
        .with("block-height", page.tip.height)?
        .with("block-hash", page.tip.hash.to_human())?
        .with("assignments", assignments)
}

/// The JSON text of [`to_bundle`]'s page, written straight from the
/// stored records: each assignment's JSON comes from its stored bytes
/// (`StoredAssignment::write_json`), so no `Message` is built. It parses
/// to the same JSON value as `json::to_json(&to_bundle(page))` (the
/// assignments appear in slot order rather than in the text order of
/// their keys, which JSON does not hold to). `assignments` must be in slot
/// order without gaps, as `SchedulerCache::range_stored` reads them.
pub fn bundle_json(
    pid: &Id,
    assignments: &[StoredAssignment],
    continues: bool,
    tip: &ChainTip,
    timestamp: i64,
) -> Result<Vec<u8>, StoreError> {
    // Each message's JSON is about its packed size, a third more for
    // bytes (a version 1 record, not packed, is guessed at 1 KiB).
    let stored: usize = assignments
        .iter()
        .map(|a| a.packed_message().map_or(1024, <[u8]>::len))
        .sum();
    let mut out = Vec::with_capacity(stored + stored / 2 + 256);
    out.extend_from_slice(b"{\"assignments\":{");
    for (i, a) in assignments.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"{}\":", a.slot).as_bytes());
        a.write_json(&mut out)?;
    }
    // The other keys in `to_json`'s (sorted) order; none needs escaping
    // (base64url IDs, numbers), but the encoder is used anyway.
    let rest = j!({
        "block-hash": tip.hash.to_human(),
        "block-height": tip.height,
        "continues": continues,
        "process": pid.to_human(),
        "timestamp": timestamp,
        "type": "schedule",
    })
    .to_string();
    out.extend_from_slice(b"},");
    // `rest` is `{…}`: its entries follow the assignments.
    out.extend_from_slice(rest.get(1..).unwrap_or("}").as_bytes());
    Ok(out)
}

/// Options of the aos-2 writer.
#[derive(Clone, Copy, Debug)]
pub struct Aos2Options {
    /// Add `Nonce` and `Message` tags to assignment structures.
    pub legacy_aliases: bool,
}

impl Default for Aos2Options {
    fn default() -> Aos2Options {
        Aos2Options {
            legacy_aliases: true,
        }
    }
}

/// The aos-2 JSON of a page.
pub fn to_aos2(page: &SchedulePage, opts: Aos2Options) -> Json {
    let edges: Vec<Json> = page
        .assignments
        .iter()
        .map(|(slot, a)| {
            let body = a.get_message("body").cloned().unwrap_or_default();
            let mut without_body = a.clone();
            without_body.remove("body");
            let mut extra = Vec::new();
            if opts.legacy_aliases {
                extra.push(("Nonce".to_string(), slot.to_string()));
                let body_id = body.id_all().map(|i| i.to_human()).unwrap_or_default();
                extra.push(("Message".to_string(), body_id));
            }
            j!({
                "cursor": slot,
                "node": {
                    "message": structure(&body, &[]),
                    "assignment": structure(&without_body, &extra),
                }
            })
        })
        .collect();
    j!({
        "page_info": {
            "process": page.pid.to_human(),
            "has_next_page": page.continues,
            "timestamp": page.timestamp.to_string(),
            "block-height": page.tip.height.to_string(),
            "block-hash": page.tip.hash.to_human(),
        },
        "edges": edges,
    })
}

/// Keys that S(m) carries as fields rather than tags.
const FIELD_KEYS: [&str; 3] = ["anchor", "target", "data"];

/// S(m) = {Id, Anchor, Owner, From, Tags, Target, Data, Signature}.
fn structure(m: &Message, extra_tags: &[(String, String)]) -> Json {
    let first = first_commitment(m);
    let owner = first
        .and_then(|c| c.get_text("committer"))
        .unwrap_or("")
        .to_string();
    let from = m
        .get_text("from-process")
        .map(str::to_string)
        .unwrap_or_else(|| owner.clone());
    let text_or_empty = |k: &str| match m.get(k) {
        Some(Value::Text(t)) => t.clone(),
        Some(Value::Bytes(b)) => encode_base64url(b),
        Some(other) => tag_text(other),
        None => String::new(),
    };
    let mut tags: Vec<Json> = Vec::new();
    let mut types: Vec<String> = Vec::new();
    for (k, v) in m.iter() {
        if k.as_str() == "commitments" || FIELD_KEYS.contains(&k.as_str()) {
            continue;
        }
        if !matches!(v, Value::Text(_)) {
            types.push(format!("{}=\"{}\"", k.as_str(), ao_type(v)));
        }
        tags.push(j!({"name": header_case(k.as_str()), "value": tag_text(v)}));
    }
    if !types.is_empty() {
        tags.push(j!({"name": "Ao-Types", "value": types.join(", ")}));
    }
    for (name, value) in extra_tags {
        tags.push(j!({"name": name, "value": value}));
    }
    j!({
        "Id": m.id(&IdSelector::All).map(|i| i.to_human()).unwrap_or_default(),
        "Anchor": text_or_empty("anchor"),
        "Owner": owner,
        "From": from,
        "Tags": tags,
        "Target": text_or_empty("target"),
        "Data": text_or_empty("data"),
        "Signature": first.and_then(|c| c.get_text("signature")).unwrap_or(""),
    })
}

fn first_commitment(m: &Message) -> Option<&Message> {
    m.commitments()?.iter().next()?.1.as_message()
}

/// `block-height` → `Block-Height`.
pub fn header_case(key: &str) -> String {
    key.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn ao_type(v: &Value) -> &'static str {
    match v {
        Value::Bytes(_) => "binary",
        Value::Text(_) => "text",
        Value::Int(_) => "integer",
        Value::Float(_) => "float",
        Value::Bool(_) => "boolean",
        Value::List(_) => "list",
        Value::Message(_) => "map",
    }
}

/// A value as tag text: integers in decimal, floats in shortest round-trip
/// form, booleans, bytes as base64url, lists and messages as JSON text.
fn tag_text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        Value::Bytes(b) => encode_base64url(b),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{:?}", f.get()),
        Value::Bool(b) => b.to_string(),
        Value::List(_) | Value::Message(_) => json::value_to_json(v).to_string(),
    }
}

/// Why aos-2 input could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum Aos2Error {
    /// The JSON does not have the aos-2 shape.
    #[error("malformed aos-2 schedule: {0}")]
    Malformed(String),
    /// A tag's value does not match its declared type.
    #[error("aos-2 tag {name:?}: {detail}")]
    BadTag {
        /// The tag name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// An edge had a null message whose ID is not in the store.
    #[error("message-not-available: message {0} is not in the store")]
    MessageNotAvailable(String),
    /// A rebuilt message is invalid.
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// Assignments converted from aos-2 JSON, and whether more pages follow.
#[derive(Clone, Debug)]
pub struct ConvertedSchedule {
    /// The assignments, in edge order, each marked `priv/unverified`.
    pub assignments: Vec<Message>,
    /// `page_info.has_next_page`.
    pub continues: bool,
}

/// Converts aos-2 JSON back to assignments (SPEC §5.6.3). `lookup` finds a
/// message by ID when an edge's `message` is null.
pub fn aos2_to_assignments(
    aos2: &Json,
    lookup: impl Fn(&str) -> Option<Message>,
) -> Result<ConvertedSchedule, Aos2Error> {
    let malformed = |s: &str| Aos2Error::Malformed(s.to_string());
    let continues = aos2
        .pointer("/page_info/has_next_page")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let edges = aos2
        .get("edges")
        .and_then(Json::as_array)
        .ok_or_else(|| malformed("missing `edges` array"))?;
    let mut assignments = Vec::with_capacity(edges.len());
    for edge in edges {
        let node = edge
            .get("node")
            .ok_or_else(|| malformed("edge without `node`"))?;
        let a_struct = node
            .get("assignment")
            .filter(|a| a.is_object())
            .ok_or_else(|| malformed("edge without `node.assignment`"))?;
        let (mut assignment, helpers) = from_structure(a_struct, true)?;
        let body = match node.get("message") {
            Some(Json::Null) | None => {
                let id = helpers
                    .message
                    .ok_or_else(|| malformed("null message without a `Message` tag"))?;
                lookup(&id).ok_or(Aos2Error::MessageNotAvailable(id))?
            }
            Some(m) => from_structure(m, false)?.0,
        };
        assignment.insert("body", body)?;
        let mut unverified = Message::new();
        unverified.insert("unverified", true)?;
        assignment.set_private("priv", unverified)?;
        assignments.push(assignment);
    }
    Ok(ConvertedSchedule {
        assignments,
        continues,
    })
}

#[derive(Default)]
struct Helpers {
    message: Option<String>,
}

/// Rebuilds a message from S(m). For assignments, applies the untyped
/// defaults (integers for slot, timestamp, block-height, block-timestamp;
/// nonce → slot; zero block-hash) and drops the helper tags.
fn from_structure(s: &Json, assignment: bool) -> Result<(Message, Helpers), Aos2Error> {
    let tags = s
        .get("Tags")
        .and_then(Json::as_array)
        .ok_or_else(|| Aos2Error::Malformed("structure without `Tags`".into()))?;
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for t in tags {
        let name = t.get("name").and_then(Json::as_str);
        let value = t.get("value").and_then(Json::as_str);
        match (name, value) {
            (Some(n), Some(v)) => pairs.push((n.to_ascii_lowercase(), v.to_string())),
            _ => {
                return Err(Aos2Error::Malformed(
                    "tag without text name and value".into(),
                ))
            }
        }
    }
    let types = pairs
        .iter()
        .find(|(n, _)| n == "ao-types")
        .map(|(_, v)| parse_ao_types(v))
        .unwrap_or_default();
    let mut helpers = Helpers::default();
    let mut m = Message::new();
    let mut nonce = None;
    for (name, text) in &pairs {
        match name.as_str() {
            "ao-types" => continue,
            "nonce" if assignment => {
                nonce = Some(text.clone());
                continue;
            }
            "message" if assignment => {
                helpers.message = Some(text.clone());
                continue;
            }
            _ => {}
        }
        let declared = types
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, t)| t.as_str());
        let ty = declared.or(match (assignment, name.as_str()) {
            (true, "timestamp" | "slot" | "block-height" | "block-timestamp") => Some("integer"),
            _ => None,
        });
        let value = typed(name, text, ty)?;
        m.insert_new(name, value)?;
    }
    if assignment {
        if m.get("slot").is_none() {
            if let Some(n) = nonce {
                m.insert("slot", typed("nonce", &n, Some("integer"))?)?;
            }
        }
        if m.get("block-hash").is_none() {
            m.insert("block-hash", Id([0; 32]).to_human())?;
        }
    }
    for (field, key) in [("Anchor", "anchor"), ("Target", "target"), ("Data", "data")] {
        if let Some(text) = s
            .get(field)
            .and_then(Json::as_str)
            .filter(|t| !t.is_empty())
        {
            m.insert(key, text)?;
        }
    }
    Ok((m, helpers))
}

/// Parses `a="integer", b="float"`.
fn parse_ao_types(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ))
        })
        .collect()
}

fn typed(name: &str, text: &str, ty: Option<&str>) -> Result<Value, Aos2Error> {
    let bad = |detail: String| Aos2Error::BadTag {
        name: name.to_string(),
        detail,
    };
    Ok(match ty {
        None | Some("text") => Value::Text(text.to_string()),
        Some("integer") => Value::Int(
            text.parse()
                .map_err(|_| bad(format!("{text:?} is not an integer")))?,
        ),
        Some("float") => {
            let f: f64 = text
                .parse()
                .map_err(|_| bad(format!("{text:?} is not a float")))?;
            Value::float(f)?
        }
        Some("boolean") => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad(format!("{text:?} is not a boolean"))),
        },
        Some("binary") => Value::Bytes(
            hb_message::decode_base64_any(text).map_err(|_| bad("binary is not base64".into()))?,
        ),
        Some("list" | "map") => json::value_from_json(text.as_bytes(), 64)?,
        Some(other) => return Err(bad(format!("unknown type {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequencer::Sequencer;
    use hb_message::{msg, NodeKey};

    fn page(n: i64) -> (SchedulePage, Vec<Message>) {
        let key = NodeKey::from_seed(&[3; 32]);
        let client = NodeKey::from_seed(&[4; 32]);
        let pid = Id::hash(b"proc");
        let mut s = Sequencer::new(pid);
        let mut bodies = Vec::new();
        let assignments = (0..n)
            .map(|i| {
                let body = msg! {
                    "action" => "Eval", "data" => "return 1", "n" => i,
                    "f" => Value::float(0.5).unwrap(), "flag" => true, "raw" => vec![1u8, 2],
                    "l" => Value::List(vec![Value::from(1)]), "target" => pid.to_human(),
                }
                .commit(&client, None)
                .unwrap();
                bodies.push(body.clone());
                let a = s
                    .assign(body, ChainTip::LOCAL, 1_000 + i)
                    .unwrap()
                    .sign(&key)
                    .unwrap();
                (a.slot, a.message)
            })
            .collect();
        (
            SchedulePage {
                pid,
                assignments,
                continues: true,
                tip: ChainTip::LOCAL,
                timestamp: 5,
            },
            bodies,
        )
    }

    #[test]
    fn bundles_hold_slot_keys_and_tip_fields() {
        let (p, _) = page(2);
        let b = to_bundle(&p).unwrap();
        assert_eq!(b.get_text("type"), Some("schedule"));
        let keys: Vec<_> = b
            .get_message("assignments")
            .unwrap()
            .keys()
            .map(|k| k.as_str().to_string())
            .collect();
        assert_eq!(keys, vec!["0", "1"]);
        assert_eq!(b.get("continues"), Some(&Value::Bool(true)));
    }

    #[test]
    fn aos2_has_the_expected_shape() {
        let (p, bodies) = page(1);
        let out = to_aos2(&p, Aos2Options::default());
        assert_eq!(
            out.pointer("/page_info/has_next_page"),
            Some(&Json::Bool(true))
        );
        assert_eq!(
            out.pointer("/page_info/block-height"),
            Some(&Json::String("0".into()))
        );
        let node = out.pointer("/edges/0/node").unwrap();
        assert_eq!(
            node["message"]["Id"],
            Json::String(bodies[0].id_all().unwrap().to_human())
        );
        assert_eq!(node["message"]["Data"], Json::String("return 1".into()));
        let tags = node["assignment"]["Tags"].as_array().unwrap();
        let tag = |n: &str| {
            tags.iter()
                .find(|t| t["name"] == n)
                .map(|t| t["value"].clone())
        };
        assert_eq!(tag("Nonce"), Some(Json::String("0".into())));
        assert_eq!(tag("Block-Height"), Some(Json::String("0".into())));
        assert!(tag("Ao-Types")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("slot=\"integer\""));
    }

    #[test]
    fn aos2_converts_back_to_the_same_fields() {
        let (p, bodies) = page(3);
        let out = to_aos2(&p, Aos2Options::default());
        let back = aos2_to_assignments(&out, |_| None).unwrap();
        assert!(back.continues);
        for ((slot, original), converted) in p.assignments.iter().zip(&back.assignments) {
            let mut expected = original.clone();
            expected.remove("commitments");
            let mut body = bodies[*slot as usize].clone();
            body.remove("commitments");
            expected.insert("body", body).unwrap();
            assert_eq!(converted.without_private(), expected);
            assert!(converted.get_private("priv").is_some());
        }
    }

    #[test]
    fn null_messages_are_looked_up_by_the_message_tag() {
        let (p, bodies) = page(1);
        let mut out = to_aos2(&p, Aos2Options::default());
        out["edges"][0]["node"]["message"] = Json::Null;
        let found = aos2_to_assignments(&out, |id| {
            (id == bodies[0].id_all().unwrap().to_human()).then(|| bodies[0].clone())
        })
        .unwrap();
        assert_eq!(found.assignments[0].get_message("body"), Some(&bodies[0]));
        assert!(matches!(
            aos2_to_assignments(&out, |_| None),
            Err(Aos2Error::MessageNotAvailable(_))
        ));
    }

    #[test]
    fn untyped_legacy_tags_get_their_defaults() {
        let legacy = j!({
            "page_info": {"has_next_page": false},
            "edges": [{"node": {
                "message": {"Tags": [{"name": "Action", "value": "Eval"}], "Data": "x"},
                "assignment": {"Tags": [
                    {"name": "Nonce", "value": "4"}, {"name": "Timestamp", "value": "10"},
                    {"name": "Epoch", "value": "0"}, {"name": "Process", "value": "p"}
                ]}
            }}]
        });
        let a = &aos2_to_assignments(&legacy, |_| None).unwrap().assignments[0];
        assert_eq!(a.get_int("slot"), Some(4));
        assert_eq!(a.get_int("timestamp"), Some(10));
        assert_eq!(a.get_text("epoch"), Some("0"));
        assert_eq!(a.get_text("block-hash"), Some("A".repeat(43).as_str()));
        assert!(a.get("nonce").is_none());
    }

    #[test]
    fn malformed_aos2_is_a_typed_error() {
        assert!(matches!(
            aos2_to_assignments(&j!({}), |_| None),
            Err(Aos2Error::Malformed(_))
        ));
        let bad_int = j!({"edges": [{"node": {"message": {"Tags": []}, "assignment": {"Tags": [{"name": "Slot", "value": "x"}]}}}]});
        assert!(matches!(
            aos2_to_assignments(&bad_int, |_| None),
            Err(Aos2Error::BadTag { .. })
        ));
    }

    #[test]
    fn header_case_capitalises_each_part() {
        assert_eq!(header_case("block-height"), "Block-Height");
        assert_eq!(header_case("slot"), "Slot");
    }
}
