//! The loopback stand-in gateway of the aoconnect tests answers the three
//! GraphQL look-ups aoconnect 0.0.98 makes, as recorded from aoconnect
//! itself (`aoconnect_support/queries/`: a module's tags before a legacy
//! spawn, a process's tags and its scheduler's location when locating the
//! scheduler), and refuses anything else with a GraphQL error.

mod aoconnect_support;

use actix_web::{web, App, HttpResponse, HttpServer};
use aoconnect_support::gateway::{classify, Gateway, Lookup, TagFilter};
use serde_json::{json, Value};

/// A recorded request body, with its variables replaced by `variables`.
fn recorded(name: &str, variables: Value) -> Value {
    let path = format!(
        "{}/tests/aoconnect_support/queries/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("the recorded query exists");
    let mut body: Value = serde_json::from_str(&text).expect("the recording is JSON");
    body["variables"] = variables;
    body
}

async fn ask(gateway: &Gateway, body: &Value) -> (u16, Value) {
    let mut res = awc::Client::new()
        .post(format!("{}/graphql", gateway.url()))
        .send_json(body)
        .await
        .expect("the stand-in answers");
    let json = res.json::<Value>().await.expect("a JSON answer");
    (res.status().as_u16(), json)
}

fn edges(answer: &Value) -> &[Value] {
    answer["data"]["transactions"]["edges"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no edges in {answer}"))
}

fn tag<'a>(node: &'a Value, name: &str) -> Option<&'a str> {
    node["tags"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)?["value"]
        .as_str()
}

#[test]
fn the_recorded_queries_classify_as_the_lookups_they_are() {
    let module = recorded("module-tags.json", json!({"transactionIds": ["M"]}));
    assert_eq!(
        classify(&module),
        Ok(Lookup::ByIds {
            ids: vec!["M".into()],
            filters: vec![]
        })
    );
    let process = recorded("process-tags.json", json!({"transactionIds": ["P"]}));
    assert_eq!(
        classify(&process),
        Ok(Lookup::ByIds {
            ids: vec!["P".into()],
            filters: vec![TagFilter {
                name: "Data-Protocol".into(),
                values: vec!["ao".into()]
            }]
        })
    );
    let location = recorded("scheduler-location.json", json!({"owner": "S"}));
    assert_eq!(
        classify(&location),
        Ok(Lookup::SchedulerLocation { owner: "S".into() })
    );
}

#[test]
fn other_queries_are_not_taken_for_lookups() {
    let refused = [
        json!({"variables": {}}),
        json!({"query": "query { blocks { edges { node { id } } } }"}),
        json!({"query": "query { transactions { edges { node { id } } } }"}),
        json!({"query": "query { transactions(first: 1) { edges { node { id } } } }"}),
        // An owners query for anything but a Scheduler-Location.
        json!({"query": "query { transactions(owners: [\"S\"], tags: [{name: \"Type\", values: [\"Module\"]}]) { edges { node { id } } } }"}),
        // A variable the request does not give.
        recorded("module-tags.json", json!({})),
        json!({"query": "query { transactions(ids: [\"unterminated) { id } }"}),
        json!({"query": "query { transactions(ids: [\"a\" { id } }"}),
    ];
    for body in refused {
        assert!(classify(&body).is_err(), "taken for a look-up: {body}");
    }
}

#[actix_rt::test]
async fn a_registered_module_answers_the_module_query() {
    let gateway = Gateway::start(None);
    gateway.add_module("module-1", "owner-1");
    let (status, answer) = ask(
        &gateway,
        &recorded("module-tags.json", json!({"transactionIds": ["module-1"]})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let [edge] = edges(&answer) else {
        panic!("one edge: {answer}")
    };
    let node = &edge["node"];
    assert_eq!(node["id"], "module-1");
    assert_eq!(node["owner"]["address"], "owner-1");
    for (name, value) in [("Data-Protocol", "ao"), ("Type", "Module")] {
        assert_eq!(tag(node, name), Some(value), "{node}");
    }
    for name in ["Module-Format", "Input-Encoding", "Output-Encoding"] {
        assert!(tag(node, name).is_some(), "{name} in {node}");
    }
    let (_, unknown) = ask(
        &gateway,
        &recorded("module-tags.json", json!({"transactionIds": ["module-2"]})),
    )
    .await;
    assert!(edges(&unknown).is_empty(), "{unknown}");
    let seen: Vec<usize> = gateway.received().iter().map(|r| r.edges).collect();
    assert_eq!(seen, [1, 0]);
    gateway.stop().await;
}

#[actix_rt::test]
async fn a_registered_scheduler_answers_the_location_query() {
    let gateway = Gateway::start(None);
    gateway.add_scheduler("sched-1", "http://127.0.0.1:9");
    let (status, answer) = ask(
        &gateway,
        &recorded("scheduler-location.json", json!({"owner": "sched-1"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let [edge] = edges(&answer) else {
        panic!("one edge: {answer}")
    };
    let node = &edge["node"];
    assert_eq!(tag(node, "Type"), Some("Scheduler-Location"));
    assert_eq!(tag(node, "Url"), Some("http://127.0.0.1:9"));
    assert_eq!(tag(node, "Time-To-Live"), Some("3600000"));
    assert_eq!(node["owner"]["address"], "sched-1");
    let (_, unknown) = ask(
        &gateway,
        &recorded("scheduler-location.json", json!({"owner": "sched-2"})),
    )
    .await;
    assert!(edges(&unknown).is_empty(), "{unknown}");
    gateway.stop().await;
}

/// Answers `GET /processes/{id}` as SPEC §10.4 shapes it, for two
/// processes: `p-ao` (an ao process) and `p-other` (no `Data-Protocol`).
async fn processes_route(id: web::Path<String>) -> HttpResponse {
    let tags = match id.as_str() {
        "p-ao" => json!([
            {"name": "Data-Protocol", "value": "ao"},
            {"name": "Type", "value": "Process"},
            {"name": "Scheduler", "value": "sched-1"}
        ]),
        "p-other" => json!([{"name": "Type", "value": "Process"}]),
        _ => return HttpResponse::NotFound().json(json!({"error": "no such process"})),
    };
    HttpResponse::Ok().json(json!({
        "process_id": id.as_str(),
        "block": "000000000001",
        "owner": {"address": "owner-1", "key": "a2V5"},
        "tags": tags,
        "timestamp": 1,
        "data": "x",
        "anchor": null,
        "signature": "c2ln",
        "target": null
    }))
}

#[actix_rt::test]
async fn process_tags_come_from_the_indexed_node_and_filters_apply() {
    let server =
        HttpServer::new(|| App::new().route("/processes/{id}", web::get().to(processes_route)))
            .workers(1)
            .bind(("127.0.0.1", 0))
            .expect("binds");
    let node_url = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);

    let gateway = Gateway::start(Some(node_url));
    let ask_for = |id: &str| recorded("process-tags.json", json!({"transactionIds": [id]}));
    let (status, answer) = ask(&gateway, &ask_for("p-ao")).await;
    assert_eq!(status, 200, "{answer}");
    let [edge] = edges(&answer) else {
        panic!("one edge: {answer}")
    };
    assert_eq!(edge["node"]["id"], "p-ao");
    assert_eq!(tag(&edge["node"], "Scheduler"), Some("sched-1"));
    assert_eq!(edge["node"]["owner"]["address"], "owner-1");
    // No `Data-Protocol: ao`: the query's filter leaves it out.
    let (_, other) = ask(&gateway, &ask_for("p-other")).await;
    assert!(edges(&other).is_empty(), "{other}");
    let (_, unknown) = ask(&gateway, &ask_for("p-none")).await;
    assert!(edges(&unknown).is_empty(), "{unknown}");
    gateway.stop().await;
    handle.stop(true).await;
}

#[actix_rt::test]
async fn refused_requests_get_a_graphql_error_and_are_recorded() {
    let gateway = Gateway::start(None);
    let (status, answer) = ask(&gateway, &json!({"query": "query { blocks { id } }"})).await;
    assert_eq!(status, 400);
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("transactions"), "{answer}");
    let res = awc::Client::new()
        .post(format!("{}/graphql", gateway.url()))
        .insert_header(("content-type", "application/json"))
        .send_body("{not json")
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 400);
    let received = gateway.received();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|r| r.lookup.is_err() && r.edges == 0));
    gateway.stop().await;
}
