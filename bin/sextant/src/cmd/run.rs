//! `sextant run`, `status`, `teardown` and `diagnose`: strategy deployments on a chain, from the user's Safe.

use anyhow::{Context, Result, bail};
use sextant_chain::{Registry, Rpc, parse_address};
use sextant_exec::LocalKey;
use sextant_exec::journal::Journal;
use sextant_runtime::schedule::{Cron, Schedule, parse_interval};
use sextant_runtime::{Deployment, DeploymentConfig, OpenOptions, TickKind, TickReport, metrics};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where and as whom a deployment trades (shared by `run` and `teardown`).
#[derive(clap::Args)]
pub struct Target {
    /// The strategy config (TOML: [strategy], [risk] and [live]; a backtest config with a [live] table works).
    config: PathBuf,
    /// JSON-RPC endpoint of the chain (http:// or https://).
    #[arg(long)]
    rpc: String,
    /// Keystore file of a Safe owner key (Web3 Secret Storage, as `sextant key new` writes).
    #[arg(long)]
    keystore: PathBuf,
    /// Read the keystore password from this file (first line) [else SEXTANT_KEY_PASSWORD, else a prompt].
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// The Safe the strategy trades from.
    #[arg(long)]
    safe: String,
    /// The deployment's SQLite state (journal, strategy state) [default: .sextant/<safe>.db, or
    /// .sextant/paper-<safe>.db with --paper].
    #[arg(long)]
    state: Option<PathBuf>,
    /// Paper trading: fork the --rpc chain into a private local anvil and trade there; nothing reaches the real
    /// chain.
    #[arg(long)]
    paper: bool,
    /// A chain registry file whose chains are added to (or replace) the built-in ones.
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Log lines as text or as JSON objects (one per line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Run a strategy live from a Safe: each tick reads the pool price and the Safe's balances, asks the strategy (the
/// same code as the backtest), and executes its intents as Safe transactions, journaled so a crash never sends one
/// twice.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// Time between ticks (e.g. 30s, 5m, 1h).
    #[arg(long, default_value = "30s", conflicts_with = "cron")]
    interval: String,
    /// Tick on a cron schedule instead (five fields, UTC), e.g. "*/5 * * * *".
    #[arg(long)]
    cron: Option<String>,
    /// Stop after this many ticks (default: run until killed; a restart resumes from the state file).
    #[arg(long)]
    max_ticks: Option<u64>,
    /// Serve Prometheus metrics at this address, e.g. 127.0.0.1:9464.
    #[arg(long)]
    metrics_addr: Option<String>,
}

/// Unwind a deployment's positions: the strategy's teardown intents (sell everything back to the quote token),
/// executed through the Safe like any tick.
#[derive(clap::Args)]
pub struct TeardownArgs {
    #[command(flatten)]
    target: Target,
}

/// Show a deployment's state: strategy state version, ticks, last market, PnL, open intents, recent transactions.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// The deployment's SQLite state file.
    #[arg(long)]
    state: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Explain a stuck deployment: runner, RPC, pending nonces, underpriced or unknown transactions, failures.
#[derive(clap::Args)]
pub struct DiagnoseArgs {
    /// The deployment's SQLite state file.
    #[arg(long)]
    state: PathBuf,
    /// JSON-RPC endpoint, for the chain-side checks.
    #[arg(long)]
    rpc: Option<String>,
}

fn short(s: &str) -> String {
    if s.len() > 14 { format!("{}…{}", &s[..8], &s[s.len() - 4..]) } else { s.to_string() }
}

fn print_event(format: LogFormat, event: &str, fields: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    if format == LogFormat::Json {
        let mut obj = serde_json::json!({ "ts_ms": sextant_exec::journal::now_ms(), "event": event });
        if let (Some(o), Some(f)) = (obj.as_object_mut(), fields.as_object()) {
            o.extend(f.clone());
        }
        let _ = writeln!(out, "{obj}");
        return;
    }
    let f = fields;
    let line = match event {
        "open" => format!(
            "deployment on {} (chain {}): Safe {} (v{}, nonce {}), key {} via {}, state {}",
            f["chain"].as_str().unwrap_or(""),
            f["chain_id"],
            f["safe"].as_str().unwrap_or(""),
            f["safe_version"].as_str().unwrap_or(""),
            f["safe_nonce"],
            f["sender"].as_str().unwrap_or(""),
            match f["route"].as_str() {
                Some("owner") | None => "owner signature",
                Some(other) => other,
            },
            f["state"].as_str().unwrap_or("")
        ),
        "tick" => format!(
            "tick {} · block {} · price {:.4} · cash {:.2} · position {:.6} · equity {:.2} · {} intent(s)",
            f["tick"],
            f["block"],
            f["price"].as_f64().unwrap_or(0.0),
            f["cash"].as_f64().unwrap_or(0.0),
            f["position"].as_f64().unwrap_or(0.0),
            f["equity"].as_f64().unwrap_or(0.0),
            f["intents"]
        ),
        "intent" => format!("  intent {}: {}", f["intent_id"], describe(f["intent"].as_str().unwrap_or(""))),
        "intent_resume" => format!("  resuming intent {} from tick {}", f["intent_id"], f["tick"]),
        "exec" => format!("    {}", f["message"].as_str().unwrap_or("")),
        "intent_settled" => {
            let o = &f["outcome"];
            match o["status"].as_str() {
                Some("completed") if o.get("sold").is_some() => format!(
                    "  intent {} done: sold {} {} for {} {} at {:.4} (gas {:.4}, {} attempt(s))",
                    f["intent_id"],
                    num(&o["amount_in"]),
                    o["sold"].as_str().unwrap_or(""),
                    num(&o["amount_out"]),
                    o["bought"].as_str().unwrap_or(""),
                    o["price"].as_f64().unwrap_or(0.0),
                    o["gas_paid"].as_f64().unwrap_or(0.0),
                    o["attempts"]
                ),
                Some("completed") => format!("  intent {} done", f["intent_id"]),
                _ => format!(
                    "  intent {} FAILED ({}): {}",
                    f["intent_id"],
                    o["kind"].as_str().unwrap_or(""),
                    o["error"].as_str().unwrap_or("")
                ),
            }
        }
        "intent_waiting" => format!(
            "  intent {} waits for the next tick after {} attempt(s): {}",
            f["intent_id"],
            f["attempts"],
            f["error"].as_str().unwrap_or("")
        ),
        "teardown" => match f["unsettled_or_failed"].as_u64() {
            Some(0) => format!("teardown: {} unwind intent(s), all done", f["intents"]),
            _ => format!("teardown: {} unwind intent(s), {} not done", f["intents"], f["unsettled_or_failed"]),
        },
        "rpc_retried" => format!("  RPC: {} request(s) failed transiently this tick and were retried", f["failures"]),
        "tick_failed" => format!("tick failed, trying again next tick: {}", f["error"].as_str().unwrap_or("")),
        "waiting" => format!("waiting: {} earlier intent(s) still pending", f["pending_intents"]),
        other => format!("{other} {f}"),
    };
    let _ = writeln!(out, "{line}");
}

/// A human amount with at most 6 decimals, trailing zeros dropped.
fn num(v: &serde_json::Value) -> String {
    let x = v.as_f64().unwrap_or(0.0);
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One line for an intent's JSON: `swap all WETH -> USDC (no price-impact cap)`.
fn describe(json: &str) -> String {
    use sextant_types::{AmountSpec, Intent};
    let amount = |a: &AmountSpec, t: &sextant_types::Token| match a {
        AmountSpec::All => format!("all {}", t.symbol),
        AmountSpec::Exact(x) => format!("{} {}", num(&serde_json::json!(x.to_units(t))), t.symbol),
    };
    match serde_json::from_str::<Intent>(json) {
        Ok(Intent::Swap { sell, buy, amount: a, max_slippage_bps }) => {
            let cap = if max_slippage_bps == u32::MAX {
                "no price-impact cap".to_string()
            } else {
                format!("price impact <= {max_slippage_bps} bps")
            };
            format!("swap {} -> {} ({cap})", amount(&a, &sell), buy.symbol)
        }
        Ok(Intent::Hold { reason }) => format!("hold: {reason}"),
        Ok(other) => format!("{:?}", other.kind()),
        Err(_) => json.to_string(),
    }
}

fn registry(path: Option<&Path>) -> Result<Registry> {
    Ok(match path {
        Some(p) => Registry::with_file(p)?,
        None => Registry::built_in(),
    })
}

/// An anvil fork for --paper, stopped when dropped.
struct PaperFork {
    dir: PathBuf,
    url: String,
}

impl Drop for PaperFork {
    fn drop(&mut self) {
        let _ = sextant_devnet::down(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Opens the target's deployment and runs `body` with it.
fn with_deployment(t: Target, body: impl FnOnce(&mut Deployment<'_>, LogFormat) -> Result<()>) -> Result<()> {
    let config = DeploymentConfig::load(&t.config)?;
    let safe = parse_address(&t.safe).context("--safe")?;
    let password = super::key::password(t.password_file.clone(), false)?;
    let key = LocalKey::unlock_file(&t.keystore, &password)?;
    let fork = if t.paper {
        let dir = PathBuf::from(".sextant").join(format!("paper-fork-{}", std::process::id()));
        let devnet = sextant_devnet::up(&sextant_devnet::UpOptions {
            port: 0,
            state_dir: dir.clone(),
            anvil: None,
            deploy: false,
            fork_url: Some(t.rpc.clone()),
        })
        .with_context(|| format!("--paper: cannot fork {} into a local anvil", t.rpc))?;
        println!("paper trading on a private fork of {} at {}", t.rpc, devnet.rpc_url);
        Some(PaperFork { dir, url: devnet.rpc_url })
    } else {
        None
    };
    let url = fork.as_ref().map_or(t.rpc.as_str(), |f| f.url.as_str());
    let rpc = Rpc::new(url, Duration::from_secs(config.live.rpc_timeout_secs))?;
    let state = t.state.clone().unwrap_or_else(|| {
        let name = format!("{}{safe:#x}.db", if t.paper { "paper-" } else { "" });
        PathBuf::from(".sextant").join(name)
    });
    if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let format = t.log_format;
    let mut dep = Deployment::open(OpenOptions {
        config,
        rpc: &rpc,
        signer: &key,
        safe,
        state,
        registry: registry(t.registry.as_deref())?,
        log: Box::new(move |e, f| print_event(format, e, &f)),
    })?;
    let result = body(&mut dep, format);
    dep.close()?;
    result
}

pub fn run(args: RunArgs) -> Result<()> {
    let schedule = match &args.cron {
        Some(expr) => Schedule::Cron(Box::new(Cron::parse(expr)?)),
        None => Schedule::Every(parse_interval(&args.interval)?),
    };
    let shared: metrics::Shared = Arc::new(Mutex::new(String::new()));
    if let Some(addr) = &args.metrics_addr {
        let bound = metrics::serve(addr, shared.clone())?;
        println!("metrics at http://{bound}/metrics");
    }
    let max_ticks = args.max_ticks;
    with_deployment(args.target, |dep, format| {
        let mut ticks = 0u64;
        loop {
            let failures_before = dep.rpc_transient_failures();
            match dep.tick(TickKind::Step) {
                Ok(TickReport::Waiting { pending }) => {
                    print_event(format, "waiting", &serde_json::json!({ "pending_intents": pending }));
                }
                Ok(TickReport::Stepped { .. }) => {}
                Err(e) if e.is_transient() => {
                    print_event(format, "tick_failed", &serde_json::json!({ "error": e.to_string() }));
                }
                Err(e) => return Err(e.into()),
            }
            let failures = dep.rpc_transient_failures();
            if failures > failures_before {
                print_event(
                    format,
                    "rpc_retried",
                    &serde_json::json!({ "failures": failures - failures_before, "total": failures }),
                );
            }

            ticks += 1;
            if let Ok(st) = sextant_runtime::status(dep.journal())
                && let Ok(mut m) = shared.lock()
            {
                *m = metrics::render(&st, failures);
            }
            if max_ticks.is_some_and(|m| ticks >= m) {
                return Ok(());
            }
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            std::thread::sleep(schedule.wait(now));
        }
    })
}

pub fn teardown(args: TeardownArgs) -> Result<()> {
    with_deployment(args.target, |dep, format| {
        match dep.tick(TickKind::Teardown)? {
            TickReport::Waiting { pending } => {
                bail!("{pending} earlier intent(s) are still pending; run teardown again once they settle")
            }
            TickReport::Stepped { outcomes, .. } => {
                let failed = outcomes
                    .iter()
                    .filter(|(_, o)| {
                        !o.as_ref().is_some_and(|o| {
                            o.fill().is_some() || matches!(o.status, sextant_strategy::FlowStatus::Completed { .. })
                        })
                    })
                    .count();
                print_event(
                    format,
                    "teardown",
                    &serde_json::json!({ "intents": outcomes.len(), "unsettled_or_failed": failed }),
                );
                if failed > 0 {
                    bail!("{failed} unwind intent(s) did not complete; see `sextant diagnose`");
                }
            }
        }
        Ok(())
    })
}

pub fn status(args: StatusArgs) -> Result<()> {
    let journal = Journal::open_existing(&args.state)?;
    let st = sextant_runtime::status(&journal)?;
    let mut o = std::io::stdout().lock();
    if args.json {
        writeln!(o, "{}", serde_json::to_string_pretty(&st)?)?;
        return Ok(());
    }
    let d = |k: &str| st.deployment.get(k).cloned().unwrap_or_else(|| "?".into());
    let quote = d("quote");
    writeln!(o, "deployment   chain {} · Safe {} · key {}", d("chain_id"), d("safe"), d("sender"))?;
    writeln!(o, "strategy     {} ({}/{})", d("strategy"), d("base"), quote)?;
    match &st.runner {
        Some(r) if r.alive => writeln!(
            o,
            "runner       pid {} running, heartbeat {:.1} s ago",
            r.pid,
            r.heartbeat_age_ms as f64 / 1000.0
        )?,
        Some(r) => writeln!(o, "runner       pid {} not running (stopped or crashed; `sextant run` resumes)", r.pid)?,
        None => writeln!(o, "runner       none")?,
    }
    writeln!(o, "state        version {}, {} tick(s)", st.state_version, st.ticks)?;
    if let Some(t) = &st.last_tick {
        writeln!(
            o,
            "last tick    #{} · block {} · price {:.4} {quote} · cash {:.2} {quote} · position {:.6} {} · equity {:.2} {quote}",
            t.tick,
            t.block,
            t.price,
            t.cash,
            t.position,
            d("base"),
            t.equity
        )?;
        if let Some(a) = &t.after {
            writeln!(
                o,
                "after trades price {:.4} {quote} · cash {:.2} {quote} · position {:.6} {} · equity {:.2} {quote}",
                a.price,
                a.cash,
                a.position,
                d("base"),
                a.equity
            )?;
        }
    }
    if let (Some(pnl), Some(first)) = (st.pnl, st.first_equity) {
        writeln!(o, "PnL          {pnl:+.2} {quote} since the first tick (equity {first:.2} -> {:.2})", first + pnl)?;
    }
    let count = |m: &std::collections::BTreeMap<String, usize>, k: &str| m.get(k).copied().unwrap_or(0);
    writeln!(
        o,
        "intents      {} done, {} failed, {} pending",
        count(&st.intents_by_status, "done"),
        count(&st.intents_by_status, "failed"),
        count(&st.intents_by_status, "pending")
    )?;
    for i in &st.open_intents {
        writeln!(o, "  open #{} (tick {}): {}", i.id, i.tick, i.intent)?;
    }
    writeln!(o, "gas spent    {:.6} native", st.gas_spent_wei as f64 / 1e18)?;
    if st.recent_txs.is_empty() {
        writeln!(o, "transactions none yet")?;
    } else {
        writeln!(o, "recent transactions:")?;
        for t in &st.recent_txs {
            let block = t.block.map_or_else(|| "-".to_string(), |b| b.to_string());
            writeln!(
                o,
                "  {}  {:<9} nonce {:<4} block {:<6} {}",
                short(&t.hash),
                t.status.as_str(),
                t.nonce,
                block,
                t.label
            )?;
        }
    }
    Ok(())
}

pub fn diagnose(args: DiagnoseArgs) -> Result<()> {
    let journal = Journal::open_existing(&args.state)?;
    let rpc = args.rpc.as_deref().map(|u| Rpc::new(u, Duration::from_secs(5))).transpose()?;
    let findings = sextant_runtime::diagnose(&journal, rpc.as_ref())?;
    let mut o = std::io::stdout().lock();
    for f in &findings {
        writeln!(o, "{:<5} {}", f.level, f.message)?;
    }
    Ok(())
}
