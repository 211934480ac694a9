//! Proptest strategies shared by the property tests: arbitrary keys, values
//! and messages covering every value type, nesting, unicode, ID-shaped and
//! private keys.

#![allow(dead_code)] // each test binary uses a different subset

use hb_message::{Key, Message, Value};
use proptest::prelude::*;

/// Keys as a client might write them (before normalisation).
pub fn raw_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9-]{0,8}",
        2 => "[A-Za-z][A-Za-z0-9_-]{0,8}",
        1 => "[A-Za-z0-9_-]{43}",            // ID-shaped: case kept
        1 => "[0-9]{1,3}",                   // integer-like
        1 => prop::collection::vec(any::<char>(), 1..6)
            .prop_map(String::from_iter)
            .prop_filter("valid key", |k| Key::new(k).is_ok()),
    ]
}

/// Private keys (`priv…`), in any case.
pub fn private_key() -> impl Strategy<Value = String> {
    "(priv|PRIV|Priv|private)[a-z-]{0,5}"
}

pub fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter)
}

pub fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        Just(0.0),
        Just(-0.0),
        Just(1.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
    ]
}

pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
        text().prop_map(Value::Text),
        any::<i64>().prop_map(Value::Int),
        float().prop_map(|f| Value::float(f).expect("finite")),
        any::<bool>().prop_map(Value::Bool),
    ]
}

/// Values nested up to a few levels, messages and lists included, with
/// no private keys anywhere.
pub fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::List),
            prop::collection::vec((raw_key(), inner), 0..5).prop_map(|pairs| {
                let mut m = Message::new();
                for (k, v) in pairs {
                    m.insert(&k, v).expect("valid key");
                }
                Value::Message(m)
            }),
        ]
    })
}

/// Entries with distinct normalised, non-private keys.
pub fn entries() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec((raw_key(), value()), 0..8).prop_map(|pairs| {
        let mut seen = std::collections::BTreeSet::new();
        pairs
            .into_iter()
            .filter(|(k, _)| {
                let n = Key::new(k).expect("valid key");
                !n.is_private() && seen.insert(n)
            })
            .collect()
    })
}

/// An arbitrary message without private keys.
pub fn public_message() -> impl Strategy<Value = Message> {
    entries().prop_map(|e| Message::from_pairs(e).expect("distinct keys"))
}

/// An arbitrary message, sometimes with private keys at the top and nested.
pub fn message() -> impl Strategy<Value = Message> {
    (
        public_message(),
        prop::collection::vec((private_key(), value()), 0..3),
    )
        .prop_map(|(mut m, private)| {
            for (k, v) in private {
                m.set_private(&k, v.clone()).expect("valid key");
                // And one level down, inside the first nested message.
                let first_nested = m
                    .iter()
                    .find(|(_, v)| matches!(v, Value::Message(_)))
                    .map(|(k, _)| k.clone());
                if let Some(nk) = first_nested {
                    let mut inner = m.get_message(nk.as_str()).unwrap().clone();
                    inner.set_private(&k, v).expect("valid key");
                    m.insert_key(nk, inner);
                }
            }
            m
        })
}

/// A non-empty message without private keys.
pub fn non_empty_message() -> impl Strategy<Value = Message> {
    public_message().prop_filter("non-empty", |m| !m.is_empty())
}

/// One item of hb-ans104's arbundles fixtures: its name, the ID and owner
/// address arbundles gave it, and its bytes.
pub struct Fixture {
    pub name: String,
    pub id: String,
    pub address: String,
    pub bytes: Vec<u8>,
}

/// The items made by arbundles in `crates/hb-ans104/tests/data/` (types 1
/// with salt lengths 478 and 32, 2 with and without tags, 3).
pub fn arbundles_fixtures() -> Vec<Fixture> {
    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("fixture is hex"))
            .collect()
    }
    include_str!("../../../hb-ans104/tests/data/arbundles-fixtures.txt")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 4, "fixture line has 4 fields");
            Fixture {
                name: f[0].into(),
                id: f[1].into(),
                address: f[2].into(),
                bytes: hex(f[3]),
            }
        })
        .collect()
}
