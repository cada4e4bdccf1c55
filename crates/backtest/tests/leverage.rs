//! The leverage loop on its synthetic Aave market: a crash inside one bar is liquidated at the bar's low, and what
//! the loop loses is exactly what Aave's liquidation rules take, to the wei: the close factor picked by the health
//! factor, the debt repaid, the collateral priced through the oracle with the liquidation bonus, the protocol's share
//! of the bonus, each with `PercentageMath`'s rounding, recomputed here from the account as it stood before. (That
//! `protocols::aave_v3::Market::liquidate` equals the real pool's `liquidationCall` is checked against the Aave v3
//! bytecode on anvil in `crates/chain/tests/aave_pool_differential.rs`.) Without a crash the loop holds its target
//! and deleverages before Aave would liquidate.

use alloy_primitives::U256;
use sextant_backtest::BacktestConfig;
use sextant_backtest::leverage::{COLLATERAL, DEBT};
use sextant_protocols::aave_v3::{percent_div, percent_mul, ray_mul};

fn example() -> BacktestConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/leverage-loop.toml");
    BacktestConfig::load(std::path::Path::new(path)).unwrap()
}

#[test]
fn a_liquidated_loop_loses_what_aave_rules_take_to_the_wei() {
    let cfg = example();
    let r = sextant_backtest::run_leverage_backtest(&cfg).unwrap();
    assert!(!r.liquidations.is_empty(), "the crash must be liquidated");
    let l = cfg.leverage.clone().unwrap();
    for liq in &r.liquidations {
        let now = (liq.timestamp_ms / 1000) as u64;
        let m = &liq.market_before;
        let before = &liq.before;
        // The account as the pool sees it at the liquidation's time (the debt reserve accrues first).
        let debt_index = m.reserves[DEBT].normalized_debt(now).unwrap();
        let income = m.reserves[COLLATERAL].normalized_income(now).unwrap();
        let debt = ray_mul(before[DEBT].scaled_debt, debt_index).unwrap();
        let collateral = ray_mul(before[COLLATERAL].scaled_supply, income).unwrap();
        let (pc, pd) = liq.oracle;
        // Health factor: collateral value x threshold over debt value, in the oracle's base currency.
        let coll_base = collateral * pc / U256::from(10u8).pow(U256::from(l.collateral_decimals));
        let debt_base = debt * pd / U256::from(10u8).pow(U256::from(l.debt_decimals));
        let lt = U256::from((l.liquidation_threshold * 1e4).round() as u64);
        let hf =
            (percent_mul(coll_base, lt).unwrap() * U256::from(10u64.pow(18)) + debt_base / U256::from(2u8)) / debt_base;
        assert_eq!(hf, liq.result.health_factor_before, "health factor");
        assert!(hf < U256::from(10u64.pow(18)));
        // Close factor: all the debt below 0.95, half above.
        let close = if hf > U256::from(95u64 * 10u64.pow(16)) { 5_000u64 } else { 10_000 };
        let to_repay = percent_mul(debt, U256::from(close)).unwrap();
        // Collateral for that debt at the oracle prices, plus the bonus; capped by what the account holds.
        let (cu, du) = (
            U256::from(10u8).pow(U256::from(l.collateral_decimals)),
            U256::from(10u8).pow(U256::from(l.debt_decimals)),
        );
        let bonus = U256::from(10_000 + (l.liquidation_bonus * 1e4).round() as u64);
        let base = pd * to_repay * cu / (pc * du);
        let mut seized = percent_mul(base, bonus).unwrap();
        let mut repaid = to_repay;
        if seized > collateral {
            seized = collateral;
            repaid = percent_div(pc * collateral * du / (pd * cu), bonus).unwrap();
        }
        let fee_share = U256::from((l.liquidation_protocol_fee * 1e4).round() as u64);
        let fee = percent_mul(seized - percent_div(seized, bonus).unwrap(), fee_share).unwrap();
        assert_eq!(liq.result.debt_repaid, repaid, "debt repaid");
        assert_eq!(liq.result.collateral_to_liquidator, seized - fee, "collateral to the liquidator");
        assert_eq!(liq.result.protocol_fee, fee, "protocol fee");
        // The loss in the debt asset: collateral taken at the liquidation price less the debt it cleared.
        let taken = f64::from(seized) / 1e18 * liq.price;
        assert!((liq.penalty - (taken - f64::from(repaid) / 1e6)).abs() < 1e-6);
        // The bonus is what was lost: about 5 % of the debt repaid, never more than the bonus allows.
        let ratio = liq.penalty / (f64::from(repaid) / 1e6);
        assert!(ratio > 0.0 && ratio <= l.liquidation_bonus * 1.0001, "penalty {ratio} of the debt repaid");
        eprintln!(
            "liquidated at {}: hf {hf}, close factor {close} bp, {repaid} debt repaid, {seized} collateral taken ({fee} to the protocol)",
            liq.price
        );
    }
    assert!((r.liquidation_penalty - r.liquidations.iter().map(|l| l.penalty).sum::<f64>()).abs() < 1e-9);
}

#[test]
fn without_a_crash_the_loop_deleverages_before_aave_would_liquidate() {
    let mut cfg = example();
    cfg.leverage.as_mut().unwrap().crash_at = None;
    let r = sextant_backtest::run_leverage_backtest(&cfg).unwrap();
    assert!(r.liquidations.is_empty(), "{:?}", r.liquidations.len());
    assert!(r.result.flows.failed.is_empty(), "{:?}", r.result.flows.failed);
    let min = r.min_health_factor.unwrap();
    assert!(min > 1.0, "lowest health factor {min}");
    // It levered to about the target (1.6) and kept the health factor in its band or acted on it.
    let first = r.health.iter().flatten().next().copied().unwrap();
    assert!((first - 1.6).abs() < 0.05, "first health factor {first}");
    assert!(r.max_leverage > 2.0, "max leverage {}", r.max_leverage);
    assert!(r.decisions.iter().any(|d| d.rule == "open"));
    // It acts at each close on what it sees, so after every step the health factor is back inside its band.
    for (step, h) in r.health.iter().enumerate() {
        if let Some(h) = h {
            assert!((1.3..=2.0).contains(h), "step {step}: health factor {h} after the step");
        }
    }
    assert!(r.decisions.iter().any(|d| d.rule == "health_below_deleverage"), "the band was exercised");
}
