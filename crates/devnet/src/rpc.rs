//! A minimal JSON-RPC client over HTTP/1.1 on loopback: enough to probe and drive a local devnet without an async
//! runtime. The chain layer's alloy providers are for everything else.

use crate::{Error, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Calls `method` with `params` at `url` (`http://host:port`), returning the `result` field.
///
/// # Errors
/// Connection failures, timeouts (5 s), HTTP errors and JSON-RPC errors, each with the method and endpoint.
pub fn rpc_call(url: &str, method: &str, params: serde_json::Value) -> Result<serde_json::Value> {
    let err = |message: String| Error::Rpc { url: url.to_string(), method: method.to_string(), message };
    let host = url.strip_prefix("http://").ok_or_else(|| err("only http:// endpoints are supported here".into()))?;
    let host = host.trim_end_matches('/');
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut stream = TcpStream::connect(host).map_err(|e| err(e.to_string()))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| err(e.to_string()))?;
    stream.set_write_timeout(Some(Duration::from_secs(5))).map_err(|e| err(e.to_string()))?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| err(e.to_string()))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8_lossy(&response);
    let (head, payload) = text.split_once("\r\n\r\n").ok_or_else(|| err("malformed HTTP response".into()))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(err(head.lines().next().unwrap_or_default().to_string()));
    }
    let reply: serde_json::Value = serde_json::from_str(payload).map_err(|e| err(format!("bad JSON reply: {e}")))?;
    if let Some(e) = reply.get("error") {
        return Err(err(e.to_string()));
    }
    Ok(reply.get("result").cloned().unwrap_or(serde_json::Value::Null))
}

/// Sends several JSON-RPC calls in one HTTP request (a batch) and returns their results in order.
///
/// # Errors
/// As [`rpc_call`]; any call's error fails the batch, naming it.
pub fn rpc_batch(url: &str, calls: &[(&str, serde_json::Value)]) -> Result<Vec<serde_json::Value>> {
    let err = |message: String| Error::Rpc { url: url.to_string(), method: "batch".into(), message };
    rpc_batch_each(url, calls)?
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| err(format!("{}: {e}", calls[i].0))))
        .collect()
}

/// Sends several JSON-RPC calls in one HTTP request and returns each call's own outcome: its result, or its
/// JSON-RPC error as text (an `eth_call` that reverts is an error, not a failed batch).
///
/// # Errors
/// Connection failures, timeouts (30 s) and malformed replies.
pub fn rpc_batch_each(
    url: &str,
    calls: &[(&str, serde_json::Value)],
) -> Result<Vec<std::result::Result<serde_json::Value, String>>> {
    let err = |message: String| Error::Rpc { url: url.to_string(), method: "batch".into(), message };
    let host = url.strip_prefix("http://").ok_or_else(|| err("only http:// endpoints are supported here".into()))?;
    let host = host.trim_end_matches('/');
    let body = serde_json::Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| serde_json::json!({"jsonrpc": "2.0", "id": i, "method": m, "params": p}))
            .collect(),
    )
    .to_string();
    let mut stream = TcpStream::connect(host).map_err(|e| err(e.to_string()))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| err(e.to_string()))?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| err(e.to_string()))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8_lossy(&response);
    let (_, payload) = text.split_once("\r\n\r\n").ok_or_else(|| err("malformed HTTP response".into()))?;
    let replies: Vec<serde_json::Value> =
        serde_json::from_str(payload).map_err(|e| err(format!("bad JSON reply: {e}")))?;
    let mut out = vec![Err("no reply".to_string()); calls.len()];
    for r in replies {
        let id = r["id"].as_u64().unwrap_or(u64::MAX) as usize;
        if id < out.len() {
            out[id] = match r.get("error") {
                Some(e) => Err(e.to_string()),
                None => Ok(r.get("result").cloned().unwrap_or_default()),
            };
        }
    }
    Ok(out)
}
