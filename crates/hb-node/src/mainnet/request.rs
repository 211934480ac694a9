//! The pure half of a mainnet request: which route a path names, and the
//! signed ANS-104 item its body carries. No I/O; every function is total
//! (bad input is a [`Refusal`], never a panic).

use hb_message::hb_ans104::{Ans104Error, DataItem};
use hb_message::{ErrorCode, Id, Message, Value};

use crate::http::{percent_decode_path, refusal, Refusal};

/// The tags aoconnect adds to every item to steer the answer's encoding
/// (SPEC §10.5 calls them control fields). They are signed, so a scheduled
/// message keeps them; only a dry-run's unsigned message drops them.
pub const CONTROL_TAGS: [&str; 4] = [
    "signing-format",
    "accept-bundle",
    "require-codec",
    "accept-codec",
];

/// What a mainnet request asks for, from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /push`: register the process the item defines.
    Spawn,
    /// `POST /<pid>~process@1.0/push`: schedule the item on `pid`, then
    /// push its outbox.
    Message {
        /// The process.
        pid: Id,
    },
    /// `POST /<pid>[~process@1.0]/compute/results=<slot or message ID>`:
    /// the results of that slot.
    Result {
        /// The process.
        pid: Id,
        /// Which slot.
        of: ResultOf,
    },
    /// `POST /<pid>[~process@1.0]/slot/current`: the current slot as text.
    CurrentSlot {
        /// The process.
        pid: Id,
    },
    /// `POST /<pid>[~process@1.0]/as=execution/compute&K1=V1&…`: a dry-run
    /// of a message with those fields.
    DryRun {
        /// The process.
        pid: Id,
        /// The `K=V` pairs of the path, percent-decoded, in order.
        fields: Vec<(String, String)>,
    },
}

impl Route {
    /// The process the route is about (none for a spawn).
    pub fn pid(&self) -> Option<Id> {
        match self {
            Route::Spawn => None,
            Route::Message { pid }
            | Route::Result { pid, .. }
            | Route::CurrentSlot { pid }
            | Route::DryRun { pid, .. } => Some(*pid),
        }
    }
}

/// The slot a result names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultOf {
    /// A slot number.
    Slot(u64),
    /// The ID of a scheduled message, looked up in the schedule.
    Message(Id),
}

/// The key of a dry-run route: everything after it is `&K=V` pairs.
const DRY_RUN: &str = "as=execution/compute";

/// The route a mainnet request's path names (below the node's mount
/// point). Anything else is 404 `not-found`; a `results=` that is neither
/// a slot nor an ID is 400 `invalid-slot`.
pub fn route(path: &str) -> Result<Route, Refusal> {
    let no_route = || {
        refusal(
            404,
            "not-found",
            format!(
                "no mainnet route for {}: ANS-104 items go to /push, /<pid>~process@1.0/push, \
                 …/compute/results=<slot or id>, /<pid>/slot/current or \
                 …/as=execution/compute&K=V",
                shorten(path)
            ),
        )
    };
    let path = path.trim_start_matches('/');
    if path == "push" {
        return Ok(Route::Spawn);
    }
    let (first, rest) = path.split_once('/').ok_or_else(no_route)?;
    let (id, device) = match first.split_once('~') {
        Some((id, device)) => (id, Some(device)),
        None => (first, None),
    };
    if device.is_some_and(|d| !d.eq_ignore_ascii_case("process@1.0")) {
        return Err(no_route());
    }
    let pid = Id::parse(id).map_err(|_| no_route())?;
    if rest == "push" && device.is_some() {
        return Ok(Route::Message { pid });
    }
    if rest == "slot/current" {
        return Ok(Route::CurrentSlot { pid });
    }
    if let Some(of) = rest.strip_prefix("compute/results=") {
        return Ok(Route::Result {
            pid,
            of: result_of(&percent_decode_path(of))?,
        });
    }
    if let Some(tail) = rest.strip_prefix(DRY_RUN) {
        if !(tail.is_empty() || tail.starts_with('&')) {
            return Err(no_route());
        }
        let fields = tail
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode_path(k), percent_decode_path(v))
            })
            .collect();
        return Ok(Route::DryRun { pid, fields });
    }
    Err(no_route())
}

/// A slot (digits) or a message ID (43 characters of base64url).
fn result_of(text: &str) -> Result<ResultOf, Refusal> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().map(ResultOf::Slot).map_err(|_| {
            refusal(
                400,
                "invalid-slot",
                format!("slot {} is out of range", shorten(text)),
            )
        });
    }
    Id::parse(text).map(ResultOf::Message).map_err(|_| {
        refusal(
            400,
            "invalid-slot",
            format!(
                "results={} is neither a slot nor a message ID",
                shorten(text)
            ),
        )
    })
}

/// The signed item a mainnet request carries, decoded and verified.
#[derive(Debug, Clone)]
pub struct SignedItem {
    /// The item as a message (SPEC §10.2), every key signed.
    pub message: Message,
    /// The item ID (id(message, all)).
    pub id: Id,
    /// The owner's address: who signed it.
    pub sender: String,
}

/// Parses, maps and verifies the body's ANS-104 item. An empty or
/// malformed body is 400 `malformed-body` naming the field and offset, an
/// unknown signature type 400 `unsupported-signature-type`, a signature
/// that does not verify 400 `invalid-signature` (never "unsigned"), an
/// item without a message form the mapping's own error.
pub fn signed_item(body: &[u8]) -> Result<SignedItem, Refusal> {
    if body.is_empty() {
        return Err(refusal(
            400,
            "malformed-body",
            "the request carries no ANS-104 item (content-type application/ans104)",
        ));
    }
    let item = DataItem::parse(body).map_err(|e| ans104_refusal(&e, "the body"))?;
    item.verify()
        .map_err(|e| ans104_refusal(&e, &format!("item {}", item.id())))?;
    let message = Message::from_data_item(&item).map_err(|e| {
        refusal(
            e.status(),
            e.code(),
            format!("{e}: hb cannot take it as a message"),
        )
    })?;
    let id = Id(item.id_bytes());
    Ok(SignedItem {
        message,
        id,
        sender: item.owner_address(),
    })
}

fn ans104_refusal(e: &Ans104Error, what: &str) -> Refusal {
    match e {
        Ans104Error::UnsupportedSignatureType { .. } => {
            refusal(400, "unsupported-signature-type", format!("{what}: {e}"))
        }
        Ans104Error::InvalidSignature(_) => {
            refusal(400, "invalid-signature", format!("{what}: {e}"))
        }
        Ans104Error::Truncated { .. } | Ans104Error::Malformed { .. } | Ans104Error::Invalid(_) => {
            refusal(
                400,
                "malformed-body",
                format!("{what} is not an ANS-104 data item: {e}"),
            )
        }
    }
}

/// The unsigned message a dry-run evaluates: the item's fields without its
/// commitment and control tags, then the path's `K=V` fields (a key given
/// several times becomes the list of its values in order; a path field
/// replaces an item field of the same key).
pub fn dry_run_message(item: &Message, fields: &[(String, String)]) -> Result<Message, Refusal> {
    let mut m = Message::new();
    for (key, value) in item.iter() {
        let name = key.as_str();
        if name == hb_message::COMMITMENTS || CONTROL_TAGS.contains(&name) {
            continue;
        }
        m.insert_key(key.clone(), value.clone());
    }
    let mut from_path: Vec<(hb_message::Key, Vec<Value>)> = Vec::new();
    for (k, v) in fields {
        let key = hb_message::Key::new(k).map_err(|e| {
            refusal(
                400,
                "invalid-value",
                format!("dry-run field {}: {e}", shorten(k)),
            )
        })?;
        if key.is_private() || key.as_str() == hb_message::COMMITMENTS {
            return Err(refusal(
                400,
                "invalid-value",
                format!("dry-run field {:?} cannot be set", key.as_str()),
            ));
        }
        match from_path.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(Value::from(v.as_str())),
            None => from_path.push((key, vec![Value::from(v.as_str())])),
        }
    }
    for (key, mut values) in from_path {
        let value = if values.len() == 1 {
            values.swap_remove(0)
        } else {
            Value::List(values)
        };
        m.insert_key(key, value);
    }
    Ok(m)
}

/// At most 100 characters of `s`, for error details.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(100) {
        Some((end, _)) => format!("{:?}…", &s[..end]),
        None => format!("{s:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_ans104::sign::{sign_ed25519, Unsigned};
    use hb_ans104::Tag;

    fn pid() -> Id {
        Id::hash(b"p")
    }

    #[test]
    fn the_five_routes_are_told_apart() {
        let p = pid().to_human();
        assert_eq!(route("/push").unwrap(), Route::Spawn);
        assert_eq!(
            route(&format!("/{p}~process@1.0/push")).unwrap(),
            Route::Message { pid: pid() }
        );
        assert_eq!(
            route(&format!("/{p}~process@1.0/compute/results=12")).unwrap(),
            Route::Result {
                pid: pid(),
                of: ResultOf::Slot(12)
            }
        );
        let m = Id::hash(b"m");
        assert_eq!(
            route(&format!("/{p}/compute/results={}", m.to_human())).unwrap(),
            Route::Result {
                pid: pid(),
                of: ResultOf::Message(m)
            }
        );
        assert_eq!(
            route(&format!("/{p}/slot/current")).unwrap(),
            Route::CurrentSlot { pid: pid() }
        );
        assert_eq!(
            route(&format!(
                "/{p}~process@1.0/as=execution/compute&Action=Get&Name=a%20b+c"
            ))
            .unwrap(),
            Route::DryRun {
                pid: pid(),
                fields: vec![
                    ("Action".into(), "Get".into()),
                    ("Name".into(), "a b+c".into())
                ]
            }
        );
    }

    #[test]
    fn other_paths_are_not_found_and_bad_results_are_invalid_slots() {
        let p = pid().to_human();
        for bad in [
            "/".to_string(),
            "/pushx".into(),
            format!("/{p}/push"),
            format!("/{p}~lua@5.3a/push"),
            format!("/{p}~process@1.0/compute"),
            format!("/{p}~process@1.0/as=execution/computex"),
            "/not-an-id/slot/current".into(),
        ] {
            assert_eq!(route(&bad).unwrap_err().code, "not-found", "{bad}");
        }
        for bad in ["x", "", "99999999999999999999999"] {
            let r = route(&format!("/{p}/compute/results={bad}")).unwrap_err();
            assert_eq!((r.status, r.code.as_str()), (400, "invalid-slot"), "{bad}");
        }
    }

    fn item(tags: Vec<Tag>, data: &[u8]) -> DataItem {
        sign_ed25519(
            [7; 32],
            Unsigned {
                tags,
                data: data.to_vec(),
                ..Unsigned::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn a_signed_item_becomes_its_message_with_its_id_and_sender() {
        let i = item(vec![Tag::new("Action", "Inc")], b"1984");
        let s = signed_item(&i.serialize()).unwrap();
        assert_eq!(s.id.to_human(), i.id());
        assert_eq!(s.sender, i.owner_address());
        assert_eq!(s.message.get_text("action"), Some("Inc"));
        assert_eq!(s.message.id_all().unwrap(), s.id);
    }

    #[test]
    fn a_tampered_item_is_an_invalid_signature() {
        let mut bytes = item(vec![Tag::new("Action", "Inc")], b"1984").serialize();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let r = signed_item(&bytes).unwrap_err();
        assert_eq!((r.status, r.code.as_str()), (400, "invalid-signature"));
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_code() {
        let r = signed_item(b"").unwrap_err();
        assert_eq!(r.code, "malformed-body");
        let r = signed_item(&[2, 0, 1, 2, 3]).unwrap_err();
        assert_eq!(r.code, "malformed-body");
        // The data runs to the end of the item: a byte more is data the
        // signature does not cover.
        let mut bytes = item(vec![], b"x").serialize();
        bytes.push(0);
        let r = signed_item(&bytes).unwrap_err();
        assert_eq!(r.code, "invalid-signature");
        let r = signed_item(&[9, 0, 0, 0]).unwrap_err();
        assert_eq!(r.code, "unsupported-signature-type");
    }

    #[test]
    fn a_dry_run_message_is_the_item_unsigned_without_control_tags_plus_the_path() {
        let i = item(
            vec![
                Tag::new("signing-format", "ans104"),
                Tag::new("accept-bundle", "true"),
                Tag::new("Type", "Message"),
                Tag::new("Action", "Ignored"),
            ],
            b"1984",
        );
        let s = signed_item(&i.serialize()).unwrap();
        let m = dry_run_message(
            &s.message,
            &[
                ("Action".into(), "Get".into()),
                ("X".into(), "1".into()),
                ("x".into(), "2".into()),
            ],
        )
        .unwrap();
        assert!(!m.is_signed());
        assert_eq!(m.get_text("action"), Some("Get"));
        assert_eq!(m.get_text("type"), Some("Message"));
        assert_eq!(m.get_text("data"), Some("1984"));
        assert_eq!(m.get("x"), Some(&Value::List(vec!["1".into(), "2".into()])));
        assert!(m.get("signing-format").is_none() && m.get("accept-bundle").is_none());
        let r = dry_run_message(&s.message, &[("commitments".into(), "x".into())]).unwrap_err();
        assert_eq!(r.code, "invalid-value");
    }
}
