use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use sextant_data::{Interval, Profile, SynthSpec, time::parse_time, write_ohlcv};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Generate a seeded synthetic market as OHLCV CSV (GBM with jumps and volatility regimes, or a stablecoin peg).
    ///
    /// The same seed gives the same bars on every machine. Output columns: timestamp,open,high,low,close,volume.
    Synth(SynthArgs),
    /// Generate a synthetic Uniswap v3 pool's history as a minute file in demeter's format.
    ///
    /// The pool is the one an LP config backtests on ([market] price path, [pool] size; default: the built-in
    /// examples/lp-blue-chip.toml), replayed without any strategy. Columns: timestamp, netAmount0, netAmount1,
    /// closeTick, openTick, lowestTick, highestTick, inAmount0, inAmount1, currentLiquidity. Give the file to an LP
    /// config as pool.data, or to demeter, to compare the two on the same data.
    PoolMinutes(PoolMinutesArgs),
    /// Write the lending-rate series a lending config backtests on, as CSV.
    ///
    /// The markets are the config's [lending] markets (default: the built-in examples/stable-rotator.toml, six
    /// synthetic USDC markets, one drained and frozen 70 % of the way through). Columns: timestamp, market,
    /// supply_apy, borrow_apy, tvl_usd, utilization, reward_apy, frozen, bad_debt (APYs and utilisation as fractions).
    /// Edit it, or replace it with real history in the same columns, and give it to a config as lending.data.
    Rates(RatesArgs),
}

#[derive(clap::Args)]
struct RatesArgs {
    /// Lending config whose markets to write (default: the built-in stable-rotator example).
    config: Option<PathBuf>,
    /// Random seed, replacing the config's lending.seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Number of observations per market, replacing lending.steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

/// The config `sextant data rates` writes when none is given.
const ROTATOR_EXAMPLE: &str = include_str!("../../../../examples/stable-rotator.toml");

#[derive(clap::Args)]
struct PoolMinutesArgs {
    /// LP config whose synthetic pool to write (default: the built-in lp-blue-chip example).
    config: Option<PathBuf>,
    /// Number of steps, replacing the config's market.bars.
    #[arg(long)]
    bars: Option<usize>,
    /// Step interval, replacing the config's market.interval (demeter's files are 1m).
    #[arg(long, value_enum, default_value = "1m")]
    interval: IntervalArg,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

/// The config `sextant data pool-minutes` writes when none is given.
const LP_EXAMPLE: &str = include_str!("../../../../examples/lp-blue-chip.toml");

#[derive(Clone, Copy, ValueEnum)]
enum IntervalArg {
    #[value(name = "1m")]
    M1,
    #[value(name = "5m")]
    M5,
    #[value(name = "15m")]
    M15,
    #[value(name = "1h")]
    H1,
    #[value(name = "4h")]
    H4,
    #[value(name = "1d")]
    D1,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    /// Volatile asset: 60 % annual volatility, stressed regimes at 3x, jumps.
    Volatile,
    /// Stablecoin: mean-reverts to the start price (the peg), rare small depegs.
    Stable,
}

#[derive(clap::Args)]
struct SynthArgs {
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of bars.
    #[arg(long, default_value_t = 5000)]
    bars: usize,
    /// Bar interval.
    #[arg(long, value_enum, default_value = "1h")]
    interval: IntervalArg,
    /// First open price.
    #[arg(long, default_value_t = 2000.0)]
    start_price: f64,
    /// Market character.
    #[arg(long, value_enum, default_value = "volatile")]
    profile: ProfileArg,
    /// Time of the first bar (ISO-8601 or unix seconds/ms).
    #[arg(long, default_value = "2024-01-01T00:00:00Z")]
    start: String,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        DataCommand::Synth(a) => synth(a),
        DataCommand::PoolMinutes(a) => pool_minutes(a),
        DataCommand::Rates(a) => rates(a),
    }
}

fn rates(a: RatesArgs) -> Result<()> {
    let name = a.config.as_ref().map_or("the built-in example".into(), |p| p.display().to_string());
    let mut config = match &a.config {
        Some(path) => sextant_backtest::BacktestConfig::load(path)?,
        None => sextant_backtest::BacktestConfig::parse(ROTATOR_EXAMPLE, "examples/stable-rotator.toml")?,
    };
    anyhow::ensure!(config.is_lending(), "{name} is not a lending config ([strategy] kind = \"stable_rotator\")");
    let lending = config.lending.get_or_insert_with(Default::default);
    if let Some(seed) = a.seed {
        lending.seed = seed;
    }
    if let Some(steps) = a.steps {
        anyhow::ensure!((1..=10_000_000).contains(&steps), "--steps must be between 1 and 10000000, got {steps}");
        lending.steps = steps;
    }
    let market = config.load_lending()?;
    let series: Vec<_> = market.markets.iter().map(|m| m.series.clone()).collect();
    let text = sextant_data::write_rates(&series);
    match &a.out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            let rows = text.lines().count().saturating_sub(1);
            eprintln!("{rows} rows of {} written to {}", market.source, path.display());
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

fn pool_minutes(a: PoolMinutesArgs) -> Result<()> {
    let mut config = match &a.config {
        Some(path) => sextant_backtest::BacktestConfig::load(path)?,
        None => sextant_backtest::BacktestConfig::parse(LP_EXAMPLE, "examples/lp-blue-chip.toml")?,
    };
    anyhow::ensure!(config.is_lp(), "{} is not an LP config ([strategy] kind = \"dynamic_lp\")", config_name(&a));
    anyhow::ensure!(
        config.pool.as_ref().is_none_or(|p| p.data.is_none()),
        "{} replays a minute file already (pool.data); this writes synthetic pools",
        config_name(&a)
    );
    if let Some(bars) = a.bars {
        config.market.bars = bars;
    }
    config.market.interval = match a.interval {
        IntervalArg::M1 => "1m",
        IntervalArg::M5 => "5m",
        IntervalArg::M15 => "15m",
        IntervalArg::H1 => "1h",
        IntervalArg::H4 => "4h",
        IntervalArg::D1 => "1d",
    }
    .into();
    let market = config.load_pool()?;
    let mut pool = market.pool.clone();
    let rows = match &a.out {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let rows = sextant_data::pool_minutes::write_pool_minutes(&mut pool, &market.steps, &mut w)?;
            w.flush()?;
            rows
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            let rows = sextant_data::pool_minutes::write_pool_minutes(&mut pool, &market.steps, &mut w)?;
            w.flush()?;
            rows
        }
    };
    if let Some(path) = &a.out {
        eprintln!("{rows} rows of {} written to {}", market.source, path.display());
    }
    Ok(())
}

fn config_name(a: &PoolMinutesArgs) -> String {
    a.config.as_ref().map_or("the built-in example".into(), |p| p.display().to_string())
}

fn synth(a: SynthArgs) -> Result<()> {
    let interval = match a.interval {
        IntervalArg::M1 => Interval::M1,
        IntervalArg::M5 => Interval::M5,
        IntervalArg::M15 => Interval::M15,
        IntervalArg::H1 => Interval::H1,
        IntervalArg::H4 => Interval::H4,
        IntervalArg::D1 => Interval::D1,
    };
    let profile = match a.profile {
        ProfileArg::Volatile => Profile::Volatile,
        ProfileArg::Stable => Profile::Stable,
    };
    let (start_ms, _) = parse_time(&a.start)
        .with_context(|| format!("--start: expected an ISO-8601 datetime or unix time, got {:?}", a.start))?;
    let spec = SynthSpec { seed: a.seed, bars: a.bars, interval, start_price: a.start_price, start_ms, profile };
    let series = spec.generate()?;
    match a.out {
        Some(path) => {
            let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            write_ohlcv(std::io::BufWriter::new(file), &series)?;
        }
        None => {
            let stdout = std::io::stdout().lock();
            let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout);
            write_ohlcv(&mut out, &series)?;
            out.flush()?;
        }
    }
    Ok(())
}
