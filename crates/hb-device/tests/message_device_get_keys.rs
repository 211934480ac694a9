//! SPEC §4.3: `get`, `keys`, `path` and `commitments` of message@1.0.

use hb_device::test_support::test_context;
use hb_device::{Outcome, ResolveError};
use hb_message::{msg, Message, Value};

async fn resolve(base: Message, path: &str) -> Result<Outcome, ResolveError> {
    test_context().resolve(base, &msg! { "path" => path }).await
}

const ID_KEY: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_ABCDE";

#[tokio::test]
async fn get_is_case_insensitive() {
    let base = msg! { "Content-Type" => "text/plain" };
    for k in ["content-type", "Content-Type", "CONTENT-TYPE"] {
        assert_eq!(
            resolve(base.clone(), k).await.unwrap(),
            Outcome::Raw(Value::from("text/plain")),
            "{k}"
        );
    }
}

#[tokio::test]
async fn get_integers_find_their_decimal_form() {
    let mut base = Message::new();
    base.insert_key(hb_message::Key::from_index(5), "five");
    let path = Value::List(vec![Value::Int(5)]);
    let out = test_context()
        .resolve(base.clone(), &msg! { "path" => path })
        .await
        .unwrap();
    assert_eq!(out, Outcome::Raw(Value::from("five")));
    assert_eq!(
        resolve(base, "5").await.unwrap(),
        Outcome::Raw(Value::from("five"))
    );
}

#[tokio::test]
async fn get_id_shaped_keys_match_exactly() {
    let mut base = Message::new();
    base.insert(ID_KEY, 1).unwrap();
    assert_eq!(
        resolve(base.clone(), ID_KEY).await.unwrap(),
        Outcome::Raw(Value::Int(1))
    );
    let lowered = ID_KEY.to_ascii_lowercase();
    assert!(resolve(base, &lowered).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn get_private_and_missing_keys_are_not_found() {
    let mut base = msg! { "a" => 1 };
    base.set_private("priv", msg! { "hashpath" => "x" })
        .unwrap();
    base.set_private("private-data", 2).unwrap();
    for k in ["priv", "private-data", "priv/hashpath", "missing"] {
        let err = resolve(base.clone(), k).await.unwrap_err();
        assert!(err.is_not_found(), "{k}: {err:?}");
    }
}

#[tokio::test]
async fn get_of_a_nested_message_is_ok_and_of_a_scalar_is_raw() {
    let base = msg! { "inner" => msg! { "x" => 1 }, "n" => 2 };
    let out = resolve(base.clone(), "inner").await.unwrap();
    let m = out.ok_message().expect("a message value is Ok");
    assert_eq!(m.get("x"), Some(&Value::Int(1)));
    assert_eq!(
        resolve(base, "n").await.unwrap(),
        Outcome::Raw(Value::Int(2))
    );
}

#[tokio::test]
async fn get_is_the_default_for_unreserved_keys_including_get() {
    let base = msg! { "get" => "a field named get" };
    assert_eq!(
        resolve(base, "get").await.unwrap(),
        Outcome::Raw(Value::from("a field named get"))
    );
}

#[tokio::test]
async fn keys_lists_non_private_keys_ascending() {
    let mut base = msg! { "b" => 1, "a" => 2, "C" => 3 };
    base.set_private("priv", msg! { "x" => 1 }).unwrap();
    assert_eq!(
        resolve(base, "keys").await.unwrap(),
        Outcome::Raw(Value::List(vec!["a".into(), "b".into(), "c".into()]))
    );
}

#[tokio::test]
async fn keys_of_a_list_base_are_its_positions() {
    let items: Vec<Value> = (0..11).map(Value::Int).collect();
    let base = msg! { "l" => Value::List(items) };
    let expected: Vec<Value> = (1..=11).map(|i| Value::from(i.to_string())).collect();
    assert_eq!(
        resolve(base, "l/keys").await.unwrap(),
        Outcome::Raw(Value::List(expected))
    );
}

#[tokio::test]
async fn path_gives_the_base_path() {
    let base = msg! { "path" => "some/where" };
    assert_eq!(
        resolve(base, "path").await.unwrap(),
        Outcome::Raw(Value::from("some/where"))
    );
    assert!(resolve(msg! { "a" => 1 }, "path")
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn commitments_gives_the_map_or_not_found() {
    let key = hb_device::test_support::test_node_key();
    let signed = msg! { "a" => 1 }.commit(&key, None).unwrap();
    let out = resolve(signed.clone(), "commitments").await.unwrap();
    assert_eq!(
        out.ok_message().map(|m| m.without_private()).as_ref(),
        signed.commitments()
    );
    assert!(resolve(msg! { "a" => 1 }, "commitments")
        .await
        .unwrap_err()
        .is_not_found());
}
