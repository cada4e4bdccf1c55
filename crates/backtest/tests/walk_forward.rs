//! Walk-forward: no test window is seen by the optimisation that chooses its parameters, and the stitched
//! out-of-sample result is exactly the test windows' results chained.

use sextant_backtest::sweep::{Leaderboard, Objective, Search, Shard, Space, Sweep, SweepData, parse_grid, score};
use sextant_backtest::walk_forward::{WalkData, WalkForward, WalkForwardResult, Windows, slice_markets};
use sextant_backtest::{BacktestConfig, Market, Metrics, run_backtest_from};
use std::sync::atomic::AtomicBool;

const CONFIG: &str = r#"
[strategy]
kind = "ma_cross"
fast = 5
slow = 30

[market]
seed = 11
bars = 900
interval = "1d"

[execution]
costs = "none"
fill = "next_open"
"#;

fn setup() -> (toml::Table, Vec<Market>, Space) {
    let base: toml::Table = toml::from_str(CONFIG).unwrap();
    let markets = BacktestConfig::parse(CONFIG, "t").unwrap().load_markets().unwrap();
    let space = Space::new(parse_grid("fast=2..12:2;slow=14..44:6").unwrap(), Search::Grid).unwrap();
    (base, markets, space)
}

fn walk(base: &toml::Table, markets: &[Market], space: &Space) -> WalkForwardResult {
    let wf = WalkForward {
        base,
        dir: std::path::Path::new("."),
        space,
        data: WalkData::Candles(markets),
        windows: Windows::parse("train=180d,test=60d").unwrap(),
        objective: Objective::new("total_return", &Metrics::NAMES).unwrap(),
        constraints: &[],
        jobs: 2,
        initial_cash: 10_000.0,
    };
    wf.run(&AtomicBool::new(false), &|_, _, _| {}).unwrap()
}

/// The markets with every bar from `from` on replaced by a swinging path of period `period` bars: a future that
/// rewards whichever crossover happens to fit its rhythm.
fn rewrite_future(markets: &[Market], from: i64, period: f64, seed: f64) -> Vec<Market> {
    let mut out = markets.to_vec();
    let candles = &mut out[0].series.candles;
    let start = candles.iter().position(|c| c.timestamp_ms >= from).unwrap();
    let anchor = candles[start.saturating_sub(1)].close;
    let mut prev = anchor;
    for (i, c) in candles[start..].iter_mut().enumerate() {
        let phase = 2.0 * std::f64::consts::PI * (i as f64 / period + seed);
        let close = anchor * (1.0 + 0.002 * i as f64) * (1.0 + 0.25 * phase.sin());
        *c = sextant_market::Candle {
            timestamp_ms: c.timestamp_ms,
            open: prev,
            high: prev.max(close) * 1.001,
            low: prev.min(close) * 0.999,
            close,
            volume: c.volume,
        };
        prev = close;
    }
    out
}

/// The best point of a sweep over `markets` by total return: what an optimiser that could see them would choose.
fn best_seeing(base: &toml::Table, markets: &[Market], space: &Space) -> String {
    let sweep = Sweep::new(base, std::path::Path::new("."), space, Shard::ALL, SweepData::Markets(markets), 2);
    let objective = Objective::new("total_return", &Metrics::NAMES).unwrap();
    let mut board = Leaderboard::new(vec![objective.clone()], 1);
    sweep
        .run(&mut std::iter::empty(), &AtomicBool::new(false), &|| {}, &mut |_, line| {
            board.push(score(line, std::slice::from_ref(&objective), &[]).unwrap());
            Ok(())
        })
        .unwrap();
    board.best[0].params.clone()
}

/// Rewriting everything from a fold's test window on (a future in which some other crossover would have made a
/// fortune, and would have been chosen by an optimiser allowed to see it) changes nothing the fold chose or measured
/// in sample, and changes what it earned out of sample: the test window never reached the optimisation.
#[test]
fn a_test_window_never_reaches_its_own_optimisation() {
    let (base, markets, space) = setup();
    let plain = walk(&base, &markets, &space);
    assert!(plain.folds.len() >= 8, "{} folds", plain.folds.len());
    let mut leaks_caught = 0;
    for (k, fold) in plain.folds.iter().enumerate().step_by(2) {
        for (period, seed) in [(9.0, 0.1), (23.0, 0.6), (41.0, 0.3)] {
            let future = rewrite_future(&markets, fold.test_start_ms, period, seed);
            let rewritten = walk(&base, &future, &space);
            let f = &rewritten.folds[k];
            assert_eq!(f.chosen, fold.chosen, "fold {k}: the choice moved with its own future");
            assert_eq!(f.in_sample.to_bits(), fold.in_sample.to_bits(), "fold {k}: in-sample moved");
            assert_eq!(f.train_metrics, fold.train_metrics);
            assert_ne!(f.test_metrics, fold.test_metrics, "fold {k}: the rewrite must change the test window");
            // earlier folds are untouched entirely
            assert_eq!(rewritten.folds[..k], plain.folds[..k]);
            // an optimiser that could see the test window would have chosen otherwise
            let seeing = slice_markets(&future, fold.train_start_ms, fold.test_end_ms);
            if Some(best_seeing(&base, &seeing, &space)) != fold.chosen {
                leaks_caught += 1;
            }
        }
    }
    assert!(leaks_caught >= 3, "the rewritten futures must tempt a leaky optimiser ({leaks_caught} did)");
}

/// Each fold's out-of-sample result is the chosen point run alone on its training and test bars, trading from the
/// test window's start; the stitched curve chains them: its final equity is the initial cash times every test
/// window's growth, and its points are the test windows' bars, in order, without overlap.
#[test]
fn the_stitched_curve_chains_the_test_windows() {
    let (base, markets, space) = setup();
    let r = walk(&base, &markets, &space);
    let mut growth = 1.0;
    let mut points = 0;
    for fold in &r.folds {
        let chosen = fold.chosen.as_ref().expect("a point is chosen without constraints");
        let point: Vec<(String, toml::Value)> = chosen
            .split(' ')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (format!("strategy.{k}"), toml::Value::Integer(v.parse().unwrap()))
            })
            .collect();
        let config = sextant_backtest::sweep::apply(&base, &point).unwrap();
        let alone = run_backtest_from(
            &config,
            &slice_markets(&markets, fold.train_start_ms, fold.test_end_ms),
            fold.test_start_ms,
        )
        .unwrap();
        assert_eq!(Some(alone.metrics), fold.test_metrics);
        assert!(alone.equity.iter().all(|p| p.timestamp_ms >= fold.test_start_ms && p.timestamp_ms < fold.test_end_ms));
        assert!(alone.trades.iter().all(|t| t.entry_time_ms >= fold.test_start_ms));
        growth *= alone.metrics.final_equity / 10_000.0;
        points += alone.equity.len();
    }
    assert_eq!(r.equity.len(), points);
    assert!(r.equity.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms));
    let expect = 10_000.0 * growth;
    assert!((r.metrics.final_equity - expect).abs() < 1e-6 * expect, "{} vs {expect}", r.metrics.final_equity);
    assert!(r.mean_in_sample.is_finite() && r.mean_out_of_sample.is_finite());
}

/// LP and lending configs walk forward too, and neither sees its test window while choosing: rewriting the pool's
/// flow (ten times the volume) or the lending rates (one market paying 50 %) from a fold's test window on leaves
/// that fold's choice and in-sample result alone and changes its out-of-sample result.
#[test]
fn pools_and_lending_markets_walk_forward_without_look_ahead() {
    use sextant_backtest::walk_forward::{slice_pool, slice_rates};
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/");
    let walk = |base: &toml::Table, data: WalkData<'_>, grid: &str, metric: &str, windows: &str| {
        let space = Space::new(parse_grid(grid).unwrap(), Search::Grid).unwrap();
        WalkForward {
            base,
            dir: std::path::Path::new(root),
            space: &space,
            data,
            windows: Windows::parse(windows).unwrap(),
            objective: Objective::new(metric, &Metrics::NAMES).unwrap(),
            constraints: &[],
            jobs: 2,
            initial_cash: 100_000.0,
        }
        .run(&AtomicBool::new(false), &|_, _, _| {})
        .unwrap()
    };

    // LP: the pool keeps its state across the cut
    let text = std::fs::read_to_string(format!("{root}lp-blue-chip.toml")).unwrap();
    let base: toml::Table = toml::from_str(&text).unwrap();
    let pool = BacktestConfig::parse(&text, "t").unwrap().load_pool().unwrap();
    let cut = pool.steps[700].timestamp_ms;
    let sliced = slice_pool(&pool, cut, i64::MAX);
    let mut replayed = pool.pool.clone();
    for s in &pool.steps[..700] {
        sextant_data::synth_pool::replay_step(&mut replayed, s);
    }
    assert_eq!(sliced.pool, replayed);
    assert_eq!(sliced.steps[..], pool.steps[700..]);
    let grid = "width_ticks=300..1500:600;recenter_at=0.6,1.0";
    let plain = walk(&base, WalkData::Pool(&pool), grid, "total_return", "train=40d,test=20d");
    assert_eq!(plain.folds.len(), 2);
    let fold = &plain.folds[0];
    let mut busy = pool.clone();
    for s in busy.steps.iter_mut().filter(|s| s.timestamp_ms >= fold.test_start_ms) {
        for swap in &mut s.swaps {
            swap.amount_specified *= alloy_primitives::I256::try_from(10).unwrap();
        }
    }
    let rewritten = walk(&base, WalkData::Pool(&busy), grid, "total_return", "train=40d,test=20d");
    assert_eq!(rewritten.folds[0].chosen, fold.chosen);
    assert_eq!(rewritten.folds[0].train_metrics, fold.train_metrics);
    assert_ne!(rewritten.folds[0].test_metrics, fold.test_metrics);

    // lending: the rates' state at the cut comes along
    let text = std::fs::read_to_string(format!("{root}stable-rotator.toml")).unwrap();
    let base: toml::Table = toml::from_str(&text).unwrap();
    let rates = BacktestConfig::parse(&text, "t").unwrap().load_lending().unwrap();
    let t = rates.times[100] + 1;
    let s = slice_rates(&rates, t, i64::MAX);
    for (m, full) in s.markets.iter().zip(&rates.markets) {
        assert_eq!(m.series.at(t).map(|p| p.supply_apy), full.series.at(t).map(|p| p.supply_apy));
        assert!(m.series.points.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms));
    }
    let grid = "horizon_days=7,30;max_share=0.5,1.0";
    let plain = walk(&base, WalkData::Lending(&rates), grid, "cagr", "train=60d,test=30d");
    let fold = &plain.folds[2];
    let mut rich = rates.clone();
    for p in rich.markets[1].series.points.iter_mut().filter(|p| p.timestamp_ms >= fold.test_start_ms) {
        p.supply_apy = 0.5;
    }
    let rewritten = walk(&base, WalkData::Lending(&rich), grid, "cagr", "train=60d,test=30d");
    assert_eq!(rewritten.folds[..2], plain.folds[..2]);
    assert_eq!(rewritten.folds[2].chosen, fold.chosen);
    assert_eq!(rewritten.folds[2].train_metrics, fold.train_metrics);
    assert_ne!(rewritten.folds[2].test_metrics, fold.test_metrics);
}
