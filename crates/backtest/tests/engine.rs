//! Engine behaviour: resumability, fill models, latency, costs, teardown and multi-asset cash.

use sextant_backtest::config::{Costs, SlippageKind};
use sextant_backtest::{BacktestConfig, BacktestResult, Engine, Market, Snapshot, run_backtest};
use sextant_data::SynthSpec;
use sextant_strategies::{IndicatorState, IndicatorStrategy, RiskSettings, StrategySpec};
use sextant_types::Token;

fn market(symbol: &str, seed: u64, bars: usize) -> Market {
    let series = SynthSpec { seed, bars, ..SynthSpec::default() }.generate().unwrap();
    Market {
        base: Token::simulated(symbol, 18).unwrap(),
        quote: Token::simulated("USDC", 6).unwrap(),
        series,
        source: "synthetic".into(),
    }
}

fn rsi() -> IndicatorStrategy {
    IndicatorStrategy::new(StrategySpec::Rsi { period: 14, oversold: 30.0, overbought: 70.0 }, RiskSettings::default())
        .unwrap()
}

fn costs(text: &str) -> Costs {
    BacktestConfig::parse(&format!("[strategy]\nkind = \"rsi\"\n[execution]\n{text}"), "t").unwrap().costs()
}

#[test]
fn resumed_from_a_saved_snapshot_ends_identical() {
    let markets = [market("WETH", 7, 3000), market("WBTC", 8, 3000)];
    let strategy = IndicatorStrategy::new(
        StrategySpec::Rsi { period: 14, oversold: 30.0, overbought: 70.0 },
        RiskSettings { position_size: 0.5, cooldown_bars: 3, stop_loss_pct: Some(4.0), ..Default::default() },
    )
    .unwrap();
    let engine = Engine::new(
        &strategy,
        &markets,
        costs("latency_bars = 2\nslippage = \"constant_product\"\npool_depth_usd = 5000000\nfailure_rate = 0.3"),
        10_000.0,
    );
    let uninterrupted = engine.run();
    assert!(uninterrupted.metrics.n_trades > 10, "the run should trade: {:?}", uninterrupted.metrics);
    for stop_at in [1, 777, 1501, 2999] {
        let mut snap = engine.start();
        engine.advance(&mut snap, Some(stop_at), &mut |_| {});
        assert_eq!(snap.next_step, stop_at);
        let saved = serde_json::to_string(&snap).unwrap();
        drop(snap);
        let mut restored: Snapshot<IndicatorState> = serde_json::from_str(&saved).unwrap();
        engine.check_snapshot(&restored).unwrap();
        engine.advance(&mut restored, None, &mut |_| {});
        let resumed: BacktestResult = engine.finish(restored);
        assert_eq!(resumed, uninterrupted, "resumed at step {stop_at}");
    }
}

#[test]
fn fills_follow_the_fill_model_and_latency() {
    let markets = [market("WETH", 3, 2000)];
    let candles = &markets[0].series.candles;
    let index_of = |t: i64| candles.iter().position(|c| c.timestamp_ms == t).unwrap();
    let strategy = rsi();

    let close = Engine::new(&strategy, &markets, costs("costs = \"none\"\nfill = \"close\""), 1000.0).run();
    let next_open = Engine::new(&strategy, &markets, costs("costs = \"none\"\nfill = \"next_open\""), 1000.0).run();
    let mut lagged_costs = costs("costs = \"none\"");
    lagged_costs.latency_bars = 3;
    let lagged = Engine::new(&strategy, &markets, lagged_costs, 1000.0).run();
    assert!(close.trades.len() > 5);
    for t in &close.trades[..close.trades.len() - 1] {
        assert_eq!(t.entry_price, candles[index_of(t.entry_time_ms)].close);
        assert_eq!(t.exit_price, candles[index_of(t.exit_time_ms)].close);
    }
    // Same decisions, one bar later at the open.
    for (c, o) in close.trades.iter().zip(&next_open.trades).take(5) {
        let i = index_of(c.entry_time_ms);
        assert_eq!(o.entry_time_ms, candles[i + 1].timestamp_ms);
        assert_eq!(o.entry_price, candles[i + 1].open);
    }
    for (c, l) in close.trades.iter().zip(&lagged.trades).take(1) {
        let i = index_of(c.entry_time_ms);
        assert_eq!(l.entry_time_ms, candles[i + 4].timestamp_ms);
        assert_eq!(l.entry_price, candles[i + 4].open);
    }
    // Without costs the round trips account for every cent.
    let pnl: f64 = next_open.trades.iter().map(|t| t.pnl).sum();
    assert!((1000.0 + pnl - next_open.metrics.final_equity).abs() < 1e-6);
    assert_eq!(next_open.metrics.fees_paid + next_open.metrics.gas_paid + next_open.metrics.mev_paid, 0.0);
}

#[test]
fn each_cost_is_reported_separately_and_adds_up() {
    let markets = [market("WETH", 11, 3000)];
    let strategy = rsi();
    let free = Engine::new(&strategy, &markets, costs("costs = \"none\""), 10_000.0).run();
    let mut k = costs(
        "fee_bps = 30\ngas_units = 100000\ngas_price_gwei = 20\nnative_price_usd = 2500\nslippage = \"fixed\"\nslippage_bps = 10\nmev_bps = 20\nslippage_tolerance_bps = 25",
    );
    k.latency_bars = 0;
    let costly = Engine::new(&strategy, &markets, k, 10_000.0).run();
    let m = costly.metrics;
    assert_eq!(m.n_trades, free.metrics.n_trades, "costs must not change the decisions of this rule");
    let swaps = 2.0 * m.n_trades as f64;
    assert!((m.gas_paid - swaps * 100_000.0 * 20e-9 * 2500.0).abs() < 1e-6, "gas {}", m.gas_paid);
    assert!(m.fees_paid > 0.0 && m.slippage_paid > 0.0 && m.mev_paid > 0.0);
    // MEV is capped by what the tolerance leaves after impact: 25 - 10 = 15 bps, not the 20 asked.
    assert!((m.mev_paid / m.slippage_paid - 1.5).abs() < 1e-9, "mev/slippage = {}", m.mev_paid / m.slippage_paid);
    assert!(m.final_equity < free.metrics.final_equity);
    let total_costs = m.fees_paid + m.gas_paid + m.slippage_paid + m.mev_paid;
    let pnl: f64 = costly.trades.iter().map(|t| t.pnl).sum();
    assert!((10_000.0 + pnl - m.final_equity).abs() < 1e-6);
    assert!(total_costs > 0.0);
}

#[test]
fn a_shallow_pool_skips_trades_over_the_tolerance() {
    let markets = [market("WETH", 11, 2000)];
    let mut k = costs("slippage = \"constant_product\"\npool_depth_usd = 100000\nslippage_tolerance_bps = 100");
    k.slippage = SlippageKind::ConstantProduct;
    // 10k into a 50k side is ~17 % impact: every entry is refused, nothing trades.
    let r = Engine::new(&rsi(), &markets, k, 10_000.0).run();
    assert_eq!(r.metrics.n_trades, 0);
    assert!(r.flows.failed.get("slippage_exceeded").copied().unwrap_or(0) > 0, "{:?}", r.flows);
    // A smaller position fits the tolerance and trades.
    let r = Engine::new(&rsi(), &markets, k, 500.0).run();
    assert!(r.metrics.n_trades > 0);
    assert!(r.metrics.slippage_paid > 0.0);
}

#[test]
fn an_open_position_is_closed_at_the_last_close() {
    let markets = [market("WETH", 5, 1000)];
    let mut config = BacktestConfig::parse(
        "[strategy]\nkind = \"rsi\"\noversold = 99\noverbought = 99.5\n[execution]\ncosts = \"none\"\n",
        "t",
    )
    .unwrap();
    config.market.bars = 1000;
    let r = run_backtest(&config, &markets).unwrap();
    let last = markets[0].series.candles.last().unwrap();
    let t = r.trades.last().unwrap();
    assert_eq!((t.exit_time_ms, t.exit_price), (last.timestamp_ms, last.close));
    assert!((r.metrics.final_equity - t.size * last.close).abs() < 1e-6);
}

#[test]
fn several_assets_share_cash() {
    let markets = [market("WETH", 21, 2000), market("WBTC", 22, 2000), market("SOL", 23, 2000)];
    let strategy = IndicatorStrategy::new(
        StrategySpec::Rsi { period: 14, oversold: 30.0, overbought: 70.0 },
        RiskSettings { position_size: 0.3, ..Default::default() },
    )
    .unwrap();
    let r = Engine::new(&strategy, &markets, costs("costs = \"none\""), 9_000.0).run();
    for sym in ["WETH", "WBTC", "SOL"] {
        assert!(r.trades.iter().any(|t| t.asset == sym), "no {sym} trade");
    }
    // Positions overlap in time, so cash was shared rather than each asset owning a copy.
    let overlapping = r.trades.iter().any(|a| {
        r.trades
            .iter()
            .any(|b| a.asset != b.asset && a.entry_time_ms < b.exit_time_ms && b.entry_time_ms < a.exit_time_ms)
    });
    assert!(overlapping);
    let pnl: f64 = r.trades.iter().map(|t| t.pnl).sum();
    assert!((9_000.0 + pnl - r.metrics.final_equity).abs() < 1e-6);
    assert!(r.equity.iter().all(|p| p.equity > 0.0));
}

#[test]
fn latency_counts_each_assets_own_bars_whatever_else_is_merged_in() {
    use sextant_data::Interval;
    let four_hourly = Market {
        series: SynthSpec { seed: 41, bars: 600, interval: Interval::H4, ..SynthSpec::default() }.generate().unwrap(),
        ..market("WBTC", 0, 1)
    };
    let hourly = market("WETH", 42, 2400);
    let strategy = IndicatorStrategy::new(
        StrategySpec::Rsi { period: 14, oversold: 30.0, overbought: 70.0 },
        RiskSettings { position_size: 0.3, ..Default::default() },
    )
    .unwrap();
    let mut k = costs("costs = \"none\"");
    k.latency_bars = 1;
    let alone_markets = [four_hourly.clone()];
    let alone = Engine::new(&strategy, &alone_markets, k, 10_000.0).run();
    let merged_markets = [hourly, four_hourly];
    let merged = Engine::new(&strategy, &merged_markets, k, 10_000.0).run();
    let key = |r: &BacktestResult| -> Vec<_> {
        r.trades
            .iter()
            .filter(|t| t.asset == "WBTC")
            .map(|t| (t.entry_time_ms, t.exit_time_ms, t.entry_price, t.exit_price))
            .collect()
    };
    assert!(key(&alone).len() > 3);
    assert_eq!(key(&alone), key(&merged));
    // And the fill is two of its own bars after the decision bar (next open + 1 bar of latency).
    let candles = &alone_markets[0].series.candles;
    let first = &alone.trades[0];
    let i = candles.iter().position(|c| c.timestamp_ms == first.entry_time_ms).unwrap();
    assert_eq!(first.entry_price, candles[i].open);
}

#[test]
fn the_final_close_out_is_never_refused_and_the_books_balance() {
    // A shallow pool refuses many swaps over the tolerance; the end-of-run exit must still happen.
    let markets = [market("WETH", 42, 5000)];
    let r = Engine::new(&rsi(), &markets, costs("pool_depth_usd = 2000000"), 10_000.0).run();
    assert!(r.flows.failed.get("slippage_exceeded").copied().unwrap_or(0) > 0, "{:?}", r.flows);
    let pnl: f64 = r.trades.iter().map(|t| t.pnl).sum();
    assert!((10_000.0 + pnl - r.metrics.final_equity).abs() < 1e-6, "every position ends in a recorded trade");
}

#[test]
fn small_accounts_never_go_negative_and_exact_buys_leave_room_for_gas() {
    let markets = [market("WETH", 13, 2000)];
    // $8 of cash against $4.50 of gas per swap: buys shrink to what the gas leaves; sells that cannot pay gas wait.
    let r = Engine::new(&rsi(), &markets, costs("fee_bps = 30"), 8.0).run();
    assert!(r.equity.iter().all(|p| p.equity >= 0.0), "equity went negative");
    let strategy = IndicatorStrategy::new(
        StrategySpec::Rsi { period: 14, oversold: 30.0, overbought: 70.0 },
        RiskSettings { position_size: 0.989, ..Default::default() },
    )
    .unwrap();
    let r = Engine::new(&strategy, &markets, costs("fee_bps = 30"), 300.0).run();
    assert!(r.metrics.n_trades > 0, "{:?}", r.flows);
    assert_eq!(r.flows.failed.get("insufficient_balance"), None, "{:?}", r.flows);
}

#[test]
fn dropped_transactions_are_retried_and_counted() {
    let markets = [market("WETH", 14, 3000)];
    let reliable = Engine::new(&rsi(), &markets, costs("costs = \"none\""), 10_000.0).run();
    assert_eq!(reliable.flows.retries, 0);
    // Half the attempts dropped, five attempts each: retries happen, almost nothing is lost.
    let flaky =
        Engine::new(&rsi(), &markets, costs("costs = \"none\"\nfailure_rate = 0.5\nmax_attempts = 5"), 10_000.0).run();
    assert!(flaky.flows.retries > 5, "{:?}", flaky.flows);
    // One attempt each: failures are final and reported, and the strategy tries again on a later signal.
    let fragile =
        Engine::new(&rsi(), &markets, costs("costs = \"none\"\nfailure_rate = 0.5\nmax_attempts = 1"), 10_000.0).run();
    assert!(fragile.flows.failed.get("transient").copied().unwrap_or(0) > 5, "{:?}", fragile.flows);
    assert_eq!(fragile.flows.retries, 0);
    assert_ne!(fragile.trades, reliable.trades);
    let pnl: f64 = fragile.trades.iter().map(|t| t.pnl).sum();
    assert!((10_000.0 + pnl - fragile.metrics.final_equity).abs() < 1e-6);
}

#[test]
fn a_streamed_file_backtests_exactly_like_the_loaded_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.csv");
    let series = SynthSpec { seed: 15, bars: 120_000, ..SynthSpec::default() }.generate().unwrap();
    sextant_data::write_ohlcv(std::fs::File::create(&path).unwrap(), &series).unwrap();
    let text = format!("[strategy]\nkind = \"rsi\"\n[market]\ndata = {path:?}\n[execution]\nlatency_bars = 1\n");
    let config = BacktestConfig::parse(&text, "t").unwrap();
    let strategy = sextant_backtest::build_strategy(&config).unwrap();

    let loaded_markets = config.load_markets().unwrap();
    let loaded = Engine::new(&strategy, &loaded_markets, config.costs(), 10_000.0).run();

    let (market, file) = config.stream_market().unwrap();
    let markets = [market];
    let engine = Engine::new(&strategy, &markets, config.costs(), 10_000.0);
    let mut feed = sextant_data::FileFeed::open(file, markets[0].base.clone(), markets[0].quote.clone());
    let mut snap = engine.start();
    engine.advance_feed(&mut snap, &mut feed, None, &mut |_| {});
    assert_eq!(feed.finish().unwrap().0, 120_000);
    let streamed = engine.finish(snap);
    assert!(loaded.trades.len() > 50);
    assert_eq!(streamed.trades, loaded.trades);
    assert_eq!(streamed.equity, loaded.equity);
    assert_eq!(streamed.metrics, loaded.metrics);
}
