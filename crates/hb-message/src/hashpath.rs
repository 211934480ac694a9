//! HashPath: the two-part `sha-256-chain` record of how a message was
//! produced (SPEC §2.7).

use sha2::{Digest, Sha256};

use crate::canonical::encode_value;
use crate::error::MessageError;
use crate::id::{human, Id};
use crate::key::is_id_shaped;
use crate::message::Message;
use crate::value::Value;

/// The private key holding runtime data; `priv/hashpath` lives inside it.
pub const PRIV: &str = "priv";

/// The base's current HashPath: its `priv/hashpath`, else id(base, all).
pub fn base_part(base: &Message) -> Result<String, MessageError> {
    if let Some(Value::Text(hp)) = base
        .get_private(PRIV)
        .and_then(Value::as_message)
        .and_then(|p| p.get("hashpath"))
    {
        return Ok(hp.clone());
    }
    Ok(base.id_all()?.to_human())
}

/// The request's part: id(request, all), or the first path segment when the
/// request holds only `path`.
pub fn request_part(request: &Message) -> Result<String, MessageError> {
    let only_path = request.keys().all(|k| k.as_str() == "path") && !request.is_empty();
    if only_path {
        let first = match request.get("path") {
            Some(Value::Text(p)) => p.split('/').find(|s| !s.is_empty()).map(str::to_string),
            Some(Value::List(l)) => l.first().and_then(Value::as_text).map(str::to_string),
            _ => None,
        };
        if let Some(seg) = first {
            return Ok(seg);
        }
    }
    Ok(request.id_all()?.to_human())
}

/// hashpath(base, request) = combine(base part, request part).
pub fn hashpath(base: &Message, request: &Message) -> Result<String, MessageError> {
    combine(&base_part(base)?, &request_part(request)?)
}

/// `A` + R → `A/R`; `P1/P2` + R → human(sha256(raw(P1) ‖ raw-or-text(P2)))/R.
pub fn combine(base: &str, request: &str) -> Result<String, MessageError> {
    match base.split_once('/') {
        None => Ok(format!("{base}/{request}")),
        Some((p1, p2)) => {
            let mut h = Sha256::new();
            h.update(Id::parse(p1)?.as_bytes());
            if is_id_shaped(p2) {
                h.update(Id::parse(p2)?.as_bytes());
            } else {
                h.update(p2.as_bytes());
            }
            Ok(format!("{}/{request}", human(&h.finalize().into())))
        }
    }
}

/// The HashPath of a non-message value: sha256 of bytes or text, else of
/// enc(value).
pub fn hashpath_of_value(v: &Value) -> String {
    let digest: [u8; 32] = match v {
        Value::Bytes(b) => Sha256::digest(b).into(),
        Value::Text(t) => Sha256::digest(t.as_bytes()).into(),
        other => Sha256::digest(encode_value(other)).into(),
    };
    human(&digest)
}

/// Stores `hashpath` at `priv/hashpath`, keeping other private data.
pub fn set_hashpath(m: &mut Message, hashpath: String) {
    let mut private = m
        .get_private(PRIV)
        .and_then(Value::as_message)
        .cloned()
        .unwrap_or_default();
    private.insert_key(
        crate::key::Key::from_normalised("hashpath".into()),
        hashpath,
    );
    m.insert_key(crate::key::Key::from_normalised(PRIV.into()), private);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg;

    #[test]
    fn first_step_is_base_id_slash_request_id() {
        let base = msg! { "a" => 1 };
        let req = msg! { "path" => "x", "v" => 2 };
        assert_eq!(
            hashpath(&base, &req).unwrap(),
            format!("{}/{}", base.unsigned_id(), req.unsigned_id())
        );
    }

    #[test]
    fn path_only_requests_use_the_first_segment() {
        let base = msg! { "a" => 1 };
        let req = msg! { "path" => "/get/deeper" };
        assert_eq!(
            hashpath(&base, &req).unwrap(),
            format!("{}/get", base.unsigned_id())
        );
    }

    #[test]
    fn two_part_paths_are_compressed() {
        let mut base = msg! { "a" => 1 };
        let a = Id::hash(b"a");
        set_hashpath(&mut base, format!("{a}/get"));
        let req = msg! { "path" => "next" };
        let mut h = Sha256::new();
        h.update(a.as_bytes());
        h.update(b"get");
        let expected = format!("{}/next", human(&h.finalize().into()));
        assert_eq!(hashpath(&base, &req).unwrap(), expected);
        // The private hashpath is not part of the ID.
        assert_eq!(base.unsigned_id(), msg! { "a" => 1 }.unsigned_id());
    }

    #[test]
    fn id_shaped_second_parts_are_raw() {
        let a = Id::hash(b"a");
        let b = Id::hash(b"b");
        let mut h = Sha256::new();
        h.update(a.as_bytes());
        h.update(b.as_bytes());
        assert_eq!(
            combine(&format!("{a}/{b}"), "k").unwrap(),
            format!("{}/k", human(&h.finalize().into()))
        );
        assert!(combine("notanid/x", "k").is_err());
    }

    #[test]
    fn scalar_hashpaths() {
        assert_eq!(
            hashpath_of_value(&Value::from("hi")),
            hashpath_of_value(&Value::from(b"hi".as_slice()))
        );
        assert_eq!(
            hashpath_of_value(&Value::Int(1)),
            human(&Sha256::digest([3, 0, 0, 0, 0, 0, 0, 0, 1]).into())
        );
    }
}
