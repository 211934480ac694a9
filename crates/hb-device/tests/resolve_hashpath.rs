//! SPEC §4.2 "HashPath": set at `priv/hashpath` on `Ok(Message)` unless
//! ignored; other outcomes carry none.

mod common;

use common::probe_context;
use hb_device::test_support::test_context;
use hb_device::{HashpathMode, Outcome};
use hb_message::hashpath::{self, set_hashpath};
use hb_message::{msg, Message, Value};

fn hashpath_of(m: &Message) -> Option<String> {
    m.get_private("priv")
        .and_then(Value::as_message)
        .and_then(|p| p.get_text("hashpath"))
        .map(str::to_string)
}

#[tokio::test]
async fn hashpath_is_set_on_ok_message_from_base_and_request() {
    let ctx = test_context();
    let base = msg! { "device" => "mark@test", "device-key" => "k" };
    let request = msg! { "path" => "mark" };
    let out = ctx.resolve(base.clone(), &request).await.unwrap();
    let m = out.ok_message().unwrap();
    let expected = hashpath::hashpath(&base, &request).unwrap();
    assert_eq!(hashpath_of(&m), Some(expected.clone()));
    // A request holding only `path` contributes its first segment.
    assert_eq!(expected, format!("{}/mark", base.unsigned_id()));
    // A request with other keys contributes its ID.
    let request = msg! { "path" => "mark", "extra" => 1 };
    let m = ctx
        .resolve(base.clone(), &request)
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(
        hashpath_of(&m),
        Some(format!("{}/{}", base.unsigned_id(), request.unsigned_id()))
    );
    // The HashPath is private: the result's ID ignores it.
    let mut without = m.clone();
    without.remove("priv");
    assert_eq!(m.unsigned_id(), without.unsigned_id());
}

#[tokio::test]
async fn hashpath_of_message_device_ok_results_too() {
    let ctx = test_context();
    let base = msg! { "inner" => msg! { "v" => 1 } };
    let request = msg! { "path" => "inner" };
    let m = ctx
        .resolve(base.clone(), &request)
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(
        hashpath_of(&m),
        Some(format!("{}/inner", base.unsigned_id()))
    );
}

#[tokio::test]
async fn hashpath_chains_compress_two_part_paths() {
    let ctx = probe_context();
    let base = msg! { "device" => "probe@test" };
    let m = ctx
        .resolve(base.clone(), &msg! { "path" => "a/b" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    let first = format!("{}/a", base.unsigned_id());
    let expected = hashpath::combine(&first, "b").unwrap();
    assert_eq!(hashpath_of(&m), Some(expected));
    // An existing HashPath on the base is the base part.
    let mut with_hp = base.clone();
    set_hashpath(&mut with_hp, first.clone());
    let m = ctx
        .resolve(with_hp, &msg! { "path" => "c" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(
        hashpath_of(&m),
        Some(hashpath::combine(&first, "c").unwrap())
    );
}

#[tokio::test]
async fn hashpath_ignored_leaves_results_as_the_device_returned_them() {
    let ctx = probe_context().with_hashpath(HashpathMode::Ignore);
    let m = ctx
        .resolve(msg! { "device" => "probe@test" }, &msg! { "path" => "a/b" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(hashpath_of(&m), None);
    assert_eq!(m.get("hashpath-ignored"), Some(&Value::Bool(true)));
    // A HashPath already on the base is kept, not updated.
    let mut base = msg! { "device" => "probe@test" };
    set_hashpath(&mut base, "old".into());
    let m = ctx
        .resolve(base, &msg! { "path" => "a" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(hashpath_of(&m).as_deref(), Some("old"));
}

#[tokio::test]
async fn hashpath_is_absent_from_skip_and_pass_results() {
    let ctx = test_context();
    let mut base = msg! { "device" => "halt@test" };
    let mut private = msg! { "hashpath" => "x/y", "keep" => 1 };
    base.set_private("priv", private.clone()).unwrap();
    let Outcome::Skip(m) = ctx.resolve(base, &msg! { "path" => "mark" }).await.unwrap() else {
        panic!("halt@test skips")
    };
    assert_eq!(hashpath_of(&m), None);
    private.remove("hashpath");
    assert_eq!(m.get_private("priv"), Some(&Value::Message(private)));

    let mut base = msg! { "device" => "loop@test", "pass" => 1 };
    set_hashpath(&mut base, "x/y".into());
    let Outcome::Pass(m) = ctx.resolve(base, &msg! { "path" => "mark" }).await.unwrap() else {
        panic!("loop@test passes on pass 1")
    };
    assert_eq!(hashpath_of(&m), None);
    assert_eq!(m.get_private("priv"), None);
}

#[tokio::test]
async fn hashpath_list_bases_use_the_hashpath_of_the_list() {
    let ctx = test_context();
    let list = Value::List(vec![Value::from(msg! { "v" => 1 })]);
    let base = msg! { "l" => list.clone() };
    let m = ctx
        .resolve(base, &msg! { "path" => "l/1" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(
        hashpath_of(&m),
        Some(format!("{}/1", hashpath::hashpath_of_value(&list)))
    );
}
