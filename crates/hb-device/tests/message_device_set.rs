//! SPEC §4.3 `set`, `set_path`, `remove`, and the engine's `set` shortcut.

use hb_device::message_device::set_request;
use hb_device::test_support::{test_context, test_node_key};
use hb_device::{Outcome, ResolveError};
use hb_message::{msg, Key, Message, SetMode, Update, Value};

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}

async fn set(base: Message, request: Message) -> Message {
    test_context()
        .resolve(base, &request)
        .await
        .unwrap()
        .ok_message()
        .unwrap()
}

#[tokio::test]
async fn set_rule1_reserved_keys_and_set_mode_are_ignored() {
    let base = msg! { "a" => 1, "path" => "orig" };
    // A request whose `commitments` is not a commitments map has no ID, so
    // no HashPath: resolve with HashPaths ignored.
    let ctx = test_context().with_hashpath(hb_device::HashpathMode::Ignore);
    let request = msg! {
            "path" => "set",
            "keys" => "x",
            "id" => "x",
            "commitments" => msg! { "x" => 1 },
        "set-mode" => "deep",
        "b" => 2
    };
    let out = ctx
        .resolve(base, &request)
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    let mut expected = msg! { "a" => 1, "path" => "orig", "b" => 2 };
    // The engine's HashPath is private and not compared.
    let mut out_public = out.clone();
    out_public.remove("priv");
    expected.remove("priv");
    assert_eq!(out_public, expected);
}

#[tokio::test]
async fn set_rule2_unset_removes_and_nested_unset_keeps_the_parent() {
    let base = msg! { "a" => msg! { "b" => 1 }, "c" => 2, "d" => 3 };
    let request = set_request(
        &[(k("c"), Update::Unset), (k("a/b"), Update::Unset)],
        SetMode::DeepMerge,
    );
    let out = set(base, request).await;
    assert_eq!(out.get("c"), None);
    assert_eq!(out.get("a"), Some(&Value::Message(Message::new())));
    assert_eq!(out.get("d"), Some(&Value::Int(3)));
}

#[tokio::test]
async fn set_rule3_messages_deep_merge_and_explicit_replaces() {
    let base = msg! { "a" => msg! { "x" => 1, "y" => 2 } };
    let out = set(
        base.clone(),
        msg! { "path" => "set", "a" => msg! { "y" => 3, "z" => 4 } },
    )
    .await;
    assert_eq!(
        out.get_message("a"),
        Some(&msg! { "x" => 1, "y" => 3, "z" => 4 })
    );
    let out = set(
        base.clone(),
        msg! { "path" => "set", "set-mode" => "explicit", "a" => msg! { "y" => 3 } },
    )
    .await;
    assert_eq!(out.get_message("a"), Some(&msg! { "y" => 3 }));
    // Non-message values replace.
    let out = set(base, msg! { "path" => "set", "a" => 5 }).await;
    assert_eq!(out.get("a"), Some(&Value::Int(5)));
}

#[tokio::test]
async fn set_unknown_set_mode_is_invalid_input() {
    let err = test_context()
        .resolve(
            msg! {},
            &msg! { "path" => "set", "set-mode" => "shallow", "a" => 1 },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::InvalidInput { .. }), "{err:?}");
}

#[tokio::test]
async fn set_rule4_priv_is_preserved() {
    let mut base = msg! { "a" => 1 };
    base.set_private("priv", msg! { "runtime" => "data" })
        .unwrap();
    let out = set(base, msg! { "path" => "set", "a" => 2 }).await;
    let private = out.get_private("priv").and_then(Value::as_message).unwrap();
    assert_eq!(private.get_text("runtime"), Some("data"));
}

#[tokio::test]
async fn set_rule5_commitments_drop_only_when_a_committed_key_changes() {
    let signed = msg! { "a" => 1 }.commit(&test_node_key(), None).unwrap();
    let added = set(signed.clone(), msg! { "path" => "set", "b" => 2 }).await;
    assert!(added.commitments().is_some());
    assert_eq!(added.get("b"), Some(&Value::Int(2)));
    let same = set(signed.clone(), msg! { "path" => "set", "a" => 1 }).await;
    assert!(same.commitments().is_some());
    let changed = set(signed.clone(), msg! { "path" => "set", "a" => 9 }).await;
    assert!(changed.commitments().is_none());
    let removed = set(
        signed,
        set_request(&[(k("a"), Update::Unset)], SetMode::DeepMerge),
    )
    .await;
    assert!(removed.commitments().is_none());
    assert_eq!(removed.get("a"), None);
}

#[tokio::test]
async fn set_path_sets_path_and_set_cannot() {
    let base = msg! { "path" => "old" };
    let out = set(
        base.clone(),
        msg! { "path" => "set_path", "value" => "new" },
    )
    .await;
    assert_eq!(out.get_text("path"), Some("new"));
    let err = test_context()
        .resolve(base, &msg! { "path" => "set_path" })
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::InvalidInput { .. }), "{err:?}");
}

#[tokio::test]
async fn remove_takes_item_or_items_and_keeps_commitments() {
    let signed = msg! { "a" => 1, "b" => 2, "c" => 3 }
        .commit(&test_node_key(), None)
        .unwrap();
    let one = set(signed.clone(), msg! { "path" => "remove", "item" => "A" }).await;
    assert_eq!(one.get("a"), None);
    assert_eq!(one.get("b"), Some(&Value::Int(2)));
    // Commitments stay, so verify now fails.
    assert!(one.commitments().is_some());
    let verified = test_context()
        .resolve(one, &msg! { "path" => "verify" })
        .await
        .unwrap();
    assert_eq!(verified, Outcome::Raw(Value::Bool(false)));
    let many = set(
        signed,
        msg! { "path" => "remove", "items" => Value::List(vec!["a".into(), "c".into()]) },
    )
    .await;
    assert_eq!(
        many.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        vec!["b", "commitments"]
    );
    let err = test_context()
        .resolve(msg! { "a" => 1 }, &msg! { "path" => "remove" })
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::InvalidInput { .. }), "{err:?}");
}

#[tokio::test]
async fn set_shortcut_sets_each_top_level_key_and_deep_sets_paths() {
    let ctx = test_context();
    let base = msg! { "a" => msg! { "keep" => 1, "b" => msg! { "c" => 1, "d" => 2 } }, "x" => 1 };
    let out = ctx
        .set(
            base,
            &[
                (k("x"), Update::Value(Value::Int(2))),
                (k("a/b/c"), Update::Value(Value::Int(10))),
                (k("a/b/d"), Update::Unset),
                (k("new/deep"), Update::Value(Value::from("v"))),
                (k("gone/deeper"), Update::Unset),
            ],
        )
        .await
        .unwrap();
    assert_eq!(out.get("x"), Some(&Value::Int(2)));
    assert_eq!(out.get_path("a/b/c"), Some(&Value::Int(10)));
    assert_eq!(out.get_path("a/b/d"), None);
    assert_eq!(out.get_path("a/keep"), Some(&Value::Int(1)));
    assert_eq!(out.get_path("new/deep"), Some(&Value::from("v")));
    assert_eq!(out.get("gone"), None);
}

#[tokio::test]
async fn set_shortcut_unset_of_a_nested_key_leaves_the_parent_even_if_empty() {
    let ctx = test_context();
    let out = ctx
        .set(
            msg! { "a" => msg! { "b" => 1 } },
            &[(k("a/b"), Update::Unset)],
        )
        .await
        .unwrap();
    assert_eq!(out.get("a"), Some(&Value::Message(Message::new())));
}

#[tokio::test]
async fn set_shortcut_goes_through_the_base_device() {
    // stack@1.0 excludes `set`, so message@1.0 sets fields of a stack
    // without running its devices.
    let ctx = test_context();
    let stack = hb_device::test_support::stack_of(&["mark", "mark"]);
    let out = ctx
        .set(stack, &[(k("extra"), Update::Value(Value::Int(1)))])
        .await
        .unwrap();
    assert_eq!(out.get("extra"), Some(&Value::Int(1)));
    assert_eq!(hb_device::test_support::trail(&out), Vec::<String>::new());
    // `path` is set through set_path.
    let out = ctx
        .set(out, &[(k("path"), Update::Value(Value::from("p")))])
        .await
        .unwrap();
    assert_eq!(out.get_text("path"), Some("p"));
}
