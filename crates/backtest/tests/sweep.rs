//! A sweep over candles computes each distinct indicator once and shares it between points: every point's
//! metrics must equal the same config backtested alone, with its own indicators, exactly.

use sextant_backtest::sweep::{Search, Shard, Space, Sweep, SweepData, apply, parse_grid};
use sextant_backtest::{BacktestConfig, Metrics, run_backtest};
use std::sync::atomic::AtomicBool;

fn check(config: &str, grid: &str) -> usize {
    let base: toml::Table = toml::from_str(config).unwrap();
    let markets = BacktestConfig::parse(config, "t").unwrap().load_markets().unwrap();
    let space = Space::new(parse_grid(grid).unwrap(), Search::Grid).unwrap();
    let dir = std::path::Path::new(".");
    let sweep = Sweep::new(&base, dir, &space, Shard::ALL, SweepData::Markets(&markets), 2);
    let mut lines = Vec::new();
    sweep
        .run(&mut std::iter::empty(), &AtomicBool::new(false), &|| {}, &mut |i, line| {
            lines.push((i, line.to_string()));
            Ok(())
        })
        .unwrap();
    assert_eq!(lines.len(), space.len());
    for (i, line) in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let shared: Metrics = serde_json::from_value(v["metrics"].clone()).unwrap();
        let alone = run_backtest(&apply(&base, &space.point(*i)).unwrap(), &markets).unwrap().metrics;
        assert_eq!(shared, alone, "point {} ({}): shared indicators changed the result", i, v["params"]);
    }
    lines.iter().filter(|(_, l)| !l.contains("\"n_trades\":0")).count()
}

const TWO_ASSETS: &str = r#"
[market]
interval = "1h"
bars = 3000
[[market.assets]]
symbol = "WETH"
seed = 3
[[market.assets]]
symbol = "WBTC"
seed = 4
start_price = 60000
[risk]
position_size = 0.5
stop_loss_pct = 5
cooldown_bars = 2
"#;

#[test]
fn shared_indicators_decide_exactly_as_the_strategies_own() {
    let traded =
        check(&format!("[strategy]\nkind = \"rsi\"\n{TWO_ASSETS}"), "period=2..20:3;oversold=20,30;overbought=70,80");
    assert!(traded > 20, "{traded} points traded");
    check(&format!("[strategy]\nkind = \"ma_cross\"\n{TWO_ASSETS}"), "fast=3..15:4;slow=20..60:20;ma=sma,ema");
    check(
        &format!("[strategy]\nkind = \"bollinger\"\n{TWO_ASSETS}"),
        "period=10..30:10;nbdev=1.5,2.0;exit=middle,upper",
    );
    // a file with gaps and dates: the example GOOG data
    let goog = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/ma-cross.toml")).unwrap();
    let goog =
        goog.replace("../tests/data/GOOG.csv", concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/GOOG.csv"));
    check(&goog, "fast=2..20:6;slow=25..85:20");
}

/// A cache that is full computes nothing more: strategies it cannot serve compute their own indicators, with the
/// same decisions.
#[test]
fn a_full_cache_falls_back_to_each_strategys_own_indicators() {
    use sextant_backtest::Engine;
    use sextant_strategies::{IndicatorCache, IndicatorStrategy, RiskSettings, StrategySpec};
    let config = format!("[strategy]\nkind = \"ma_cross\"\n{TWO_ASSETS}");
    let cfg = BacktestConfig::parse(&config, "t").unwrap();
    let markets = cfg.load_markets().unwrap();
    let closes = || markets.iter().map(|m| m.series.candles.iter().map(|c| c.close).collect()).collect::<Vec<_>>();
    let spec = StrategySpec::MaCross { fast: 5, slow: 40, ma: sextant_strategies::MaKind::Sma };
    let plain = IndicatorStrategy::new(spec.clone(), RiskSettings::default()).unwrap();
    let run = |s: &IndicatorStrategy| Engine::new(s, &markets, cfg.costs(), 10_000.0).run().metrics;
    let expect = run(&plain);
    // room for no series, then for one of the four (two averages of two assets)
    for budget in [0, markets[0].series.len() * 8] {
        let cache = std::sync::Arc::new(IndicatorCache::with_budget(closes(), budget));
        assert_eq!(run(&plain.clone().with_shared(cache)), expect, "budget {budget}");
    }
    assert!(expect.n_trades > 0);
}
