//! Stress paths and scenarios: bootstrap paths are made of the data's own moves, regime paths are valid markets of
//! a like scale, every path can be drawn alone and again, and each scenario moves prices and costs by what it
//! says.

use sextant_backtest::stress::{PathModel, Scenario, Stress, StressData, StressSpec, apply_scenarios};
use sextant_backtest::sweep::Shard;
use sextant_backtest::{BacktestConfig, Market};

fn config(extra: &str) -> BacktestConfig {
    let text = format!("[strategy]\nkind = \"rsi\"\n[market]\nseed = 5\nbars = 2000\ninterval = \"1h\"\n{extra}\n");
    BacktestConfig::parse(&text, "t").unwrap()
}

fn spec(model: PathModel, scenarios: Vec<Scenario>) -> StressSpec {
    StressSpec { paths: 8, seed: 3, model, scenarios }
}

fn valid(m: &Market) {
    for c in &m.series.candles {
        assert!(c.close > 0.0 && c.low > 0.0, "{c:?}");
        assert!(c.high >= c.open.max(c.close) * (1.0 - 1e-12) && c.low <= c.open.min(c.close) * (1.0 + 1e-12), "{c:?}");
    }
}

fn log_returns(m: &Market) -> Vec<f64> {
    m.series.candles.windows(2).map(|w| (w[1].close / w[0].close).ln()).collect()
}

#[test]
fn bootstrap_paths_are_made_of_the_datas_own_moves() {
    let cfg = config("");
    let markets = cfg.load_markets().unwrap();
    let s = spec(PathModel::Bootstrap { block: 24 }, vec![]);
    let stress = Stress { config: &cfg, data: StressData::Candles(&markets), spec: &s, shard: Shard::ALL, jobs: 1 };
    let source: Vec<u64> = log_returns(&markets[0]).iter().map(|r| r.to_bits()).collect();
    let source: std::collections::HashSet<u64> = source.into_iter().collect();
    let a = stress.path(3).unwrap();
    assert_eq!(a, stress.path(3).unwrap(), "a path is drawn the same every time");
    assert_ne!(a, stress.path(4).unwrap());
    valid(&a[0]);
    let times = |m: &Market| m.series.candles.iter().map(|c| c.timestamp_ms).collect::<Vec<_>>();
    assert_eq!(times(&a[0]), times(&markets[0]));
    // every move of the path is a move of the data (to rounding of the running product)
    let sorted: Vec<f64> = {
        let mut v: Vec<f64> = source.iter().map(|b| f64::from_bits(*b)).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    for r in log_returns(&a[0]) {
        let at = sorted.partition_point(|x| *x < r - 1e-9);
        assert!(at < sorted.len() && (sorted[at] - r).abs() < 1e-9, "move {r} is not in the data");
    }
    // one block as long as the data reproduces the data
    let whole = spec(PathModel::Bootstrap { block: markets[0].series.len() - 1 }, vec![]);
    let same = Stress { spec: &whole, ..stress };
    let p = same.path(0).unwrap();
    for (x, y) in p[0].series.candles.iter().zip(&markets[0].series.candles) {
        assert!((x.close / y.close - 1.0).abs() < 1e-9 && (x.high / y.high - 1.0).abs() < 1e-9);
    }
}

#[test]
fn regime_paths_are_valid_markets_of_a_like_scale() {
    let cfg = config("");
    let markets = cfg.load_markets().unwrap();
    let s = spec(PathModel::Regime, vec![]);
    let stress = Stress { config: &cfg, data: StressData::Candles(&markets), spec: &s, shard: Shard::ALL, jobs: 1 };
    let sd = |m: &Market| {
        let r = log_returns(m);
        let mean = r.iter().sum::<f64>() / r.len() as f64;
        (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / r.len() as f64).sqrt()
    };
    let base = sd(&markets[0]);
    for i in 0..8 {
        let p = stress.path(i).unwrap();
        valid(&p[0]);
        let ratio = sd(&p[0]) / base;
        assert!((0.6..2.5).contains(&ratio), "path {i}: volatility {ratio:.2}x the data's");
    }
}

/// Scenario arithmetic on the data itself (hourly bars; scenarios start at the middle bar).
#[test]
fn scenarios_move_prices_and_costs_as_named() {
    let cfg = config("");
    let markets = cfg.load_markets().unwrap();
    let n = markets[0].series.len();
    let t0 = n / 2;
    let close = |m: &[Market], i: usize| m[0].series.candles[i].close;
    let run = |scenarios: &[Scenario]| {
        let mut m = markets.clone();
        let mut costs = cfg.costs();
        apply_scenarios(&mut m, &mut costs, scenarios).unwrap();
        m.iter().for_each(valid);
        (m, costs)
    };
    let ratio = |m: &[Market], i: usize| close(m, i) / close(&markets, i);

    let (crash, _) = run(&[Scenario::FlashCrash]);
    assert_eq!(crash[0].series.candles[..t0], markets[0].series.candles[..t0], "nothing moves before the middle");
    assert!((ratio(&crash, t0) - 0.6).abs() < 1e-12, "-40 % within the hour");
    assert!((ratio(&crash, t0 + 25) - 0.8).abs() < 1e-12, "back to -20 % a day later");
    assert!((ratio(&crash, n - 1) - 0.8).abs() < 1e-12);
    assert!((1..25).all(|k| ratio(&crash, t0 + k) > 0.6 && ratio(&crash, t0 + k) <= 0.8 + 1e-12));

    let (bear, _) = run(&[Scenario::SlowBear]);
    assert!((ratio(&bear, n - 1) - 0.5).abs() < 1e-12);
    assert!((t0..n - 1).all(|i| ratio(&bear, i + 1) < ratio(&bear, i)), "a steady decline");

    let (spike, _) = run(&[Scenario::VolSpike]);
    let moves = |m: &[Market], a: usize, b: usize| (close(m, b) / close(m, a)).ln();
    let end = t0 + n / 10;
    assert!((moves(&spike, t0, end) - 3.0 * moves(&markets, t0, end)).abs() < 1e-9, "moves x3 in the window");
    assert!((moves(&spike, end, n - 1) - moves(&markets, end, n - 1)).abs() < 1e-9, "as before after it");

    let (_, costs) = run(&[Scenario::GasSpike, Scenario::LiquidityDrain]);
    assert_eq!(costs.gas_price_gwei, cfg.costs().gas_price_gwei * 20.0);
    assert_eq!(costs.pool_depth_usd, cfg.costs().pool_depth_usd / 10.0);

    // a depeg needs a stable asset, and moves only that one
    let mut m = markets.clone();
    let e = apply_scenarios(&mut m, &mut cfg.costs(), &[Scenario::Depeg]).unwrap_err().to_string();
    assert!(e.contains("needs a stablecoin"), "{e}");
    let two = config(
        "[[market.assets]]\nsymbol = \"WETH\"\nseed = 1\n[[market.assets]]\nsymbol = \"DAI\"\nprofile = \"stable\"\nstart_price = 1.0\nseed = 2\n",
    );
    let base2 = two.load_markets().unwrap();
    let mut m2 = base2.clone();
    apply_scenarios(&mut m2, &mut two.costs(), &[Scenario::Depeg]).unwrap();
    assert_eq!(m2[0], base2[0], "the risk asset does not move");
    let dai = |m: &[Market], i: usize| m[1].series.candles[i].close;
    let low = (t0..base2[1].series.len()).map(|i| dai(&m2, i) / dai(&base2, i)).fold(f64::MAX, f64::min);
    assert!((low - 0.9).abs() < 1e-12, "to 0.90: {low}");
    assert!((dai(&m2, base2[1].series.len() - 1) / dai(&base2, base2[1].series.len() - 1) - 1.0).abs() < 1e-12);
}

/// Lending configs: `rate_spike` pins utilisation at 97 % or more for three days from the middle step (rates from
/// each market's curve there), `liquidity_drain` divides TVL by 10 from the middle on, bootstrap paths resample
/// whole steps at the original times; price scenarios are refused.
#[test]
fn lending_scenarios_and_paths() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/stable-rotator.toml");
    let cfg = BacktestConfig::load(std::path::Path::new(path)).unwrap();
    let base = cfg.load_lending().unwrap();
    let t0 = base.times[base.times.len() / 2];
    let end = t0 + 3 * 86_400_000;
    let mut spiked = base.clone();
    sextant_backtest::stress::apply_lending_scenarios(&mut spiked, &mut cfg.costs(), &[Scenario::RateSpike]).unwrap();
    let mut inside = 0;
    for (m, b) in spiked.markets.iter().zip(&base.markets) {
        for (p, q) in m.series.points.iter().zip(&b.series.points) {
            if p.timestamp_ms >= t0 && p.timestamp_ms < end {
                inside += 1;
                assert!(p.utilization >= 0.97 && p.utilization >= q.utilization);
                if let Some(c) = &m.curve {
                    let apy = sextant_protocols::aave_v3::apy_of_apr(c.borrow_apr(p.utilization));
                    assert_eq!(p.borrow_apy, apy);
                }
            } else {
                assert_eq!(p, q, "outside the three days nothing moves");
            }
        }
    }
    assert!(inside > 0);
    let mut drained = base.clone();
    let mut costs = cfg.costs();
    sextant_backtest::stress::apply_lending_scenarios(&mut drained, &mut costs, &[Scenario::LiquidityDrain]).unwrap();
    for (m, b) in drained.markets.iter().zip(&base.markets) {
        for (p, q) in m.series.points.iter().zip(&b.series.points) {
            let expect = if p.timestamp_ms >= t0 { q.tvl_usd / 10.0 } else { q.tvl_usd };
            assert_eq!(p.tvl_usd, expect);
        }
    }
    let e =
        sextant_backtest::stress::apply_lending_scenarios(&mut base.clone(), &mut cfg.costs(), &[Scenario::FlashCrash]);
    assert!(e.unwrap_err().to_string().contains("applies to candle configs"));

    let s = spec(PathModel::Bootstrap { block: 48 }, vec![Scenario::RateSpike]);
    let stress = Stress { config: &cfg, data: StressData::Lending(&base), spec: &s, shard: Shard::ALL, jobs: 1 };
    stress.check().unwrap();
    let p = stress.lending_path(2).unwrap();
    assert_eq!(p, stress.lending_path(2).unwrap());
    assert_eq!(p.times, base.times);
    for (m, b) in p.markets.iter().zip(&base.markets) {
        for q in &m.series.points {
            assert!(b.series.points.iter().any(|o| o.supply_apy == q.supply_apy && o.tvl_usd == q.tvl_usd));
        }
    }
    // the spike changes what the rotator earns on the data itself
    let history = spec(PathModel::History, vec![]);
    let spike = spec(PathModel::History, vec![Scenario::RateSpike]);
    let run = |s: &StressSpec| {
        let s = StressSpec { paths: 1, ..s.clone() };
        Stress { config: &cfg, data: StressData::Lending(&base), spec: &s, shard: Shard::ALL, jobs: 1 }
            .run_path(0)
            .unwrap()
    };
    assert_ne!(run(&history).metrics, run(&spike).metrics);
}

/// LP configs on a synthetic pool: a path regenerates the pool's flow along the path's prices, so the data itself
/// (`--model history`) is the LP backtest exactly; a flash crash moves the pool's price with it, and a liquidity
/// drain leaves a tenth of the pool's depth.
#[test]
fn lp_paths_regenerate_the_pool_along_the_path() {
    use sextant_backtest::stress::PoolStress;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/lp-blue-chip.toml");
    let mut cfg = BacktestConfig::load(std::path::Path::new(path)).unwrap();
    cfg.market.bars = 1500;
    let spec = cfg.pool_synth().unwrap().expect("a synthetic pool");
    let base = sextant_types::Token::simulated(&cfg.market.symbol, 18).unwrap();
    let quote = sextant_types::Token::simulated(&cfg.market.quote, 6).unwrap();
    let candles = vec![Market { base, quote, series: spec.market.generate().unwrap(), source: "t".into() }];
    let pool = PoolStress { candles, spec };
    let run = |model: PathModel, scenarios: Vec<Scenario>| {
        let s = StressSpec { paths: 1, seed: 1, model, scenarios };
        Stress { config: &cfg, data: StressData::Pool(&pool), spec: &s, shard: Shard::ALL, jobs: 1 }
            .run_path(0)
            .unwrap()
    };
    let alone = sextant_backtest::run_lp_backtest(&cfg, &mut |_| {}).unwrap();
    let history = run(PathModel::History, vec![]);
    assert_eq!(history.metrics, alone.result.metrics, "the data itself is the LP backtest");
    let crash = run(PathModel::History, vec![Scenario::FlashCrash]);
    assert_ne!(crash.metrics, history.metrics);
    let drained = run(PathModel::History, vec![Scenario::LiquidityDrain]);
    assert_ne!(drained.metrics, history.metrics, "a tenth of the depth changes the fees and the impact");
    let boot = run(PathModel::Bootstrap { block: 24 }, vec![]);
    assert_ne!(boot.metrics, history.metrics);
    // the pool follows the crashed path: its market is generated along it
    let mut crashed = pool.candles.clone();
    apply_scenarios(&mut crashed, &mut cfg.costs(), &[Scenario::FlashCrash]).unwrap();
    let (_, steps) = pool.spec.generate_from(&crashed[0].series).unwrap();
    let t0 = crashed[0].series.len() / 2;
    let close = |i: usize| steps[i].close_sqrt_price_x96.unwrap();
    assert!(close(t0) < close(t0 - 1), "the pool's close falls at the crash");
}
