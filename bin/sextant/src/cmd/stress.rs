use super::batch;
use anyhow::{Context, Result, bail};
use sextant_backtest::report::{format_metric, stress_html_report};
use sextant_backtest::stress::{PathModel, PoolStress, Scenario, Stress, StressData, StressSpec, SummaryBuilder};
use sextant_backtest::sweep::{Shard, merge};
use std::io::Write;
use std::path::PathBuf;

/// Stress-test a strategy: run it over Monte-Carlo paths of its market (block bootstrap of the data's returns, or a
/// regime-switching jump model fitted to them), with named crisis scenarios laid on every path, and report the
/// distribution of each metric, the probability of loss and of ruin, and the worst path.
///
/// Scenarios (from each path's middle bar on): flash_crash (-40% within an hour, back to -20% over a day),
/// slow_bear (-50% over the rest of the path), vol_spike (moves x3 for a tenth of the path), depeg (assets near 1 go
/// to 0.90 for a week), liquidity_drain (pool depth / 10), gas_spike (gas x20).
///
/// Every finished path is appended to the results file as it completes (Ctrl-C keeps them; --resume finishes);
/// --shard i/n runs a deterministic slice and `sextant stress merge` joins the slices.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    sub: Option<Sub>,
    /// Strategy config (TOML, candle data).
    #[arg(required = true)]
    config: Option<PathBuf>,
    /// How many paths [default: 200; 1 for --model history].
    #[arg(long)]
    paths: Option<usize>,
    /// How paths are made: block bootstrap of the data, a regime-switching jump model fitted to it, or the data
    /// itself (one path: scenarios on the real history).
    #[arg(long, value_enum, default_value_t = ModelKind::Bootstrap)]
    model: ModelKind,
    /// Bootstrap: bars per block.
    #[arg(long, default_value_t = 24)]
    block_bars: usize,
    /// A scenario laid on every path (repeatable; applied in the order given).
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Seed of the paths (the same seed makes the same paths).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The max drawdown that counts as ruin.
    #[arg(long, default_value_t = 0.5)]
    ruin_drawdown: f64,
    #[command(flatten)]
    batch: batch::BatchArgs,
    /// Write the summary (percentiles, probabilities, worst path, fan) as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    /// Write an HTML report (fan chart of equity, worst path, metric distributions) to this file.
    #[arg(long, value_name = "OUT")]
    report: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Merge the results files of a sharded stress run (one per shard, any order) into one, equal path for path to
    /// the unsharded run's, and summarise it.
    Merge {
        /// Where to write the merged results.
        #[arg(long)]
        out: PathBuf,
        /// The max drawdown that counts as ruin.
        #[arg(long, default_value_t = 0.5)]
        ruin_drawdown: f64,
        /// The shards' results files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModelKind {
    Bootstrap,
    Regime,
    History,
}

pub fn run(a: Args) -> Result<()> {
    if let Some(Sub::Merge { out, ruin_drawdown, inputs }) = a.sub {
        let report = merge(&inputs, &out)?;
        println!(
            "{} of {} paths merged from {} files into {}",
            report.points,
            report.total,
            inputs.len(),
            out.display()
        );
        let mut summary = SummaryBuilder::new(ruin_drawdown);
        for p in sextant_backtest::sweep::read_results(&out)?.1 {
            summary.push(&p?.1)?;
        }
        print_summary(&mut std::io::stdout().lock(), &summary.finish())?;
        return Ok(());
    }
    let Some(config_path) = a.config.as_ref() else { bail!("a config is required") };
    let name = config_path.display().to_string();
    let text = std::fs::read_to_string(config_path).with_context(|| format!("cannot read {name}"))?;
    let base: toml::Table = toml::from_str(&text).with_context(|| format!("{name}: invalid TOML"))?;
    let config = sextant_backtest::BacktestConfig::load(config_path)?;
    if config.is_leverage() || config.is_fixed_yield() {
        bail!(
            "sextant stress runs candle, dynamic_lp and stable_rotator configs so far; {name} is a leverage or \
             fixed-yield config"
        );
    }
    if !(a.ruin_drawdown > 0.0 && a.ruin_drawdown <= 1.0) {
        bail!("--ruin-drawdown must be in (0, 1], got {}", a.ruin_drawdown);
    }
    let (markets, lending, pool) = if config.is_lending() {
        (Vec::new(), Some(config.load_lending()?), None)
    } else if config.is_lp() {
        let Some(spec) = config.pool_synth()? else {
            bail!(
                "{name} trades a pool recorded in a file (pool.data): stress paths are made for synthetic pools only"
            );
        };
        let series = spec.market.generate()?;
        let base = sextant_types::Token::simulated(&config.market.symbol, 18)?;
        let quote = sextant_types::Token::simulated(&config.market.quote, 6)?;
        let candles = vec![sextant_backtest::Market { base, quote, series, source: "the pool's price path".into() }];
        (Vec::new(), None, Some(PoolStress { candles, spec }))
    } else {
        (config.load_markets()?, None, None)
    };
    let data = match (&lending, &pool) {
        (Some(l), _) => StressData::Lending(l),
        (None, Some(p)) => StressData::Pool(p),
        (None, None) => StressData::Candles(&markets),
    };
    let model = match a.model {
        ModelKind::Bootstrap => PathModel::Bootstrap { block: a.block_bars.max(1) },
        ModelKind::Regime => PathModel::Regime,
        ModelKind::History => PathModel::History,
    };
    let paths = a.paths.unwrap_or(if matches!(model, PathModel::History) { 1 } else { 200 });
    let scenarios = a.scenarios.iter().map(|s| Scenario::parse(s)).collect::<Result<Vec<_>, _>>()?;
    let spec = StressSpec { paths, seed: a.seed, model, scenarios };
    let shard = a.batch.shard()?;
    let jobs = a.batch.jobs();
    let stress = Stress { config: &config, data, spec: &spec, shard, jobs };
    stress.check()?;

    let header = spec.header(&base, shard);
    let out = a.batch.out.clone().unwrap_or_else(|| batch::default_out(config_path, &header, "stress"));
    let mine = shard.points(paths).count();
    let mut results = batch::Results::open(&out, &header, mine, a.batch.resume, a.batch.fresh)?;
    let stop = batch::stop_flag()?;
    let bar = batch::progress("stress", mine);
    let mut summary = SummaryBuilder::new(a.ruin_drawdown);
    let mut bad_line = None;
    let w = &mut results.writer;
    let outcome = stress.run(&mut results.previous, &stop, &|| bar.inc(1), &mut |_, line| {
        writeln!(w, "{line}").map_err(|e| sextant_backtest::Error::Grid(format!("{}: {e}", out.display())))?;
        if let Err(e) = summary.push(line) {
            bad_line = Some(e);
        }
        Ok(())
    });
    bar.finish_and_clear();
    results.close()?;
    let outcome = outcome?;
    if let Some(e) = bad_line {
        return Err(e.into());
    }
    // the strategy on the data as it was, with the same scenarios, for reference
    let history = Stress {
        spec: &StressSpec { paths: 1, model: PathModel::History, ..spec.clone() },
        ..Stress { config: &config, data, spec: &spec, shard: Shard::ALL, jobs: 1 }
    }
    .run_path(0)?;
    let summary = summary.finish();

    let mut o = std::io::stdout().lock();
    let of = if shard == Shard::ALL {
        String::new()
    } else {
        format!(" (shard {}/{} of {})", shard.index, shard.count, paths)
    };
    writeln!(o, "{mine} paths{of} of {name}: {} on {jobs} threads", spec.describe())?;
    print_summary(&mut o, &summary)?;
    writeln!(
        o,
        "the data itself{}: total return {}, max drawdown {}, sharpe {}",
        if spec.scenarios.is_empty() { "" } else { " with the scenarios" },
        format_metric("total_return", history.metrics.total_return),
        format_metric("max_drawdown", history.metrics.max_drawdown),
        format_metric("sharpe", history.metrics.sharpe)
    )?;
    eprintln!("results: {} ({} paths run, {} kept from before)", out.display(), outcome.evaluated, outcome.reused);
    if let Some(path) = &a.json {
        let doc = serde_json::json!({ "config": name, "spec": spec, "shard": shard, "summary": summary,
            "history": history.metrics });
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &doc)?;
        eprintln!("json written to {}", path.display());
    }
    if let Some(path) = &a.report {
        // the curve's points are evenly spaced steps of the run on the data itself
        let n = history.equity.len().max(1);
        let points = sextant_backtest::stress::CURVE_POINTS;
        let times: Vec<i64> =
            (0..points).map(|k| history.equity.get(k * (n - 1) / (points - 1)).map_or(0, |p| p.timestamp_ms)).collect();
        let style = markets.first().map(|m| m.series.time_style).unwrap_or_default();
        let html = stress_html_report(&summary, &times, style, &format!("Stress: {name} ({})", spec.describe()));
        std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    if outcome.stopped {
        eprintln!(
            "stopped: {} of {mine} paths done; run the same command with --resume to finish",
            outcome.evaluated + outcome.reused
        );
        std::process::exit(130);
    }
    Ok(())
}

fn print_summary(o: &mut impl Write, s: &sextant_backtest::stress::StressSummary) -> Result<()> {
    writeln!(
        o,
        "{:<14} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "metric", "p5", "p25", "median", "p75", "p95", "mean"
    )?;
    for (name, p, mean) in &s.metrics {
        if !["total_return", "cagr", "sharpe", "max_drawdown", "n_trades", "final_equity", "gas_paid"]
            .contains(&name.as_str())
        {
            continue;
        }
        write!(o, "{name:<14}")?;
        for v in p.iter().chain([mean]) {
            write!(o, " {:>10}", format_metric(name, *v))?;
        }
        writeln!(o)?;
    }
    writeln!(
        o,
        "P(loss) = {:.1}%   P(ruin: drawdown >= {:.0}%) = {:.1}%   {} paths{}{}",
        100.0 * s.p_loss,
        100.0 * s.ruin_drawdown,
        100.0 * s.p_ruin,
        s.paths,
        if s.failed > 0 { format!(", {} failed", s.failed) } else { String::new() },
        if s.sampled < s.paths { format!(" (percentiles from a sample of {})", s.sampled) } else { String::new() }
    )?;
    if let Some((index, ret, dd)) = s.worst {
        writeln!(
            o,
            "worst path: #{index}, total return {}, max drawdown {}",
            format_metric("total_return", ret),
            format_metric("max_drawdown", dd)
        )?;
    }
    Ok(())
}
