//! SPEC §7.5: every request path runs in a `tracing` span that carries
//! `pid` and `slot`. A global subscriber (the server's workers run on
//! their own threads) records the spans as they close.

mod http_support;
use http_support as common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[actix_rt::test]
async fn requests_run_in_spans_with_their_process_and_slot() -> anyhow::Result<()> {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_max_level(tracing::Level::INFO)
        .init();
    let node = start();
    let pid = register(&node, "a").await;
    send(&node, &pid, 5).await;
    let a = get(&node, &format!("/{pid}~process@1.0/compute/sum?slot=1")).await;
    assert_eq!(a.status, 200);
    node.shutdown().await;

    let text = String::from_utf8(captured.0.lock().expect("not poisoned").clone())?;
    let spans: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("http_request{") && l.contains("hb_node::http: close"))
        .collect();
    let compute = spans
        .iter()
        .find(|l| l.contains("/compute/sum"))
        .unwrap_or_else(|| panic!("a span for the compute request: {text}"));
    assert!(compute.contains(&format!("pid={pid}")), "{compute}");
    assert!(compute.contains("slot=1"), "{compute}");
    assert!(compute.contains("status=200"), "{compute}");
    let scheduled = spans
        .iter()
        .find(|l| l.contains("method=POST") && l.contains("slot=1"))
        .unwrap_or_else(|| panic!("a span for the schedule request: {text}"));
    assert!(scheduled.contains(&format!("pid={pid}")), "{scheduled}");
    Ok(())
}
