//! SPEC §7.4 and §8: malformed input gives a 4xx JSON error, never a 500,
//! and a refused request changes nothing. Every POST route gets every kind
//! of malformed body (not JSON, JSON that is not an object, too deep, too
//! big, another media type, duplicate keys, a forged signature), and the
//! schedules, computed states and location records are compared before
//! and after.

mod http_support;
use http_support as common;

use common::*;
use hb_message::json::to_json;
use hb_message::Message;

/// Everything a refused POST could have changed.
async fn observable(node: &impl Endpoint, pids: &[String]) -> serde_json::Value {
    let mut seen = Vec::new();
    for pid in pids {
        let schedule = get(node, &format!("/~scheduler@1.0/schedule?target={pid}")).await;
        let state = get(node, &format!("/{pid}~process@1.0/compute?slot=1")).await;
        let status = get(node, &format!("/{pid}~process@1.0/status")).await;
        seen.push(serde_json::json!({
            "schedule": schedule.json["assignments"],
            "state": state.json,
            "computed": status.json["computed-slot"],
        }));
    }
    let processes = get(node, "/~scheduler@1.0/status").await.json["processes"].clone();
    let location = get(node, "/~scheduler@1.0/location").await;
    serde_json::json!({
        "processes": processes,
        "location": [location.status, location.json],
        "each": seen,
    })
}

fn nested(depth: usize) -> Vec<u8> {
    let mut s = String::new();
    for _ in 0..depth {
        s.push_str("{\"a\":");
    }
    s.push('1');
    for _ in 0..depth {
        s.push('}');
    }
    s.into_bytes()
}

#[actix_rt::test]
async fn every_post_route_refuses_malformed_bodies_with_a_4xx_and_changes_nothing(
) -> anyhow::Result<()> {
    let node = start();
    refuses_malformed_posts(&node).await?;
    node.shutdown().await;
    Ok(())
}

#[actix_rt::test]
async fn the_real_binary_refuses_them_alike_and_exits_0() -> anyhow::Result<()> {
    let node = Binary::start();
    refuses_malformed_posts(&node).await?;
    assert_eq!(node.stop(), Some(0));
    Ok(())
}

/// Every malformed body on every POST route of `node`: its 4xx JSON error,
/// and nothing observable changed.
async fn refuses_malformed_posts(node: &impl Endpoint) -> anyhow::Result<()> {
    let pid = register(node, "a").await;
    let other = register(node, "b").await;
    send(node, &pid, 5).await;
    let pids = vec![pid.clone(), other.clone()];
    let before = observable(node, &pids).await;

    let routes = [
        "/~scheduler@1.0/schedule".to_string(),
        format!("/{pid}~process@1.0/schedule"),
        format!("/{pid}/schedule"),
        format!("/{pid}~process@1.0/push"),
        format!("/{pid}~process@1.0/dry-run"),
        "/~scheduler@1.0/location".to_string(),
    ];
    let json = "application/json";
    let dup = br#"{"target": "x", "Add": 1, "add": 2}"#.to_vec();
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        (
            "not JSON",
            b"{not json".to_vec(),
            json,
            400,
            "malformed-body",
        ),
        (
            "truncated",
            b"{\"a\": ".to_vec(),
            json,
            400,
            "malformed-body",
        ),
        ("an array", b"[1, 2]".to_vec(), json, 400, "malformed-body"),
        (
            "a string",
            b"\"text\"".to_vec(),
            json,
            400,
            "malformed-body",
        ),
        ("a number", b"5".to_vec(), json, 400, "malformed-body"),
        ("null", b"null".to_vec(), json, 400, "invalid-value"),
        ("too deep", nested(40), json, 400, "malformed-body"),
        (
            "too big",
            vec![b' '; 70 * 1024],
            json,
            413,
            "body-too-large",
        ),
        (
            "text/plain",
            b"{}".to_vec(),
            "text/plain",
            415,
            "unsupported-media-type",
        ),
        (
            "form",
            b"a=1".to_vec(),
            "application/x-www-form-urlencoded",
            415,
            "unsupported-media-type",
        ),
        ("duplicate keys", dup, json, 400, "duplicate-key"),
        (
            "bad bytes",
            vec![0xff, 0xfe, b'{'],
            json,
            400,
            "malformed-body",
        ),
    ];
    for route in &routes {
        for (what, body, content_type, status, code) in &cases {
            let a = post_raw(node, route, body.clone(), content_type).await;
            assert_eq!(
                (a.status, a.json["error"].as_str()),
                (*status, Some(*code)),
                "{what} to {route}: {}",
                a.json
            );
            a.assert_error(*status, code);
        }
    }

    // A forged signature: a signed message changed after signing.
    let forged = adding(&pid, 1).with("add", 1000)?;
    let forged_record = Message::new()
        .with("url", "http://127.0.0.1:9")?
        .commit(&client(), None)?
        .with("url", "http://elsewhere")?;
    for (route, body, code) in [
        (
            "/~scheduler@1.0/schedule".to_string(),
            &forged,
            "invalid-signature",
        ),
        (
            format!("/{pid}~process@1.0/schedule"),
            &forged,
            "invalid-signature",
        ),
        (
            format!("/{pid}~process@1.0/push"),
            &forged,
            "invalid-signature",
        ),
        (
            format!("/{pid}~process@1.0/dry-run"),
            &forged,
            "invalid-signature",
        ),
        (
            "/~scheduler@1.0/location".to_string(),
            &forged_record,
            "invalid-location",
        ),
    ] {
        let a = post_json(node, &route, &to_json(body)).await;
        assert_eq!(a.json["error"].as_str(), Some(code), "{route}: {}", a.json);
        a.assert_error(400, code);
    }
    // Malformed commitments.
    let mut broken = to_json(&adding(&pid, 1));
    broken["commitments"] = serde_json::json!({ "x": { "committer": 5 } });
    post_json(node, "/~scheduler@1.0/schedule", &broken)
        .await
        .assert_error(400, "invalid-commitments");

    assert_eq!(observable(node, &pids).await, before, "nothing changed");
    Ok(())
}
