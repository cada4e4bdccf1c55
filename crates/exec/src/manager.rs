//! The ExecutionManager: carries one intent step (one call from the Safe) to a confirmed receipt, through the
//! journal. A transaction is recorded (and synced) before it is broadcast; a step with a transaction that may
//! still land is tracked, never signed again; a stuck transaction is replaced at the same nonce with higher fees;
//! a dropped one is re-broadcast; a receipt whose block left the canonical chain is tracked again.

use crate::journal::{Journal, NewTx, TxRecord, TxStatus};
use crate::{Error, Result, SignedTx, TransactionManager};
use sextant_chain::alloy::primitives::{B256, keccak256};
use sextant_chain::alloy::rpc::types::TransactionReceipt;
use sextant_chain::alloy::sol_types::SolEvent;
use sextant_chain::bindings::ISafe;
use sextant_chain::{Call, RpcFailure, safe};
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

/// Identifies the call a step makes (target, value, calldata), so a re-planned step never picks up the
/// transactions of a different call.
pub fn call_key(call: &Call) -> String {
    let mut bytes = call.to.to_vec();
    bytes.extend_from_slice(&call.value.to_be_bytes::<32>());
    bytes.extend_from_slice(&call.data);
    keccak256(bytes).to_string()
}

fn transient(url: &str, what: &str, message: String) -> Error {
    Error::Rpc(sextant_chain::Error::Rpc {
        url: url.into(),
        method: what.into(),
        kind: RpcFailure::Transient,
        message,
        revert_data: None,
    })
}

/// Where `poll` leaves the tracking of a nonce.
struct Tracking {
    nonce: u64,
    last_send: Instant,
    bumps: u32,
    nonce_used_polls: u32,
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
    /// already shows mined returns its receipt; one with a transaction in flight is tracked; a new transaction is
    /// signed only when no earlier one for the step can still land and none of them executed.
    ///
    /// # Errors
    /// Simulation reverts (nothing signed), on-chain reverts, transient trouble (a retry resumes tracking).
    pub fn run_step(&self, intent_id: i64, step: u32, call: &Call) -> Result<TransactionReceipt> {
        let key = call_key(call);
        let rpc = self.tm.rpc();
        let txs = self.journal.step_txs(intent_id, step, &key)?;
        if let Some(m) = txs.iter().find(|t| t.status == TxStatus::Mined) {
            if let Some(r) = rpc.receipt(parse_hash(&m.hash)?)? {
                for t in txs.iter().filter(|t| t.status.in_flight()) {
                    self.journal.set_tx_status(t.id, TxStatus::Replaced, None, None)?;
                }
                return Ok(r);
            }
            // Reorganised away: it, and its siblings at that nonce, may land again. Track them all.
            (self.log)(&format!("tx {} of {} is no longer in a block (reorg): tracking it again", m.hash, m.label));
            for t in
                txs.iter().filter(|t| t.nonce == m.nonce && matches!(t.status, TxStatus::Mined | TxStatus::Replaced))
            {
                self.journal.set_tx_status(t.id, TxStatus::Broadcast, None, None)?;
            }
        }
        let txs = self.journal.step_txs(intent_id, step, &key)?;
        let mut in_flight: Vec<TxRecord> = txs.iter().filter(|t| t.status.in_flight()).cloned().collect();
        if in_flight.is_empty() {
            if let Some(r) = self.executed_already(&txs, call)? {
                return Ok(r);
            }
            if let Some(t) = self.journal.in_flight_txs()?.first() {
                return Err(transient(
                    rpc.url(),
                    "nonce",
                    format!("transaction {} (nonce {}) of another step is still in flight", t.hash, t.nonce),
                ));
            }
            let nonce = rpc.nonce(self.tm.sender(), true)?;
            let head = rpc.block_number()?;
            let signed = self.tm.build(call, nonce)?;
            let rec = self.record(intent_id, step, &key, head, &signed, &call.label)?;
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

    /// Before a step is signed again: did any earlier transaction of it execute after all? A receipt for one
    /// that looked dropped (a lagging node), or the Safe's `ExecutionSuccess` for one of its Safe transactions
    /// (sent by someone else, or under a hash the journal never saw).
    fn executed_already(&self, txs: &[TxRecord], call: &Call) -> Result<Option<TransactionReceipt>> {
        let dropped: Vec<&TxRecord> = txs.iter().filter(|t| t.status == TxStatus::Dropped).collect();
        if dropped.is_empty() {
            return Ok(None);
        }
        let rpc = self.tm.rpc();
        for t in &dropped {
            if let Some(r) = rpc.receipt(parse_hash(&t.hash)?)? {
                let siblings: Vec<i64> =
                    txs.iter().filter(|o| o.nonce == t.nonce && o.id != t.id).map(|o| o.id).collect();
                let mined = (
                    r.block_number.unwrap_or(0),
                    &r.block_hash.map(|h| h.to_string()).unwrap_or_default()[..],
                    r.gas_used,
                    r.effective_gas_price,
                );
                if r.status() {
                    self.journal.settle_nonce(t.id, TxStatus::Mined, mined, None, &siblings)?;
                    (self.log)(&format!("{} was mined after all (it looked dropped)", t.hash));
                    return Ok(Some(r));
                }
                self.journal.settle_nonce(t.id, TxStatus::Failed, mined, Some("reverted on chain"), &siblings)?;
            }
        }
        // Only owner-signed Safe transactions can execute under a hash the journal never saw (anyone who saw one can
        // submit it). A call through the permissions module can only be made by the member itself, and every
        // transaction it sent for this step is journaled (their receipts were checked above).
        let dropped: Vec<&TxRecord> = dropped.into_iter().filter(|t| sent_to(&t.raw) == Some(self.tm.safe())).collect();
        if dropped.is_empty() {
            return Ok(None);
        }
        let current = self.tm.safe_nonce()?;
        let head = rpc.block_number()?;
        let from = dropped.iter().map(|t| t.signed_block).min().unwrap_or(0);
        let mut safe_nonces: Vec<u64> = dropped.iter().map(|t| t.safe_nonce).collect();
        safe_nonces.dedup();
        for safe_nonce in safe_nonces {
            // A Safe nonce not yet used: nothing signed at it can have executed.
            if current <= safe_nonce {
                continue;
            }
            let hash = safe::safe_tx_hash(&safe::safe_tx(call, safe_nonce), self.tm.chain_id(), self.tm.safe());
            let logs = rpc.logs(self.tm.safe(), &[ISafe::ExecutionSuccess::SIGNATURE_HASH, hash], from, head)?;
            if let Some(txh) = logs.first().and_then(|l| l.transaction_hash)
                && let Some(r) = rpc.receipt(txh)?
            {
                (self.log)(&format!(
                    "Safe transaction {hash} of {} executed in {txh}, outside this journal's hashes: not signing it again",
                    call.label
                ));
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    fn record(&self, intent_id: i64, step: u32, key: &str, head: u64, s: &SignedTx, label: &str) -> Result<TxRecord> {
        let sender = self.tm.sender().to_string();
        let hash = s.hash.to_string();
        let id = self.journal.record_signed(&NewTx {
            intent_id,
            step,
            call_hash: key,
            signed_block: head,
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
            .step_txs(intent_id, step, key)?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| Error::Journal(format!("transaction {hash} vanished after recording")))
    }

    fn broadcast(&self, rec: &mut TxRecord) -> Result<()> {
        let hash = parse_hash(&rec.hash)?;
        match self.tm.rpc().send_raw(&rec.raw, hash) {
            Ok(_) => {}
            // The node has it, or has already used this nonce (maybe for this very transaction, whose first
            // broadcast answer was lost): tracking finds out which.
            Err(sextant_chain::Error::Rpc { kind: RpcFailure::Rejected, message, .. })
                if ["nonce too low", "already known", "alreadyknown", "underpriced", "already imported"]
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

    /// Tracks a nonce's transactions (the original and its replacements) until one is confirmed. Once anything
    /// may have been broadcast, only a receipt settles the step: every other trouble is logged and tracking goes
    /// on until `track_timeout` (then a transient error: the intent stays pending and the next attempt resumes).
    fn track(&self, mut records: Vec<TxRecord>, call: &Call) -> Result<TransactionReceipt> {
        let rpc = self.tm.rpc();
        let start = Instant::now();
        let mut state = Tracking {
            nonce: records[0].nonce,
            last_send: Instant::now(),
            bumps: records.len().saturating_sub(1) as u32,
            nonce_used_polls: 0,
        };
        let mut last_error = None;
        let mut last_beat = Instant::now();
        loop {
            if start.elapsed() > self.settings.track_timeout {
                let why = last_error.map(|e: Error| format!(" (last error: {e})")).unwrap_or_default();
                return Err(transient(
                    rpc.url(),
                    "track",
                    format!(
                        "{} (nonce {}) not confirmed after {:?}{why}; tracking resumes on the next attempt",
                        call.label, state.nonce, self.settings.track_timeout
                    ),
                ));
            }
            if last_beat.elapsed() >= Duration::from_secs(5) {
                // A long wait must not look like a dead runner; losing the lock stops this one at once.
                self.journal.heartbeat()?;
                last_beat = Instant::now();
            }
            match self.poll(&mut records, call, &mut state) {
                Ok(Some(receipt)) => return Ok(receipt),
                Ok(None) => {}
                Err(e @ (Error::RevertedOnChain(_) | Error::Dropped(_) | Error::Journal(_) | Error::Locked { .. })) => {
                    return Err(e);
                }
                Err(e) => {
                    (self.log)(&format!("tracking {}: {e}; retrying", call.label));
                    last_error = Some(e);
                }
            }
            std::thread::sleep(self.settings.poll);
        }
    }

    /// One look at the chain: Some(receipt) when the step is confirmed.
    fn poll(&self, records: &mut Vec<TxRecord>, call: &Call, st: &mut Tracking) -> Result<Option<TransactionReceipt>> {
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
            let ok = self.tm.executed_ok(&r);
            let block_hash = r.block_hash.map(|h| h.to_string()).unwrap_or_default();
            let error = (!ok).then(|| format!("{} reverted on chain in block {mined_at}", call.label));
            let siblings: Vec<i64> = records.iter().map(|t| t.id).filter(|&id| id != records[i].id).collect();
            self.journal.settle_nonce(
                records[i].id,
                if ok { TxStatus::Mined } else { TxStatus::Failed },
                (mined_at, &block_hash, r.gas_used, r.effective_gas_price),
                error.as_deref(),
                &siblings,
            )?;
            crash_point("after_receipt");
            (self.log)(&format!(
                "{} {} in block {mined_at} ({} gas)",
                records[i].hash,
                if ok { "mined" } else { "REVERTED" },
                r.gas_used
            ));
            return match error {
                None => Ok(Some(r)),
                Some(e) => Err(Error::RevertedOnChain(format!("{e} (tx {})", records[i].hash))),
            };
        }
        // Not mined. If the nonce is used, something else took it (seen three times, to allow for a lagging index).
        if rpc.nonce(self.tm.sender(), false)? > st.nonce {
            st.nonce_used_polls += 1;
            if st.nonce_used_polls >= 3 {
                for rec in records.iter() {
                    self.journal.set_tx_status(
                        rec.id,
                        TxStatus::Dropped,
                        None,
                        Some("nonce used by another transaction"),
                    )?;
                }
                return Err(Error::Dropped(format!(
                    "nonce {} was used by a transaction outside this step; checking it did not execute before signing again",
                    st.nonce
                )));
            }
            return Ok(None);
        }
        st.nonce_used_polls = 0;
        // The newest transaction is the one that should land: make sure the node has it (one signed before a
        // crash, or dropped from a pool, is sent again). Older ones were replaced by it.
        if let Some(newest) = records.last_mut()
            && (newest.status == TxStatus::Signed || !rpc.knows_transaction(parse_hash(&newest.hash)?)?)
        {
            (self.log)(&format!("broadcasting {} ({})", newest.hash, newest.label));
            self.broadcast(newest)?;
            st.last_send = Instant::now();
        }
        if st.last_send.elapsed() >= self.settings.stuck_after && st.bumps < self.settings.max_bumps {
            st.last_send = Instant::now();
            let newest = records.last().cloned().ok_or_else(|| Error::Journal("no transaction to bump".into()))?;
            let bumped = match self.tm.bump(&newest.raw, newest.safe_nonce) {
                Ok(b) => b,
                Err(e) => {
                    (self.log)(&format!("cannot replace stuck {}: {e}; waiting", newest.hash));
                    return Ok(None);
                }
            };
            let mut rec = self.record(
                newest.intent_id,
                newest.step,
                &newest.call_hash,
                newest.signed_block,
                &bumped,
                &newest.label,
            )?;
            (self.log)(&format!(
                "{} stuck for {:?}: replacing it at nonce {} with {} (max fee {} -> {} gwei)",
                newest.hash,
                self.settings.stuck_after,
                st.nonce,
                rec.hash,
                gwei(newest.max_fee),
                gwei(rec.max_fee)
            ));
            st.bumps += 1;
            records.push(rec.clone());
            self.broadcast(&mut rec)?;
            if let Some(last) = records.last_mut() {
                last.status = rec.status;
            }
        }
        Ok(None)
    }
}

/// The destination of a journaled raw transaction.
fn sent_to(raw: &[u8]) -> Option<sextant_chain::alloy::primitives::Address> {
    use sextant_chain::alloy::consensus::{Transaction, TxEnvelope};
    use sextant_chain::alloy::eips::eip2718::Decodable2718;
    TxEnvelope::decode_2718(&mut &raw[..]).ok()?.to()
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
        Error::FeeCap { .. } | Error::Dropped(_) => true,
        _ => false,
    }
}
