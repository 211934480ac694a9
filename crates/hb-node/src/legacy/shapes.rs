//! The JSON shapes of the ao scheduler unit's API (SPEC §10.4), built from
//! hb messages. Pure: no store, no HTTP.
//!
//! A message with an `ans104@1.0` commitment is shown as the exact item it
//! came from (rebuilt by [`Message::to_data_item`]); an hb-native message
//! gets the same shape from its keys and its first commitment (its tags are
//! its non-private keys in canonical order). An ao.TN.1 assignment is shown
//! as its node-signed item; an ao.N.1 assignment as an hb-native message.

use hb_message::hb_ans104::DataItem;
use hb_message::{encode_base64url, Message, Value, COMMITMENTS};
use hb_scheduler::ao_assignment;
use serde_json::{json, Value as Json};

/// A tag value or data as text: itself when UTF-8, else base64url.
fn text_of(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(_) => encode_base64url(bytes),
    }
}

/// `{"name", "value"}`.
fn tag(name: &[u8], value: &[u8]) -> Json {
    json!({ "name": text_of(name), "value": text_of(value) })
}

/// The shape of an ANS-104 item: `{id, owner: {address, key}, data, tags,
/// signature, anchor, target}` (`anchor` and `target` null when absent).
pub fn item_json(item: &DataItem) -> Json {
    json!({
        "id": item.id(),
        "owner": { "address": item.owner_address(), "key": encode_base64url(item.owner()) },
        "data": text_of(item.data()),
        "tags": item.tags().iter().map(|t| tag(&t.name, &t.value)).collect::<Vec<_>>(),
        "signature": encode_base64url(item.signature()),
        "anchor": item.anchor().map(|a| encode_base64url(a)),
        "target": item.target().map(|t| encode_base64url(t)),
    })
}

/// The item a message was signed as, if it carries an `ans104@1.0`
/// commitment that rebuilds.
pub fn item_of(m: &Message) -> Option<DataItem> {
    let commitments = m.commitments()?;
    commitments.iter().find_map(|(id, c)| match c {
        Value::Message(c) if c.get_text("commitment-device") == Some(hb_message::ANS104_DEVICE) => {
            m.to_data_item(id.as_str()).ok()
        }
        _ => None,
    })
}

/// A value as one tag's text: text as is, bytes as base64url, anything
/// else as its JSON form.
fn value_text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        Value::Bytes(b) => encode_base64url(b),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        other => hb_message::json::value_to_json(other).to_string(),
    }
}

/// The shape of an hb-native message: its non-private keys but
/// `commitments` and `data` as tags in canonical order, `data` as data, its
/// first commitment's signer and signature.
fn native_json(m: &Message) -> Json {
    let first = m.commitments().and_then(|c| {
        c.iter().find_map(|(id, body)| match body {
            Value::Message(b) => Some((id.as_str().to_string(), b.clone())),
            _ => None,
        })
    });
    let id = m
        .id_all()
        .map(|i| i.to_human())
        .unwrap_or_else(|_| m.unsigned_id().to_human());
    let tags: Vec<Json> = m
        .iter()
        .filter(|(k, _)| k.as_str() != COMMITMENTS && k.as_str() != "data")
        .map(|(k, v)| json!({ "name": k.as_str(), "value": value_text(v) }))
        .collect();
    let (address, key, signature) = match &first {
        Some((_, b)) => (
            b.get_text("committer").map(str::to_string),
            b.get_text("keyid").map(str::to_string),
            b.get_text("signature").map(str::to_string),
        ),
        None => (None, None, None),
    };
    json!({
        "id": id,
        "owner": { "address": address, "key": key },
        "data": m.get("data").map(value_text).unwrap_or_default(),
        "tags": tags,
        "signature": signature,
        "anchor": m.get_text("anchor"),
        "target": m.get_text("target"),
    })
}

/// `M`: a scheduled message (or a process definition) in the SU's shape.
pub fn message_json(m: &Message) -> Json {
    match item_of(m) {
        Some(item) => item_json(&item),
        None => native_json(m),
    }
}

/// `A`: an assignment in the SU's shape: the ao.TN.1 item it carries, else
/// the hb assignment itself (without its body).
pub fn assignment_json(a: &Message) -> Json {
    if let Some(Ok(item)) = ao_assignment::item_of(a) {
        return item_json(&item);
    }
    let mut without_body = a.clone();
    without_body.remove("body");
    without_body.remove(ao_assignment::AO_ASSIGNMENT);
    native_json(&without_body)
}

/// The assignment's ID on this surface: its ao.TN.1 item's, else id(all).
pub fn assignment_id(a: &Message) -> Option<String> {
    match ao_assignment::item_of(a) {
        Some(Ok(item)) => Some(item.id()),
        _ => a.id_all().ok().map(|i| i.to_human()),
    }
}

/// `{"message": M, "assignment": A}` of one stored assignment.
pub fn node_json(assignment: &Message) -> Json {
    let message = assignment
        .get_message("body")
        .map(message_json)
        .unwrap_or(Json::Null);
    json!({ "message": message, "assignment": assignment_json(assignment) })
}

/// A block height as the SU writes it: 12 digits, zero-padded.
pub fn block(height: i64) -> String {
    format!("{height:012}")
}

/// `GET /processes/{pid}`: the definition as the SU shows a process.
pub fn process_json(pid: &str, slot0: &Message) -> Json {
    let definition = slot0.get_message("body").cloned().unwrap_or_default();
    let m = message_json(&definition);
    json!({
        "process_id": pid,
        "block": block(slot0.get_int("block-height").unwrap_or(0)),
        "owner": m["owner"],
        "tags": m["tags"],
        "timestamp": slot0.get_int("timestamp").unwrap_or(0),
        "data": match m["data"].as_str() { Some("") | None => Json::Null, Some(d) => json!(d) },
        "anchor": m["anchor"],
        "signature": m["signature"],
        "target": m["target"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::hb_ans104::{SignatureType, Tag};
    use hb_message::NodeKey;

    fn signed_item(tags: Vec<Tag>, data: &[u8], target: Option<[u8; 32]>) -> DataItem {
        let key = NodeKey::from_seed(&[4; 32]);
        let owner = key.verifying_key().to_bytes().to_vec();
        let mut item = DataItem::new_unsigned(
            SignatureType::Ed25519,
            owner,
            target,
            None,
            tags,
            data.to_vec(),
        )
        .unwrap();
        let sig = key.sign(&item.signing_message());
        item.set_signature(sig.to_bytes().to_vec()).unwrap();
        item
    }

    #[test]
    fn an_item_message_shows_as_its_item_with_exact_tags() {
        let item = signed_item(
            vec![
                Tag::new("Action", "Eval"),
                Tag::new("Action", "Two"),
                Tag::new("X", vec![0xff]),
            ],
            b"hello",
            Some([7; 32]),
        );
        let m = Message::from_data_item(&item).unwrap();
        let j = message_json(&m);
        assert_eq!(j["id"], item.id());
        assert_eq!(j["data"], "hello");
        assert_eq!(j["target"], encode_base64url(&[7; 32]));
        assert_eq!(j["anchor"], Json::Null);
        assert_eq!(j["owner"]["address"], item.owner_address());
        assert_eq!(
            j["tags"],
            json!([
                {"name": "Action", "value": "Eval"},
                {"name": "Action", "value": "Two"},
                {"name": "X", "value": encode_base64url(&[0xff])}
            ])
        );
    }

    #[test]
    fn a_native_message_shows_its_keys_as_tags_and_its_first_signer() {
        let key = NodeKey::from_seed(&[5; 32]);
        let m = Message::new()
            .with("action", "Ping")
            .and_then(|m| m.with("n", 3))
            .and_then(|m| m.with("data", "body"))
            .and_then(|m| m.commit(&key, None))
            .unwrap();
        let j = message_json(&m);
        assert_eq!(j["id"], m.id_all().unwrap().to_human());
        assert_eq!(j["data"], "body");
        assert_eq!(j["owner"]["address"], key.address());
        assert_eq!(
            j["tags"],
            json!([{"name": "action", "value": "Ping"}, {"name": "n", "value": "3"}])
        );
    }

    #[test]
    fn block_heights_are_twelve_digits() {
        assert_eq!(block(1234), "000000001234");
    }
}
