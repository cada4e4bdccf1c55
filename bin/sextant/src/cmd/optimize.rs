use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sextant_backtest::report::{format_lp_metric, format_metric};
use sextant_backtest::sweep::{SweepData, grid_points, parse_grid, run_sweep};
use std::io::Write;
use std::path::PathBuf;

/// Run a parameter grid over a config in parallel and print the best points, ranked.
///
/// Grid syntax: axes separated by `;`, each `key=values`; values are a comma list and/or inclusive ranges
/// `lo..hi:step`. Bare keys are [strategy] parameters; name other tables in full (risk.cooldown_bars=0,5).
/// Example: --grid "period=7,14,21;oversold=20..35:5" tries 12 points.
#[derive(clap::Args)]
pub struct Args {
    /// Strategy config (TOML) whose values the grid overrides.
    config: PathBuf,
    /// The grid, e.g. "period=7,14,21;oversold=20..35:5".
    #[arg(long)]
    grid: String,
    /// Worker threads [default: all cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Metric to rank by (higher is better, except max_drawdown, volatility and the costs).
    #[arg(long, default_value = "sharpe")]
    metric: String,
    /// How many of the best points to print.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Write every point's parameters and metrics, ranked, as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let name = a.config.display().to_string();
    let text = std::fs::read_to_string(&a.config).with_context(|| format!("cannot read {name}"))?;
    let base: toml::Table = toml::from_str(&text).with_context(|| format!("{name}: invalid TOML"))?;
    let config = sextant_backtest::BacktestConfig::load(&a.config)?;
    let axes = parse_grid(&a.grid)?;
    let total = grid_points(&axes).len();
    let lending = if config.is_lending() { Some(config.load_lending()?) } else { None };
    let (markets, pool) = if config.is_lp() {
        (Vec::new(), Some(config.load_pool()?))
    } else if lending.is_some() {
        (Vec::new(), None)
    } else {
        (config.load_markets()?, None)
    };
    let data = match (&pool, &lending) {
        (Some(pool), _) => SweepData::Pool(pool),
        (None, Some(lending)) => SweepData::Lending(lending),
        (None, None) => SweepData::Markets(&markets),
    };
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{spinner} optimize [{bar:40}] {pos}/{len} points ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let dir = a.config.parent().map(PathBuf::from).unwrap_or_default();
    let points = run_sweep(&base, &dir, &axes, data, &a.metric, jobs, &|| bar.inc(1))?;
    bar.finish_and_clear();

    let mut o = std::io::stdout().lock();
    writeln!(o, "{total} points of {name} on {jobs} threads, ranked by {}", a.metric)?;
    let shown: &[&str] = if pool.is_some() {
        &["fees_earned", "value_vs_hold", "time_in_range", "rebalances", "total_return", "final_equity"]
    } else if lending.is_some() {
        &["cagr", "total_return", "gas_paid", "max_drawdown", "final_equity"]
    } else {
        &["total_return", "sharpe", "max_drawdown", "n_trades", "final_equity"]
    };
    let mut columns: Vec<&str> = vec![a.metric.as_str()];
    columns.extend(shown.iter().filter(|c| **c != a.metric));
    write!(o, "{:>4}  {:<32}", "rank", "params")?;
    for c in &columns {
        write!(o, " {c:>14}")?;
    }
    writeln!(o)?;
    for (i, p) in points.iter().take(a.top).enumerate() {
        write!(o, "{:>4}  {:<32}", i + 1, p.params)?;
        for c in &columns {
            let v = p.get(c).unwrap_or(f64::NAN);
            let text = if p.metrics.get(c).is_some() { format_metric(c, v) } else { format_lp_metric(c, v) };
            write!(o, " {text:>14}")?;
        }
        writeln!(o)?;
    }
    if let Some(path) = &a.json {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &points)?;
        writeln!(o, "json written to {}", path.display())?;
    }
    Ok(())
}
