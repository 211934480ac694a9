//! hb's routes mounted in a host's own actix-web `App` (`Node::routes`),
//! at the root or under a scope, over real HTTP on 127.0.0.1: paths are
//! read below the mount point, the host's own routes still answer, and
//! the node's wrapper still applies (JSON errors, panics answered 500,
//! metrics, 503 `unavailable` once the node shuts down, a request in
//! flight when it shuts down answered before it stops), and the backup
//! route refuses without `backup_dir` (403 `backup-disabled`). Also: a node
//! started without HTTP says it listens nowhere, the host's devices are
//! checked by name, and processes naming a device the node lacks are
//! refused.

use std::sync::Arc;

use actix_web::{web, App, HttpServer};
use hb_device::{async_trait, Context, Device, DeviceInfo, Outcome, ResolveError};
use hb_message::{Key, Message, NodeKey};
use hb_node::{Node, NodeBuilder, NodeConfig, NodeError};

/// A host server with its own `/hello` and the node's routes under
/// `scope` (`None`: at the root, after `/hello`).
fn host(node: &Node, scope: Option<&'static str>) -> (actix_web::dev::ServerHandle, String) {
    let routes = node.routes();
    let server = HttpServer::new(move || {
        let app = App::new().route("/hello", web::get().to(|| async { "host" }));
        match scope {
            Some(s) => app.service(web::scope(s).configure(routes.clone())),
            None => app.configure(routes.clone()),
        }
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let url = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (handle, url)
}

fn embedded(config: NodeConfig) -> Node {
    let store = Arc::new(hb_store::MemoryStore::new());
    NodeBuilder::new(store, NodeKey::from_seed(&[3; 32]))
        .config(config)
        .http(false)
        .start()
        .unwrap()
}

async fn get(url: &str) -> (u16, serde_json::Value, String) {
    let mut res = awc::Client::default().get(url).send().await.unwrap();
    let text = String::from_utf8_lossy(&res.body().limit(1 << 22).await.unwrap()).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (res.status().as_u16(), json, text)
}

#[actix_rt::test]
async fn a_node_without_http_listens_nowhere() {
    let node = embedded(NodeConfig::default());
    assert_eq!(node.http_addr(), None);
    assert_eq!(node.http_url(), None);
    node.shutdown().await;
}

#[actix_rt::test]
async fn routes_under_a_scope_read_paths_below_it_and_keep_the_wrapper() {
    let node = embedded(NodeConfig::default());
    let (server, url) = host(&node, Some("/hb"));
    let address = node.scheduler().address().to_string();

    let (status, _, text) = get(&format!("{url}/hello")).await;
    assert_eq!((status, text.as_str()), (200, "host"));
    let (status, info, _) = get(&format!("{url}/hb/~meta@1.0/info")).await;
    assert_eq!(status, 200);
    assert_eq!(info["address"], serde_json::json!(address));
    let (status, health, _) = get(&format!("{url}/hb/healthz")).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    // A path below the scope that names nothing: the node's JSON error,
    // naming the path below the scope.
    let (status, err, _) = get(&format!("{url}/hb/nothing-here")).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"], "not-found");
    assert!(
        err["detail"]
            .as_str()
            .unwrap()
            .contains("\"/nothing-here\""),
        "{err}"
    );
    // The backup route is mounted too; without backup_dir it refuses.
    let mut res = awc::Client::default()
        .post(format!("{url}/hb/~node@1.0/backup"))
        .send()
        .await
        .unwrap();
    let refused: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), refused["error"].as_str()),
        (403, Some("backup-disabled")),
        "{refused}"
    );
    // A handler panic is contained by the wrapper.
    let (status, err, _) = get(&format!("{url}/hb/~hb-test@1.0/panic")).await;
    assert_eq!((status, err["error"].as_str()), (500, Some("internal")));
    // The wrapper counted them by route pattern.
    let (_, _, metrics) = get(&format!("{url}/hb/metrics")).await;
    assert!(
        metrics.contains(
            r#"hb_http_requests_total{route="/~meta@1.0/info",method="GET",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("hb_http_panics_total 1"), "{metrics}");

    // Once the node shuts down, its routes answer 503 and the host's
    // still answer.
    node.shutdown().await;
    let (status, err, _) = get(&format!("{url}/hb/healthz")).await;
    assert_eq!((status, err["error"].as_str()), (503, Some("unavailable")));
    let (status, _, text) = get(&format!("{url}/hello")).await;
    assert_eq!((status, text.as_str()), (200, "host"));
    server.stop(true).await;
}

#[actix_rt::test]
async fn routes_at_the_root_leave_the_hosts_earlier_routes_alone() {
    let node = embedded(NodeConfig::default());
    let (server, url) = host(&node, None);
    let (status, _, text) = get(&format!("{url}/hello")).await;
    assert_eq!((status, text.as_str()), (200, "host"));
    let (status, health, _) = get(&format!("{url}/healthz")).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, _, address) = get(&format!("{url}/~meta@1.0/info/address")).await;
    assert_eq!(status, 200);
    assert_eq!(address, node.scheduler().address());
    node.shutdown().await;
    server.stop(true).await;
}

struct Named(&'static str);

#[async_trait]
impl Device for Named {
    fn name(&self) -> &str {
        self.0
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo::handler()
    }
    async fn call(
        &self,
        _key: &Key,
        base: Message,
        _request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        Ok(Outcome::Ok(base))
    }
}

#[actix_rt::test]
async fn a_host_device_with_a_built_in_name_stops_start_up() {
    let start = |name: &'static str| {
        NodeBuilder::new(
            Arc::new(hb_store::MemoryStore::new()),
            NodeKey::from_seed(&[3; 32]),
        )
        .http(false)
        .device(Arc::new(Named(name)))
        .start()
    };
    for name in ["lua@5.3a", "process@1.0", "no-version"] {
        match start(name) {
            Err(NodeError::Device { name: n, .. }) => assert_eq!(n, name),
            Err(other) => panic!("{name}: {other}"),
            Ok(_) => panic!("{name} was accepted"),
        }
    }
}

#[actix_rt::test]
async fn processes_may_name_the_hosts_device_and_no_unknown_one() {
    let key = NodeKey::from_seed(&[3; 32]);
    let node = NodeBuilder::new(Arc::new(hb_store::MemoryStore::new()), key.clone())
        .http(false)
        .device(Arc::new(Named("mine@1.0")))
        .start()
        .unwrap();
    let definition = |device: &str| {
        Message::new()
            .with("type", "Process")
            .and_then(|m| m.with("device", "process@1.0"))
            .and_then(|m| m.with("scheduler", key.address()))
            .and_then(|m| m.with("execution-device", device))
            .unwrap()
    };
    let slot = node.schedule(definition("mine@1.0")).await.unwrap().slot;
    assert_eq!(slot, 0);
    let refused = node.schedule(definition("nope@1.0")).await.unwrap_err();
    assert!(refused.to_string().contains("nope@1.0"), "{refused}");
    node.shutdown().await;
}

#[actix_rt::test]
async fn shutdown_lets_a_mounted_request_in_flight_finish() {
    let key = NodeKey::from_seed(&[3; 32]);
    let node = embedded(NodeConfig {
        enable_test_devices: true,
        ..NodeConfig::default()
    });
    let (server, url) = host(&node, Some("/hb"));
    let client = NodeKey::from_seed(&[4; 32]);
    let definition = Message::new()
        .with("type", "Process")
        .and_then(|m| m.with("device", "process@1.0"))
        .and_then(|m| m.with("scheduler", key.address()))
        .and_then(|m| m.with("execution-device", "test-device@1.0"))
        .and_then(|m| m.commit(&client, None))
        .unwrap();
    let pid = definition.id_all().unwrap();
    node.schedule(definition).await.unwrap();
    // Slot 1 takes a while to compute.
    let slow = Message::new()
        .with("target", pid.to_human())
        .and_then(|m| m.with("add", 5))
        .and_then(|m| m.with("delay-ms", 300))
        .and_then(|m| m.commit(&client, None))
        .unwrap();
    node.schedule(slow).await.unwrap();
    let in_flight = actix_rt::spawn(async move {
        get(&format!("{url}/hb/{pid}~process@1.0/compute/sum?slot=1")).await
    });
    while node.requests_in_flight() == 0 {
        actix_rt::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    node.shutdown().await;
    assert_eq!(node.requests_in_flight(), 0);
    let (status, sum, _) = in_flight.await.unwrap();
    assert_eq!((status, sum), (200, serde_json::json!(5)));
    server.stop(true).await;
}
