//! SPEC §4.2 step 2: the path is text split on `/` (empty segments dropped)
//! or a list; an empty path is `InvalidPath`.

use hb_device::test_support::test_context;
use hb_device::{Outcome, ResolveError};
use hb_message::{msg, Value};

fn nested() -> hb_message::Message {
    msg! { "a" => msg! { "b" => msg! { "c" => 3 } } }
}

#[tokio::test]
async fn path_text_is_split_on_slash_with_empty_segments_dropped() {
    let ctx = test_context();
    for path in ["a/b/c", "/a/b/c", "a//b/c/", "A/B/C"] {
        let out = ctx
            .resolve(nested(), &msg! { "path" => path })
            .await
            .unwrap();
        assert_eq!(out, Outcome::Raw(Value::Int(3)), "{path}");
    }
}

#[tokio::test]
async fn path_list_gives_the_segments() {
    let ctx = test_context();
    let path = Value::List(vec!["a".into(), "b".into(), "c".into()]);
    let out = ctx
        .resolve(nested(), &msg! { "path" => path })
        .await
        .unwrap();
    assert_eq!(out, Outcome::Raw(Value::Int(3)));
    // Integers in a path list are their decimal form.
    let base = msg! { "l" => Value::List(vec![Value::from("x"), Value::from("y")]) };
    let path = Value::List(vec!["l".into(), Value::Int(1)]);
    let out = ctx.resolve(base, &msg! { "path" => path }).await.unwrap();
    assert_eq!(out, Outcome::Raw(Value::from("x")));
}

#[tokio::test]
async fn path_empty_or_missing_is_invalid_path() {
    let ctx = test_context();
    for request in [
        msg! { "path" => "" },
        msg! { "path" => "//" },
        msg! { "path" => Value::List(vec![]) },
        msg! { "other" => "a" },
        msg! { "path" => true },
    ] {
        let err = ctx.resolve(nested(), &request).await.unwrap_err();
        assert!(
            matches!(err, ResolveError::InvalidPath { .. }),
            "{request:?}: {err:?}"
        );
    }
}
