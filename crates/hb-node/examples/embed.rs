//! Embedding an hb node in a host application (docs/embedding.md).
//!
//! The host is an actix-web app with a route of its own (`/hello`) and
//! hb's routes mounted under `/hb`. The node runs without its own HTTP
//! server, on a sled store and a key the host supplies, with a device of
//! the host's own (`tally@1.0`) registered. The host spawns a process on
//! that device, schedules and computes messages through the node's
//! handle, dry-runs one, reads the same state over its own HTTP server,
//! and shuts everything down.
//!
//! Run it with `cargo run -p hb-node --example embed`.

use std::sync::Arc;

use actix_web::{web, App, HttpServer};
use hb_device::{async_trait, Context, Device, DeviceInfo, Outcome, ResolveError};
use hb_message::{Key, Message, NodeKey};
use hb_node::{NodeBuilder, NodeConfig};

/// A device of the host's own: its state is one integer, `tally`, and each
/// message adds its `add` to it.
pub struct Tally;

/// The name processes give it as their `execution-device`.
pub const TALLY: &str = "tally@1.0";

#[async_trait]
impl Device for Tally {
    fn name(&self) -> &str {
        TALLY
    }

    /// One handler for every key: `init`, `snapshot`, `normalize`, and the
    /// key of each scheduled message (`compute`).
    fn info(&self) -> DeviceInfo {
        DeviceInfo::handler().never_declines()
    }

    async fn call(
        &self,
        key: &Key,
        mut state: Message,
        request: &Message,
        _ctx: &Context,
    ) -> Result<Outcome, ResolveError> {
        match key.as_str() {
            "init" => {
                state.insert("tally", 0)?;
                Ok(Outcome::Ok(state))
            }
            // What a snapshot keeps; the stored state holds `tally` too,
            // so `normalize` has nothing to rebuild.
            "snapshot" => {
                let tally = state.get_int("tally").unwrap_or(0);
                Ok(Outcome::Ok(Message::new().with("tally", tally)?))
            }
            "normalize" => Ok(Outcome::Ok(state)),
            // `request` is the assignment; the scheduled message is its body.
            _ => {
                let add = request
                    .get_message("body")
                    .and_then(|body| body.get_int("add"))
                    .unwrap_or(0);
                let tally = state
                    .get_int("tally")
                    .unwrap_or(0)
                    .checked_add(add)
                    .ok_or_else(|| ResolveError::invalid_input("add", "the tally overflows"))?;
                state.insert("tally", tally)?;
                state.insert("results", Message::new().with("tally", tally)?)?;
                Ok(Outcome::Ok(state))
            }
        }
    }
}

/// What the example saw, for its test.
#[derive(Debug)]
pub struct Report {
    /// The host's own route's answer.
    pub host_route: String,
    /// The slots the three messages were assigned.
    pub slots: Vec<u64>,
    /// `tally` computed at slot 3 through the node's handle.
    pub computed_tally: i64,
    /// `results/tally` of a dry-run adding 10, and the slot it ran after.
    pub dry_run_tally: i64,
    /// The dry-run's `at-slot`.
    pub dry_run_at_slot: i64,
    /// `tally` at slot 3 read over HTTP from the mounted routes.
    pub http_tally: serde_json::Value,
    /// The slot the scheduler's current slot after the dry-run (unchanged
    /// by it).
    pub slot_after_dry_run: i64,
    /// Whether the mounted routes' requests were counted in `/hb/metrics`.
    pub metrics_count_mounted_routes: bool,
}

/// Runs the whole example on a fresh store in `data_dir`. Inside an actix
/// system.
pub async fn run(data_dir: &std::path::Path) -> anyhow::Result<Report> {
    // The host supplies the store and the node key.
    let store = Arc::new(hb_store::SledStore::open(data_dir)?);
    let node_key = NodeKey::from_seed(&[7; 32]);
    let node = NodeBuilder::new(store, node_key.clone())
        .config(NodeConfig::default())
        .http(false)
        .device(Arc::new(Tally))
        .start()?;

    // The host's HTTP server: its own route, and hb's under /hb.
    let routes = node.routes();
    let server = HttpServer::new(move || {
        App::new()
            .route("/hello", web::get().to(|| async { "hello from the host" }))
            .service(web::scope("/hb").configure(routes.clone()))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("the host's server bound no address"))?;
    let server = server.run();
    let host = server.handle();
    actix_rt::spawn(server);

    // A process on the host's device, registered by a client.
    let client = NodeKey::from_seed(&[8; 32]);
    let process = Message::new()
        .with("type", "Process")?
        .with("device", "process@1.0")?
        .with("scheduler", node_key.address())?
        .with("execution-device", TALLY)?
        .commit(&client, None)?;
    let pid = process.id_all()?;
    node.schedule(process).await?;

    let mut slots = Vec::new();
    for add in [1, 2, 3] {
        let message = Message::new()
            .with("target", pid.to_human())?
            .with("add", add)?
            .commit(&client, None)?;
        slots.push(node.schedule(message).await?.slot);
    }
    let computed = node.compute(pid, 3).await?;
    let computed_tally = computed.state.get_int("tally").unwrap_or(-1);

    let dry = node.dry_run(pid, Message::new().with("add", 10)?).await?;
    let dry_run_tally = dry
        .get_path("results/tally")
        .and_then(|v| v.as_int())
        .unwrap_or(-1);
    let dry_run_at_slot = dry.get_int("at-slot").unwrap_or(-1);
    let slot_after_dry_run = node.scheduler().current(pid).await?.map_or(-1, |c| c.slot);

    // The same node over the host's server.
    let http = awc::Client::default();
    let base = format!("http://{addr}");
    let host_route = body(&http, &format!("{base}/hello")).await?;
    let http_tally: serde_json::Value = serde_json::from_str(
        &body(
            &http,
            &format!("{base}/hb/{pid}~process@1.0/compute/tally?slot=3"),
        )
        .await?,
    )?;
    let metrics = body(&http, &format!("{base}/hb/metrics")).await?;
    let metrics_count_mounted_routes =
        metrics.contains(r#"route="/<pid>~process@1.0/compute",method="GET",status="200""#);

    node.shutdown().await;
    host.stop(true).await;
    Ok(Report {
        host_route,
        slots,
        computed_tally,
        dry_run_tally,
        dry_run_at_slot,
        http_tally,
        slot_after_dry_run,
        metrics_count_mounted_routes,
    })
}

/// The body of a GET that must answer 200.
async fn body(http: &awc::Client, url: &str) -> anyhow::Result<String> {
    let mut res = http
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    let bytes = res
        .body()
        .await
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    anyhow::ensure!(
        res.status().is_success(),
        "GET {url}: {} {text}",
        res.status()
    );
    Ok(text)
}

#[allow(dead_code)] // the test that includes this file runs `run`, not `main`
fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let report = actix_rt::System::new().block_on(run(dir.path()))?;
    println!("{report:#?}");
    Ok(())
}
