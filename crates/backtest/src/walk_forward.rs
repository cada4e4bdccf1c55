//! Walk-forward optimisation: the data is cut into rolling (train, test) windows; each training window is swept on
//! its own data only and the best point (by the objective, among points meeting the constraints) is run on the test
//! window that follows, starting flat: on candles its indicators warmed up on the training window's bars (which it
//! may see: they are the past) without trading on them; on a pool from the pool as the flow before the window left
//! it; on lending markets from their state at the window's start. The test
//! windows' equity curves are stitched into one out-of-sample curve (each window starts with the capital the previous
//! one ended with), and each window reports its in-sample and out-of-sample value of the objective: the gap between
//! them is what overfitting costs.
//!
//! Nothing a window chooses can depend on a bar at or after its test window's start: the sweep of fold `k` runs on
//! markets cut to `[train_start, test_start)` before anything runs.

use crate::engine::{CostTotals, EquityPoint, Trade};
use crate::lending::RateMarket;
use crate::lp::PoolMarket;
use crate::metrics::compute_metrics;
use crate::sweep::{Constraint, Leaderboard, Objective, Shard, Space, Sweep, SweepData, apply, score};
use crate::{Error, Market, Metrics, Result, run_backtest_from};
use serde::Serialize;
use std::sync::atomic::AtomicBool;

/// Window lengths, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Windows {
    /// Training window.
    pub train_ms: i64,
    /// Test window.
    pub test_ms: i64,
    /// How far each fold moves on (defaults to the test window: test windows tile the data).
    pub step_ms: i64,
}

const DAY_MS: i64 = 86_400_000;

fn duration_ms(key: &str, text: &str) -> Result<i64> {
    let bad = || Error::Grid(format!("walk-forward {key}={text}: expected a duration such as 90d, 12h, 2w or 30m"));
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: i64 = text[..split].parse().map_err(|_| bad())?;
    let unit = match &text[split..] {
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(unit).ok_or_else(bad)
}

fn text_duration(ms: i64) -> String {
    if ms % DAY_MS == 0 { format!("{}d", ms / DAY_MS) } else { format!("{}m", ms / 60_000) }
}

impl Windows {
    /// Parses `train=90d,test=30d[,step=30d]` (units m, h, d, w).
    ///
    /// # Errors
    /// A missing train or test length, an unknown key, a malformed duration.
    pub fn parse(text: &str) -> Result<Self> {
        let (mut train, mut test, mut step) = (None, None, None);
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| Error::Grid(format!("walk-forward: expected key=duration, got {part:?}")))?;
            let slot = match key.trim() {
                "train" => &mut train,
                "test" => &mut test,
                "step" => &mut step,
                other => return Err(Error::Grid(format!("walk-forward: unknown key {other:?} (train, test, step)"))),
            };
            *slot = Some(duration_ms(key.trim(), value)?);
        }
        let (Some(train_ms), Some(test_ms)) = (train, test) else {
            return Err(Error::Grid("walk-forward needs train= and test=, e.g. train=90d,test=30d".into()));
        };
        let step_ms = step.unwrap_or(test_ms);
        if step_ms < test_ms {
            // overlapping test windows would stitch the same stretch of time into the curve more than once
            return Err(Error::Grid(format!(
                "walk-forward: step ({}) must be at least the test window ({}), so test windows do not overlap",
                text_duration(step_ms),
                text_duration(test_ms)
            )));
        }
        Ok(Windows { train_ms, test_ms, step_ms })
    }

    /// The folds over data spanning `[start, end]` (bar times): `(train_start, test_start, test_end)`, every test
    /// window whole and inside the data.
    pub fn folds(&self, start: i64, end: i64) -> Vec<(i64, i64, i64)> {
        let mut out = Vec::new();
        let mut train_start = start;
        while train_start.saturating_add(self.train_ms).saturating_add(self.test_ms) <= end.saturating_add(1) {
            let test_start = train_start + self.train_ms;
            out.push((train_start, test_start, test_start + self.test_ms));
            train_start += self.step_ms;
        }
        out
    }
}

/// What a walk-forward cuts into windows.
#[derive(Clone, Copy)]
pub enum WalkData<'a> {
    /// Candle markets (indicator strategies): test windows warm up on their training bars.
    Candles(&'a [Market]),
    /// A pool and its order flow (LP strategies): each window starts from the pool as the flow before it left it.
    Pool(&'a PoolMarket),
    /// Lending markets (the stable rotator).
    Lending(&'a RateMarket),
}

impl WalkData<'_> {
    /// The first and last times of the data.
    fn span(&self) -> (i64, i64) {
        let times: Vec<i64> = match self {
            WalkData::Candles(markets) => markets
                .iter()
                .flat_map(|m| m.series.candles.first().zip(m.series.candles.last()))
                .flat_map(|(a, b)| [a.timestamp_ms, b.timestamp_ms])
                .collect(),
            WalkData::Pool(p) => {
                p.steps.first().zip(p.steps.last()).map_or(Vec::new(), |(a, b)| vec![a.timestamp_ms, b.timestamp_ms])
            }
            WalkData::Lending(l) => l.times.first().zip(l.times.last()).map_or(Vec::new(), |(a, b)| vec![*a, *b]),
        };
        times.iter().fold((i64::MAX, i64::MIN), |(s, e), t| (s.min(*t), e.max(*t)))
    }
}

/// The pool as the flow before `start` leaves it, with the flow of `[start, end)`: what a strategy starting at
/// `start` finds.
pub fn slice_pool(market: &PoolMarket, start: i64, end: i64) -> PoolMarket {
    let mut pool = market.pool.clone();
    for step in market.steps.iter().take_while(|s| s.timestamp_ms < start) {
        sextant_data::synth_pool::replay_step(&mut pool, step);
    }
    let steps = market.steps.iter().filter(|s| s.timestamp_ms >= start && s.timestamp_ms < end).cloned().collect();
    PoolMarket { pool, steps, ..market.clone_without_flow() }
}

/// The lending markets' observations of `[start, end)`, with the last one before `start` (the state at `start`).
pub fn slice_rates(market: &RateMarket, start: i64, end: i64) -> RateMarket {
    let markets = market
        .markets
        .iter()
        .map(|m| {
            let mut m = m.clone();
            // the state at `start`: the last observation before it, unless one falls exactly on it
            let at = m.series.points.partition_point(|p| p.timestamp_ms < start);
            let exact = m.series.points.get(at).is_some_and(|p| p.timestamp_ms == start);
            let first = if exact { at } else { at.saturating_sub(1) };
            m.series.points = m.series.points[first..].iter().filter(|p| p.timestamp_ms < end).copied().collect();
            if let Some(p) = m.series.points.first_mut() {
                p.timestamp_ms = p.timestamp_ms.max(start);
            }
            m
        })
        .collect();
    RateMarket::new(market.asset.clone(), markets, market.source.clone())
}

/// The markets' bars with `start <= time < end`.
pub fn slice_markets(markets: &[Market], start: i64, end: i64) -> Vec<Market> {
    markets
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.series.candles.retain(|c| c.timestamp_ms >= start && c.timestamp_ms < end);
            m
        })
        .collect()
}

/// One fold's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fold {
    /// Training window start (unix ms, inclusive).
    pub train_start_ms: i64,
    /// Test window start = training window end (exclusive).
    pub test_start_ms: i64,
    /// Test window end (exclusive).
    pub test_end_ms: i64,
    /// The chosen point's parameters, or None when no point of the training sweep met the constraints.
    pub chosen: Option<String>,
    /// The objective in sample (the chosen point on its training window).
    pub in_sample: f64,
    /// The objective out of sample (the chosen point on the test window).
    pub out_of_sample: f64,
    /// In-sample metrics of the chosen point.
    pub train_metrics: Option<Metrics>,
    /// Out-of-sample metrics of the chosen point.
    pub test_metrics: Option<Metrics>,
    /// Points of the training sweep that met the constraints.
    pub feasible: usize,
}

/// What a walk-forward reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WalkForwardResult {
    /// The windows.
    pub windows: Windows,
    /// The objective.
    pub objective: String,
    /// Every fold, in time order.
    pub folds: Vec<Fold>,
    /// The test windows' equity, stitched: each starts at the capital the previous ended with (a fold with no
    /// feasible point stays in cash).
    pub equity: Vec<EquityPoint>,
    /// Metrics of the stitched out-of-sample curve.
    pub metrics: Metrics,
    /// Mean in-sample objective over the folds that chose a point.
    pub mean_in_sample: f64,
    /// Mean out-of-sample objective over the same folds.
    pub mean_out_of_sample: f64,
}

/// A walk-forward to run.
pub struct WalkForward<'a> {
    /// The config the points override.
    pub base: &'a toml::Table,
    /// The config's directory.
    pub dir: &'a std::path::Path,
    /// The points tried in every training window.
    pub space: &'a Space,
    /// The data, whole.
    pub data: WalkData<'a>,
    /// Window lengths.
    pub windows: Windows,
    /// The objective (the first of a sweep's metrics).
    pub objective: Objective,
    /// Constraints a chosen point must meet in sample.
    pub constraints: &'a [Constraint],
    /// Worker threads.
    pub jobs: usize,
    /// Initial cash (the base config's).
    pub initial_cash: f64,
}

impl WalkForward<'_> {
    /// The folds over the data: `(train_start, test_start, test_end)`.
    pub fn folds(&self) -> Vec<(i64, i64, i64)> {
        let (start, end) = self.data.span();
        self.windows.folds(start, end)
    }

    /// The chosen point on a test window: candles from flat after a warm-up on the training bars; a pool or
    /// lending markets from flat at the window's start (their strategies keep no indicators).
    fn test_run(
        &self,
        config: &crate::BacktestConfig,
        train_start: i64,
        test_start: i64,
        test_end: i64,
    ) -> Result<(crate::BacktestResult, Option<crate::LpMetrics>)> {
        let cash = config.portfolio.initial_cash;
        Ok(match self.data {
            WalkData::Candles(markets) => {
                (run_backtest_from(config, &slice_markets(markets, train_start, test_end), test_start)?, None)
            }
            WalkData::Pool(p) => {
                let market = slice_pool(p, test_start, test_end);
                let strategy = crate::build_lp_strategy(config, &market)?;
                let r = crate::lp::LpEngine::new(&strategy, &market, config.costs(), cash).run(&mut |_| {});
                (r.result, Some(r.lp))
            }
            WalkData::Lending(l) => {
                let market = slice_rates(l, test_start, test_end);
                let strategy = crate::build_rotator(config)?;
                (
                    crate::lending::LendingEngine::new(&strategy, &market, config.costs(), cash)
                        .run(&mut |_| {})
                        .result,
                    None,
                )
            }
        })
    }

    /// Runs every fold; `progress(fold, folds)` is called as each fold starts.
    ///
    /// # Errors
    /// No fold fits in the data, a point whose overrides do not fit the config, a stopped sweep.
    pub fn run(&self, stop: &AtomicBool, progress: &(dyn Fn(usize, usize, usize) + Sync)) -> Result<WalkForwardResult> {
        let (start, end) = self.data.span();
        if start > end {
            return Err(Error::Grid("walk-forward: the data is empty".into()));
        }
        let folds = self.folds();
        if folds.is_empty() {
            return Err(Error::Grid(format!(
                "walk-forward: the data spans {:.2} days, less than one training window plus one test window ({:.2} days)",
                (end - start) as f64 / DAY_MS as f64,
                (self.windows.train_ms + self.windows.test_ms) as f64 / DAY_MS as f64
            )));
        }
        let objective = &self.objective.metric;
        let mut out = Vec::new();
        let mut equity: Vec<EquityPoint> = Vec::new();
        let mut trades: Vec<Trade> = Vec::new();
        let mut totals = CostTotals::default();
        let mut capital = self.initial_cash;
        for (k, &(train_start, test_start, test_end)) in folds.iter().enumerate() {
            let (candles, pool, rates);
            let train = match self.data {
                WalkData::Candles(markets) => {
                    candles = slice_markets(markets, train_start, test_start);
                    SweepData::Markets(&candles)
                }
                WalkData::Pool(p) => {
                    pool = slice_pool(p, train_start, test_start);
                    SweepData::Pool(&pool)
                }
                WalkData::Lending(l) => {
                    rates = slice_rates(l, train_start, test_start);
                    SweepData::Lending(&rates)
                }
            };
            let sweep = Sweep::new(self.base, self.dir, self.space, Shard::ALL, train, self.jobs);
            let mut board = Leaderboard::new(vec![self.objective.clone()], 1);
            let mut failure = None;
            let outcome =
                sweep.run(&mut std::iter::empty(), stop, &|| progress(k, folds.len(), 1), &mut |_, line| {
                    match score(line, std::slice::from_ref(&self.objective), self.constraints) {
                        Ok(s) => board.push(s),
                        Err(e) => failure = Some(e),
                    }
                    Ok(())
                })?;
            if let Some(e) = failure {
                return Err(e);
            }
            if outcome.stopped {
                return Err(Error::Grid(format!("walk-forward stopped in fold {} of {}", k + 1, folds.len())));
            }
            let feasible = board.seen - board.infeasible - board.failed;
            let best = board.best.first().filter(|b| !b.values[0].is_nan()).cloned();
            let fold = match best {
                Some(best) => {
                    let mut config = apply(self.base, &self.space.point(best.index))?;
                    config.resolve_paths(self.dir);
                    let in_result = serde_json::from_str::<serde_json::Value>(&best.line)
                        .ok()
                        .and_then(|v| serde_json::from_value::<Metrics>(v["metrics"].clone()).ok());
                    let (r, lp) = self.test_run(&config, train_start, test_start, test_end)?;
                    // the chosen point's own cash (a grid may sweep it) scales to the capital carried forward
                    let scale = capital / config.portfolio.initial_cash;
                    equity.extend(
                        r.equity.iter().map(|p| EquityPoint { timestamp_ms: p.timestamp_ms, equity: p.equity * scale }),
                    );
                    trades.extend(r.trades.iter().cloned());
                    totals.fees += r.metrics.fees_paid * scale;
                    totals.gas += r.metrics.gas_paid * scale;
                    totals.slippage += r.metrics.slippage_paid * scale;
                    totals.mev += r.metrics.mev_paid * scale;
                    capital = r.metrics.final_equity * scale;
                    Fold {
                        train_start_ms: train_start,
                        test_start_ms: test_start,
                        test_end_ms: test_end,
                        chosen: Some(best.params.clone()),
                        in_sample: best.values[0],
                        out_of_sample: r
                            .metrics
                            .get(objective)
                            .or_else(|| lp.and_then(|l| l.get(objective)))
                            .unwrap_or(f64::NAN),
                        train_metrics: in_result,
                        test_metrics: Some(r.metrics),
                        feasible,
                    }
                }
                None => {
                    // nothing qualifies: the money waits in cash through the test window
                    let mut times: Vec<i64> = match self.data {
                        WalkData::Candles(markets) => {
                            markets.iter().flat_map(|m| m.series.candles.iter().map(|c| c.timestamp_ms)).collect()
                        }
                        WalkData::Pool(p) => p.steps.iter().map(|s| s.timestamp_ms).collect(),
                        WalkData::Lending(l) => l.times.clone(),
                    };
                    times.retain(|&t| t >= test_start && t < test_end);
                    times.sort_unstable();
                    times.dedup();
                    equity.extend(times.into_iter().map(|t| EquityPoint { timestamp_ms: t, equity: capital }));
                    Fold {
                        train_start_ms: train_start,
                        test_start_ms: test_start,
                        test_end_ms: test_end,
                        chosen: None,
                        in_sample: f64::NAN,
                        out_of_sample: f64::NAN,
                        train_metrics: None,
                        test_metrics: None,
                        feasible,
                    }
                }
            };
            out.push(fold);
        }
        let chosen: Vec<&Fold> = out.iter().filter(|f| f.chosen.is_some()).collect();
        let mean = |f: &dyn Fn(&Fold) -> f64| {
            let v: Vec<f64> = chosen.iter().map(|x| f(x)).filter(|x| x.is_finite()).collect();
            if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
        };
        let metrics = compute_metrics(self.initial_cash, &equity, &trades, &totals);
        Ok(WalkForwardResult {
            windows: self.windows,
            objective: objective.clone(),
            mean_in_sample: mean(&|f| f.in_sample),
            mean_out_of_sample: mean(&|f| f.out_of_sample),
            folds: out,
            equity,
            metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_tile() {
        let w = Windows::parse("train=90d, test=30d").unwrap();
        assert_eq!(w, Windows { train_ms: 90 * DAY_MS, test_ms: 30 * DAY_MS, step_ms: 30 * DAY_MS });
        let w2 = Windows::parse("train=2w,test=12h,step=1d").unwrap();
        assert_eq!(w2.step_ms, DAY_MS);
        let e = Windows::parse("train=52w,test=13w,step=4w").unwrap_err().to_string();
        assert!(e.contains("must be at least the test window"), "{e}");
        for bad in ["train=90d", "test=3d", "train=90,test=30d", "train=0d,test=1d", "train=1d,test=1d,stride=1d", "x"]
        {
            assert!(Windows::parse(bad).is_err(), "{bad}");
        }
        // 200 days of data: folds at 0, 30, 60 (test ends 120, 150, 180); a fourth would end at 210
        let folds = w.folds(0, 200 * DAY_MS);
        assert_eq!(folds.len(), 3);
        assert_eq!(folds[1], (30 * DAY_MS, 120 * DAY_MS, 150 * DAY_MS));
        assert!(folds.iter().all(|&(a, b, c)| a < b && b < c && c <= 200 * DAY_MS + 1));
        assert!(w.folds(0, 100 * DAY_MS).is_empty());
    }
}
