//! HashPath: the two-part `sha-256-chain` record of how a message was
//! produced (SPEC §2.7).

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

use crate::canonical::encode_value;
use crate::error::MessageError;
use crate::id::{encode_human_into, human, Id};
use crate::key::{is_id_shaped, Key};
use crate::message::Message;
use crate::value::Value;

/// The private key holding runtime data; `priv/hashpath` lives inside it.
pub const PRIV: &str = "priv";

/// The keys read on every resolution step, normalised once.
static PRIV_KEY: LazyLock<Key> = LazyLock::new(|| Key::from_normalised(PRIV.into()));
static HASHPATH_KEY: LazyLock<Key> = LazyLock::new(|| Key::from_normalised("hashpath".into()));
static PATH_KEY: LazyLock<Key> = LazyLock::new(|| Key::from_normalised("path".into()));

/// The base's current HashPath: its `priv/hashpath`, else id(base, all).
pub fn base_part(base: &Message) -> Result<String, MessageError> {
    if let Some(Value::Text(hp)) = base
        .get_private_key(&PRIV_KEY)
        .and_then(Value::as_message)
        .and_then(|p| p.get_key(&HASHPATH_KEY))
    {
        return Ok(hp.clone());
    }
    Ok(base.id_all()?.to_human())
}

/// The request's part: id(request, all), or the first path segment when the
/// request holds only `path`.
pub fn request_part(request: &Message) -> Result<String, MessageError> {
    let mut keys = request.keys();
    let only_path = keys.next().is_some_and(|k| *k == *PATH_KEY) && keys.next().is_none();
    if only_path {
        let first = match request.get_key(&PATH_KEY) {
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
    let mut out = String::with_capacity(base.len().max(43) + 1 + request.len());
    out.push_str(base);
    combine_in_place(&mut out, request)?;
    Ok(out)
}

/// [`combine`] in place: turns a base part into the HashPath of the next
/// step, reusing its buffer. On error `path` is left unchanged.
pub fn combine_in_place(path: &mut String, request: &str) -> Result<(), MessageError> {
    if let Some((p1, p2)) = path.split_once('/') {
        let mut h = Sha256::new();
        h.update(Id::parse(p1)?.as_bytes());
        if is_id_shaped(p2) {
            h.update(Id::parse(p2)?.as_bytes());
        } else {
            h.update(p2.as_bytes());
        }
        let digest: [u8; 32] = h.finalize().into();
        path.clear();
        encode_human_into(&digest, path);
    }
    path.push('/');
    path.push_str(request);
    Ok(())
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
        .get_private_key(&PRIV_KEY)
        .and_then(Value::as_message)
        .cloned()
        .unwrap_or_default();
    private.insert_key(HASHPATH_KEY.clone(), hashpath);
    m.insert_key(PRIV_KEY.clone(), private);
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
    fn request_part_edge_cases() {
        let empty = Message::new();
        assert_eq!(
            request_part(&empty).unwrap(),
            empty.unsigned_id().to_human()
        );
        // Private keys do not count: still a path-only request.
        let mut private = msg! { "path" => "a/b" };
        private.set_private("priv", msg! { "x" => 1 }).unwrap();
        assert_eq!(request_part(&private).unwrap(), "a");
        let list = msg! { "path" => Value::List(vec!["x".into(), "y".into()]) };
        assert_eq!(request_part(&list).unwrap(), "x");
        // A path with no segment falls back to the ID.
        let slashes = msg! { "path" => "//" };
        assert_eq!(
            request_part(&slashes).unwrap(),
            slashes.unsigned_id().to_human()
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
    fn combining_in_place_matches_combine() {
        let a = Id::hash(b"a");
        let b = Id::hash(b"b");
        for base in [
            a.to_human(),
            format!("{a}/get"),
            format!("{a}/{b}"),
            "x/y".into(),
        ] {
            let mut path = base.clone();
            match combine(&base, "next") {
                Ok(expected) => {
                    combine_in_place(&mut path, "next").unwrap();
                    assert_eq!(path, expected);
                }
                Err(e) => {
                    assert_eq!(combine_in_place(&mut path, "next"), Err(e));
                    assert_eq!(path, base, "unchanged on error");
                }
            }
        }
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
