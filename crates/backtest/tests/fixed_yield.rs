//! Fixed against floating yield on synthetic rates: when the PT never pays more than floating the strategy is the
//! floating market (less one supply's gas); a PT bought and held to maturity redeems one for one, so the money
//! locked in earns exactly the implied APY it was bought at (after Pendle's fee and the rate impact); and the
//! example, whose spread crosses zero, enters and leaves and beats holding the floating market.

use sextant_backtest::BacktestConfig;

fn config(entry_bps: f64, exit_bps: f64, spread_mean: f64, spread_vol: f64) -> BacktestConfig {
    let text = format!(
        "[strategy]\nkind = \"fixed_yield\"\nentry_spread_bps = {entry_bps}\nexit_spread_bps = {exit_bps}\n\
         [fixed_yield]\nseed = 3\nsteps = 4800\nmaturity_days = 150\nspread_mean = {spread_mean}\nspread_vol = {spread_vol}\n\
         [execution]\ngas_price_gwei = 10\nnative_price_usd = 3000\n[portfolio]\ninitial_cash = 100000\n"
    );
    BacktestConfig::parse(&text, "fy.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn without_a_better_fixed_rate_it_is_the_floating_market() {
    let r = sextant_backtest::run_fixed_yield_backtest(&config(50.0, 50.0, -0.05, 0.0)).unwrap();
    assert_eq!(r.time_in_pt, 0.0);
    assert!(r.decisions.iter().all(|d| d.rule == "floating_default"), "{:?}", r.decisions);
    let gas = r.result.metrics.gas_paid;
    let end = r.result.equity.last().unwrap().equity;
    let bench = r.benchmark.last().unwrap().equity;
    // the floating position accrues on the same index as the benchmark: equal to the base unit, less the gas
    assert!((end + gas - bench).abs() < 0.02, "strategy {end} + gas {gas} vs floating {bench}");
}

#[test]
fn a_pt_held_to_maturity_earns_the_implied_rate_it_was_bought_at() {
    // A fixed rate far above floating and never inverting: buy once, hold to maturity, redeem, back to floating.
    let cfg = config(50.0, 100_000.0, 0.03, 0.0);
    let r = sextant_backtest::run_fixed_yield_backtest(&cfg).unwrap();
    let entries: Vec<_> = r.decisions.iter().filter(|d| d.rule == "fixed_beats_floating").collect();
    assert_eq!(entries.len(), 1, "{:?}", r.decisions);
    assert!(r.decisions.iter().any(|d| d.rule == "matured"));
    let data = cfg.load_fixed_yield().unwrap();
    let entry = entries[0];
    let at = data.implied.at(entry.timestamp_ms).unwrap();
    let secs = (data.maturity_ms - entry.timestamp_ms) as f64 / 1000.0;
    // what the money bought: PT priced at the implied rate less the impact's rate shift, with the fee on the rate
    let shift = entry.amount / data.pt_liquidity_usd * data.rate_impact;
    let pt = sextant_protocols::pendle::PtMarket {
        implied_apy: at.supply_apy - shift,
        secs_to_maturity: secs,
        ln_fee_rate_root: data.ln_fee_rate_root,
    }
    .buy_pt(entry.amount);
    let years = secs / 31_536_000.0;
    let locked = (pt / entry.amount).powf(1.0 / years) - 1.0;
    // the implied rate less the impact, less Pendle's fee on the rate: (1 + apy') e^(-ln_fee) - 1
    let expect = (1.0 + at.supply_apy - shift) * (-data.ln_fee_rate_root).exp() - 1.0;
    assert!((locked - expect).abs() < 1e-9, "locked {locked} vs {expect}");
    assert!(locked > 0.03, "a fixed rate well above floating was locked in: {locked}");
    // At maturity the PT paid exactly its face value: the redemption decision carries the PT amount.
    let redeem = r.decisions.iter().find(|d| d.rule == "matured").unwrap();
    assert!((redeem.amount - (pt * 1e6).floor() / 1e6).abs() < 1e-6, "redeemed {} vs bought {pt}", redeem.amount);
    assert!(r.realised_apy > r.floating_apy, "{} vs {}", r.realised_apy, r.floating_apy);
    assert!(r.result.flows.failed.is_empty());
}

#[test]
fn the_example_enters_and_exits_on_the_spread_and_beats_floating() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fixed-yield.toml");
    let cfg = BacktestConfig::load(std::path::Path::new(path)).unwrap();
    let r = sextant_backtest::run_fixed_yield_backtest(&cfg).unwrap();
    assert!(r.decisions.iter().any(|d| d.rule == "fixed_beats_floating"));
    assert!(r.decisions.iter().any(|d| d.rule == "spread_inverted"));
    assert!(r.time_in_pt > 0.2 && r.time_in_pt < 0.9, "{}", r.time_in_pt);
    assert!(r.realised_apy > r.floating_apy, "{} vs {}", r.realised_apy, r.floating_apy);
    assert!(r.result.flows.failed.is_empty(), "{:?}", r.result.flows.failed);
}
