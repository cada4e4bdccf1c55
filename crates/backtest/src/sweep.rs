//! Parameter sweeps: a grid of config overrides (or random draws from it), run in parallel over the same market
//! data, streamed point by point to a results file (JSON lines after a header), sliceable into deterministic shards
//! that merge back into exactly the unsharded results.

use crate::lp::{LpEngine, LpMetrics, PoolMarket};
use crate::{BacktestConfig, Error, Market, Metrics, Result, build_lp_strategy};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Points a TPE search proposes at a time (from the results of the batches before).
pub const TPE_BATCH: usize = 8;

/// The most points one grid may have.
pub const MAX_POINTS: usize = 1_000_000;

/// One axis of a grid: a dotted config key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Dotted key; a bare name means `strategy.<name>`.
    pub key: String,
    /// Values to try.
    pub values: Vec<toml::Value>,
}

/// Parses `period=7,14,21;oversold=20..35:5;ma=sma,ema`. A range `a..b:step` includes both ends; `:step` defaults
/// to 1. Bare keys are strategy parameters; other tables are named in full (`risk.cooldown_bars=0,5`).
///
/// # Errors
/// A malformed axis, an empty range, a repeated key, or a `market.` key (market data is shared by all points).
pub fn parse_grid(grid: &str) -> Result<Vec<Axis>> {
    let mut axes: Vec<Axis> = Vec::new();
    for part in grid.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, spec) =
            part.split_once('=').ok_or_else(|| Error::Grid(format!("expected key=values in {part:?}")))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::Grid(format!("missing key in {part:?}")));
        }
        let key = if key.contains('.') { key.to_string() } else { format!("strategy.{key}") };
        if key.starts_with("market.") {
            return Err(Error::Grid(format!("{key}: market settings cannot be swept (all points share the data)")));
        }
        if key == "strategy.kind" {
            return Err(Error::Grid("strategy.kind cannot be swept: run one sweep per strategy".into()));
        }
        if axes.iter().any(|a| a.key == key) {
            return Err(Error::Grid(format!("{key} appears twice")));
        }
        let mut values = Vec::new();
        for item in spec.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(Error::Grid(format!("{key}: empty value in {spec:?}")));
            }
            match item.split_once("..") {
                Some((lo, rest)) => values.extend(range(&key, lo, rest)?),
                None => values.push(scalar(item)),
            }
        }
        axes.push(Axis { key, values });
    }
    if axes.is_empty() {
        return Err(Error::Grid("no axes; expected e.g. \"period=7,14,21;oversold=20..35:5\"".into()));
    }
    let points = axes.iter().try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
    if points.is_none_or(|n| n > MAX_POINTS) {
        return Err(Error::Grid(format!("the grid has more than {MAX_POINTS} points; narrow it")));
    }
    Ok(axes)
}

fn scalar(s: &str) -> toml::Value {
    if let Ok(i) = s.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = s.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = s.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(s.to_string())
    }
}

fn range(key: &str, lo: &str, rest: &str) -> Result<Vec<toml::Value>> {
    let (hi, step) = rest.split_once(':').unwrap_or((rest, "1"));
    let bad = || Error::Grid(format!("{key}: expected a range like 20..35:5, got {lo}..{rest}"));
    let (lo, hi, step) = (lo.trim(), hi.trim(), step.trim());
    if let (Ok(a), Ok(b), Ok(s)) = (lo.parse::<i64>(), hi.parse::<i64>(), step.parse::<i64>()) {
        if s <= 0 || a > b || (i128::from(b) - i128::from(a)) / i128::from(s) >= MAX_POINTS as i128 {
            return Err(bad());
        }
        return Ok((a..=b).step_by(s as usize).map(toml::Value::Integer).collect());
    }
    let (a, b, s) = (
        lo.parse::<f64>().map_err(|_| bad())?,
        hi.parse::<f64>().map_err(|_| bad())?,
        step.parse::<f64>().map_err(|_| bad())?,
    );
    if !(s > 0.0 && a <= b && a.is_finite() && b.is_finite()) || (b - a) / s >= MAX_POINTS as f64 {
        return Err(bad());
    }
    let n = ((b - a) / s + 1e-9).floor() as usize;
    // a + i*s drifts (0.1 * 3 = 0.30000000000000004): round to 12 significant digits so points read as written.
    let tidy = |v: f64| if v == 0.0 { v } else { format!("{v:.11e}").parse().unwrap_or(v) };
    Ok((0..=n).map(|i| toml::Value::Float(tidy(a + i as f64 * s))).collect())
}

/// How the points of a sweep are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Search {
    /// Every combination of the axes' values.
    Grid,
    /// `samples` points, each axis's value drawn uniformly (with replacement) from a stream seeded by `seed` and the
    /// point's index, so any point can be drawn alone: shards and resumed runs draw the same points.
    Random {
        /// How many points.
        samples: usize,
        /// Seed.
        seed: u64,
    },
    /// `samples` points chosen by a tree-structured Parzen estimator ([`crate::tpe`]) from the results so far, in
    /// small batches: sequential, so not shardable; a resumed run proposes the same points again.
    Tpe {
        /// How many points.
        samples: usize,
        /// Seed.
        seed: u64,
    },
}

/// The points of a sweep, addressable by index without materialising them (memory stays flat in their number).
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    /// The axes.
    pub axes: Vec<Axis>,
    /// How points are chosen.
    pub search: Search,
}

impl Space {
    /// A space over `axes`.
    ///
    /// # Errors
    /// A random search with no samples or more than [`MAX_POINTS`].
    pub fn new(axes: Vec<Axis>, search: Search) -> Result<Self> {
        if let Search::Random { samples, .. } | Search::Tpe { samples, .. } = search
            && !(1..=MAX_POINTS).contains(&samples)
        {
            return Err(Error::Grid(format!("samples must be between 1 and {MAX_POINTS}, got {samples}")));
        }
        Ok(Space { axes, search })
    }

    /// How many points.
    pub fn len(&self) -> usize {
        match self.search {
            Search::Grid => self.axes.iter().map(|a| a.values.len()).product(),
            Search::Random { samples, .. } | Search::Tpe { samples, .. } => samples,
        }
    }

    /// Points in the whole grid (every combination), whatever the search.
    pub fn grid_len(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    /// The value index on each axis of grid point `index` (the last axis fastest).
    pub fn grid_coordinates(&self, index: usize) -> Vec<usize> {
        let mut rest = index;
        let mut out = vec![0; self.axes.len()];
        for (k, axis) in self.axes.iter().enumerate().rev() {
            out[k] = rest % axis.values.len();
            rest /= axis.values.len();
        }
        out
    }

    /// The overrides of a point given by its coordinates.
    pub fn point_at(&self, coordinates: &[usize]) -> Vec<(String, toml::Value)> {
        coordinates.iter().zip(&self.axes).map(|(&i, axis)| (axis.key.clone(), axis.values[i].clone())).collect()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value index on each axis of point `index` (a grid enumerates with the last axis fastest). A TPE
    /// search's points depend on the results before them: its lines carry their coordinates, and here its index
    /// is read as a grid index.
    pub fn coordinates(&self, index: usize) -> Vec<usize> {
        match self.search {
            Search::Grid | Search::Tpe { .. } => self.grid_coordinates(index),
            Search::Random { seed, .. } => self
                .axes
                .iter()
                .enumerate()
                .map(|(k, axis)| {
                    let draw =
                        splitmix64(splitmix64(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) ^ k as u64);
                    // Lemire's multiply-shift: uniform enough for axes far smaller than 2^64
                    ((u128::from(draw) * axis.values.len() as u128) >> 64) as usize
                })
                .collect(),
        }
    }

    /// Point `index` as (key, value) overrides in axis order.
    pub fn point(&self, index: usize) -> Vec<(String, toml::Value)> {
        self.point_at(&self.coordinates(index))
    }
}

/// SplitMix64's output function.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic slice of a sweep: shard `index` of `count` owns the points whose index is `index - 1` modulo
/// `count` (interleaved, so every shard gets a like share of cheap and costly regions of the grid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl Shard {
    /// Parses `i/n`, 1 <= i <= n.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Grid(format!("--shard expects i/n with 1 <= i <= n, e.g. 2/8; got {text:?}"));
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The whole sweep.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Whether this shard runs point `point`.
    pub fn owns(&self, point: usize) -> bool {
        point % self.count == self.index - 1
    }

    /// The points of a sweep of `len` this shard runs, in order.
    pub fn points(&self, len: usize) -> impl Iterator<Item = usize> + use<> {
        (self.index - 1..len).step_by(self.count)
    }
}

/// Applies overrides to a config given as a TOML table and parses the result.
///
/// # Errors
/// When an override does not fit the config (wrong type, unknown key, out of range).
pub fn apply(base: &toml::Table, point: &[(String, toml::Value)]) -> Result<BacktestConfig> {
    let mut table = base.clone();
    for (key, value) in point {
        let mut cursor = &mut table;
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        for part in parts {
            let entry = cursor.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = entry.as_table_mut().ok_or_else(|| Error::Grid(format!("{key}: {part} is not a table")))?;
        }
        cursor.insert(last.to_string(), value.clone());
    }
    let text = toml::to_string(&table).map_err(|e| Error::Grid(e.to_string()))?;
    // The TOML here is generated, so its line numbers mean nothing to the user: report the point and the message.
    let name = describe(point);
    let config: BacktestConfig =
        toml::from_str(&text).map_err(|e| Error::Grid(format!("point {name}: {}", e.message().trim())))?;
    config.validate(&name)?;
    Ok(config)
}

/// `period=14 oversold=25`.
pub fn describe(point: &[(String, toml::Value)]) -> String {
    point
        .iter()
        .map(|(k, v)| format!("{}={}", k.strip_prefix("strategy.").unwrap_or(k), v))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What every point runs on: candle markets, or the pool of an LP config (the grid's overrides cannot reach
/// `[market]` or `[pool]`, so all points share it).
#[derive(Clone, Copy)]
pub enum SweepData<'a> {
    /// Candle markets.
    Markets(&'a [Market]),
    /// An LP strategy's pool.
    Pool(&'a PoolMarket),
    /// A lending strategy's markets.
    Lending(&'a crate::lending::RateMarket),
}

impl SweepData<'_> {
    /// The metric names points of this data report.
    pub fn metric_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Metrics::NAMES.to_vec();
        if matches!(self, SweepData::Pool(_)) {
            names.extend(LpMetrics::NAMES);
        }
        names
    }
}

/// A metric to rank by, and which way is better.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// Metric name.
    pub metric: String,
    /// Whether larger is better.
    pub higher: bool,
}

impl Objective {
    /// The objective of ranking by `metric` in its natural direction.
    ///
    /// # Errors
    /// A metric not in `names`.
    pub fn new(metric: &str, names: &[&str]) -> Result<Self> {
        if !names.contains(&metric) {
            return Err(Error::Grid(format!("unknown metric {metric:?}; expected one of {}", names.join(", "))));
        }
        let higher = if Metrics::NAMES.contains(&metric) {
            Metrics::higher_is_better(metric)
        } else {
            LpMetrics::higher_is_better(metric)
        };
        Ok(Objective { metric: metric.to_string(), higher })
    }

    /// Whether `a` is strictly better than `b`.
    fn better(&self, a: f64, b: f64) -> bool {
        if self.higher { a > b } else { a < b }
    }
}

/// A bound a point's metric must meet to be ranked, e.g. `n_trades>=10` or `max_drawdown<=0.25`.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// Metric name.
    pub metric: String,
    /// `>=`, `<=`, `>` or `<`.
    pub op: &'static str,
    /// The bound.
    pub bound: f64,
}

impl Constraint {
    /// Parses `metric>=value` (also `<=`, `>`, `<`).
    ///
    /// # Errors
    /// A malformed constraint or an unknown metric.
    pub fn parse(text: &str, names: &[&str]) -> Result<Self> {
        let bad = || Error::Grid(format!("constraint {text:?}: expected metric>=value, <=, > or <, e.g. n_trades>=10"));
        let (at, op) = ["<=", ">=", "<", ">"]
            .iter()
            .filter_map(|op| text.find(op).map(|at| (at, *op)))
            .min_by_key(|(at, op)| (*at, std::cmp::Reverse(op.len())))
            .ok_or_else(bad)?;
        let metric = text[..at].trim();
        let bound: f64 = text[at + op.len()..].trim().parse().map_err(|_| bad())?;
        if metric.is_empty() || metric.contains(['=', '!', '<', '>']) || !bound.is_finite() {
            return Err(bad());
        }
        Objective::new(metric, names).map_err(|e| Error::Grid(format!("constraint {text:?}: {e}")))?;
        Ok(Constraint { metric: metric.to_string(), op, bound })
    }

    /// Whether `value` meets the bound (a missing or non-finite value never does).
    pub fn holds(&self, value: f64) -> bool {
        value.is_finite()
            && match self.op {
                ">=" => value >= self.bound,
                "<=" => value <= self.bound,
                ">" => value > self.bound,
                _ => value < self.bound,
            }
    }
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.metric, self.op, self.bound)
    }
}

/// The first line of a sweep's results file: what was swept, so shards can be checked against each other before
/// they are merged, and a resumed run against the file it extends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepHeader {
    /// Format version.
    pub sextant_sweep: u32,
    /// `sweep` (points of a grid) or `stress` (Monte-Carlo paths).
    pub kind: String,
    /// FNV-1a hash of the base config's canonical TOML.
    pub config_hash: String,
    /// What varies: the grid as given, or a stress run's paths and scenarios.
    pub grid: String,
    /// How points are chosen.
    pub search: Search,
    /// Points in the whole sweep.
    pub points: usize,
    /// The slice this file holds.
    pub shard: Shard,
}

impl SweepHeader {
    /// The header of `space` over `base`, for `shard`.
    pub fn new(base: &toml::Table, grid: &str, space: &Space, shard: Shard) -> Self {
        SweepHeader {
            sextant_sweep: 1,
            kind: "sweep".into(),
            config_hash: config_hash(base),
            grid: grid.to_string(),
            search: space.search,
            points: space.len(),
            shard,
        }
    }

    /// A hex digest of the sweep (config, grid, search; not the shard): the same for every shard of one sweep.
    pub fn id(&self) -> String {
        let text = serde_json::to_string(&SweepHeader { shard: Shard::ALL, ..self.clone() }).unwrap_or_default();
        format!("{:016x}", fnv1a(&text))
    }

    /// Whether two headers describe the same sweep (shards aside).
    pub fn same_sweep(&self, other: &SweepHeader) -> bool {
        SweepHeader { shard: other.shard, ..self.clone() } == *other
    }
}

/// A config's identity in results headers: FNV-1a of its canonical TOML, in hex.
pub fn config_hash(base: &toml::Table) -> String {
    format!("{:016x}", fnv1a(&toml::to_string(base).unwrap_or_default()))
}

/// FNV-1a, 64 bits.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// A sweep to run: the base config, the points, the slice, the data.
pub struct Sweep<'a> {
    /// The config the points override.
    pub base: &'a toml::Table,
    /// The config's directory (relative paths in it are resolved from there).
    pub dir: &'a std::path::Path,
    /// The points.
    pub space: &'a Space,
    /// The slice run here.
    pub shard: Shard,
    /// What every point runs on.
    pub data: SweepData<'a>,
    /// Worker threads.
    pub jobs: usize,
    /// Indicator series shared by every point over candle markets: each computed once.
    indicators: Option<std::sync::Arc<sextant_strategies::IndicatorCache>>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Points evaluated by this run.
    pub evaluated: usize,
    /// Points taken over from the previous results.
    pub reused: usize,
    /// Whether the stop flag ended it early.
    pub stopped: bool,
}

impl<'a> Sweep<'a> {
    /// A sweep of `space` over `data`; over candle markets, every point's indicators come from one cache over the
    /// markets' closes (computed once per distinct indicator, not once per point).
    pub fn new(
        base: &'a toml::Table,
        dir: &'a std::path::Path,
        space: &'a Space,
        shard: Shard,
        data: SweepData<'a>,
        jobs: usize,
    ) -> Self {
        let indicators = match data {
            SweepData::Markets(markets) => Some(std::sync::Arc::new(sextant_strategies::IndicatorCache::new(
                markets.iter().map(|m| m.series.candles.iter().map(|c| c.close).collect()).collect(),
            ))),
            _ => None,
        };
        Sweep { base, dir, space, shard, data, jobs, indicators }
    }

    /// Checks every point of the shard like a config, in parallel, before anything runs.
    ///
    /// # Errors
    /// The first point (by index) whose overrides do not fit the config.
    pub fn check(&self) -> Result<()> {
        let pool = self.pool()?;
        let indices: Vec<usize> = match self.space.search {
            Search::Tpe { .. } => {
                // any grid point may be proposed: check a spread of them (the rest fail as points if they must)
                let n = self.space.grid_len();
                let k = n.min(4096);
                (0..k).map(|i| i * n / k).collect()
            }
            _ => self.shard.points(self.space.len()).collect(),
        };
        let tpe = matches!(self.space.search, Search::Tpe { .. });
        let errors: Vec<(usize, Error)> = pool.install(|| {
            indices
                .par_iter()
                .filter_map(|&i| {
                    let c = if tpe { self.space.grid_coordinates(i) } else { self.space.coordinates(i) };
                    apply(self.base, &self.space.point_at(&c)).err().map(|e| (i, e))
                })
                .collect()
        });
        match errors.into_iter().min_by_key(|(i, _)| *i) {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    fn pool(&self) -> Result<rayon::ThreadPool> {
        thread_pool(self.jobs)
    }

    /// Evaluates point `index`: its JSON line (`index`, `params`, `metrics`, `lp` for LP strategies, or `error`).
    pub fn evaluate(&self, index: usize) -> String {
        self.evaluate_at(index, &self.space.coordinates(index))
    }

    /// Evaluates the point at `coordinates` as point `index`; its line also carries the coordinates.
    pub fn evaluate_at(&self, index: usize, coordinates: &[usize]) -> String {
        let point = self.space.point_at(coordinates);
        let params = describe(&point);
        let line = match self.run_point(&point) {
            Ok((metrics, Some(lp))) => serde_json::json!({ "index": index, "params": params, "coords": coordinates,
                "metrics": metrics, "lp": lp }),
            Ok((metrics, None)) => {
                serde_json::json!({ "index": index, "params": params, "coords": coordinates, "metrics": metrics })
            }
            Err(e) => {
                serde_json::json!({ "index": index, "params": params, "coords": coordinates, "error": e.to_string() })
            }
        };
        line.to_string()
    }

    fn run_point(&self, point: &[(String, toml::Value)]) -> Result<(Metrics, Option<LpMetrics>)> {
        let mut config = apply(self.base, point)?;
        config.resolve_paths(self.dir);
        Ok(match self.data {
            SweepData::Markets(markets) => {
                let mut strategy = crate::build_strategy(&config)?;
                if let Some(cache) = &self.indicators {
                    strategy = strategy.with_shared(std::sync::Arc::clone(cache));
                }
                let r = crate::Engine::new(&strategy, markets, config.costs(), config.portfolio.initial_cash).run();
                (r.metrics, None)
            }
            SweepData::Pool(pool) => {
                let strategy = build_lp_strategy(&config, pool)?;
                let r = LpEngine::new(&strategy, pool, config.costs(), config.portfolio.initial_cash).run(&mut |_| {});
                (r.result.metrics, Some(r.lp))
            }
            SweepData::Lending(market) => {
                let strategy = crate::run::build_rotator(&config)?;
                let r = crate::lending::LendingEngine::new(
                    &strategy,
                    market,
                    config.costs(),
                    config.portfolio.initial_cash,
                )
                .run(&mut |_| {});
                (r.result.metrics, None)
            }
        })
    }

    /// Runs the shard's points in index order (see [`run_indexed`]).
    ///
    /// # Errors
    /// What `emit` or `previous` return; a thread pool that cannot start.
    pub fn run(
        &self,
        previous: &mut dyn Iterator<Item = Result<(usize, String)>>,
        stop: &std::sync::atomic::AtomicBool,
        progress: &(dyn Fn() + Sync),
        emit: &mut dyn FnMut(usize, &str) -> Result<()>,
    ) -> Result<SweepOutcome> {
        let pool = self.pool()?;
        run_indexed(
            &pool,
            self.jobs,
            self.shard,
            self.space.len(),
            &|i| self.evaluate(i),
            previous,
            stop,
            progress,
            emit,
        )
    }

    /// Runs a TPE search (`Search::Tpe`): batches of [`TPE_BATCH`] points, each batch proposed from every result
    /// before it (by `objective`; points that fail or break `constraints` count as bad), evaluated in parallel and
    /// handed to `emit` in index order. Points in `previous` are reused after checking the search proposes them
    /// again (the same seed, config and earlier results propose the same points).
    ///
    /// # Errors
    /// Not a TPE space, a shard, previous results this search would not have proposed, what `emit` returns.
    #[allow(clippy::too_many_arguments)]
    pub fn run_tpe(
        &self,
        objective: &Objective,
        constraints: &[Constraint],
        previous: &mut dyn Iterator<Item = Result<(usize, String)>>,
        stop: &std::sync::atomic::AtomicBool,
        progress: &(dyn Fn() + Sync),
        emit: &mut dyn FnMut(usize, &str) -> Result<()>,
    ) -> Result<SweepOutcome> {
        use std::sync::atomic::Ordering;
        let Search::Tpe { samples, seed } = self.space.search else {
            return Err(Error::Grid("run_tpe needs a TPE search".into()));
        };
        if self.shard != Shard::ALL {
            return Err(Error::Grid("a TPE search is sequential: it cannot be sharded (use --search random)".into()));
        }
        let pool = self.pool()?;
        let numeric: Vec<bool> =
            self.space.axes.iter().map(|a| a.values.iter().all(|v| v.is_integer() || v.is_float())).collect();
        let sizes: Vec<usize> = self.space.axes.iter().map(|a| a.values.len()).collect();
        let tpe = crate::tpe::Tpe::new(sizes, numeric, samples);
        let mut reuse: std::collections::BTreeMap<usize, String> = std::collections::BTreeMap::new();
        for p in previous {
            let (i, line) = p?;
            reuse.insert(i, line);
        }
        let mut history: Vec<(Vec<usize>, f64)> = Vec::with_capacity(samples);
        let mut outcome = SweepOutcome { evaluated: 0, reused: 0, stopped: false };
        // a fixed batch, so the same seed proposes the same points on any machine, whatever --jobs
        let batch = TPE_BATCH;
        let mut next = 0;
        while next < samples {
            if stop.load(Ordering::SeqCst) {
                outcome.stopped = true;
                for (i, line) in std::mem::take(&mut reuse) {
                    outcome.reused += 1;
                    emit(i, &line)?;
                }
                break;
            }
            let count = batch.min(samples - next);
            let mut rng = crate::stress::PathRng::for_path(seed, next);
            let proposals = tpe.propose(&history, count, &mut rng);
            let mut lines: Vec<Option<String>> = (0..count).map(|k| reuse.remove(&(next + k))).collect();
            for (k, line) in lines.iter().enumerate() {
                let Some(line) = line else { continue };
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                let coords: Vec<usize> = v["coords"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_u64().map(|x| x as usize)).collect())
                    .unwrap_or_default();
                if coords != proposals[k] {
                    return Err(Error::Grid(format!(
                        "point {} of the results file is not what this search proposes: not the same TPE run",
                        next + k
                    )));
                }
                outcome.reused += 1;
                progress();
            }
            let todo: Vec<usize> = (0..count).filter(|k| lines[*k].is_none()).collect();
            let done: Vec<Option<String>> = pool.install(|| {
                todo.par_iter()
                    .map(|&k| {
                        if stop.load(Ordering::SeqCst) {
                            return None;
                        }
                        let line = self.evaluate_at(next + k, &proposals[k]);
                        progress();
                        Some(line)
                    })
                    .collect()
            });
            for (k, line) in todo.into_iter().zip(done) {
                outcome.evaluated += usize::from(line.is_some());
                lines[k] = line;
            }
            for (k, line) in lines.iter().enumerate() {
                let Some(line) = line else { continue };
                let s = score(line, std::slice::from_ref(objective), constraints)?;
                let value = if s.feasible && s.values[0].is_finite() {
                    if objective.higher { s.values[0] } else { -s.values[0] }
                } else {
                    f64::NAN
                };
                history.push((proposals[k].clone(), value));
                emit(next + k, line)?;
            }
            if lines.iter().any(Option::is_none) {
                outcome.stopped = true;
            }
            if outcome.stopped {
                // the earlier run's points after this batch are handed on as they are
                for (i, line) in std::mem::take(&mut reuse).into_iter().filter(|(i, _)| *i >= next + count) {
                    outcome.reused += 1;
                    emit(i, &line)?;
                }
                break;
            }
            next += count;
        }
        Ok(outcome)
    }
}

/// A pool of `jobs` worker threads (at least one) for a batch job.
///
/// # Errors
/// When the threads cannot start.
pub fn thread_pool(jobs: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new().num_threads(jobs.max(1)).build().map_err(|e| Error::Grid(e.to_string()))
}

/// Runs the points of a shard of `len` in index order, in parallel chunks on `pool`, handing each point's line
/// (`evaluate(index)`) to `emit` as soon as its chunk is done (so the caller can stream them to disk). Points found
/// in `previous` (lines of an earlier run of the same job, in index order) are handed on as they were instead of
/// run again. When `stop` is set, the points under way finish, are handed on, and the run returns with `stopped`;
/// nothing finished is lost. Sweeps and stress runs share it.
///
/// # Errors
/// What `emit` or `previous` return.
#[allow(clippy::too_many_arguments)]
pub fn run_indexed(
    pool: &rayon::ThreadPool,
    jobs: usize,
    shard: Shard,
    len: usize,
    evaluate: &(dyn Fn(usize) -> String + Sync),
    previous: &mut dyn Iterator<Item = Result<(usize, String)>>,
    stop: &std::sync::atomic::AtomicBool,
    progress: &(dyn Fn() + Sync),
    emit: &mut dyn FnMut(usize, &str) -> Result<()>,
) -> Result<SweepOutcome> {
    use std::sync::atomic::Ordering;
    let chunk_len = 64 * jobs.max(1);
    let mut indices = shard.points(len).peekable();
    let mut previous = previous.peekable();
    let mut outcome = SweepOutcome { evaluated: 0, reused: 0, stopped: false };
    while indices.peek().is_some() {
        if stop.load(Ordering::SeqCst) {
            outcome.stopped = true;
            // the earlier run's points not reached yet are handed on as they are: nothing finished is lost
            for p in previous.by_ref() {
                let (i, line) = p?;
                if shard.owns(i) {
                    outcome.reused += 1;
                    emit(i, &line)?;
                }
            }
            break;
        }
        let chunk: Vec<usize> = indices.by_ref().take(chunk_len).collect();
        let last = *chunk.last().unwrap_or(&0);
        // earlier results for this chunk's points
        let mut reused: Vec<(usize, String)> = Vec::new();
        while let Some(Ok((i, _))) = previous.peek() {
            if *i > last {
                break;
            }
            let (i, line) = previous.next().unwrap_or_else(|| unreachable!())?;
            if shard.owns(i) {
                reused.push((i, line));
            }
        }
        if let Some(Err(_)) = previous.peek() {
            return Err(previous.next().and_then(|r| r.err()).unwrap_or_else(|| Error::Grid("previous".into())));
        }
        let todo: Vec<usize> = chunk.iter().copied().filter(|i| !reused.iter().any(|(j, _)| j == i)).collect();
        let done: Vec<Option<String>> = pool.install(|| {
            todo.par_iter()
                .map(|&i| {
                    if stop.load(Ordering::SeqCst) {
                        return None;
                    }
                    let line = evaluate(i);
                    progress();
                    Some(line)
                })
                .collect()
        });
        let mut lines: Vec<(usize, String)> =
            todo.into_iter().zip(done).filter_map(|(i, line)| line.map(|l| (i, l))).collect();
        outcome.evaluated += lines.len();
        outcome.reused += reused.len();
        for _ in &reused {
            progress();
        }
        lines.extend(reused);
        lines.sort_by_key(|(i, _)| *i);
        for (i, line) in &lines {
            emit(*i, line)?;
        }
    }
    Ok(outcome)
}

/// A point's line, scored: its objective values and whether it meets the constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Point index.
    pub index: usize,
    /// `period=14 oversold=25`.
    pub params: String,
    /// Objective values (NaN when missing or not finite).
    pub values: Vec<f64>,
    /// Every constraint holds and the point ran.
    pub feasible: bool,
    /// The point failed to run: why.
    pub error: Option<String>,
    /// The line as read.
    pub line: String,
}

/// A metric of a point's parsed line, NaN when absent.
pub fn line_metric(v: &serde_json::Value, name: &str) -> f64 {
    v["metrics"][name].as_f64().or_else(|| v["lp"][name].as_f64()).unwrap_or(f64::NAN)
}

/// Scores a point's line.
///
/// # Errors
/// A line that is not a point of a sweep.
pub fn score(line: &str, objectives: &[Objective], constraints: &[Constraint]) -> Result<Scored> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| Error::Grid(format!("not a sweep point ({e}): {line:.80}")))?;
    let index = v["index"].as_u64().ok_or_else(|| Error::Grid(format!("a point without an index: {line:.80}")))?;
    let error = v["error"].as_str().map(str::to_string);
    let values: Vec<f64> = objectives
        .iter()
        .map(|o| line_metric(&v, &o.metric))
        .map(|x| if x.is_finite() { x } else { f64::NAN })
        .collect();
    let feasible = error.is_none() && constraints.iter().all(|c| c.holds(line_metric(&v, &c.metric)));
    Ok(Scored {
        index: usize::try_from(index).unwrap_or(usize::MAX),
        params: v["params"].as_str().unwrap_or_default().to_string(),
        values,
        feasible,
        error,
        line: line.to_string(),
    })
}

/// The best points of a sweep, kept as they stream past: the `top` best feasible points by the first objective
/// (ties by index, so a merged sweep ranks as the unsharded one), and with several objectives their Pareto front.
/// Memory holds only these, never the whole sweep.
#[derive(Debug, Clone)]
pub struct Leaderboard {
    objectives: Vec<Objective>,
    top: usize,
    /// Best first.
    pub best: Vec<Scored>,
    /// Non-dominated feasible points, by index.
    pub front: Vec<Scored>,
    /// Points seen.
    pub seen: usize,
    /// Points that ran but broke a constraint.
    pub infeasible: usize,
    /// Points that failed to run.
    pub failed: usize,
}

impl Leaderboard {
    /// An empty board.
    pub fn new(objectives: Vec<Objective>, top: usize) -> Self {
        Leaderboard { objectives, top, best: Vec::new(), front: Vec::new(), seen: 0, infeasible: 0, failed: 0 }
    }

    /// The objectives.
    pub fn objectives(&self) -> &[Objective] {
        &self.objectives
    }

    /// Whether `a` ranks before `b` on the first objective.
    fn before(&self, a: &Scored, b: &Scored) -> bool {
        let (x, y) = (a.values[0], b.values[0]);
        match (x.is_nan(), y.is_nan()) {
            (false, true) => true,
            (true, false) => false,
            (true, true) => a.index < b.index,
            (false, false) => self.objectives[0].better(x, y) || (x == y && a.index < b.index),
        }
    }

    /// Whether `a` dominates `b`: at least as good on every objective, better on one.
    fn dominates(&self, a: &Scored, b: &Scored) -> bool {
        let mut strictly = false;
        for (k, o) in self.objectives.iter().enumerate() {
            if o.better(b.values[k], a.values[k]) {
                return false;
            }
            strictly |= o.better(a.values[k], b.values[k]);
        }
        strictly
    }

    /// Takes a point into account.
    pub fn push(&mut self, s: Scored) {
        self.seen += 1;
        if s.error.is_some() {
            self.failed += 1;
            return;
        }
        if !s.feasible {
            self.infeasible += 1;
            return;
        }
        if self.objectives.len() > 1
            && s.values.iter().all(|v| !v.is_nan())
            && !self.front.iter().any(|f| self.dominates(f, &s))
        {
            let keep: Vec<Scored> =
                std::mem::take(&mut self.front).into_iter().filter(|f| !self.dominates(&s, f)).collect();
            self.front = keep;
            let at = self.front.partition_point(|f| f.index < s.index);
            self.front.insert(at, s.clone());
        }
        if self.best.len() < self.top || self.best.last().is_some_and(|w| self.before(&s, w)) {
            let at = self.best.partition_point(|b| self.before(b, &s));
            self.best.insert(at, s);
            self.best.truncate(self.top);
        }
    }
}

/// A results file's points as (index, line), in index order.
pub type PointLines = Box<dyn Iterator<Item = Result<(usize, String)>>>;

/// Reads a results file: its header and an iterator over its points' (index, line), checked to be in index order.
///
/// # Errors
/// A file that cannot be opened or whose first line is not a sweep header.
pub fn read_results(path: &std::path::Path) -> Result<(SweepHeader, PointLines)> {
    use std::io::BufRead;
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::Grid(format!("cannot open {name}: {e}")))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let first = lines
        .next()
        .transpose()
        .map_err(|e| Error::Grid(format!("{name}: {e}")))?
        .ok_or_else(|| Error::Grid(format!("{name} is empty, not a sweep's results")))?;
    let header: SweepHeader = serde_json::from_str(&first)
        .map_err(|e| Error::Grid(format!("{name} does not start with a sweep header: {e}")))?;
    let mut last: Option<usize> = None;
    let mut number = 1;
    let iter = lines.filter_map(move |line| {
        number += 1;
        let line = match line {
            Ok(l) if l.trim().is_empty() => return None,
            Ok(l) => l,
            Err(e) => return Some(Err(Error::Grid(format!("{name}:{number}: {e}")))),
        };
        let index = serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|v| v["index"].as_u64());
        Some(match index {
            // a line cut short by a crash mid-write is the only thing the last line can be but a point
            None => Err(Error::Grid(format!("{name}:{number}: not a sweep point (cut short?): {line:.80}"))),
            Some(i) if last.is_some_and(|l| i as usize <= l) => {
                Err(Error::Grid(format!("{name}:{number}: point {i} out of order (after {})", last.unwrap_or(0))))
            }
            Some(i) => {
                last = Some(i as usize);
                Ok((i as usize, line))
            }
        })
    });
    Ok((header, Box::new(iter)))
}

/// What [`merge`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeReport {
    /// Points written.
    pub points: usize,
    /// Points of the whole sweep.
    pub total: usize,
}

/// Merges shard results of one sweep into one file in index order, as the unsharded sweep writes it (a k-way
/// merge: memory holds one line per input).
///
/// # Errors
/// Inputs of different sweeps, shards missing or given twice, a point in two inputs, I/O errors.
pub fn merge(inputs: &[std::path::PathBuf], out: &std::path::Path) -> Result<MergeReport> {
    use std::io::Write;
    if inputs.is_empty() {
        return Err(Error::Grid("nothing to merge".into()));
    }
    let mut headers = Vec::new();
    let mut streams = Vec::new();
    for path in inputs {
        let (h, it) = read_results(path)?;
        if let Some(first) = headers.first()
            && !SweepHeader::same_sweep(first, &h)
        {
            return Err(Error::Grid(format!(
                "{} is from a different sweep than {} (config, grid, search or paths differ)",
                path.display(),
                inputs[0].display()
            )));
        }
        headers.push(h);
        streams.push(it.peekable());
    }
    let count = headers[0].shard.count;
    let mut shards: Vec<usize> = headers.iter().map(|h| h.shard.index).collect();
    shards.sort_unstable();
    let whole = headers.len() == 1 && headers[0].shard == Shard::ALL;
    if !whole && (headers.iter().any(|h| h.shard.count != count) || shards != (1..=count).collect::<Vec<_>>()) {
        let listed: Vec<String> = headers.iter().map(|h| format!("{}/{}", h.shard.index, h.shard.count)).collect();
        return Err(Error::Grid(format!(
            "expected shards 1/{count} to {count}/{count} once each, got {}",
            listed.join(", ")
        )));
    }
    let header = SweepHeader { shard: Shard::ALL, ..headers[0].clone() };
    if let Ok(target) = std::fs::canonicalize(out)
        && inputs.iter().any(|p| std::fs::canonicalize(p).is_ok_and(|p| p == target))
    {
        return Err(Error::Grid(format!("--out {} is one of the inputs: name a new file", out.display())));
    }
    // written beside the target and moved there when complete
    let partial = out.with_extension("jsonl.partial");
    let file = std::fs::File::create(&partial)
        .map_err(|e| Error::Grid(format!("cannot create {}: {e}", partial.display())))?;
    let mut w = std::io::BufWriter::new(file);
    let io = |e: std::io::Error| Error::Grid(format!("{}: {e}", out.display()));
    writeln!(w, "{}", serde_json::to_string(&header).map_err(|e| Error::Grid(e.to_string()))?).map_err(io)?;
    let mut points = 0;
    loop {
        let mut next: Option<(usize, usize)> = None; // (index, stream)
        for (k, s) in streams.iter_mut().enumerate() {
            match s.peek() {
                Some(Ok((i, _))) if next.is_none_or(|(j, _)| *i < j) => next = Some((*i, k)),
                Some(Ok((i, _))) if next.is_some_and(|(j, _)| *i == j) => {
                    return Err(Error::Grid(format!("point {i} is in two inputs")));
                }
                Some(Err(_)) => {
                    return Err(s.next().and_then(|r| r.err()).unwrap_or_else(|| Error::Grid("input".into())));
                }
                _ => {}
            }
        }
        let Some((_, k)) = next else { break };
        let (_, line) = streams[k].next().unwrap_or_else(|| unreachable!())?;
        writeln!(w, "{line}").map_err(io)?;
        points += 1;
    }
    w.flush().map_err(io)?;
    drop(w);
    std::fs::rename(&partial, out).map_err(io)?;
    Ok(MergeReport { points, total: header.points })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        let axes =
            parse_grid("period=7,14,21;oversold=20..35:5; risk.cooldown_bars=0..2 ;nbdev=1.5..2.5:0.5;ma=sma,ema")
                .unwrap();
        let keys: Vec<_> = axes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            ["strategy.period", "strategy.oversold", "risk.cooldown_bars", "strategy.nbdev", "strategy.ma"]
        );
        let ints = |a: &Axis| a.values.iter().map(|v| v.as_integer().unwrap()).collect::<Vec<_>>();
        assert_eq!(ints(&axes[0]), [7, 14, 21]);
        assert_eq!(ints(&axes[1]), [20, 25, 30, 35]);
        assert_eq!(ints(&axes[2]), [0, 1, 2]);
        let floats: Vec<f64> = axes[3].values.iter().map(|v| v.as_float().unwrap()).collect();
        assert_eq!(floats, [1.5, 2.0, 2.5]);
        let tenths = parse_grid("nbdev=0.1..0.9:0.1").unwrap();
        let tenths: Vec<f64> = tenths[0].values.iter().map(|v| v.as_float().unwrap()).collect();
        assert_eq!(tenths, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
        assert_eq!(axes[4].values[1].as_str(), Some("ema"));
        let space = Space::new(axes.clone(), Search::Grid).unwrap();
        assert_eq!(space.len(), 3 * 4 * 3 * 3 * 2);
        // the last axis varies fastest, the first slowest
        assert_eq!(space.coordinates(0), [0, 0, 0, 0, 0]);
        assert_eq!(space.coordinates(1), [0, 0, 0, 0, 1]);
        assert_eq!(space.coordinates(space.len() - 1), [2, 3, 2, 2, 1]);
        let all: std::collections::HashSet<Vec<usize>> = (0..space.len()).map(|i| space.coordinates(i)).collect();
        assert_eq!(all.len(), space.len(), "every combination once");
    }

    #[test]
    fn rejects_bad_grids() {
        for bad in [
            "",
            "period",
            "period=",
            "period=35..20",
            "period=1..5:0",
            "market.seed=1,2",
            "a=1;a=2",
            "kind=rsi",
            "period=2..100000000000",
            "a=1..1000;b=1..1000;c=1..1000",
        ] {
            assert!(parse_grid(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn overrides_are_checked_like_a_config() {
        let base: toml::Table = toml::from_str("[strategy]\nkind = \"rsi\"\n").unwrap();
        let ok = apply(&base, &[("strategy.period".into(), toml::Value::Integer(7))]).unwrap();
        assert!(matches!(ok.strategy, sextant_strategies::StrategySpec::Rsi { period: 7, .. }));
        let err = apply(&base, &[("strategy.period".into(), toml::Value::Integer(1))]).unwrap_err();
        assert!(err.to_string().contains("strategy.period must be between 2 and 100000, got 1"), "{err}");
        let err = apply(&base, &[("strategy.fast".into(), toml::Value::Integer(5))]).unwrap_err();
        assert!(err.to_string().contains("unknown field `fast`"), "{err}");
        let err = apply(&base, &[("strategy.period".into(), toml::Value::Float(7.5))]).unwrap_err();
        assert_eq!(err.to_string(), "grid: point period=7.5: invalid type: floating point `7.5`, expected usize");
    }

    #[test]
    fn random_points_are_drawn_alone_and_reproducibly() {
        let axes = parse_grid("a=1..50;b=1..40;c=x,y,z").unwrap();
        let one = Space::new(axes.clone(), Search::Random { samples: 300, seed: 9 }).unwrap();
        let other_seed = Space::new(axes.clone(), Search::Random { samples: 300, seed: 10 }).unwrap();
        let draws: Vec<Vec<usize>> = (0..300).map(|i| one.coordinates(i)).collect();
        assert_eq!(draws, (0..300).map(|i| one.coordinates(i)).collect::<Vec<_>>(), "same seed, same points");
        assert_ne!(draws, (0..300).map(|i| other_seed.coordinates(i)).collect::<Vec<_>>());
        // every value of every axis turns up, none out of range
        for (k, axis) in axes.iter().enumerate() {
            let seen: std::collections::HashSet<usize> = draws.iter().map(|d| d[k]).collect();
            assert!(seen.iter().all(|&v| v < axis.values.len()));
            assert!(seen.len() * 10 >= axis.values.len() * 9, "axis {k}: {} of {}", seen.len(), axis.values.len());
        }
        assert!(Space::new(axes, Search::Random { samples: 0, seed: 1 }).is_err());
    }

    #[test]
    fn shards_partition_the_points() {
        for n in 1..6 {
            let mut all: Vec<usize> =
                (1..=n).flat_map(|i| Shard { index: i, count: n }.points(23).collect::<Vec<_>>()).collect();
            all.sort_unstable();
            assert_eq!(all, (0..23).collect::<Vec<_>>());
        }
        assert_eq!(Shard::parse(" 2/5").unwrap(), Shard { index: 2, count: 5 });
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    fn scored(index: usize, sharpe: f64, dd: f64) -> Scored {
        let line = serde_json::json!({"index": index, "params": format!("p={index}"),
            "metrics": {"sharpe": sharpe, "max_drawdown": dd, "n_trades": index}})
        .to_string();
        let objectives = [
            Objective::new("sharpe", &Metrics::NAMES).unwrap(),
            Objective::new("max_drawdown", &Metrics::NAMES).unwrap(),
        ];
        let constraint = Constraint::parse("n_trades>=1", &Metrics::NAMES).unwrap();
        score(&line, &objectives, &[constraint]).unwrap()
    }

    #[test]
    fn the_leaderboard_keeps_the_best_and_the_front() {
        let objectives = vec![
            Objective::new("sharpe", &Metrics::NAMES).unwrap(),
            Objective::new("max_drawdown", &Metrics::NAMES).unwrap(),
        ];
        let mut board = Leaderboard::new(objectives, 3);
        // index 0 breaks the constraint; 2 and 5 tie on sharpe (index decides); 4 dominates 1
        for s in [
            scored(0, 9.0, 0.01),
            scored(1, 1.0, 0.3),
            scored(2, 2.0, 0.2),
            scored(3, 0.5, 0.05),
            scored(4, 1.5, 0.25),
            scored(5, 2.0, 0.2),
            scored(6, f64::NAN, 0.1),
        ] {
            board.push(s);
        }
        assert_eq!(board.infeasible, 1);
        let best: Vec<usize> = board.best.iter().map(|s| s.index).collect();
        assert_eq!(best, [2, 5, 4]);
        let front: Vec<usize> = board.front.iter().map(|s| s.index).collect();
        assert_eq!(front, [2, 3, 5], "equal points are both on the front; 1 and 4 are dominated by 2");
    }
}
