//! SPEC §2.1: exceeding a nesting limit is `TooDeep`, never a stack
//! overflow. Every decoder, and the encoders, run here at each depth from
//! ten below a limit to ten above it on a thread with a 2 MiB stack (the
//! size of Rust's test threads and of a spawned thread's default), in the
//! build `cargo test` makes. A stack overflow aborts the whole test binary,
//! so each depth either passes its checks or fails the run.

use hb_message::codec::{self, Record, RECORD_MAX_DEPTH};
use hb_message::{canonical, json, Message, MessageError, Value};
use serde::{Deserialize, Serialize};

const STACK: usize = 2 << 20;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Rec {
    slot: u64,
    body: Message,
}

impl Record for Rec {
    const VERSION: u8 = 1;
    const NAME: &'static str = "deep-record";
}

/// Runs `f` on a fresh thread with a 2 MiB stack.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .expect("spawn a test thread")
        .join()
        .expect("the checks passed");
}

/// The whole canonical encoding of a message `depth` levels deep, written
/// byte by byte (no recursion). Levels alternate between messages
/// (`{"a": …}`) and lists (`[…]`) when `lists` is set; the innermost value
/// is an empty message.
fn deep_canonical(depth: usize, lists: bool) -> Vec<u8> {
    let mut out = b"HBC\x01".to_vec();
    // Level 1 is the top-level message; each further level is one value.
    for level in 1..depth {
        if lists && level % 2 == 0 {
            out.push(6);
            out.extend(1u64.to_be_bytes());
        } else {
            out.push(7);
            out.extend(1u64.to_be_bytes());
            out.extend(1u64.to_be_bytes());
            out.push(b'a');
        }
    }
    // The innermost level. After a list the item is a message; after a
    // message's key, its value.
    out.push(7);
    out.extend(0u64.to_be_bytes());
    out
}

/// The same message built in code, without recursion.
fn deep_message(depth: usize, lists: bool) -> Message {
    let mut v = Value::Message(Message::new());
    for level in (1..depth).rev() {
        v = if lists && level % 2 == 0 {
            Value::List(vec![v])
        } else {
            let mut m = Message::new();
            m.insert("a", v).expect("a valid key");
            Value::Message(m)
        };
    }
    v.into_message().expect("level 1 is a message")
}

/// A `Rec` holding `canonical` as its body, as bincode writes it.
fn record_bytes(canonical: &[u8]) -> Vec<u8> {
    let mut rec = vec![Rec::VERSION];
    rec.extend(7u64.to_le_bytes());
    rec.extend((canonical.len() as u64).to_le_bytes());
    rec.extend(canonical);
    rec
}

/// `{"a": … {} …}` (and `[…]` levels), `depth` levels deep.
fn deep_json(depth: usize, lists: bool) -> String {
    let (mut open, mut close) = (String::new(), String::new());
    for level in 1..depth {
        if lists && level % 2 == 0 {
            open.push('[');
            close.insert(0, ']');
        } else {
            open.push_str("{\"a\":");
            close.insert(0, '}');
        }
    }
    format!("{open}{{}}{close}")
}

fn around(limit: usize) -> std::ops::RangeInclusive<usize> {
    limit - 10..=limit + 10
}

#[test]
fn the_builders_here_agree() {
    for lists in [false, true] {
        for depth in [1, 2, 3, 7] {
            let m = deep_message(depth, lists);
            assert_eq!(m.depth(), depth);
            assert_eq!(canonical::encode_whole(&m), deep_canonical(depth, lists));
            assert_eq!(
                json::from_json_with_depth(deep_json(depth, lists).as_bytes(), 64).unwrap(),
                m
            );
        }
    }
}

#[test]
fn records_at_and_around_the_record_limit_decode_or_are_too_deep() {
    for lists in [false, true] {
        for depth in around(RECORD_MAX_DEPTH) {
            on_small_stack(move || {
                let bytes = record_bytes(&deep_canonical(depth, lists));
                match codec::decode::<Rec>(&bytes) {
                    Ok(rec) => {
                        assert!(depth <= RECORD_MAX_DEPTH, "{depth} decoded");
                        assert_eq!(rec.body.depth(), depth);
                        // What was read back can be written again, compared,
                        // cloned, identified and dropped on this stack too.
                        assert_eq!(codec::encode(&rec).unwrap(), bytes);
                        let copy = rec.body.clone();
                        assert_eq!(copy, rec.body);
                        assert_eq!(copy.unsigned_id(), rec.body.unsigned_id());
                        json::to_json_string(&copy);
                    }
                    Err(e) => {
                        assert!(depth > RECORD_MAX_DEPTH, "{depth}: {e}");
                        assert_eq!(
                            e,
                            MessageError::TooDeep {
                                limit: RECORD_MAX_DEPTH
                            }
                        );
                    }
                }
            });
        }
    }
}

#[test]
fn records_deeper_than_the_limit_are_not_written() {
    for lists in [false, true] {
        for depth in around(RECORD_MAX_DEPTH) {
            on_small_stack(move || {
                let rec = Rec {
                    slot: 7,
                    body: deep_message(depth, lists),
                };
                match codec::encode(&rec) {
                    Ok(bytes) => {
                        assert!(depth <= RECORD_MAX_DEPTH, "{depth} written");
                        assert_eq!(codec::decode::<Rec>(&bytes).unwrap(), rec);
                    }
                    Err(e) => {
                        assert!(depth > RECORD_MAX_DEPTH, "{depth}: {e}");
                        assert_eq!(
                            e,
                            MessageError::TooDeep {
                                limit: RECORD_MAX_DEPTH
                            }
                        );
                    }
                }
                // The ID encoder works at any of these depths.
                let bytes = canonical::canonical(&rec.body);
                assert_eq!(bytes.len(), deep_canonical(depth, lists).len());
            });
        }
    }
}

#[test]
fn canonical_decoding_around_its_limits_decodes_or_is_too_deep() {
    for limit in [canonical::DEFAULT_MAX_DEPTH, RECORD_MAX_DEPTH] {
        for lists in [false, true] {
            for depth in around(limit) {
                on_small_stack(move || {
                    let bytes = deep_canonical(depth, lists);
                    match canonical::decode(&bytes, limit) {
                        Ok(m) => {
                            assert!(depth <= limit, "{depth} decoded");
                            assert_eq!(canonical::encode_whole(&m), bytes);
                        }
                        Err(e) => {
                            assert!(depth > limit, "{depth}: {e}");
                            assert_eq!(e, MessageError::TooDeep { limit });
                        }
                    }
                });
            }
        }
    }
}

#[test]
fn json_around_the_limits_decodes_or_is_refused() {
    for limit in [canonical::DEFAULT_MAX_DEPTH, RECORD_MAX_DEPTH] {
        for lists in [false, true] {
            for depth in around(limit) {
                on_small_stack(move || {
                    // serde_json refuses a 128th level of its own.
                    let limit = limit.min(json::JSON_MAX_DEPTH);
                    let text = deep_json(depth, lists);
                    match json::from_json_with_depth(text.as_bytes(), limit) {
                        Ok(m) => {
                            assert!(depth <= limit, "{depth} decoded");
                            assert_eq!(m.depth(), depth);
                            assert_eq!(json::to_json_string(&m), text);
                        }
                        Err(e) => {
                            assert!(depth > limit, "{depth}: {e}");
                            assert_eq!(e, MessageError::TooDeep { limit });
                        }
                    }
                    match json::updates_from_json(text.as_bytes(), limit) {
                        Ok(_) => assert!(depth <= limit, "{depth} decoded"),
                        Err(e) => {
                            assert!(depth > limit, "{depth}: {e}");
                            assert_eq!(e, MessageError::TooDeep { limit });
                        }
                    }
                });
            }
        }
    }
}
