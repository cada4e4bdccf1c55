//! `status` and `diagnose`: what a deployment's journal says, and why a deployment may be stuck.

use crate::deployment::pid_alive;
use serde::Serialize;
use sextant_chain::Rpc;
use sextant_chain::alloy::primitives::{Address, B256};
use sextant_exec::Result;
use sextant_exec::journal::{IntentRecord, Journal, TickRecord, TxRecord};
use std::collections::BTreeMap;

/// A deployment's state as its journal records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// Identity: chain id, Safe, sender, strategy, base, quote.
    pub deployment: BTreeMap<String, String>,
    /// The runner holding the lock and whether it is alive.
    pub runner: Option<Runner>,
    /// Strategy state version (bumped by every write).
    pub state_version: u64,
    /// Ticks completed.
    pub ticks: u64,
    /// The latest tick.
    pub last_tick: Option<TickRecord>,
    /// Equity at the first tick, in the quote token.
    pub first_equity: Option<f64>,
    /// Latest equity minus the first (includes price moves of what the Safe held from the start).
    pub pnl: Option<f64>,
    /// Intents not yet settled.
    pub open_intents: Vec<IntentRecord>,
    /// Intents by status.
    pub intents_by_status: BTreeMap<String, usize>,
    /// The latest transactions, newest first.
    pub recent_txs: Vec<TxRecord>,
    /// Transactions by status.
    pub txs_by_status: BTreeMap<String, usize>,
    /// Gas paid by mined and failed transactions, in wei.
    pub gas_spent_wei: u128,
}

/// The runner holding the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runner {
    /// Who.
    pub owner: String,
    /// Its pid.
    pub pid: u32,
    /// Whether it is alive (on this machine).
    pub alive: bool,
    /// Milliseconds since its heartbeat.
    pub heartbeat_age_ms: i64,
}

/// Reads a deployment's status from its journal.
///
/// # Errors
/// Database errors.
pub fn status(journal: &Journal) -> Result<Status> {
    let mut deployment = BTreeMap::new();
    for key in ["chain_id", "safe", "sender", "strategy", "base", "quote"] {
        if let Some(v) = journal.meta(key)? {
            deployment.insert(key.to_string(), v);
        }
    }
    let runner = journal.lock_holder()?.map(|(owner, pid, age)| Runner {
        owner,
        pid,
        alive: pid_alive(pid),
        heartbeat_age_ms: age,
    });
    let state = journal.state()?;
    let (first, last_tick) = journal.first_and_last_tick()?;
    let first_equity = first.map(|t| t.equity);
    Ok(Status {
        deployment,
        runner,
        state_version: state.as_ref().map_or(0, |s| s.version),
        ticks: state.as_ref().map_or(0, |s| s.tick),
        pnl: last_tick.as_ref().zip(first_equity).map(|(l, f)| l.after.map_or(l.equity, |a| a.equity) - f),
        last_tick,
        first_equity,
        open_intents: journal.pending_intents()?,
        intents_by_status: journal.count_by_status("intents")?,
        recent_txs: journal.recent_txs(10)?,
        txs_by_status: journal.count_by_status("txs")?,
        gas_spent_wei: journal.gas_spent_wei()?,
    })
}

/// One thing `diagnose` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `ok`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// What, and what to do about it.
    pub message: String,
}

fn finding(level: &'static str, message: impl Into<String>) -> Finding {
    Finding { level, message: message.into() }
}

fn gwei(wei: u128) -> String {
    format!("{:.2} gwei", wei as f64 / 1e9)
}

/// Explains why a deployment may be stuck: the runner, the RPC, transactions in flight (pending nonce, underpriced,
/// unknown to the node), intents waiting, and the reasons of recent failures.
///
/// # Errors
/// Database errors (RPC trouble is a finding, not an error).
pub fn diagnose(journal: &Journal, rpc: Option<&Rpc>) -> Result<Vec<Finding>> {
    let st = status(journal)?;
    let mut out = Vec::new();
    match &st.runner {
        Some(r) if r.alive => out
            .push(finding("ok", format!("runner pid {} alive, heartbeat {} s ago", r.pid, r.heartbeat_age_ms / 1000))),
        Some(r) => out.push(finding(
            "warn",
            format!("runner pid {} is not running (crashed or killed); `sextant run` resumes where it stopped", r.pid),
        )),
        None => out.push(finding("info", "no runner holds this deployment (stopped cleanly, or never started)")),
    }
    let in_flight: Vec<TxRecord> = journal.in_flight_txs()?;
    let Some(rpc) = rpc else {
        out.push(finding("warn", "no --rpc given: chain-side checks skipped"));
        return Ok(out);
    };
    match rpc.chain_id() {
        Err(e) => out.push(finding("error", format!("RPC down: {e}"))),
        Ok(id) => {
            let want = st.deployment.get("chain_id").cloned().unwrap_or_default();
            if want != id.to_string() {
                out.push(finding("error", format!("the RPC serves chain {id}, the deployment is on chain {want}")));
            } else {
                out.push(finding("ok", format!("RPC {} answers (chain {id})", rpc.url())));
            }
            if let Some(safe) = st.deployment.get("safe").and_then(|s| s.parse::<Address>().ok()) {
                match rpc.request("eth_getCode", serde_json::json!([safe.to_string(), "latest"])) {
                    Ok(code) if code.as_str().is_some_and(|c| c.len() > 2) => {}
                    Ok(_) => out.push(finding("error", format!("no contract at the Safe address {safe}"))),
                    Err(e) => out.push(finding("warn", format!("could not read the Safe's code: {e}"))),
                }
            }
            if let Some(sender) = st.deployment.get("sender").and_then(|s| s.parse::<Address>().ok()) {
                let latest = rpc.nonce(sender, false).ok();
                let pending = rpc.nonce(sender, true).ok();
                if let (Some(l), Some(p)) = (latest, pending) {
                    let journaled: Vec<u64> = in_flight.iter().map(|t| t.nonce).collect();
                    if p > l && journaled.is_empty() {
                        out.push(finding("warn", format!(
                            "{sender} has {} pending transaction(s) (nonces {l}..{p}) that are not in this journal: \
                             another program uses this key",
                            p - l
                        )));
                    }
                }
                let base_fee = rpc.fees().ok().map(|f| f.base_fee);
                for t in &in_flight {
                    let hash = t.hash.parse::<B256>().unwrap_or_default();
                    let known = rpc.knows_transaction(hash).unwrap_or(false);
                    let mut msg = format!("tx {} ({}) nonce {} is {}", t.hash, t.label, t.nonce, t.status.as_str());
                    if latest.is_some_and(|l| l > t.nonce) {
                        msg.push_str("; its nonce is already used on chain, so the runner marks it mined or dropped on its next look");
                    } else if !known {
                        msg.push_str(
                            "; the node does not know it (dropped, or never broadcast): the runner re-broadcasts it",
                        );
                    } else if let Some(b) = base_fee
                        && t.max_fee < b
                    {
                        msg.push_str(&format!(
                            "; underpriced: max fee {} < base fee {}; the runner bumps it after live.stuck_after_secs, up to live.max_fee_gwei",
                            gwei(t.max_fee),
                            gwei(b)
                        ));
                    } else {
                        msg.push_str(&format!("; pending in the node's pool at max fee {}", gwei(t.max_fee)));
                    }
                    out.push(finding("warn", msg));
                }
            }
        }
    }
    if !st.open_intents.is_empty() {
        out.push(finding(
            "warn",
            format!(
                "{} intent(s) pending since tick {}: the runner finishes them before deciding anything new",
                st.open_intents.len(),
                st.open_intents[0].tick
            ),
        ));
    }
    for i in journal.recent_intents(20)?.iter().filter(|i| i.status == "failed").take(3) {
        let why = i.outcome.as_ref().and_then(|o| o["status"]["error"]["message"].as_str()).unwrap_or("?");
        out.push(finding("warn", format!("intent {} (tick {}) failed: {why}", i.id, i.tick)));
    }
    if out.iter().all(|f| f.level == "ok" || f.level == "info") {
        out.push(finding("ok", "nothing stuck"));
    }
    Ok(out)
}
