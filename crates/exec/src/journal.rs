//! The write-ahead journal and the deployment's store, in one SQLite file: the strategy's versioned state, every
//! intent it emitted with its plan and outcome, every transaction signed (recorded and synced **before** it is
//! broadcast), the market seen at each tick, and the lock that keeps a second runner off the same deployment.
//!
//! The invariant the journal exists for: a restarted runner finds every transaction it may have sent, and never
//! signs a new one for an intent step while an earlier one for that step may still land.

use crate::{Error, Result};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lock (id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, pid INTEGER NOT NULL,
    token TEXT NOT NULL, heartbeat_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS strategy_state (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL,
    tick INTEGER NOT NULL, state TEXT NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ticks (tick INTEGER PRIMARY KEY, timestamp_ms INTEGER NOT NULL, block INTEGER NOT NULL,
    price REAL NOT NULL, cash REAL NOT NULL, position REAL NOT NULL, equity REAL NOT NULL, intents INTEGER NOT NULL,
    after TEXT);
CREATE TABLE IF NOT EXISTS intents (id INTEGER PRIMARY KEY AUTOINCREMENT, tick INTEGER NOT NULL, seq INTEGER NOT NULL,
    intent TEXT NOT NULL, status TEXT NOT NULL, plan TEXT, outcome TEXT, created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL, UNIQUE (tick, seq));
CREATE TABLE IF NOT EXISTS txs (id INTEGER PRIMARY KEY AUTOINCREMENT, intent_id INTEGER NOT NULL, step INTEGER NOT NULL,
    call_hash TEXT NOT NULL, signed_block INTEGER NOT NULL, sender TEXT NOT NULL, nonce INTEGER NOT NULL, safe_nonce INTEGER NOT NULL, hash TEXT NOT NULL UNIQUE,
    raw BLOB NOT NULL, gas_limit INTEGER NOT NULL, max_fee TEXT NOT NULL, priority_fee TEXT NOT NULL,
    status TEXT NOT NULL, block INTEGER, block_hash TEXT, gas_used INTEGER, gas_price TEXT, error TEXT,
    label TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS txs_step ON txs (intent_id, step, call_hash);
";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where a journaled transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// Signed and recorded; maybe broadcast (a crash may have come between).
    Signed,
    /// Accepted by the node.
    Broadcast,
    /// Mined and succeeded (and the Safe's inner call succeeded).
    Mined,
    /// Mined and failed: the step did not happen.
    Failed,
    /// Another transaction at the same nonce (a fee bump of the same step) was mined instead.
    Replaced,
    /// Its nonce was used by a transaction Sextant did not sign: it can never be mined.
    Dropped,
}

impl TxStatus {
    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            TxStatus::Signed => "signed",
            TxStatus::Broadcast => "broadcast",
            TxStatus::Mined => "mined",
            TxStatus::Failed => "failed",
            TxStatus::Replaced => "replaced",
            TxStatus::Dropped => "dropped",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "signed" => TxStatus::Signed,
            "broadcast" => TxStatus::Broadcast,
            "mined" => TxStatus::Mined,
            "failed" => TxStatus::Failed,
            "replaced" => TxStatus::Replaced,
            "dropped" => TxStatus::Dropped,
            other => return Err(Error::Journal(format!("unknown transaction status {other:?}"))),
        })
    }

    /// Whether the transaction may still be mined.
    pub fn in_flight(self) -> bool {
        matches!(self, TxStatus::Signed | TxStatus::Broadcast)
    }
}

/// A journaled transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxRecord {
    /// Row id.
    pub id: i64,
    /// The intent it carries out.
    pub intent_id: i64,
    /// Which step of the intent's plan.
    pub step: u32,
    /// Hash of the call the step makes (target, value, calldata): a re-planned step is a different step.
    pub call_hash: String,
    /// The chain's head when it was signed (where to start looking for it).
    pub signed_block: u64,
    /// Sending account.
    pub sender: String,
    /// Account nonce.
    pub nonce: u64,
    /// Safe nonce of the Safe transaction inside.
    pub safe_nonce: u64,
    /// Transaction hash.
    pub hash: String,
    /// The signed transaction, EIP-2718 encoded.
    #[serde(skip)]
    pub raw: Vec<u8>,
    /// Gas limit.
    pub gas_limit: u64,
    /// Max fee per gas (wei).
    pub max_fee: u128,
    /// Max priority fee per gas (wei).
    pub priority_fee: u128,
    /// Where it stands.
    pub status: TxStatus,
    /// Block it was mined in.
    pub block: Option<u64>,
    /// Hash of that block (to notice reorgs).
    pub block_hash: Option<String>,
    /// Gas used.
    pub gas_used: Option<u64>,
    /// Effective gas price (wei).
    pub gas_price: Option<u128>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// What the call does.
    pub label: String,
    /// When it was signed.
    pub created_ms: i64,
}

/// A transaction about to be broadcast.
#[derive(Debug, Clone)]
pub struct NewTx<'a> {
    /// The intent.
    pub intent_id: i64,
    /// The step.
    pub step: u32,
    /// Hash of the step's call.
    pub call_hash: &'a str,
    /// Head block when signed.
    pub signed_block: u64,
    /// Sending account.
    pub sender: &'a str,
    /// Account nonce.
    pub nonce: u64,
    /// Safe nonce.
    pub safe_nonce: u64,
    /// Hash.
    pub hash: &'a str,
    /// Signed bytes.
    pub raw: &'a [u8],
    /// Gas limit.
    pub gas_limit: u64,
    /// Max fee per gas.
    pub max_fee: u128,
    /// Priority fee per gas.
    pub priority_fee: u128,
    /// What the call does.
    pub label: &'a str,
}

/// Where an intent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Emitted, not settled.
    Pending,
    /// Completed.
    Done,
    /// Gave up.
    Failed,
}

impl IntentStatus {
    fn as_str(self) -> &'static str {
        match self {
            IntentStatus::Pending => "pending",
            IntentStatus::Done => "done",
            IntentStatus::Failed => "failed",
        }
    }
}

/// A journaled intent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentRecord {
    /// Row id.
    pub id: i64,
    /// Tick that emitted it.
    pub tick: u64,
    /// Position among that tick's intents.
    pub seq: u32,
    /// The intent, as JSON.
    pub intent: serde_json::Value,
    /// Where it stands.
    pub status: String,
    /// Its plan (the calls), once made.
    pub plan: Option<serde_json::Value>,
    /// Its outcome, once settled.
    pub outcome: Option<serde_json::Value>,
    /// The intent's JSON text, for exact deserialisation (amounts are 128-bit, beyond `serde_json::Value`).
    #[serde(skip)]
    pub intent_text: String,
    /// The outcome's JSON text.
    #[serde(skip)]
    pub outcome_text: Option<String>,
}

/// The strategy state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    /// Compare-and-swap version: bumped by every write.
    pub version: u64,
    /// Ticks completed.
    pub tick: u64,
    /// The state, as JSON.
    pub state: String,
}

/// The market and portfolio seen at one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickRecord {
    /// Tick number, from 0.
    pub tick: u64,
    /// Wall-clock time of the tick.
    pub timestamp_ms: i64,
    /// Block the market was read at.
    pub block: u64,
    /// Price of the base asset in the quote.
    pub price: f64,
    /// Quote held.
    pub cash: f64,
    /// Base held.
    pub position: f64,
    /// Cash, holdings and LP positions (principal and fees owed) at the price.
    pub equity: f64,
    /// Intents emitted.
    pub intents: u32,
    /// The portfolio once this tick's intents were carried out, when it traded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<PortfolioAfter>,
}

/// Holdings after a tick's trades, valued at the price then.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PortfolioAfter {
    /// Price of the base asset in the quote.
    pub price: f64,
    /// Quote held.
    pub cash: f64,
    /// Base held.
    pub position: f64,
    /// Cash, holdings and LP positions (principal and fees owed) at the price.
    pub equity: f64,
}

/// The deployment's SQLite file.
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// This runner's lock token, once it holds the lock.
    token: Option<String>,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Journal(format!("{}: {e}", path.display()))
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`, in WAL mode with full syncs: a row committed before a
    /// broadcast survives a power cut.
    ///
    /// # Errors
    /// When the file cannot be opened or is not a Sextant journal.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(db_err(path))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err(path))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db_err(path))?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db_err(path))?;
        conn.execute_batch(SCHEMA).map_err(db_err(path))?;
        Ok(Journal { conn, path: path.to_path_buf(), token: None })
    }

    /// Opens an existing journal without creating one (for `status` and `diagnose`).
    ///
    /// # Errors
    /// When there is no file at `path`.
    pub fn open_existing(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::Journal(format!(
                "{}: no deployment state here (sextant run creates it)",
                path.display()
            )));
        }
        Journal::open(path)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        db_err(&self.path)
    }

    /// A metadata value.
    ///
    /// # Errors
    /// Database errors.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(self.err())
    }

    /// Records the deployment's identity on first use; afterwards each value must match, so a journal is never
    /// reused for another Safe, chain or key by mistake.
    ///
    /// # Errors
    /// When a recorded value differs (the message names both), or database errors.
    pub fn bind(&self, identity: &[(&str, String)]) -> Result<()> {
        for (key, value) in identity {
            match self.meta(key)? {
                Some(old) if old.eq_ignore_ascii_case(value) => {}
                Some(old) => {
                    return Err(Error::Journal(format!(
                        "{} belongs to a deployment with {key} = {old}, not {value}; use another --state file",
                        self.path.display()
                    )));
                }
                None => {
                    self.conn
                        .execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", params![key, value])
                        .map_err(self.err())?;
                }
            }
        }
        Ok(())
    }

    /// Takes the runner lock for this process (`pid`, plus a random token so two runners with the same pid in
    /// different containers are still told apart). A lock held by a live process whose heartbeat is younger than
    /// `stale_after_ms` refuses a second runner; a dead or silent holder's lock is taken over.
    ///
    /// # Errors
    /// [`Error::Locked`] when another runner holds the deployment, or database errors.
    pub fn lock(&mut self, owner: &str, pid: u32, stale_after_ms: i64, pid_alive: impl Fn(u32) -> bool) -> Result<()> {
        let now = now_ms();
        let token = format!("{:016x}", rand::random::<u64>());
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err(&self.path))?;
        let held: Option<(String, u32, i64)> = tx
            .query_row("SELECT owner, pid, heartbeat_ms FROM lock WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(db_err(&self.path))?;
        if let Some((holder, held_pid, beat)) = held
            && pid_alive(held_pid)
            && now - beat < stale_after_ms
        {
            return Err(Error::Locked { holder, pid: held_pid, age_ms: now - beat });
        }
        tx.execute(
            "INSERT INTO lock (id, owner, pid, token, heartbeat_ms) VALUES (1, ?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET owner = ?1, pid = ?2, token = ?3, heartbeat_ms = ?4",
            params![owner, pid, token, now],
        )
        .map_err(db_err(&self.path))?;
        tx.commit().map_err(db_err(&self.path))?;
        self.token = Some(token);
        Ok(())
    }

    /// Refreshes this runner's heartbeat (a no-op for a journal that does not hold the lock).
    ///
    /// # Errors
    /// [`Error::Locked`] when another runner took the lock over, or database errors.
    pub fn heartbeat(&self) -> Result<()> {
        let Some(token) = &self.token else { return Ok(()) };
        let n = self
            .conn
            .execute("UPDATE lock SET heartbeat_ms = ?1 WHERE id = 1 AND token = ?2", params![now_ms(), token])
            .map_err(self.err())?;
        if n == 0 {
            return Err(Error::Locked { holder: "another runner".into(), pid: 0, age_ms: 0 });
        }
        Ok(())
    }

    /// Releases the lock if this runner holds it.
    ///
    /// # Errors
    /// Database errors.
    pub fn unlock(&self) -> Result<()> {
        if let Some(token) = &self.token {
            self.conn.execute("DELETE FROM lock WHERE id = 1 AND token = ?1", [token]).map_err(self.err())?;
        }
        Ok(())
    }

    /// Who holds the lock: (owner, pid, heartbeat age in ms).
    ///
    /// # Errors
    /// Database errors.
    pub fn lock_holder(&self) -> Result<Option<(String, u32, i64)>> {
        self.conn
            .query_row("SELECT owner, pid, heartbeat_ms FROM lock WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?, now_ms() - r.get::<_, i64>(2)?))
            })
            .optional()
            .map_err(self.err())
    }

    /// The strategy state, if a tick has run.
    ///
    /// # Errors
    /// Database errors.
    pub fn state(&self) -> Result<Option<StoredState>> {
        self.conn
            .query_row("SELECT version, tick, state FROM strategy_state WHERE id = 1", [], |r| {
                Ok(StoredState { version: r.get(0)?, tick: r.get(1)?, state: r.get(2)? })
            })
            .optional()
            .map_err(self.err())
    }

    fn cas_state(
        tx: &rusqlite::Transaction<'_>,
        expected: Option<u64>,
        tick: u64,
        state: &str,
    ) -> rusqlite::Result<u64> {
        let now = now_ms();
        let n = match expected {
            None => tx.execute(
                "INSERT OR IGNORE INTO strategy_state (id, version, tick, state, updated_ms) VALUES (1, 1, ?1, ?2, ?3)",
                params![tick, state, now],
            )?,
            Some(v) => tx.execute(
                "UPDATE strategy_state SET version = version + 1, tick = ?1, state = ?2, updated_ms = ?3
                 WHERE id = 1 AND version = ?4",
                params![tick, state, now, v],
            )?,
        };
        Ok(if n == 1 { expected.map_or(1, |v| v + 1) } else { 0 })
    }

    /// Commits one tick atomically: the new strategy state (compare-and-swap on `expected_version`), the market
    /// and portfolio seen, and the intents emitted (pending). Returns the new version and the intents' ids.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the stored version is not `expected_version` (another writer), or database errors.
    pub fn commit_tick(
        &mut self,
        expected_version: Option<u64>,
        state: &str,
        record: &TickRecord,
        intents: &[String],
    ) -> Result<(u64, Vec<i64>)> {
        let path = self.path.clone();
        let e = db_err(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let version = Journal::cas_state(&tx, expected_version, record.tick + 1, state).map_err(&e)?;
        if version == 0 {
            return Err(Error::Conflict { expected: expected_version.unwrap_or(0) });
        }
        tx.execute(
            "INSERT INTO ticks (tick, timestamp_ms, block, price, cash, position, equity, intents)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.tick,
                record.timestamp_ms,
                record.block,
                record.price,
                record.cash,
                record.position,
                record.equity,
                record.intents
            ],
        )
        .map_err(&e)?;
        let now = now_ms();
        let mut ids = Vec::with_capacity(intents.len());
        for (seq, intent) in intents.iter().enumerate() {
            tx.execute(
                "INSERT INTO intents (tick, seq, intent, status, created_ms, updated_ms) VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
                params![record.tick, seq as u32, intent, now],
            )
            .map_err(&e)?;
            ids.push(tx.last_insert_rowid());
        }
        tx.commit().map_err(&e)?;
        Ok((version, ids))
    }

    /// Settles an intent and stores the strategy state updated by its outcome, atomically (compare-and-swap).
    /// Returns the new version.
    ///
    /// # Errors
    /// [`Error::Conflict`] on a version mismatch, or database errors.
    pub fn settle_intent(
        &mut self,
        intent_id: i64,
        status: IntentStatus,
        outcome: &str,
        expected_version: u64,
        tick: u64,
        state: &str,
    ) -> Result<u64> {
        let path = self.path.clone();
        let e = db_err(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let version = Journal::cas_state(&tx, Some(expected_version), tick, state).map_err(&e)?;
        if version == 0 {
            return Err(Error::Conflict { expected: expected_version });
        }
        tx.execute(
            "UPDATE intents SET status = ?1, outcome = ?2, updated_ms = ?3 WHERE id = ?4",
            params![status.as_str(), outcome, now_ms(), intent_id],
        )
        .map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(version)
    }

    /// Records an intent's plan (its calls, amounts resolved), so a restart carries out the same plan.
    ///
    /// # Errors
    /// Database errors.
    pub fn set_plan(&self, intent_id: i64, plan: &serde_json::Value) -> Result<()> {
        self.conn
            .execute(
                "UPDATE intents SET plan = ?1, updated_ms = ?2 WHERE id = ?3",
                params![plan.to_string(), now_ms(), intent_id],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The plan recorded for an intent, if any.
    ///
    /// # Errors
    /// Database errors.
    pub fn plan(&self, intent_id: i64) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT plan FROM intents WHERE id = ?1", [intent_id], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map(Option::flatten)
            .map_err(self.err())
    }

    /// Clears a plan whose step failed on chain, so the next attempt plans afresh.
    ///
    /// # Errors
    /// Database errors.
    pub fn clear_plan(&self, intent_id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE intents SET plan = NULL, updated_ms = ?1 WHERE id = ?2", params![now_ms(), intent_id])
            .map_err(self.err())?;
        Ok(())
    }

    fn intent_rows(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<IntentRecord>> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let rows = stmt
            .query_map(args, |r| {
                let json = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str(s).ok());
                let intent_text: Option<String> = r.get(3)?;
                let outcome_text: Option<String> = r.get(6)?;
                Ok(IntentRecord {
                    id: r.get(0)?,
                    tick: r.get(1)?,
                    seq: r.get(2)?,
                    intent: json(&intent_text).unwrap_or_default(),
                    status: r.get(4)?,
                    plan: json(&r.get(5)?),
                    outcome: json(&outcome_text),
                    intent_text: intent_text.unwrap_or_default(),
                    outcome_text,
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// Intents not yet settled, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub fn pending_intents(&self) -> Result<Vec<IntentRecord>> {
        self.intent_rows(
            "SELECT id, tick, seq, intent, status, plan, outcome FROM intents WHERE status = 'pending' ORDER BY id",
            [],
        )
    }

    /// The last `n` intents, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub fn recent_intents(&self, n: u32) -> Result<Vec<IntentRecord>> {
        self.intent_rows(
            "SELECT id, tick, seq, intent, status, plan, outcome FROM intents ORDER BY id DESC LIMIT ?1",
            [n],
        )
    }

    /// Every intent, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub fn all_intents(&self) -> Result<Vec<IntentRecord>> {
        self.intent_rows("SELECT id, tick, seq, intent, status, plan, outcome FROM intents ORDER BY id", [])
    }

    /// Records a signed transaction and syncs it to disk. Call this **before** broadcasting.
    ///
    /// # Errors
    /// Database errors (then do not broadcast).
    pub fn record_signed(&self, t: &NewTx<'_>) -> Result<i64> {
        let now = now_ms();
        self.conn
            .execute(
                "INSERT INTO txs (intent_id, step, sender, nonce, safe_nonce, hash, raw, gas_limit, max_fee,
                 priority_fee, status, label, created_ms, updated_ms, call_hash, signed_block)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'signed', ?11, ?12, ?12, ?13, ?14)",
                params![
                    t.intent_id,
                    t.step,
                    t.sender,
                    t.nonce,
                    t.safe_nonce,
                    t.hash,
                    t.raw,
                    t.gas_limit,
                    t.max_fee.to_string(),
                    t.priority_fee.to_string(),
                    t.label,
                    now,
                    t.call_hash,
                    t.signed_block
                ],
            )
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Moves a transaction to `status`, with where it was mined and why it failed when known.
    ///
    /// # Errors
    /// Database errors.
    pub fn set_tx_status(
        &self,
        id: i64,
        status: TxStatus,
        mined: Option<(u64, &str, u64, u128)>,
        error: Option<&str>,
    ) -> Result<()> {
        let (block, block_hash, gas_used, gas_price) = match mined {
            Some((b, h, g, p)) => (Some(b), Some(h.to_string()), Some(g), Some(p.to_string())),
            None => (None, None, None, None),
        };
        self.conn
            .execute(
                "UPDATE txs SET status = ?1, block = ?2, block_hash = ?3, gas_used = ?4, gas_price = ?5,
                 error = COALESCE(?6, error), updated_ms = ?7 WHERE id = ?8",
                params![status.as_str(), block, block_hash, gas_used, gas_price, error, now_ms(), id],
            )
            .map_err(self.err())?;
        Ok(())
    }

    fn tx_rows(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<TxRecord>> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let rows = stmt
            .query_map(args, |r| {
                let big = |s: Option<String>| s.and_then(|s| s.parse::<u128>().ok());
                Ok((
                    TxRecord {
                        id: r.get(0)?,
                        intent_id: r.get(1)?,
                        step: r.get(2)?,
                        sender: r.get(3)?,
                        nonce: r.get(4)?,
                        safe_nonce: r.get(5)?,
                        hash: r.get(6)?,
                        raw: r.get(7)?,
                        gas_limit: r.get(8)?,
                        max_fee: big(r.get(9)?).unwrap_or(0),
                        priority_fee: big(r.get(10)?).unwrap_or(0),
                        status: TxStatus::Signed,
                        block: r.get(12)?,
                        block_hash: r.get(13)?,
                        gas_used: r.get(14)?,
                        gas_price: big(r.get(15)?),
                        error: r.get(16)?,
                        label: r.get(17)?,
                        created_ms: r.get(18)?,
                        call_hash: r.get(19)?,
                        signed_block: r.get(20)?,
                    },
                    r.get::<_, String>(11)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (mut rec, status) = row.map_err(self.err())?;
            rec.status = TxStatus::parse(&status)?;
            out.push(rec);
        }
        Ok(out)
    }

    const TX_COLUMNS: &'static str = "id, intent_id, step, sender, nonce, safe_nonce, hash, raw, gas_limit, max_fee, \
        priority_fee, status, block, block_hash, gas_used, gas_price, error, label, created_ms, call_hash, signed_block";

    /// The transactions of one intent step making the call `call_hash`, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub fn step_txs(&self, intent_id: i64, step: u32, call_hash: &str) -> Result<Vec<TxRecord>> {
        self.tx_rows(
            &format!(
                "SELECT {} FROM txs WHERE intent_id = ?1 AND step = ?2 AND call_hash = ?3 ORDER BY id",
                Self::TX_COLUMNS
            ),
            params![intent_id, step, call_hash],
        )
    }

    /// Whether any transaction of an intent may still be mined.
    ///
    /// # Errors
    /// Database errors.
    pub fn intent_in_flight(&self, intent_id: i64) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM txs WHERE intent_id = ?1 AND status IN ('signed', 'broadcast'))",
                [intent_id],
                |r| r.get(0),
            )
            .map_err(self.err())
    }

    /// Whether an intent has any journaled transaction at all.
    ///
    /// # Errors
    /// Database errors.
    pub fn intent_has_txs(&self, intent_id: i64) -> Result<bool> {
        self.conn
            .query_row("SELECT EXISTS (SELECT 1 FROM txs WHERE intent_id = ?1)", [intent_id], |r| r.get(0))
            .map_err(self.err())
    }

    /// Records how a nonce was settled, atomically: the transaction that landed (mined or failed, with where) and
    /// its siblings at the same nonce as replaced.
    ///
    /// # Errors
    /// Database errors.
    pub fn settle_nonce(
        &self,
        landed: i64,
        status: TxStatus,
        mined: (u64, &str, u64, u128),
        error: Option<&str>,
        siblings: &[i64],
    ) -> Result<()> {
        let e = db_err(&self.path);
        let tx = self.conn.unchecked_transaction().map_err(&e)?;
        let now = now_ms();
        tx.execute(
            "UPDATE txs SET status = ?1, block = ?2, block_hash = ?3, gas_used = ?4, gas_price = ?5,
             error = COALESCE(?6, error), updated_ms = ?7 WHERE id = ?8",
            params![status.as_str(), mined.0, mined.1, mined.2, mined.3.to_string(), error, now, landed],
        )
        .map_err(&e)?;
        for id in siblings {
            tx.execute(
                "UPDATE txs SET status = 'replaced', updated_ms = ?1 WHERE id = ?2 AND id != ?3",
                params![now, id, landed],
            )
            .map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }

    /// Every transaction, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub fn all_txs(&self) -> Result<Vec<TxRecord>> {
        self.tx_rows(&format!("SELECT {} FROM txs ORDER BY id", Self::TX_COLUMNS), [])
    }

    /// Transactions that may still be mined.
    ///
    /// # Errors
    /// Database errors.
    pub fn in_flight_txs(&self) -> Result<Vec<TxRecord>> {
        self.tx_rows(
            &format!("SELECT {} FROM txs WHERE status IN ('signed', 'broadcast') ORDER BY id", Self::TX_COLUMNS),
            [],
        )
    }

    /// Records the holdings after tick `tick`'s trades.
    ///
    /// # Errors
    /// Database errors.
    pub fn set_tick_after(&self, tick: u64, after: &PortfolioAfter) -> Result<()> {
        let json = serde_json::to_string(after).map_err(|e| Error::Journal(e.to_string()))?;
        self.conn.execute("UPDATE ticks SET after = ?1 WHERE tick = ?2", params![json, tick]).map_err(self.err())?;
        Ok(())
    }

    fn tick_rows(&self, order_limit: &str) -> Result<Vec<TickRecord>> {
        let sql = format!(
            "SELECT tick, timestamp_ms, block, price, cash, position, equity, intents, after FROM ticks {order_limit}"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(TickRecord {
                    tick: r.get(0)?,
                    timestamp_ms: r.get(1)?,
                    block: r.get(2)?,
                    price: r.get(3)?,
                    cash: r.get(4)?,
                    position: r.get(5)?,
                    equity: r.get(6)?,
                    intents: r.get(7)?,
                    after: r.get::<_, Option<String>>(8)?.and_then(|a| serde_json::from_str(&a).ok()),
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// The recorded ticks, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub fn ticks(&self) -> Result<Vec<TickRecord>> {
        self.tick_rows("ORDER BY tick")
    }

    /// The first and the latest tick, without reading the ones between (a deployment may run for years).
    ///
    /// # Errors
    /// Database errors.
    pub fn first_and_last_tick(&self) -> Result<(Option<TickRecord>, Option<TickRecord>)> {
        let first = self.tick_rows("ORDER BY tick LIMIT 1")?.pop();
        let last = self.tick_rows("ORDER BY tick DESC LIMIT 1")?.pop();
        Ok((first, last))
    }

    /// Rows of `table` (`intents` or `txs`) counted by status.
    ///
    /// # Errors
    /// Database errors, or another table name.
    pub fn count_by_status(&self, table: &str) -> Result<std::collections::BTreeMap<String, usize>> {
        if table != "intents" && table != "txs" {
            return Err(Error::Journal(format!("no status counts for table {table}")));
        }
        let mut stmt =
            self.conn.prepare(&format!("SELECT status, COUNT(*) FROM {table} GROUP BY status")).map_err(self.err())?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, usize>(1)?))).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// The last `n` transactions, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub fn recent_txs(&self, n: u32) -> Result<Vec<TxRecord>> {
        self.tx_rows(&format!("SELECT {} FROM txs ORDER BY id DESC LIMIT ?1", Self::TX_COLUMNS), [n])
    }

    /// Gas paid by transactions that landed (mined or failed), in wei.
    ///
    /// # Errors
    /// Database errors.
    pub fn gas_spent_wei(&self) -> Result<u128> {
        let mut stmt = self
            .conn
            .prepare("SELECT gas_used, gas_price FROM txs WHERE status IN ('mined', 'failed')")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, Option<u64>>(0)?, r.get::<_, Option<String>>(1)?)))
            .map_err(self.err())?;
        let mut total = 0u128;
        for row in rows {
            let (used, price) = row.map_err(self.err())?;
            total += u128::from(used.unwrap_or(0)) * price.and_then(|p| p.parse::<u128>().ok()).unwrap_or(0);
        }
        Ok(total)
    }

    /// The latest settled intents that moved tokens, newest first, as (intent id, outcome JSON).
    ///
    /// # Errors
    /// Database errors.
    pub fn recent_outcomes(&self, n: u32) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, outcome FROM intents WHERE status = 'done' AND outcome LIKE '%\"fill\":{%' ORDER BY id DESC LIMIT ?1")
            .map_err(self.err())?;
        let rows = stmt.query_map([n], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(n: u64) -> TickRecord {
        TickRecord {
            tick: n,
            timestamp_ms: 1,
            block: 1,
            price: 2.0,
            cash: 1.0,
            position: 0.0,
            equity: 1.0,
            intents: 1,
            after: None,
        }
    }

    #[test]
    fn state_is_compare_and_swap_and_ticks_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.state().unwrap(), None);
        let (v1, ids) = j.commit_tick(None, "{\"a\":1}", &tick(0), &["{\"intent\":\"hold\"}".to_string()]).unwrap();
        assert_eq!((v1, ids.len()), (1, 1));
        // A writer holding a stale version is refused and changes nothing.
        let stale = j.commit_tick(None, "{}", &tick(1), &[]).unwrap_err();
        assert!(matches!(stale, Error::Conflict { .. }), "{stale}");
        let stale = j.commit_tick(Some(7), "{}", &tick(1), &[]).unwrap_err();
        assert!(matches!(stale, Error::Conflict { .. }));
        assert_eq!(j.ticks().unwrap().len(), 1);
        let v2 = j.settle_intent(ids[0], IntentStatus::Done, "{}", v1, 1, "{\"a\":2}").unwrap();
        assert_eq!(v2, 2);
        assert!(j.pending_intents().unwrap().is_empty());
        // Reopened, everything is there.
        drop(j);
        let j = Journal::open_existing(&path).unwrap();
        assert_eq!(j.state().unwrap().unwrap(), StoredState { version: 2, tick: 1, state: "{\"a\":2}".into() });
    }

    #[test]
    fn transactions_are_recorded_before_broadcast_and_tracked() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("d.db")).unwrap();
        let new = NewTx {
            intent_id: 1,
            step: 0,
            call_hash: "0xc0",
            signed_block: 3,
            sender: "0xabc",
            nonce: 5,
            safe_nonce: 2,
            hash: "0x01",
            raw: &[1, 2, 3],
            gas_limit: 100_000,
            max_fee: 3_000_000_000,
            priority_fee: 1,
            label: "swap",
        };
        let id = j.record_signed(&new).unwrap();
        // The same hash twice is a bug upstream: the journal refuses it.
        assert!(j.record_signed(&new).is_err());
        assert_eq!(j.in_flight_txs().unwrap().len(), 1);
        assert!(j.intent_in_flight(1).unwrap());
        j.set_tx_status(id, TxStatus::Mined, Some((9, "0xblock", 21_000, 7)), None).unwrap();
        assert!(!j.intent_in_flight(1).unwrap());
        let t = &j.step_txs(1, 0, "0xc0").unwrap()[0];
        assert!(j.step_txs(1, 0, "0xother").unwrap().is_empty(), "another call is another step");
        assert_eq!(
            (t.status, t.block, t.gas_used, t.gas_price, t.raw.clone()),
            (TxStatus::Mined, Some(9), Some(21_000), Some(7), vec![1, 2, 3])
        );
        assert!(j.in_flight_txs().unwrap().is_empty());
    }

    #[test]
    fn a_second_runner_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let mut a = Journal::open(&path).unwrap();
        let mut b = Journal::open(&path).unwrap();
        a.lock("runner a", 100, 60_000, |_| true).unwrap();
        // Refused even with the same pid (two containers): the token tells runners apart.
        let e = b.lock("runner b", 100, 60_000, |_| true).unwrap_err();
        assert!(e.to_string().contains("runner a") && e.to_string().contains("100"), "{e}");
        a.heartbeat().unwrap();
        // The holder died (kill -9): its lock is taken over.
        b.lock("runner b", 200, 60_000, |_| false).unwrap();
        assert!(a.heartbeat().is_err());
        assert_eq!(b.lock_holder().unwrap().unwrap().1, 200);
        b.bind(&[("safe", "0xAA".into())]).unwrap();
        b.bind(&[("safe", "0xaa".into())]).unwrap();
        assert!(b.bind(&[("safe", "0xbb".into())]).unwrap_err().to_string().contains("0xAA"));
    }
}
