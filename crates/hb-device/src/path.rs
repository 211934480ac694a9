//! Request paths: the keys a request asks for, in order (SPEC §4.2 "Path").

use hb_message::{Key, Message, Value};

use crate::error::{truncate, ResolveError};

/// The key of a request that names what to resolve.
pub const PATH: &str = crate::keys::names::PATH;

/// The segments of `request.path`, each normalised as a key.
///
/// Text is split on `/` with empty segments dropped (`"/a//b/"` is
/// `[a, b]`); a list gives one segment per element (text, or an integer in
/// decimal). A missing or empty path, an element of another type, or a
/// segment that is not a valid key gives `InvalidPath`.
pub fn segments(request: &Message) -> Result<Vec<Key>, ResolveError> {
    let invalid = |path: String, reason: &str| ResolveError::InvalidPath {
        path,
        reason: reason.to_string(),
    };
    let segment = |s: &str, whole: &str| {
        Key::new(s).map_err(|e| {
            invalid(
                truncate(whole),
                &format!("segment {:?} is not a key: {e}", truncate(s)),
            )
        })
    };
    let keys = match request.get(PATH) {
        None => return Err(invalid(String::new(), "the request has no path")),
        Some(Value::Text(p)) => p
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| segment(s, p))
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::List(items)) => {
            let mut keys = Vec::with_capacity(items.len());
            for item in items {
                let key = match item {
                    Value::Text(s) => segment(s, s)?,
                    Value::Int(i) => segment(&i.to_string(), "")?,
                    other => {
                        return Err(invalid(
                            format!("<list with a {}>", other.type_name()),
                            "path list elements must be text or integers",
                        ))
                    }
                };
                keys.push(key);
            }
            keys
        }
        Some(other) => {
            return Err(invalid(
                format!("<{}>", other.type_name()),
                "the path must be text or a list",
            ))
        }
    };
    if keys.is_empty() {
        return Err(invalid(
            request.get_text(PATH).map(truncate).unwrap_or_default(),
            "the path is empty",
        ));
    }
    Ok(keys)
}

/// A request holding only `path` = `path`.
pub fn path_request(path: &str) -> Message {
    let mut m = Message::new();
    m.insert_key(path_key(), path);
    m
}

/// The key `path`.
pub(crate) fn path_key() -> Key {
    crate::keys::PATH.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_message::msg;

    fn seg(request: &Message) -> Vec<String> {
        segments(request)
            .unwrap()
            .into_iter()
            .map(|k| k.as_str().to_string())
            .collect()
    }

    #[test]
    fn path_text_splits_on_slash_dropping_empty_segments() {
        assert_eq!(seg(&path_request("/a//B/c/")), vec!["a", "b", "c"]);
        assert_eq!(seg(&path_request("keys")), vec!["keys"]);
    }

    #[test]
    fn path_list_gives_one_segment_per_element() {
        let r = msg! { "path" => Value::List(vec!["a/b".into(), Value::Int(2)]) };
        assert_eq!(seg(&r), vec!["a/b", "2"]);
    }

    #[test]
    fn empty_or_missing_paths_are_invalid() {
        for r in [
            path_request(""),
            path_request("///"),
            msg! { "path" => Value::List(vec![]) },
            msg! { "other" => 1 },
            msg! { "path" => 5 },
            msg! { "path" => Value::List(vec![Value::Bool(true)]) },
            path_request("a/@b"),
        ] {
            assert!(
                matches!(segments(&r), Err(ResolveError::InvalidPath { .. })),
                "{r:?}"
            );
        }
    }
}
