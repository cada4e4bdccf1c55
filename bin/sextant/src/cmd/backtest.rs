use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sextant_backtest::report::{
    format_lp_metric, format_metric, html_report, json_report, lending_html_report, lending_json_report,
    lp_html_report, lp_json_report, lp_metric_rows,
};
use sextant_backtest::{BacktestConfig, Engine, Market, Metrics, Snapshot, build_strategy};
use sextant_data::FileFeed;
use sextant_strategies::{IndicatorState, IndicatorStrategy};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The config `sextant backtest` runs when none is given: RSI(14) 30/70 on the built-in synthetic market.
pub const DEFAULT_CONFIG: &str = include_str!("../../../../examples/rsi.toml");

/// Backtest a strategy config and print its metrics.
///
/// Without CONFIG, runs the built-in example (examples/rsi.toml: RSI mean reversion on a seeded synthetic market).
/// A config without [market] data trades a synthetic market too, so nothing needs downloading.
#[derive(clap::Args)]
pub struct Args {
    /// Strategy config (TOML). See examples/*.toml and docs/CONFIG.md.
    config: Option<PathBuf>,
    /// OHLCV CSV to trade instead of the config's [market] data (single-asset configs only).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Write metrics, trades and the equity curve as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    /// Write a self-contained HTML report (equity and drawdown charts, trade table) to this file.
    #[arg(long, value_name = "OUT.html")]
    report: Option<PathBuf>,
    /// Stop after this many steps, save the whole state to --save-state and print no metrics.
    #[arg(long, value_name = "STEPS", requires = "save_state")]
    stop_after: Option<usize>,
    /// Write the engine's state (strategy state, portfolio, queued intents, trades, equity) to this JSON file.
    #[arg(long, value_name = "FILE")]
    save_state: Option<PathBuf>,
    /// Continue a run from a state saved by --save-state with the same config; ends identical to an
    /// uninterrupted run.
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,
}

/// A saved run: the config it belongs to, a digest of its data, and the engine's snapshot (a candle or an LP
/// engine's).
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedState<Snap> {
    /// The config the run was started with, as resolved TOML; a resume must match it.
    config: String,
    /// A digest of the data the run trades on (every bar, or the pool and its flow); a resume must see the same.
    data: String,
    snapshot: Snap,
}

/// Reads a saved run and checks it belongs to this config (`config_text`) and data (`data`, described as `what`).
fn read_saved<Snap: serde::de::DeserializeOwned>(
    path: &Path,
    config_text: &str,
    data: &str,
    name: &str,
    what: &str,
) -> Result<Snap> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let saved: SavedState<Snap> = serde_json::from_reader(std::io::BufReader::new(file))
        .with_context(|| format!("{}: not a saved backtest state", path.display()))?;
    anyhow::ensure!(
        saved.config == config_text,
        "{} was saved from a different config than {name}; resume with the config it was started with",
        path.display()
    );
    anyhow::ensure!(
        saved.data == data,
        "{} was saved from different {what} than {name} now loads; resume on the same data",
        path.display()
    );
    Ok(saved.snapshot)
}

/// Writes a run's state for `--resume`.
fn write_saved<Snap: serde::Serialize>(path: &Path, config: String, data: String, snapshot: &Snap) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    serde_json::to_writer(std::io::BufWriter::new(file), &SavedState { config, data, snapshot })
        .with_context(|| format!("writing {}", path.display()))
}

/// FNV-1a over every field of every bar, so a resume notices a data file that changed under the same name.
fn fingerprint(markets: &[Market]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for m in markets {
        eat(m.series.candles.len() as u64);
        for c in &m.series.candles {
            eat(c.timestamp_ms as u64);
            for v in [c.open, c.high, c.low, c.close, c.volume] {
                eat(v.to_bits());
            }
        }
    }
    format!("{h:016x}")
}

/// Loads the config named on the command line (or the built-in one) and applies `--data`.
pub fn load_config(path: Option<&Path>, data: Option<PathBuf>) -> Result<(BacktestConfig, String)> {
    let (mut config, name) = match path {
        Some(p) => (BacktestConfig::load(p)?, p.display().to_string()),
        None => (BacktestConfig::parse(DEFAULT_CONFIG, "examples/rsi.toml")?, "examples/rsi.toml (built in)".into()),
    };
    if let Some(data) = data {
        anyhow::ensure!(
            config.market.assets.is_empty(),
            "--data replaces a single market's data, but {name} lists {} [[market.assets]]",
            config.market.assets.len()
        );
        anyhow::ensure!(!config.is_lp(), "--data gives candles; an LP config replays a pool: set pool.data in {name}");
        anyhow::ensure!(
            !config.is_lending(),
            "--data gives candles; a lending config reads rates: set lending.data in {name}"
        );
        config.market.data = Some(data);
    }
    Ok((config, name))
}

/// Runs a config on markets loaded in memory, resuming from and saving state as asked. Returns None when the run
/// stopped early (`--stop-after`) and its state was saved.
fn run_loaded(
    a: &Args,
    config: &BacktestConfig,
    name: &str,
    engine: &Engine<'_, IndicatorStrategy>,
    markets: &[Market],
) -> Result<Option<Snapshot<IndicatorState>>> {
    let steps = markets.iter().map(|m| m.series.len()).max().unwrap_or(0) as u64;
    let bar = ProgressBar::new(steps).with_style(
        ProgressStyle::with_template("{spinner} backtest [{bar:40}] {pos}/{len} bars ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Only long runs get a bar; indicatif also hides it when stderr is not a terminal.
    if steps < 200_000 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    // The config as resolved (data paths included) identifies the run a state belongs to.
    let config_text = toml::to_string(config).context("config cannot be written back as TOML")?;
    let mut snap = match &a.resume {
        Some(path) => {
            let snap: Snapshot<IndicatorState> =
                read_saved(path, &config_text, &fingerprint(markets), name, "market data")?;
            engine.check_snapshot(&snap)?;
            snap
        }
        None => engine.start(),
    };
    bar.set_position(snap.next_step as u64);
    engine.advance(&mut snap, a.stop_after, &mut |step| bar.set_position(step as u64));
    bar.finish_and_clear();
    if let Some(path) = &a.save_state {
        write_saved(path, config_text, fingerprint(markets), &snap)?;
        if a.stop_after.is_some() {
            let mut o = std::io::stdout().lock();
            writeln!(o, "stopped after step {}; state saved to {}", snap.next_step, path.display())?;
            return Ok(None);
        }
    }
    Ok(Some(snap))
}

/// FNV-1a over the pool's starting state and every step of its flow, so a resume notices other data.
fn flow_fingerprint(market: &sextant_backtest::PoolMarket) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    let p = &market.pool;
    eat(&p.sqrt_price_x96.to_le_bytes::<32>());
    eat(&p.liquidity.to_le_bytes());
    for (t, info) in &p.ticks {
        eat(&t.to_le_bytes());
        eat(&info.liquidity_net.to_le_bytes());
    }
    for s in &market.steps {
        eat(&s.timestamp_ms.to_le_bytes());
        eat(&s.background_liquidity.unwrap_or(u128::MAX).to_le_bytes());
        eat(&[u8::from(s.recentre)]);
        for w in &s.swaps {
            eat(&[u8::from(w.zero_for_one)]);
            eat(&w.amount_specified.to_le_bytes::<32>());
            eat(&w.sqrt_price_limit_x96.to_le_bytes::<32>());
        }
        if let Some((a, b)) = s.volume_in {
            eat(&a.to_le_bytes::<32>());
            eat(&b.to_le_bytes::<32>());
        }
        eat(&s.close_sqrt_price_x96.unwrap_or_default().to_le_bytes::<32>());
    }
    format!("{h:016x}")
}

/// Backtests an LP config on its pool and prints the LP metrics beside the usual ones. A plain run reads a minute
/// file while it backtests; saving or resuming a state loads the flow first (its digest ties a state to its flow).
fn run_lp(a: &Args, config: &BacktestConfig, name: &str) -> Result<()> {
    if a.resume.is_some() || a.save_state.is_some() || a.stop_after.is_some() {
        return run_lp_resumable(a, config, name);
    }
    // The step count is known only at the end of a streamed file: a counter, shown when the flow is long (a
    // minute file of 24 MiB holds about 170,000 minutes).
    let long = match config.pool.as_ref().and_then(|p| p.data.as_ref()) {
        Some(path) => std::fs::metadata(path).is_ok_and(|m| m.len() >= 24 << 20),
        None => config.market.bars >= 200_000,
    };
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} LP backtest: {human_pos} steps in {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    if !long {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let r = sextant_backtest::run_lp_backtest(config, &mut |step| bar.set_position(step as u64))?;
    bar.finish_and_clear();
    print_lp(a, name, &r)
}

/// [`run_lp`] with `--resume`, `--save-state` or `--stop-after`.
fn run_lp_resumable(a: &Args, config: &BacktestConfig, name: &str) -> Result<()> {
    let market = config.load_pool()?;
    let strategy = sextant_backtest::build_lp_strategy(config, &market)?;
    let engine = sextant_backtest::LpEngine::new(&strategy, &market, config.costs(), config.portfolio.initial_cash);
    let bar = ProgressBar::new(market.steps.len() as u64).with_style(
        ProgressStyle::with_template("{spinner} LP backtest [{bar:40}] {pos}/{len} steps ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if market.steps.len() < 200_000 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let config_text = toml::to_string(config).context("config cannot be written back as TOML")?;
    // The flow's digest (a pass over every step) only when a saved state is read or written.
    let data = || flow_fingerprint(&market);
    let mut snap = match &a.resume {
        Some(path) => {
            let snap: sextant_backtest::LpSnapshot<_> = read_saved(path, &config_text, &data(), name, "pool or flow")?;
            anyhow::ensure!(
                snap.next_step <= market.steps.len() && snap.equity.len() == snap.next_step,
                "{}: the saved state does not fit this pool's {} steps",
                path.display(),
                market.steps.len()
            );
            snap
        }
        None => engine.start(),
    };
    bar.set_position(snap.next_step as u64);
    engine.advance(&mut snap, a.stop_after, &mut |step| bar.set_position(step as u64));
    if let Some(path) = &a.save_state {
        write_saved(path, config_text, data(), &snap)?;
        if a.stop_after.is_some() {
            bar.finish_and_clear();
            writeln!(
                std::io::stdout().lock(),
                "stopped after step {}; state saved to {}",
                snap.next_step,
                path.display()
            )?;
            return Ok(());
        }
    }
    let r = engine.finish(snap);
    bar.finish_and_clear();
    print_lp(a, name, &r)
}

/// Prints an LP backtest's metrics and writes its `--json` and `--report` outputs.
fn print_lp(a: &Args, name: &str, r: &sextant_backtest::LpBacktestResult) -> Result<()> {
    let style = sextant_market::TimeStyle::default();
    let mut o = std::io::stdout().lock();
    writeln!(o, "{} LP backtest of {name}", r.result.strategy)?;
    for m in &r.result.markets {
        writeln!(o, "  pool {m}")?;
    }
    let failed = failed_summary(&r.result.flows);
    writeln!(
        o,
        "  {} steps, {} swaps replayed ({} refused, {} tick crossings), {} ranges, intents failed: {failed}\n",
        r.prices.len(),
        r.flow.0,
        r.flow.1,
        r.flow.2,
        r.positions.len()
    )?;
    writeln!(o, "{:<16} {:>14}", "metric", "value")?;
    for (metric, v) in lp_metric_rows(&r.lp) {
        writeln!(o, "{metric:<16} {:>14}", format_lp_metric(metric, v))?;
    }
    for metric in ["total_return", "volatility", "sharpe", "max_drawdown", "final_equity"] {
        let v = r.result.metrics.get(metric).unwrap_or(f64::NAN);
        writeln!(o, "{metric:<16} {:>14}", format_metric(metric, v))?;
    }
    write_outputs(
        &mut o,
        a,
        || lp_json_report(r, style),
        || {
            let title = format!("Sextant LP backtest: {}", r.result.strategy);
            lp_html_report(r, style, &title)
        },
    )?;
    Ok(())
}

/// "none", or how many intents failed for each reason.
fn failed_summary(flows: &sextant_backtest::FlowStats) -> String {
    let failed: Vec<String> = flows.failed.iter().map(|(why, n)| format!("{n} {why}")).collect();
    if failed.is_empty() { "none".to_string() } else { failed.join(", ") }
}

/// Writes the `--json` document and the `--report` page when asked, and says where.
fn write_outputs<J: serde::Serialize>(
    o: &mut impl Write,
    a: &Args,
    json: impl FnOnce() -> J,
    html: impl FnOnce() -> String,
) -> Result<()> {
    if let Some(path) = &a.json {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer(std::io::BufWriter::new(file), &json())
            .with_context(|| format!("writing {}", path.display()))?;
        writeln!(o, "\njson written to {}", path.display())?;
    }
    if let Some(path) = &a.report {
        std::fs::write(path, html()).with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(o, "report written to {}", path.display())?;
    }
    Ok(())
}

/// FNV-1a over every observation of every lending market, so a resume notices other rates.
fn rates_fingerprint<'a>(series: impl IntoIterator<Item = &'a sextant_market::RateSeries>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for s in series {
        eat(s.points.len() as u64);
        for p in &s.points {
            eat(p.timestamp_ms as u64);
            for v in [p.supply_apy, p.borrow_apy, p.tvl_usd, p.utilization, p.reward_apy, p.bad_debt] {
                eat(v.to_bits());
            }
            eat(u64::from(p.frozen));
        }
    }
    format!("{h:016x}")
}

/// Resumes a run from `--resume` or starts it, runs it to `--stop-after` or the end, and saves it to
/// `--save-state`. Returns None when the run stopped early and its state was saved.
fn resumable<Snap: serde::Serialize + serde::de::DeserializeOwned>(
    a: &Args,
    config: &BacktestConfig,
    name: &str,
    data: String,
    start: impl FnOnce() -> Snap,
    advance: impl FnOnce(&mut Snap, Option<usize>),
    next_step: impl Fn(&Snap) -> usize,
) -> Result<Option<Snap>> {
    let config_text = toml::to_string(config).context("config cannot be written back as TOML")?;
    let mut snap = match &a.resume {
        Some(path) => read_saved(path, &config_text, &data, name, "data")?,
        None => start(),
    };
    advance(&mut snap, a.stop_after);
    if let Some(path) = &a.save_state {
        write_saved(path, config_text, data, &snap)?;
        if a.stop_after.is_some() {
            writeln!(
                std::io::stdout().lock(),
                "stopped after step {}; state saved to {}",
                next_step(&snap),
                path.display()
            )?;
            return Ok(None);
        }
    }
    Ok(Some(snap))
}

/// Backtests a lending config (the Stable Rotator) on its markets and prints the markets, the metrics and the end
/// of the decision log.
fn run_lending(a: &Args, config: &BacktestConfig, name: &str) -> Result<()> {
    let market = config.load_lending()?;
    let strategy = sextant_backtest::build_rotator(config)?;
    let engine =
        sextant_backtest::LendingEngine::new(&strategy, &market, config.costs(), config.portfolio.initial_cash);
    let config_text = toml::to_string(config).context("config cannot be written back as TOML")?;
    let data = rates_fingerprint(market.markets.iter().map(|m| &m.series));
    let mut snap = match &a.resume {
        Some(path) => {
            let snap: sextant_backtest::LendingSnapshot<_> = read_saved(path, &config_text, &data, name, "rates")?;
            anyhow::ensure!(
                snap.next_step <= market.times.len() && snap.equity.len() == snap.next_step,
                "{}: the saved state does not fit these markets' {} steps",
                path.display(),
                market.times.len()
            );
            snap
        }
        None => engine.start(),
    };
    engine.advance(&mut snap, a.stop_after, &mut |_| {});
    if let Some(path) = &a.save_state {
        write_saved(path, config_text, data, &snap)?;
        if a.stop_after.is_some() {
            writeln!(
                std::io::stdout().lock(),
                "stopped after step {}; state saved to {}",
                snap.next_step,
                path.display()
            )?;
            return Ok(());
        }
    }
    let r = engine.finish(snap);
    let style = sextant_market::TimeStyle::default();
    let mut o = std::io::stdout().lock();
    writeln!(o, "{} lending backtest of {name}", r.result.strategy)?;
    for m in &r.result.markets {
        writeln!(o, "  rates {m}")?;
    }
    let failed = failed_summary(&r.result.flows);
    let claims = r.decisions.iter().filter(|d| d.action == "claim").count();
    writeln!(
        o,
        "  {} steps, {} deposits and withdrawals, {claims} reward claims, intents failed: {failed}\n",
        r.result.equity.len(),
        r.movements.len()
    )?;
    writeln!(
        o,
        "{:<18} {:<12} {:>9} {:>10} {:>13} {:>12} {:>13}",
        "market", "protocol", "mean APY", "time held", "interest", "lost", "held at end"
    )?;
    for m in &r.markets {
        writeln!(
            o,
            "{:<18} {:<12} {:>8.2}% {:>9.1}% {:>13.2} {:>12.2} {:>13.2}",
            m.market,
            m.protocol.name(),
            m.mean_supply_apy * 100.0,
            m.time_held * 100.0,
            m.interest,
            m.lost,
            m.held_at_end
        )?;
    }
    writeln!(o, "\n{:<16} {:>14}", "metric", "value")?;
    writeln!(o, "{:<16} {:>13.3}%", "realised_apy", r.realised_apy * 100.0)?;
    writeln!(o, "{:<16} {:>13.3}%", "best_single_apy", r.best_single_apy * 100.0)?;
    writeln!(o, "{:<16} {:>14.2}", "rewards_claimed", r.rewards_claimed)?;
    for metric in ["gas_paid", "total_return", "max_drawdown", "final_equity"] {
        let v = r.result.metrics.get(metric).unwrap_or(f64::NAN);
        writeln!(o, "{metric:<16} {:>14}", format_metric(metric, v))?;
    }
    let shown = r.decisions.len().min(8);
    writeln!(o, "\ndecision log: {} decisions, the last {shown}:", r.decisions.len())?;
    for d in &r.decisions[r.decisions.len() - shown..] {
        writeln!(
            o,
            "  {}  {:<8} {} -> {}  {:.2}  [{}] {}",
            sextant_data::time::format_time(d.timestamp_ms, style),
            d.action,
            d.from.as_deref().unwrap_or("cash"),
            d.to.as_deref().unwrap_or("cash"),
            d.amount,
            d.rule,
            d.detail
        )?;
    }
    write_outputs(
        &mut o,
        a,
        || lending_json_report(&r, style),
        || {
            let title = format!("Sextant lending backtest: {}", r.result.strategy);
            lending_html_report(&r, style, &title)
        },
    )?;
    Ok(())
}

/// Backtests a leverage loop and prints its health, liquidations and the end of its decision log.
fn run_leverage(a: &Args, config: &BacktestConfig, name: &str) -> Result<()> {
    let market = config.load_leverage()?;
    let strategy = sextant_backtest::build_leverage(config, &market)?;
    let engine =
        sextant_backtest::LeverageEngine::new(&strategy, &market, config.costs(), config.portfolio.initial_cash);
    let data = fingerprint(&[sextant_backtest::Market {
        base: market.collateral.clone(),
        quote: market.debt.clone(),
        series: market.candles.clone(),
        source: market.source.clone(),
    }]);
    let Some(snap) =
        resumable(a, config, name, data, || engine.start(), |s, until| engine.advance(s, until), |s| s.next_step)?
    else {
        return Ok(());
    };
    let r = engine.finish(snap);
    let style = sextant_market::TimeStyle::default();
    let mut o = std::io::stdout().lock();
    writeln!(o, "{} leverage backtest of {name}", r.result.strategy)?;
    for m in &r.result.markets {
        writeln!(o, "  collateral {m}")?;
    }
    let failed = failed_summary(&r.result.flows);
    writeln!(
        o,
        "  {} steps, {} intents completed, {} liquidations, intents failed: {failed}\n",
        r.result.equity.len(),
        r.result.flows.completed,
        r.liquidations.len()
    )?;
    writeln!(o, "{:<20} {:>14}", "metric", "value")?;
    let hf = r.min_health_factor.map_or("n/a".to_string(), |h| format!("{h:.3}"));
    writeln!(o, "{:<20} {:>14}", "min_health_factor", hf)?;
    writeln!(o, "{:<20} {:>14.2}", "max_leverage", r.max_leverage)?;
    writeln!(o, "{:<20} {:>14.2}", "interest_paid", r.interest_paid)?;
    writeln!(o, "{:<20} {:>14.2}", "interest_earned", r.interest_earned)?;
    writeln!(o, "{:<20} {:>14.2}", "liquidation_penalty", r.liquidation_penalty)?;
    writeln!(o, "{:<20} {:>14.2}", "hold_value", r.hold_value)?;
    for metric in ["total_return", "max_drawdown", "gas_paid", "fees_paid", "final_equity"] {
        let v = r.result.metrics.get(metric).unwrap_or(f64::NAN);
        writeln!(o, "{metric:<20} {:>14}", format_metric(metric, v))?;
    }
    for l in &r.liquidations {
        writeln!(
            o,
            "  liquidated {} at {:.2}: health factor {:.4}, {:.2} {} repaid, {:.6} {} taken (protocol fee {:.6}), penalty {:.2}",
            sextant_data::time::format_time(l.timestamp_ms, style),
            l.price,
            f64::from(l.result.health_factor_before) / 1e18,
            f64::from(l.result.debt_repaid)
                / 10f64.powi(config.leverage.clone().unwrap_or_default().debt_decimals.into()),
            config.market.quote,
            f64::from(l.result.collateral_to_liquidator + l.result.protocol_fee)
                / 10f64.powi(config.leverage.clone().unwrap_or_default().collateral_decimals.into()),
            config.market.symbol,
            f64::from(l.result.protocol_fee)
                / 10f64.powi(config.leverage.clone().unwrap_or_default().collateral_decimals.into()),
            l.penalty
        )?;
    }
    let shown = r.decisions.len().min(6);
    writeln!(o, "\ndecision log: {} decisions, the last {shown}:", r.decisions.len())?;
    for d in &r.decisions[r.decisions.len() - shown..] {
        writeln!(
            o,
            "  {}  {:<8} {:.2}  [{}] {}",
            sextant_data::time::format_time(d.timestamp_ms, style),
            d.action,
            d.amount,
            d.rule,
            d.detail
        )?;
    }
    let report = serde_json::json!({
        "report": json_report(&r.result, style),
        "liquidations": r.liquidations.iter().map(|l| serde_json::json!({
            "time": sextant_data::time::format_time(l.timestamp_ms, style),
            "price": l.price,
            "health_factor_before": l.result.health_factor_before.to_string(),
            "debt_repaid": l.result.debt_repaid.to_string(),
            "collateral_to_liquidator": l.result.collateral_to_liquidator.to_string(),
            "protocol_fee": l.result.protocol_fee.to_string(),
            "penalty": l.penalty,
        })).collect::<Vec<_>>(),
        "decisions": r.decisions,
        "min_health_factor": r.min_health_factor,
        "max_leverage": r.max_leverage,
        "interest_paid": r.interest_paid,
        "interest_earned": r.interest_earned,
        "liquidation_penalty": r.liquidation_penalty,
        "hold_value": r.hold_value,
        "health": r.health,
    });
    write_outputs(
        &mut o,
        a,
        || &report,
        || {
            let title = format!("Sextant leverage backtest: {}", r.result.strategy);
            html_report(&r.result, style, &title)
        },
    )?;
    Ok(())
}

/// Backtests a fixed-against-floating yield strategy and prints it beside holding the floating market.
fn run_fixed_yield(a: &Args, config: &BacktestConfig, name: &str) -> Result<()> {
    let pt_data = config.load_fixed_yield()?;
    let strategy = sextant_backtest::build_fixed_yield(config, &pt_data)?;
    let engine = sextant_backtest::fixed_yield::FixedYieldEngine::new(
        &strategy,
        &pt_data,
        config.costs(),
        config.portfolio.initial_cash,
    );
    let data = rates_fingerprint([&pt_data.floating, &pt_data.implied]);
    let Some(snap) =
        resumable(a, config, name, data, || engine.start(), |s, until| engine.advance(s, until), |s| s.next_step)?
    else {
        return Ok(());
    };
    let r = engine.finish(snap);
    let style = sextant_market::TimeStyle::default();
    let mut o = std::io::stdout().lock();
    writeln!(o, "{} fixed-yield backtest of {name}", r.result.strategy)?;
    for m in &r.result.markets {
        writeln!(o, "  rates {m}")?;
    }
    let failed = failed_summary(&r.result.flows);
    writeln!(
        o,
        "  {} steps, {} intents completed, intents failed: {failed}\n",
        r.result.equity.len(),
        r.result.flows.completed
    )?;
    writeln!(o, "{:<16} {:>14}", "metric", "value")?;
    writeln!(o, "{:<16} {:>13.3}%", "realised_apy", r.realised_apy * 100.0)?;
    writeln!(o, "{:<16} {:>13.3}%", "floating_apy", r.floating_apy * 100.0)?;
    writeln!(o, "{:<16} {:>13.1}%", "time_in_pt", r.time_in_pt * 100.0)?;
    for metric in ["total_return", "max_drawdown", "gas_paid", "fees_paid", "slippage_paid", "final_equity"] {
        let v = r.result.metrics.get(metric).unwrap_or(f64::NAN);
        writeln!(o, "{metric:<16} {:>14}", format_metric(metric, v))?;
    }
    let bench = r.benchmark.last().map_or(0.0, |b| b.equity);
    writeln!(o, "{:<16} {:>14.2}", "floating_only", bench)?;
    writeln!(o, "\ndecision log: {} decisions:", r.decisions.len())?;
    for d in r.decisions.iter().take(12) {
        writeln!(
            o,
            "  {}  {:<8} {} -> {}  {:.2}  [{}] {}",
            sextant_data::time::format_time(d.timestamp_ms, style),
            d.action,
            d.from.as_deref().unwrap_or("cash"),
            d.to.as_deref().unwrap_or("cash"),
            d.amount,
            d.rule,
            d.detail
        )?;
    }
    if r.decisions.len() > 12 {
        writeln!(o, "  ... {} more in --json", r.decisions.len() - 12)?;
    }
    let report = serde_json::json!({
        "report": json_report(&r.result, style),
        "realised_apy": r.realised_apy,
        "floating_apy": r.floating_apy,
        "time_in_pt": r.time_in_pt,
        "benchmark": r.benchmark,
        "decisions": r.decisions,
    });
    write_outputs(
        &mut o,
        a,
        || &report,
        || {
            let title = format!("Sextant fixed-yield backtest: {}", r.result.strategy);
            html_report(&r.result, style, &title)
        },
    )?;
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    let (config, name) = load_config(a.config.as_deref(), a.data.clone())?;
    if config.is_fixed_yield() {
        return run_fixed_yield(&a, &config, &name);
    }
    if config.is_leverage() {
        return run_leverage(&a, &config, &name);
    }
    if config.is_lending() {
        return run_lending(&a, &config, &name);
    }
    if config.is_lp() {
        return run_lp(&a, &config, &name);
    }
    let strategy = build_strategy(&config)?;
    // One asset from a file, with no state to save or check against the whole data: stream the file, so parsing
    // and the backtest overlap and memory stays small. Otherwise load every market first.
    let streamed = if a.save_state.is_none() && a.resume.is_none() { config.stream_market() } else { None };
    let (result, bars, style) = match streamed {
        Some((market, path)) => {
            let markets = [market];
            let engine = Engine::new(&strategy, &markets, config.costs(), config.portfolio.initial_cash);
            let mut feed = FileFeed::open(path, markets[0].base.clone(), markets[0].quote.clone());
            let spinner = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} backtest {pos} bars ({per_sec})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            let mut snap = engine.start();
            engine.advance_feed(&mut snap, &mut feed, None, &mut |step| spinner.set_position(step as u64));
            spinner.finish_and_clear();
            let (bars, style) = feed.finish()?;
            (engine.finish(snap), bars, style)
        }
        None => {
            let markets = config.load_markets()?;
            let engine = Engine::new(&strategy, &markets, config.costs(), config.portfolio.initial_cash);
            let Some(snap) = run_loaded(&a, &config, &name, &engine, &markets)? else { return Ok(()) };
            let bars = markets.iter().map(|m| m.series.len()).sum();
            let style = markets.first().map(|m| m.series.time_style).unwrap_or_default();
            (engine.finish(snap), bars, style)
        }
    };

    let mut o = std::io::stdout().lock();
    writeln!(o, "{} backtest of {name}", result.strategy)?;
    for m in &result.markets {
        writeln!(o, "  market {m}")?;
    }
    let failed = failed_summary(&result.flows);
    writeln!(o, "  {bars} bars, {} trades, intents failed: {failed}\n", result.trades.len())?;
    writeln!(o, "{:<16} {:>14}", "metric", "value")?;
    for metric in Metrics::NAMES {
        let v = result.metrics.get(metric).unwrap_or(f64::NAN);
        writeln!(o, "{metric:<16} {:>14}", format_metric(metric, v))?;
    }
    write_outputs(
        &mut o,
        &a,
        || json_report(&result, style),
        || {
            let title = format!("Sextant backtest: {}", result.strategy);
            html_report(&result, style, &title)
        },
    )?;
    Ok(())
}
