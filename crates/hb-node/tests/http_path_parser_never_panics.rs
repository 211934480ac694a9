//! SPEC §8: the path and query parsers are total. Arbitrary paths and query
//! strings never panic them, malformed ones are refused with a 4xx (never
//! a 5xx), route labels stay bounded, and well-formed paths parse back to
//! what they were built from.

use hb_message::Id;
use hb_node::http::{parse_path, query_fields, route_label, Base};
use proptest::prelude::*;

fn id_text() -> impl Strategy<Value = String> {
    any::<[u8; 32]>().prop_map(|b| Id(b).to_human())
}

fn key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,12}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_paths_never_panic_and_refusals_are_4xx(path in any::<String>()) {
        if let Err(refused) = parse_path(&path) {
            prop_assert!((400..500).contains(&refused.status), "{refused:?}");
        }
        let label = route_label(&path);
        prop_assert!(label.len() < 80, "{label}");
        prop_assert!(!label.contains(&path) || path.len() < 20, "{label}");
    }

    #[test]
    fn path_shaped_noise_never_panics(path in "(/[~&=%a-zA-Z0-9@._+-]{0,50}){0,6}") {
        if let Err(refused) = parse_path(&path) {
            prop_assert!((400..500).contains(&refused.status), "{refused:?}");
        }
        let _ = route_label(&path);
    }

    #[test]
    fn arbitrary_queries_never_panic_and_refusals_are_4xx(query in any::<String>()) {
        if let Err(refused) = query_fields(&query) {
            prop_assert!((400..500).contains(&refused.status), "{refused:?}");
        }
    }

    #[test]
    fn query_shaped_noise_never_panics(query in "([a-zA-Z0-9%+=&~/.-]{0,30}&?){0,8}") {
        if let Err(refused) = query_fields(&query) {
            prop_assert!((400..500).contains(&refused.status), "{refused:?}");
        }
    }

    #[test]
    fn built_paths_parse_back(
        id in id_text(),
        device in prop::option::of("[a-z]{1,8}@[0-9]\\.[0-9]"),
        keys in prop::collection::vec(key(), 0..5),
        field in prop::option::of((key(), "[a-z0-9]{0,8}")),
    ) {
        let mut path = format!("/{id}");
        if let Some(d) = &device {
            path.push('~');
            path.push_str(d);
        }
        for (i, k) in keys.iter().enumerate() {
            path.push('/');
            path.push_str(k);
            if let (0, Some((f, v))) = (i, &field) {
                path.push_str(&format!("&{f}={v}"));
            }
        }
        let parsed = parse_path(&path).expect("a well-formed path parses");
        prop_assert_eq!(parsed.base, Base::Stored { id: Id::parse(&id).expect("an id"), device });
        prop_assert_eq!(&parsed.keys, &keys);
        let expected: Vec<(String, String)> = match (&field, keys.is_empty()) {
            (Some((f, v)), false) => vec![(f.clone(), v.clone())],
            _ => vec![],
        };
        prop_assert_eq!(parsed.fields, expected);
        prop_assert!(!route_label(&path).contains(&id));
    }
}
