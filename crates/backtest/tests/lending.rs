//! The Stable Rotator's properties on seeded synthetic lending markets: with gas set absurdly high it never moves
//! after the first allocation; with no costs it always sits in the best allowed market; it never holds more than a
//! risk limit allows after any step (or it says why it cannot get out); and the decision log accounts for every
//! deposit and withdrawal carried out. Plus the engine's own rules: resume equals an uninterrupted run, the exploited
//! market's loss reaches whoever stays in it, and a CSV of rates runs like the generated one.

use sextant_backtest::lending::{LendingEngine, LendingSnapshot, Movement, Position};
use sextant_backtest::{BacktestConfig, build_rotator};
use sextant_strategies::RotatorState;
use std::collections::BTreeMap;

fn config(text: &str) -> BacktestConfig {
    BacktestConfig::parse(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// Risk limits that never fire, on the five markets that are never exploited.
const CALM: &str = r#"
[lending]
seed = 21
steps = 2000
[[lending.markets]]
id = "euler-v2-usdc"
disabled = true
[portfolio]
initial_cash = 100000
"#;

fn run_stepwise(
    cfg: &BacktestConfig,
    mut check: impl FnMut(usize, &LendingSnapshot<RotatorState>, &sextant_backtest::RateMarket),
) -> sextant_backtest::LendingBacktestResult {
    let market = cfg.load_lending().unwrap();
    let rotator = build_rotator(cfg).unwrap();
    let engine = LendingEngine::new(&rotator, &market, cfg.costs(), cfg.portfolio.initial_cash);
    let mut snap = engine.start();
    for step in 0..market.times.len() {
        engine.advance(&mut snap, Some(step + 1), &mut |_| {});
        check(step, &snap, &market);
    }
    engine.finish(snap)
}

fn value(p: &Position) -> f64 {
    match p {
        Position::AaveV3 { index, scaled } => {
            f64::from(sextant_protocols::aave_v3::ray_mul(*scaled, *index).unwrap()) / 1e6
        }
        Position::CompoundV3 { index, principal } => {
            f64::from(sextant_protocols::compound_v3::present_value_supply(*index, *principal)) / 1e6
        }
        Position::Erc4626 { vault, shares } => f64::from(vault.preview_redeem(*shares).unwrap()) / 1e6,
    }
}

#[test]
fn with_absurd_gas_it_never_moves_after_the_first_allocation() {
    let cfg = config(&format!(
        "[strategy]\nkind = \"stable_rotator\"\nmin_tvl_usd = 0\nmax_utilization = 1.0\ntvl_drop_pct = 100\n\
         max_markets = 3\nmax_share = 0.5\nmax_pool_share = 1.0\n\
         [execution]\ngas_price_gwei = 1000000\nnative_price_usd = 3000\n{CALM}"
    ));
    let r = run_stepwise(&cfg, |_, _, _| {});
    assert!(!r.movements.is_empty(), "the first allocation happens whatever gas costs");
    let first = r.movements[0].step;
    assert!(r.movements.iter().all(|m| m.step == first), "moved after the first allocation: {:?}", r.movements);
    // It saw better yields elsewhere and said why it stayed.
    assert!(r.decisions.iter().any(|d| d.rule == "gain_below_cost"));
    assert!(r.decisions.iter().all(|d| d.step == first || d.action == "hold"), "only holds after the start");
}

#[test]
fn with_no_costs_it_always_sits_in_the_best_allowed_market() {
    let allow = ["aave-v3-usdc", "compound-v3-usdc", "morpho-usdc", "yearn-v3-usdc"]; // fluid-usdc not allowed
    let cfg = config(&format!(
        "[strategy]\nkind = \"stable_rotator\"\nmin_tvl_usd = 0\nmax_utilization = 1.0\ntvl_drop_pct = 100\n\
         max_markets = 1\nmax_share = 1.0\nmax_pool_share = 1.0\nmargin_bps = 0\nmin_move_fraction = 0\n\
         allow = {allow:?}\n[execution]\ncosts = \"none\"\n{CALM}"
    ));
    let mut switches = 0;
    let mut last = None;
    run_stepwise(&cfg, |step, snap, market| {
        let t = market.times[step];
        let apy = |i: usize| market.markets[i].series.at(t).map_or(0.0, |p| p.supply_apy + p.reward_apy);
        let held: Vec<usize> = (0..market.markets.len()).filter(|&i| value(&snap.slots[i].position) > 1e-3).collect();
        assert_eq!(held.len(), 1, "step {step}: holds {held:?}");
        let best = (0..market.markets.len())
            .filter(|&i| allow.contains(&market.markets[i].series.market.as_str()))
            .map(apy)
            .fold(f64::MIN, f64::max);
        let id = &market.markets[held[0]].series.market;
        assert!(allow.contains(&id.as_str()), "step {step}: holds {id}, which is not allowed");
        assert_eq!(
            apy(held[0]),
            best,
            "step {step}: holds {id} at {} while the best allowed pays {best}",
            apy(held[0])
        );
        if last != Some(held[0]) {
            switches += 1;
            last = Some(held[0]);
        }
    });
    assert!(switches > 5, "the best market changed only {switches} times: the property is not exercised");
}

fn example() -> BacktestConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/stable-rotator.toml");
    BacktestConfig::load(std::path::Path::new(path)).unwrap()
}

#[test]
fn it_never_holds_more_than_a_limit_allows() {
    // The shipped example's limits, on the market set with the drained vault.
    let r = check_limits(&example());
    assert!(r.markets.iter().any(|m| m.market == "euler-v2-usdc" && m.time_held > 0.1), "the drained vault was used");
    assert_eq!(r.markets.iter().find(|m| m.market == "euler-v2-usdc").unwrap().lost, 0.0, "left before the freeze");
    assert!(r.decisions.iter().any(|d| d.rule == "tvl_collapse"), "the drain was seen as a TVL collapse");
    // A portfolio big enough for the pool-share cap to bind, spread over three markets: the caps move with the
    // markets' TVL and with the portfolio, and positions grow into them.
    let mut big = example();
    big.portfolio.initial_cash = 30_000_000.0;
    if let sextant_strategies::StrategySpec::StableRotator(p) = &mut big.strategy {
        p.max_markets = 3;
        p.max_share = 0.4;
        p.max_pool_share = 0.05;
    }
    let r = check_limits(&big);
    for rule in ["over_max_pool_share", "over_max_share"] {
        assert!(r.decisions.iter().any(|d| d.rule == rule), "no {rule} trim: the cap never bound");
    }
}

fn check_limits(cfg: &BacktestConfig) -> sextant_backtest::LendingBacktestResult {
    let sextant_strategies::StrategySpec::StableRotator(p) = cfg.strategy.clone() else { panic!() };
    let mut checked = 0usize;
    let mut stuck_ok = 0usize;
    let r = run_stepwise(cfg, |step, snap, market| {
        let t = market.times[step];
        let values: Vec<f64> = snap.slots.iter().map(|s| value(&s.position)).collect();
        let equity = f64::from(snap.cash) / 1e6 + values.iter().sum::<f64>();
        let held: Vec<usize> = (0..values.len()).filter(|&i| values[i] > 1e-3).collect();
        let detail = || {
            let d: Vec<String> =
                snap.decisions.iter().filter(|d| d.step + 2 >= step).map(|d| format!("{d:?}")).collect();
            let h: Vec<String> = held
                .iter()
                .map(|&i| {
                    format!("{} {:.0} {:?}", market.markets[i].series.market, values[i], market.markets[i].series.at(t))
                })
                .collect();
            format!("{h:#?}\n{d:#?}")
        };
        // markets being left because they broke a limit (and could not be left at once) are not chosen holdings
        let chosen = held
            .iter()
            .filter(|&&i| {
                let q = market.markets[i].series.at(t).unwrap();
                !(q.frozen || q.tvl_usd < p.min_tvl_usd || q.utilization > p.max_utilization)
            })
            .count();
        assert!(chosen <= p.max_markets, "step {step}: {chosen} markets chosen: {}", detail());
        for &i in &held {
            let m = &market.markets[i];
            let point = m.series.at(t).unwrap();
            let refused = point.frozen || point.tvl_usd < p.min_tvl_usd || point.utilization > p.max_utilization;
            if refused {
                // Money may stay past a limit only where the market's free liquidity could not take it all out,
                // and the log says so: the last decision about this market is a partial withdrawal or a hold for
                // want of liquidity.
                let last = snap.decisions.iter().rev().find(|d| d.from.as_deref() == Some(&m.series.market));
                let explained = last.is_some_and(|d| d.rule == "no_liquidity" || d.detail.contains("is withdrawable"));
                assert!(explained, "step {step}: still in {} ({point:?}), last decision {last:?}", m.series.market);
                stuck_ok += 1;
                continue;
            }
            assert!(
                values[i] <= p.max_share * equity * (1.0 + 1e-9),
                "step {step}: {} holds {} of {equity}",
                m.series.market,
                values[i]
            );
            assert!(
                values[i] <= p.max_pool_share * point.tvl_usd * (1.0 + 1e-9),
                "step {step}: {} is over its pool share",
                m.series.market
            );
            checked += 1;
        }
    });
    assert!(checked > 5_000, "only {checked} holdings checked");
    eprintln!("{checked} holdings within limits, {stuck_ok} stuck past one with the reason logged");
    r
}

#[test]
fn the_decision_log_accounts_for_every_move() {
    let cfg = BacktestConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/stable-rotator.toml"
    )))
    .unwrap();
    let r = run_stepwise(&cfg, |_, _, _| {});
    assert!(r.movements.len() > 50, "{} movements", r.movements.len());
    assert!(r.result.flows.failed.is_empty(), "{:?}", r.result.flows.failed);
    // Per step and market: money in and out as carried out, and as the decisions said.
    let mut done: BTreeMap<(usize, String), (f64, f64)> = BTreeMap::new();
    for Movement { step, market, amount } in &r.movements {
        let e = done.entry((*step, market.clone())).or_default();
        if *amount > 0.0 { e.0 += amount } else { e.1 -= amount }
    }
    let mut said: BTreeMap<(usize, String), (f64, f64)> = BTreeMap::new();
    for d in &r.decisions {
        if !matches!(d.action.as_str(), "deposit" | "withdraw" | "move") {
            continue;
        }
        if let Some(to) = &d.to {
            said.entry((d.step, to.clone())).or_default().0 += d.amount;
        }
        if let Some(from) = &d.from {
            said.entry((d.step, from.clone())).or_default().1 += d.amount;
        }
    }
    assert_eq!(
        done.keys().collect::<Vec<_>>(),
        said.keys().collect::<Vec<_>>(),
        "a move without a decision, or a decision not carried out"
    );
    for (k, (a_in, a_out)) in &done {
        let (s_in, s_out) = said[k];
        // amounts agree up to the vaults' exit cost and the last deposit taking the cash there is
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-3 * x.max(y) + 0.01;
        assert!(
            close(*a_in, s_in) && close(*a_out, s_out),
            "{k:?}: done in {a_in} out {a_out}, said in {s_in} out {s_out}"
        );
    }
}

#[test]
fn a_resumed_run_ends_identical_and_a_csv_runs_like_the_generated_rates() {
    let cfg = BacktestConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/stable-rotator.toml"
    )))
    .unwrap();
    let market = cfg.load_lending().unwrap();
    let rotator = build_rotator(&cfg).unwrap();
    let engine = LendingEngine::new(&rotator, &market, cfg.costs(), cfg.portfolio.initial_cash);
    let whole = engine.run(&mut |_| {});
    let mut snap = engine.start();
    engine.advance(&mut snap, Some(3_001), &mut |_| {});
    let saved: LendingSnapshot<RotatorState> = serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap();
    let mut snap = saved;
    engine.advance(&mut snap, None, &mut |_| {});
    assert_eq!(engine.finish(snap), whole);

    // The same rates through the CSV format: same decisions (values rounded to the file's precision aside).
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rates.csv");
    let series: Vec<_> = market.markets.iter().map(|m| m.series.clone()).collect();
    std::fs::write(&csv, sextant_data::write_rates(&series)).unwrap();
    let mut from_csv = cfg.clone();
    from_csv.lending.as_mut().unwrap().data = Some(csv);
    let r = sextant_backtest::run_lending_backtest(&from_csv, &mut |_| {}).unwrap();
    assert_eq!(r.markets.len(), whole.markets.len());
    assert!((r.realised_apy - whole.realised_apy).abs() < 0.002, "{} vs {}", r.realised_apy, whole.realised_apy);
}
