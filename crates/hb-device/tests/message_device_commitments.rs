//! SPEC §4.3: `id`, `committers`, `commit`, `verify` and `committed`.

use hb_device::test_support::{test_context, test_node_key};
use hb_device::{Outcome, ResolveError};
use hb_message::{msg, IdSelector, Message, MessageError, NodeKey, Value};

async fn raw(base: Message, request: Message) -> Value {
    match test_context().resolve(base, &request).await.unwrap() {
        Outcome::Raw(v) => v,
        other => panic!("expected raw, got {other:?}"),
    }
}

fn two_signers() -> (Message, NodeKey, NodeKey) {
    let a = NodeKey::from_seed(&[1; 32]);
    let b = NodeKey::from_seed(&[2; 32]);
    let m = msg! { "x" => 1, "y" => 2 }
        .commit(&a, None)
        .unwrap()
        .commit(&b, Some(&[hb_message::Key::new("x").unwrap()]))
        .unwrap();
    (m, a, b)
}

#[tokio::test]
async fn id_defaults_to_all_and_takes_committers_or_commitments() {
    let (m, a, _b) = two_signers();
    let all = m.id_all().unwrap().to_human();
    assert_eq!(
        raw(m.clone(), msg! { "path" => "id" }).await,
        Value::from(all.as_str())
    );
    assert_eq!(
        raw(m.clone(), msg! { "path" => "id", "committers" => "all" }).await,
        Value::from(all.as_str())
    );
    assert_eq!(
        raw(m.clone(), msg! { "path" => "id", "committers" => "none" }).await,
        Value::from(m.unsigned_id().to_human())
    );
    let only_a = m
        .id(&IdSelector::Committers(vec![a.address().to_string()]))
        .unwrap()
        .to_human();
    assert_eq!(
        raw(
            m.clone(),
            msg! { "path" => "id", "committers" => Value::List(vec![a.address().into()]) }
        )
        .await,
        Value::from(only_a.as_str())
    );
    // By commitment ID: a's commitment alone gives its ID.
    let a_commitment = m
        .commitments()
        .unwrap()
        .iter()
        .find(|(_, c)| c.as_message().unwrap().get_text("committer") == Some(a.address()))
        .map(|(id, _)| id.as_str().to_string())
        .unwrap();
    assert_eq!(
        raw(
            m.clone(),
            msg! { "path" => "id", "commitments" => Value::List(vec![a_commitment.as_str().into()]) }
        )
        .await,
        Value::from(a_commitment.as_str())
    );
    // Unsigned messages: the unsigned ID.
    let plain = msg! { "x" => 1 };
    assert_eq!(
        raw(plain.clone(), msg! { "path" => "id" }).await,
        Value::from(plain.unsigned_id().to_human())
    );
}

#[tokio::test]
async fn id_of_a_listed_committer_without_a_commitment_fails() {
    let (m, _, _) = two_signers();
    let stranger = NodeKey::from_seed(&[9; 32]);
    let err = test_context()
        .resolve(
            m,
            &msg! { "path" => "id", "committers" => Value::List(vec![stranger.address().into()]) },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::Message(MessageError::RequestedCommittersNotFound(ref v)) if v == &vec![stranger.address().to_string()]),
        "{err:?}"
    );
}

#[tokio::test]
async fn id_of_a_non_message_base_is_its_hashpath() {
    let list = Value::List(vec![Value::Int(1), Value::Int(2)]);
    let out = raw(msg! { "l" => list.clone() }, msg! { "path" => "l/id" }).await;
    assert_eq!(
        out,
        Value::from(hb_message::hashpath::hashpath_of_value(&list))
    );
}

#[tokio::test]
async fn committers_lists_the_signers_sorted() {
    let (m, a, b) = two_signers();
    let mut expected = vec![a.address().to_string(), b.address().to_string()];
    expected.sort();
    assert_eq!(
        raw(m, msg! { "path" => "committers" }).await,
        Value::List(expected.into_iter().map(Value::from).collect())
    );
    assert_eq!(
        raw(msg! { "x" => 1 }, msg! { "path" => "committers" }).await,
        Value::List(vec![])
    );
}

#[tokio::test]
async fn commit_signs_the_base_with_the_node_key() {
    let ctx = test_context();
    let base = msg! { "a" => 1, "b" => 2 };
    let signed = ctx
        .resolve(base.clone(), &msg! { "path" => "commit" })
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert!(signed.verify(&IdSelector::All).unwrap().is_valid());
    assert_eq!(
        signed.committers().unwrap(),
        vec![test_node_key().address().to_string()]
    );
    // The same as hb-message's commit with the node key.
    let mut without_priv = signed.clone();
    without_priv.remove("priv");
    assert_eq!(without_priv, base.commit(&test_node_key(), None).unwrap());
}

#[tokio::test]
async fn commit_honours_committed_and_target() {
    let ctx = test_context();
    let base = msg! { "a" => 1, "b" => 2 };
    let signed = ctx
        .resolve(
            base.clone(),
            &msg! { "path" => "commit", "committed" => Value::List(vec!["a".into()]) },
        )
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(
        signed.committed(&IdSelector::All).unwrap(),
        vec![hb_message::Key::new("a").unwrap()]
    );
    let inner = msg! { "z" => 26 };
    let signed_inner = ctx
        .resolve(
            base,
            &msg! { "path" => "commit", "target" => "doc", "doc" => inner.clone() },
        )
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert_eq!(signed_inner.get("z"), Some(&Value::Int(26)));
    assert!(signed_inner.get("a").is_none());
    assert!(signed_inner.verify(&IdSelector::All).unwrap().is_valid());
    let err = ctx
        .resolve(msg! {}, &msg! { "path" => "commit", "target" => "missing" })
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::InvalidInput { .. }), "{err:?}");
}

#[tokio::test]
async fn commit_with_ans104_signs_the_target_as_a_node_signed_item() {
    let ctx = test_context();
    let signed = ctx
        .resolve(
            msg! { "Action" => "Eval", "data" => "1 + 1" },
            &msg! { "path" => "commit", "commitment-device" => "ANS104@1.0" },
        )
        .await
        .unwrap()
        .ok_message()
        .unwrap();
    assert!(signed.verify(&IdSelector::All).unwrap().is_valid());
    assert_eq!(
        signed.committers().unwrap(),
        vec![test_node_key().address().to_string()]
    );
    // One ans104@1.0 commitment: id(all) is the ID of the item it signs.
    let id = signed.id_all().unwrap().to_human();
    let item = signed.to_data_item(&id).unwrap();
    assert_eq!(item.id(), id);
    assert_eq!(item.owner_address(), test_node_key().address());
    assert_eq!(item.data(), b"1 + 1");
    item.verify().unwrap();
}

#[tokio::test]
async fn commit_with_another_commitment_device_is_unsupported() {
    let ctx = test_context();
    let ok = ctx
        .resolve(
            msg! { "a" => 1 },
            &msg! { "path" => "commit", "commitment-device" => "ed25519@1.0" },
        )
        .await;
    assert!(ok.is_ok());
    let err = ctx
        .resolve(
            msg! { "a" => 1 },
            &msg! { "path" => "commit", "commitment-device" => "httpsig@1.0" },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResolveError::Message(MessageError::UnsupportedCommitmentDevice(ref d)) if d == "httpsig@1.0"),
        "{err:?}"
    );
}

#[tokio::test]
async fn verify_checks_the_target_with_the_selected_commitments() {
    let (m, a, _) = two_signers();
    assert_eq!(
        raw(m.clone(), msg! { "path" => "verify" }).await,
        Value::Bool(true)
    );
    let mut tampered = m.clone();
    tampered.insert("x", 100).unwrap();
    assert_eq!(
        raw(tampered.clone(), msg! { "path" => "verify" }).await,
        Value::Bool(false)
    );
    // Adding an uncommitted key keeps it valid.
    let mut added = m.clone();
    added.insert("new", 1).unwrap();
    assert_eq!(
        raw(added, msg! { "path" => "verify" }).await,
        Value::Bool(true)
    );
    // b committed only x; y changed → a's commitment fails, b's holds.
    let mut y_changed = m.clone();
    y_changed.insert("y", 99).unwrap();
    let b = NodeKey::from_seed(&[2; 32]);
    assert_eq!(
        raw(
            y_changed.clone(),
            msg! { "path" => "verify", "committers" => Value::List(vec![b.address().into()]) }
        )
        .await,
        Value::Bool(true)
    );
    assert_eq!(
        raw(
            y_changed,
            msg! { "path" => "verify", "committers" => Value::List(vec![a.address().into()]) }
        )
        .await,
        Value::Bool(false)
    );
    // A target in the request.
    assert_eq!(
        raw(
            msg! {},
            msg! { "path" => "verify", "target" => "doc", "doc" => tampered }
        )
        .await,
        Value::Bool(false)
    );
    // Unsigned: vacuously true.
    assert_eq!(
        raw(msg! { "x" => 1 }, msg! { "path" => "verify" }).await,
        Value::Bool(true)
    );
}

#[tokio::test]
async fn verify_naming_a_committer_without_a_commitment_fails() {
    let (m, _, _) = two_signers();
    let err = test_context()
        .resolve(
            m,
            &msg! { "path" => "verify", "committers" => Value::List(vec!["nobody".into()]) },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ResolveError::Message(MessageError::RequestedCommittersNotFound(_))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn committed_lists_the_keys_covered_by_every_selected_commitment() {
    let (m, a, _) = two_signers();
    assert_eq!(
        raw(m.clone(), msg! { "path" => "committed" }).await,
        Value::List(vec!["x".into()])
    );
    assert_eq!(
        raw(
            m,
            msg! { "path" => "committed", "committers" => Value::List(vec![a.address().into()]) }
        )
        .await,
        Value::List(vec!["x".into(), "y".into()])
    );
    assert_eq!(
        raw(msg! { "p" => 1, "q" => 2 }, msg! { "path" => "committed" }).await,
        Value::List(vec!["p".into(), "q".into()])
    );
}
