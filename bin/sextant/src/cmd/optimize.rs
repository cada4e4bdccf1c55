use super::batch;
use anyhow::{Context, Result, bail};
use sextant_backtest::Metrics;
use sextant_backtest::report::{SweepReport, format_lp_metric, format_metric};
use sextant_backtest::sweep::{
    Constraint, Leaderboard, Objective, Scored, Search, Shard, Space, Sweep, SweepData, SweepHeader, merge, parse_grid,
    read_results, score,
};
use sextant_backtest::walk_forward::{WalkData, WalkForward, Windows};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Run a parameter sweep over a config in parallel, stream every point to a results file, and print the best.
///
/// Grid syntax: axes separated by `;`, each `key=values`; values are a comma list and/or inclusive ranges
/// `lo..hi:step`. Bare keys are [strategy] parameters; name other tables in full (risk.cooldown_bars=0,5).
/// Example: --grid "period=7,14,21;oversold=20..35:5" tries 12 points; --search random --samples 500 draws 500
/// points from a larger grid.
///
/// Every finished point is appended to the results file (JSON lines) as it completes: Ctrl-C stops the sweep after
/// the points under way and keeps everything finished; --resume finishes it. --shard i/n runs a deterministic slice
/// (on as many machines as you like); `sextant optimize merge` joins the slices into exactly the unsharded results.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    sub: Option<Sub>,
    /// Strategy config (TOML) whose values the grid overrides.
    #[arg(required = true)]
    config: Option<PathBuf>,
    /// The grid, e.g. "period=7,14,21;oversold=20..35:5".
    #[arg(long, required = true)]
    grid: Option<String>,
    /// How points are chosen: every grid point, random draws from the grid, or a model-based search (a
    /// tree-structured Parzen estimator that proposes each batch from the results so far; not shardable).
    #[arg(long, value_enum, default_value_t = SearchKind::Grid)]
    search: SearchKind,
    /// Random and TPE search: how many points to run.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Random and TPE search: seed of the draws (the same seed draws the same points).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Metric to rank by (higher is better, except max_drawdown, volatility and the costs). Several, comma
    /// separated, also print their Pareto front (e.g. sharpe,max_drawdown).
    #[arg(long, default_value = "sharpe", value_delimiter = ',')]
    metric: Vec<String>,
    /// A bound a point must meet to be ranked, e.g. "n_trades>=10" or "max_drawdown<=0.3" (repeatable).
    #[arg(long = "constraint", value_name = "METRIC<OP>VALUE")]
    constraints: Vec<String>,
    #[command(flatten)]
    batch: batch::BatchArgs,
    /// How many of the best points to print and keep in --json.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Write the ranked best points (and the Pareto front) as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    /// Write every point (its axis values, metrics, whether it meets the constraints) as CSV to this file.
    #[arg(long, value_name = "OUT")]
    csv: Option<PathBuf>,
    /// Write an HTML report: a heatmap of the best objective over two parameters and each parameter's
    /// sensitivity.
    #[arg(long, value_name = "OUT")]
    report: Option<PathBuf>,
    /// The two parameters of the report's heatmap, e.g. "period,oversold" [default: the first two axes].
    #[arg(long, value_name = "X,Y")]
    heatmap: Option<String>,
    /// Walk-forward instead of one sweep: optimise on each training window, run the chosen point on the test window
    /// that follows, and stitch the test windows into one out-of-sample result, e.g. "train=90d,test=30d" or
    /// "train=52w,test=13w,step=26w" (units m, h, d, w; step defaults to the test length and may not be shorter).
    #[arg(long, value_name = "train=D,test=D[,step=D]", conflicts_with_all = ["shard", "resume", "csv", "report"])]
    walk_forward: Option<String>,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Merge the results files of a sharded sweep (one per shard, any order) into one, equal point for point to
    /// the unsharded sweep's.
    Merge {
        /// Where to write the merged results.
        #[arg(long)]
        out: PathBuf,
        /// The shards' results files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SearchKind {
    Grid,
    Random,
    Tpe,
}

pub fn run(a: Args) -> Result<()> {
    if let Some(Sub::Merge { out, inputs }) = a.sub {
        let report = merge(&inputs, &out)?;
        println!(
            "{} of {} points merged from {} files into {}",
            report.points,
            report.total,
            inputs.len(),
            out.display()
        );
        if report.points < report.total {
            eprintln!("some shards are unfinished: run them again with --resume, then merge again");
        }
        return Ok(());
    }
    let (Some(config_path), Some(grid)) = (a.config.as_ref(), a.grid.as_ref()) else {
        bail!("a config and --grid are required");
    };
    let name = config_path.display().to_string();
    let text = std::fs::read_to_string(config_path).with_context(|| format!("cannot read {name}"))?;
    let base: toml::Table = toml::from_str(&text).with_context(|| format!("{name}: invalid TOML"))?;
    let config = sextant_backtest::BacktestConfig::load(config_path)?;
    if config.is_leverage() || config.is_fixed_yield() {
        bail!(
            "sextant optimize sweeps candle, dynamic_lp and stable_rotator configs; {name} is a leverage or \
             fixed-yield config"
        );
    }
    let search = match a.search {
        SearchKind::Grid => Search::Grid,
        SearchKind::Random => Search::Random { samples: a.samples, seed: a.seed },
        SearchKind::Tpe => Search::Tpe { samples: a.samples, seed: a.seed },
    };
    let space = Space::new(parse_grid(grid)?, search)?;
    let shard = a.batch.shard()?;
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
    let names = data.metric_names();
    let objectives: Vec<Objective> =
        a.metric.iter().map(|m| Objective::new(m.trim(), &names)).collect::<Result<_, _>>()?;
    let constraints: Vec<Constraint> =
        a.constraints.iter().map(|c| Constraint::parse(c, &names)).collect::<Result<_, _>>()?;
    let jobs = a.batch.jobs();
    let dir = config_path.parent().map(PathBuf::from).unwrap_or_default();
    let sweep = Sweep::new(&base, &dir, &space, shard, data, jobs);
    sweep.check()?;
    let heat = heat_axes(&space, a.heatmap.as_deref())?;
    if matches!(search, Search::Tpe { .. }) && shard != Shard::ALL {
        bail!(
            "--search tpe is sequential (each batch learns from the ones before): it cannot be sharded; use --search random"
        );
    }
    if let Some(spec) = &a.walk_forward {
        if matches!(search, Search::Tpe { .. }) {
            bail!("--walk-forward sweeps each fold by grid or random search; --search tpe is not supported with it");
        }
        let wf_data = match (&pool, &lending) {
            (Some(p), _) => WalkData::Pool(p),
            (None, Some(l)) => WalkData::Lending(l),
            (None, None) => WalkData::Candles(&markets),
        };
        let wf = WalkForward {
            base: &base,
            dir: &dir,
            space: &space,
            data: wf_data,
            windows: Windows::parse(spec)?,
            objective: objectives[0].clone(),
            constraints: &constraints,
            jobs,
            initial_cash: config.portfolio.initial_cash,
        };
        return walk_forward(&wf, &name, a.json.as_deref());
    }

    let header = SweepHeader::new(&base, grid, &space, shard);
    let out = a.batch.out.clone().unwrap_or_else(|| batch::default_out(config_path, &header, "sweep"));
    let mine = shard.points(space.len()).count();
    let mut results = batch::Results::open(&out, &header, mine, a.batch.resume, a.batch.fresh)?;
    let stop = batch::stop_flag()?;
    let bar = batch::progress("optimize", mine);
    let mut board = Leaderboard::new(objectives.clone(), a.top.max(1));
    let mut scoring_error: Option<anyhow::Error> = None;
    let mut first_failure: Option<String> = None;
    let w = &mut results.writer;
    let mut emit = |_: usize, line: &str| {
        writeln!(w, "{line}").map_err(|e| sextant_backtest::Error::Grid(format!("{}: {e}", out.display())))?;
        match score(line, &objectives, &constraints) {
            Ok(s) => {
                if first_failure.is_none() {
                    first_failure = s.error.as_ref().map(|e| format!("{}: {e}", s.params));
                }
                board.push(s)
            }
            Err(e) => scoring_error = Some(e.into()),
        }
        Ok(())
    };
    let outcome = match search {
        Search::Tpe { .. } => {
            sweep.run_tpe(&objectives[0], &constraints, &mut results.previous, &stop, &|| bar.inc(1), &mut emit)
        }
        _ => sweep.run(&mut results.previous, &stop, &|| bar.inc(1), &mut emit),
    };
    bar.finish_and_clear();
    results.close()?;
    let outcome = outcome?;
    if let Some(e) = scoring_error {
        return Err(e);
    }

    let mut o = std::io::stdout().lock();
    let of = if shard == Shard::ALL {
        String::new()
    } else {
        format!(" (shard {}/{} of {})", shard.index, shard.count, space.len())
    };
    let search_text = match search {
        Search::Grid => String::new(),
        Search::Random { seed, .. } => format!(" drawn at random (seed {seed})"),
        Search::Tpe { seed, .. } => format!(" chosen by TPE (seed {seed})"),
    };
    let metric_names: Vec<&str> = objectives.iter().map(|o| o.metric.as_str()).collect();
    writeln!(o, "{mine} points{of} of {name}{search_text} on {jobs} threads, ranked by {}", metric_names.join(", "))?;
    let shown: &[&str] = if pool.is_some() {
        &["fees_earned", "value_vs_hold", "time_in_range", "rebalances", "total_return", "final_equity"]
    } else if lending.is_some() {
        &["cagr", "total_return", "gas_paid", "max_drawdown", "final_equity"]
    } else {
        &["total_return", "sharpe", "max_drawdown", "n_trades", "final_equity"]
    };
    let mut columns: Vec<&str> = metric_names.clone();
    columns.extend(shown.iter().filter(|c| !metric_names.contains(c)));
    table(&mut o, &board.best, &columns)?;
    if objectives.len() > 1 {
        writeln!(o, "Pareto front of {} ({} points):", metric_names.join(", "), board.front.len())?;
        let mut front = board.front.clone();
        front.sort_by(|x, y| {
            let (p, q) = (x.values[0], y.values[0]);
            if objectives[0].higher { q.total_cmp(&p) } else { p.total_cmp(&q) }
        });
        table(&mut o, &front, &columns)?;
    }
    if let Some(failure) = &first_failure {
        eprintln!("a point that failed to run: {failure}");
    }
    if board.infeasible > 0 || board.failed > 0 || !constraints.is_empty() {
        let list: Vec<String> = constraints.iter().map(ToString::to_string).collect();
        eprintln!(
            "{} points meet the constraints ({}), {} do not, {} failed to run",
            board.seen - board.infeasible - board.failed,
            if list.is_empty() { "none".to_string() } else { list.join(", ") },
            board.infeasible,
            board.failed
        );
    }
    eprintln!("results: {} ({} points run, {} kept from before)", out.display(), outcome.evaluated, outcome.reused);
    if outcome.stopped {
        eprintln!(
            "stopped: {} of {mine} points done; run the same command with --resume to finish",
            outcome.evaluated + outcome.reused
        );
    }
    if let Some(path) = &a.json {
        let parse = |v: &[Scored]| -> Vec<serde_json::Value> {
            v.iter().map(|s| serde_json::from_str(&s.line).unwrap_or(serde_json::Value::Null)).collect()
        };
        let doc = serde_json::json!({
            "config": name,
            "grid": grid,
            "search": search,
            "points": board.seen,
            "shard": shard,
            "objectives": metric_names,
            "constraints": constraints.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "infeasible": board.infeasible,
            "failed": board.failed,
            "ranked": parse(&board.best),
            "pareto_front": parse(&board.front),
        });
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &doc)?;
        eprintln!("json written to {}", path.display());
    }
    if let Some(path) = &a.csv {
        write_csv(&out, path, &space, &names, &constraints)?;
        eprintln!("csv written to {}", path.display());
    }
    if let Some(path) = &a.report {
        let mut report = SweepReport::new(&space.axes, objectives[0].clone(), heat);
        for p in read_results(&out)?.1 {
            let (index, line) = p?;
            let s = score(&line, &objectives[..1], &constraints)?;
            report.push(&line_coordinates(&line, &space, index), s.feasible.then_some(s.values[0]));
        }
        let title = format!("Sweep of {name}: {grid}");
        std::fs::write(path, report.html(&title)).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    if outcome.stopped {
        std::process::exit(130);
    }
    Ok(())
}

fn table(o: &mut impl Write, points: &[Scored], columns: &[&str]) -> Result<()> {
    write!(o, "{:>4}  {:<32}", "rank", "params")?;
    for c in columns {
        write!(o, " {c:>14}")?;
    }
    writeln!(o)?;
    for (i, p) in points.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(&p.line)?;
        write!(o, "{:>4}  {:<32}", i + 1, p.params)?;
        for c in columns {
            let x = sextant_backtest::sweep::line_metric(&v, c);
            let text = if Metrics::NAMES.contains(c) { format_metric(c, x) } else { format_lp_metric(c, x) };
            write!(o, " {text:>14}")?;
        }
        writeln!(o)?;
    }
    Ok(())
}

/// Every point of the results file as a CSV row: index, one column per axis, every metric, feasible, error.
fn write_csv(results: &Path, path: &Path, space: &Space, metrics: &[&str], constraints: &[Constraint]) -> Result<()> {
    let (_, points) = read_results(results)?;
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let quote =
        |s: &str| if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() };
    let mut head: Vec<String> = vec!["index".into()];
    head.extend(space.axes.iter().map(|a| quote(a.key.strip_prefix("strategy.").unwrap_or(&a.key))));
    head.extend(metrics.iter().map(|m| (*m).to_string()));
    head.extend(["feasible".into(), "error".into()]);
    writeln!(w, "{}", head.join(","))?;
    for p in points {
        let (index, line) = p?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let mut row: Vec<String> = vec![index.to_string()];
        row.extend(space.point_at(&line_coordinates(&line, space, index)).iter().map(|(_, value)| match value {
            toml::Value::String(s) => quote(s),
            other => other.to_string(),
        }));
        for m in metrics {
            let x = sextant_backtest::sweep::line_metric(&v, m);
            row.push(if x.is_nan() { String::new() } else { x.to_string() });
        }
        let error = v["error"].as_str();
        let feasible =
            error.is_none() && constraints.iter().all(|c| c.holds(sextant_backtest::sweep::line_metric(&v, &c.metric)));
        row.push(feasible.to_string());
        row.push(quote(error.unwrap_or_default()));
        writeln!(w, "{}", row.join(","))?;
    }
    w.flush()?;
    Ok(())
}

/// Runs a walk-forward and prints each fold and the stitched out-of-sample result.
fn walk_forward(wf: &WalkForward<'_>, name: &str, json: Option<&Path>) -> Result<()> {
    let folds = wf.folds().len();
    let per_fold = wf.space.len();
    let bar = batch::progress("walk-forward", folds * per_fold);
    let stop = batch::stop_flag()?;
    let r = wf.run(&stop, &|_, _, n| bar.inc(n as u64));
    bar.finish_and_clear();
    let r = r?;
    let style = match wf.data {
        WalkData::Candles(markets) => markets.first().map(|m| m.series.time_style).unwrap_or_default(),
        _ => sextant_market::TimeStyle::Rfc3339,
    };
    let day = |ms: i64| {
        let t = sextant_data::time::format_time(ms, style);
        t.get(..10).unwrap_or(&t).to_string()
    };
    let metric = &r.objective;
    let fmt = |x: f64| format_metric(metric, x);
    let mut o = std::io::stdout().lock();
    let days = |ms: i64| ms as f64 / 86_400_000.0;
    writeln!(
        o,
        "walk-forward of {name}: {} folds (train {}d, test {}d, step {}d), {per_fold} points each, chosen by {metric}",
        r.folds.len(),
        days(r.windows.train_ms),
        days(r.windows.test_ms),
        days(r.windows.step_ms)
    )?;
    writeln!(
        o,
        "{:>4}  {:<10}  {:<10}  {:<10}  {:<28} {:>12} {:>12} {:>12}",
        "fold", "train from", "test from", "test to", "chosen", "in-sample", "out-sample", "test return"
    )?;
    for (k, f) in r.folds.iter().enumerate() {
        let ret = f.test_metrics.map_or(f64::NAN, |m| m.total_return);
        writeln!(
            o,
            "{:>4}  {:<10}  {:<10}  {:<10}  {:<28} {:>12} {:>12} {:>12}",
            k + 1,
            day(f.train_start_ms),
            day(f.test_start_ms),
            day(f.test_end_ms - 1),
            f.chosen.as_deref().unwrap_or("(none feasible: cash)"),
            fmt(f.in_sample),
            fmt(f.out_of_sample),
            format_metric("total_return", ret)
        )?;
    }
    let m = &r.metrics;
    writeln!(
        o,
        "out of sample, stitched: total return {}, sharpe {}, max drawdown {}, {} trades, final equity {}",
        format_metric("total_return", m.total_return),
        format_metric("sharpe", m.sharpe),
        format_metric("max_drawdown", m.max_drawdown),
        m.n_trades,
        format_metric("final_equity", m.final_equity)
    )?;
    writeln!(
        o,
        "{metric}: {} in sample on average, {} out of sample: the gap is {}",
        fmt(r.mean_in_sample),
        fmt(r.mean_out_of_sample),
        fmt(r.mean_in_sample - r.mean_out_of_sample)
    )?;
    if let Some(path) = json {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &r)?;
        eprintln!("json written to {}", path.display());
    }
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        std::process::exit(130);
    }
    Ok(())
}

/// The heatmap's axes: named in `spec` ("period,oversold"), or the first two (the only one twice).
fn heat_axes(space: &Space, spec: Option<&str>) -> Result<(usize, usize)> {
    let find = |name: &str| {
        let name = name.trim();
        space
            .axes
            .iter()
            .position(|a| a.key == name || a.key.strip_prefix("strategy.") == Some(name))
            .with_context(|| format!("--heatmap: {name} is not an axis of the grid"))
    };
    match spec {
        Some(text) => {
            let (x, y) = text.split_once(',').context("--heatmap expects two parameters, e.g. period,oversold")?;
            Ok((find(x)?, find(y)?))
        }
        None => Ok((0, usize::from(space.axes.len() > 1))),
    }
}

/// A point's coordinates: as its line carries them, else from its index.
fn line_coordinates(line: &str, space: &Space, index: usize) -> Vec<usize> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["coords"].as_array().map(|a| a.iter().filter_map(|x| x.as_u64().map(|x| x as usize)).collect()))
        .filter(|c: &Vec<usize>| {
            c.len() == space.axes.len() && c.iter().zip(&space.axes).all(|(i, a)| *i < a.values.len())
        })
        .unwrap_or_else(|| space.coordinates(index))
}
