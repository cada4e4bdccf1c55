//! Prometheus metrics: the runner renders the text exposition after each tick from its journal, and a small HTTP
//! listener thread serves the latest rendering on `--metrics-addr`.

use crate::status::Status;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// The latest rendering, shared with the listener.
pub type Shared = Arc<Mutex<String>>;

/// Renders a status in the Prometheus text format.
pub fn render(st: &Status, rpc_errors: u64) -> String {
    let mut s = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in rows {
            s.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    metric("sextant_ticks_total", "counter", "Ticks completed.", vec![(String::new(), st.ticks.to_string())]);
    metric(
        "sextant_intents",
        "gauge",
        "Intents by status.",
        ["pending", "done", "failed"]
            .iter()
            .map(|k| (format!("{{status=\"{k}\"}}"), st.intents_by_status.get(*k).copied().unwrap_or(0).to_string()))
            .collect(),
    );
    metric(
        "sextant_transactions",
        "gauge",
        "Transactions by status.",
        ["signed", "broadcast", "mined", "failed", "replaced", "dropped"]
            .iter()
            .map(|k| (format!("{{status=\"{k}\"}}"), st.txs_by_status.get(*k).copied().unwrap_or(0).to_string()))
            .collect(),
    );
    metric(
        "sextant_gas_spent_wei_total",
        "counter",
        "Gas paid, in wei.",
        vec![(String::new(), st.gas_spent_wei.to_string())],
    );
    if let Some(t) = &st.last_tick {
        metric("sextant_equity", "gauge", "Equity in the quote token.", vec![(String::new(), t.equity.to_string())]);
        metric(
            "sextant_price",
            "gauge",
            "Price of the base asset in the quote.",
            vec![(String::new(), t.price.to_string())],
        );
        metric(
            "sextant_last_tick_timestamp_seconds",
            "gauge",
            "When the last tick ran.",
            vec![(String::new(), (t.timestamp_ms / 1000).to_string())],
        );
    }
    metric(
        "sextant_rpc_errors_total",
        "counter",
        "Ticks that failed on RPC trouble.",
        vec![(String::new(), rpc_errors.to_string())],
    );
    s
}

/// Serves `shared` at `addr` (any path) until the process exits. Returns the bound address (useful with port 0).
///
/// # Errors
/// When the address cannot be bound.
pub fn serve(addr: &str, shared: Shared) -> crate::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| crate::Error::Metrics { addr: addr.to_string(), message: e.to_string() })?;
    let bound =
        listener.local_addr().map_err(|e| crate::Error::Metrics { addr: addr.to_string(), message: e.to_string() })?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let body = shared.lock().map(|s| s.clone()).unwrap_or_default();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(bound)
}
