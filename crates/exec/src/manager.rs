//! The ExecutionManager: carries one intent step (one call from the Safe) to a confirmed receipt, through the
//! journal. A transaction is recorded (and synced) before it is broadcast; a step with a transaction that may
//! still land is tracked, never signed again; a stuck transaction is replaced at the same nonce with higher fees;
//! a dropped one is re-broadcast; a receipt whose block left the canonical chain is tracked again.

use crate::journal::{Journal, NewTx, TxRecord, TxStatus};
use crate::{Error, Result, SignedTx, TransactionManager};
use sextant_chain::alloy::primitives::B256;
use sextant_chain::alloy::rpc::types::TransactionReceipt;
use sextant_chain::alloy::sol_types::SolEvent;
use sextant_chain::bindings::ISafe;
use sextant_chain::{Call, RpcFailure};
use std::time::{Duration, Instant};

/// How patiently transactions are tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSettings {
    /// Blocks on top of the receipt's (the receipt's own counts as 1) before a step counts as done.
    pub confirmations: u64,
    /// Poll interval.
    pub poll: Duration,
    /// Replace a transaction with a fee bump when it has not been mined this long after its last broadcast.
    pub stuck_after: Duration,
    /// Replacements at most per step.
    pub max_bumps: u32,
    /// Give up tracking (a transient error: the next attempt resumes tracking) after this long.
    pub track_timeout: Duration,
}

impl Default for ExecSettings {
    fn default() -> Self {
        ExecSettings {
            confirmations: 1,
            poll: Duration::from_millis(500),
            stuck_after: Duration::from_secs(60),
            max_bumps: 5,
            track_timeout: Duration::from_secs(600),
        }
    }
}

/// A point in the send path where a test can make the process die, set by `SEXTANT_CRASH_AT` (`after_sign`,
/// `after_broadcast`, `after_receipt`, optionally `:N` for the N-th time it is reached). Crash-safety tests use it
/// to kill the runner exactly between sign and broadcast and at the other edges; it does nothing when unset.
pub fn crash_point(name: &str) {
    static COUNTS: std::sync::Mutex<Vec<(String, u32)>> = std::sync::Mutex::new(Vec::new());
    let Ok(spec) = std::env::var("SEXTANT_CRASH_AT") else { return };
    let (point, nth) = match spec.split_once(':') {
        Some((p, n)) => (p.to_string(), n.parse::<u32>().unwrap_or(1)),
        None => (spec.clone(), 1),
    };
    if point != name {
        return;
    }
    let mut counts = COUNTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let seen = match counts.iter_mut().find(|(p, _)| *p == point) {
        Some((_, c)) => {
            *c += 1;
            *c
        }
        None => {
            counts.push((point.clone(), 1));
            1
        }
    };
    if seen == nth {
        eprintln!("SEXTANT_CRASH_AT={spec}: dying at {name}");
        std::process::abort();
    }
}

/// Drives intent steps to confirmed receipts.
pub struct ExecutionManager<'a> {
    tm: &'a TransactionManager<'a>,
    journal: &'a Journal,
    settings: ExecSettings,
    log: &'a dyn Fn(&str),
}

impl std::fmt::Debug for ExecutionManager<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionManager").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl<'a> ExecutionManager<'a> {
    /// A manager signing through `tm`, journaling to `journal`, logging progress lines to `log`.
    pub fn new(
        tm: &'a TransactionManager<'a>,
        journal: &'a Journal,
        settings: ExecSettings,
        log: &'a dyn Fn(&str),
    ) -> Self {
        ExecutionManager { tm, journal, settings, log }
    }

    /// The transaction manager.
    pub fn tm(&self) -> &TransactionManager<'a> {
        self.tm
    }

    /// Carries step `step` of intent `intent_id` (the call `call`) to a confirmed receipt. A step the journal
    /// already shows mined returns its receipt; one with a transaction in flight is tracked; only a step with no
    /// transaction that can still land gets a new one signed.
    ///
    /// # Errors
    /// Simulation reverts (nothing signed), on-chain reverts, transient RPC trouble (retry resumes tracking).
    pub fn run_step(&self, intent_id: i64, step: u32, call: &Call) -> Result<TransactionReceipt> {
        let txs = self.journal.step_txs(intent_id, step)?;
        let rpc = self.tm.rpc();
        for t in txs.iter().filter(|t| t.status == TxStatus::Mined) {
            match rpc.receipt(parse_hash(&t.hash)?)? {
                Some(r) => return Ok(r),
                None => {
                    (self.log)(&format!(
                        "tx {} of {} is no longer in a block (reorg): tracking it again",
                        t.hash, t.label
                    ));
                    self.journal.set_tx_status(t.id, TxStatus::Broadcast, None, None)?;
                }
            }
        }
        let mut in_flight: Vec<TxRecord> =
            self.journal.step_txs(intent_id, step)?.into_iter().filter(|t| t.status.in_flight()).collect();
        if in_flight.is_empty() {
            let others = self.journal.in_flight_txs()?;
            if let Some(t) = others.first() {
                return Err(Error::Rpc(sextant_chain::Error::Rpc {
                    url: rpc.url().into(),
                    method: "nonce".into(),
                    kind: RpcFailure::Transient,
                    message: format!("transaction {} (nonce {}) of another step is still in flight", t.hash, t.nonce),
                    revert_data: None,
                }));
            }
            let nonce = rpc.nonce(self.tm.sender(), true)?;
            let signed = self.tm.build(call, nonce)?;
            let rec = self.record(intent_id, step, &signed, &call.label)?;
            crash_point("after_sign");
            (self.log)(&format!(
                "signed {} as {} (nonce {}, Safe nonce {}, gas {}, max fee {} gwei)",
                call.label,
                rec.hash,
                rec.nonce,
                rec.safe_nonce,
                rec.gas_limit,
                gwei(rec.max_fee)
            ));
            in_flight.push(rec);
        }
        self.track(in_flight, call)
    }

    fn record(&self, intent_id: i64, step: u32, s: &SignedTx, label: &str) -> Result<TxRecord> {
        let sender = self.tm.sender().to_string();
        let hash = s.hash.to_string();
        let id = self.journal.record_signed(&NewTx {
            intent_id,
            step,
            sender: &sender,
            nonce: s.nonce,
            safe_nonce: s.safe_nonce,
            hash: &hash,
            raw: &s.raw,
            gas_limit: s.gas_limit,
            max_fee: s.max_fee,
            priority_fee: s.priority_fee,
            label,
        })?;
        self.journal
            .step_txs(intent_id, step)?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| Error::Journal(format!("transaction {hash} vanished after recording")))
    }

    fn broadcast(&self, rec: &mut TxRecord) -> Result<()> {
        let hash = parse_hash(&rec.hash)?;
        match self.tm.rpc().send_raw(&rec.raw, hash) {
            Ok(_) => {}
            // The node has it, or has already mined this nonce (maybe this very transaction, whose first
            // broadcast answer was lost): tracking finds out which.
            Err(sextant_chain::Error::Rpc { kind: RpcFailure::Rejected, message, .. })
                if ["nonce too low", "already known", "underpriced", "already imported"]
                    .iter()
                    .any(|m| message.to_ascii_lowercase().contains(m)) =>
            {
                (self.log)(&format!("node declined re-broadcast of {}: {message}; tracking it", rec.hash));
            }
            Err(e) => return Err(e.into()),
        }
        if rec.status == TxStatus::Signed {
            self.journal.set_tx_status(rec.id, TxStatus::Broadcast, None, None)?;
            rec.status = TxStatus::Broadcast;
        }
        crash_point("after_broadcast");
        Ok(())
    }

    fn track(&self, mut records: Vec<TxRecord>, call: &Call) -> Result<TransactionReceipt> {
        let rpc = self.tm.rpc();
        let nonce = records[0].nonce;
        let start = Instant::now();
        let mut last_send = Instant::now();
        let mut bumps = records.len().saturating_sub(1) as u32;
        let mut nonce_used_polls = 0;
        let mut last_error = None;
        loop {
            if start.elapsed() > self.settings.track_timeout {
                let why = last_error.map(|e: Error| format!(" (last error: {e})")).unwrap_or_default();
                return Err(Error::Rpc(sextant_chain::Error::Rpc {
                    url: rpc.url().into(),
                    method: "track".into(),
                    kind: RpcFailure::Transient,
                    message: format!(
                        "{} (nonce {nonce}) not confirmed after {:?}{why}; tracking resumes on the next attempt",
                        call.label, self.settings.track_timeout
                    ),
                    revert_data: None,
                }));
            }
            match self.poll(&mut records, call, nonce, &mut last_send, &mut bumps, &mut nonce_used_polls) {
                Ok(Some(receipt)) => return Ok(receipt),
                Ok(None) => {}
                Err(e) if is_transient(&e) => {
                    (self.log)(&format!("tracking {}: {e}; retrying", call.label));
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
            std::thread::sleep(self.settings.poll);
        }
    }

    /// One look at the chain: Some(receipt) when the step is confirmed.
    fn poll(
        &self,
        records: &mut Vec<TxRecord>,
        call: &Call,
        nonce: u64,
        last_send: &mut Instant,
        bumps: &mut u32,
        nonce_used_polls: &mut u32,
    ) -> Result<Option<TransactionReceipt>> {
        let rpc = self.tm.rpc();
        let mut found = None;
        for (i, rec) in records.iter().enumerate().rev() {
            if let Some(r) = rpc.receipt(parse_hash(&rec.hash)?)? {
                found = Some((i, r));
                break;
            }
        }
        if let Some((i, r)) = found {
            let Some(mined_at) = r.block_number else { return Ok(None) };
            let head = rpc.block_number()?;
            if head + 1 < mined_at + self.settings.confirmations {
                return Ok(None);
            }
            // The block must still be canonical: a reorg may have taken it away.
            match rpc.block(mined_at)? {
                Some((hash, _)) if Some(hash) == r.block_hash => {}
                _ => {
                    (self.log)(&format!(
                        "block {mined_at} of {} was reorganised away: tracking again",
                        records[i].hash
                    ));
                    return Ok(None);
                }
            }
            let safe_ok = r.inner.logs().iter().any(|l| {
                l.address() == self.tm.safe() && l.topics().first() == Some(&ISafe::ExecutionSuccess::SIGNATURE_HASH)
            });
            let ok = r.status() && safe_ok;
            let block_hash = r.block_hash.map(|h| h.to_string()).unwrap_or_default();
            let error = (!ok).then(|| format!("{} reverted on chain in block {mined_at}", call.label));
            self.journal.set_tx_status(
                records[i].id,
                if ok { TxStatus::Mined } else { TxStatus::Failed },
                Some((mined_at, &block_hash, r.gas_used, r.effective_gas_price)),
                error.as_deref(),
            )?;
            for (j, other) in records.iter().enumerate() {
                if j != i {
                    self.journal.set_tx_status(other.id, TxStatus::Replaced, None, None)?;
                }
            }
            crash_point("after_receipt");
            (self.log)(&format!(
                "{} {} in block {mined_at} ({} gas)",
                records[i].hash,
                if ok { "mined" } else { "REVERTED" },
                r.gas_used
            ));
            return match error {
                None => Ok(Some(r)),
                Some(e) => Err(Error::Reverted(format!("{e} (tx {})", records[i].hash))),
            };
        }
        // Not mined. If the nonce is used, something else took it (seen twice, to allow for a lagging index).
        if rpc.nonce(self.tm.sender(), false)? > nonce {
            *nonce_used_polls += 1;
            if *nonce_used_polls >= 3 {
                for rec in records.iter() {
                    self.journal.set_tx_status(
                        rec.id,
                        TxStatus::Dropped,
                        None,
                        Some("nonce used by another transaction"),
                    )?;
                }
                return Err(Error::Rpc(sextant_chain::Error::Rpc {
                    url: rpc.url().into(),
                    method: "track".into(),
                    kind: RpcFailure::Transient,
                    message: format!("nonce {nonce} was used by a transaction outside this deployment's journal"),
                    revert_data: None,
                }));
            }
            return Ok(None);
        }
        *nonce_used_polls = 0;
        // Make sure the node has it: a transaction signed before a crash, or dropped from a pool, is sent again.
        for rec in records.iter_mut() {
            if rec.status == TxStatus::Signed || !rpc.knows_transaction(parse_hash(&rec.hash)?)? {
                (self.log)(&format!("broadcasting {} ({})", rec.hash, rec.label));
                self.broadcast(rec)?;
                *last_send = Instant::now();
            }
        }
        if last_send.elapsed() >= self.settings.stuck_after && *bumps < self.settings.max_bumps {
            let newest = records.last().cloned().ok_or_else(|| Error::Journal("no transaction to bump".into()))?;
            let bumped = self.tm.bump(&newest.raw, newest.safe_nonce)?;
            let mut rec = self.record(newest.intent_id, newest.step, &bumped, &newest.label)?;
            (self.log)(&format!(
                "{} stuck for {:?}: replacing it at nonce {nonce} with {} (max fee {} -> {} gwei)",
                newest.hash,
                self.settings.stuck_after,
                rec.hash,
                gwei(newest.max_fee),
                gwei(rec.max_fee)
            ));
            self.broadcast(&mut rec)?;
            records.push(rec);
            *bumps += 1;
            *last_send = Instant::now();
        }
        Ok(None)
    }
}

fn parse_hash(s: &str) -> Result<B256> {
    s.parse::<B256>().map_err(|e| Error::Journal(format!("bad transaction hash {s:?}: {e}")))
}

fn gwei(wei: u128) -> String {
    format!("{:.3}", wei as f64 / 1e9)
}

/// Whether an execution-layer error may clear up by itself.
pub fn is_transient(e: &Error) -> bool {
    match e {
        Error::Rpc(c) => c.rpc_failure() == Some(RpcFailure::Transient),
        Error::FeeCap { .. } => true,
        _ => false,
    }
}
