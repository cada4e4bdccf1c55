//! LP backtests: fees against the whitepaper's pro-rata rule, the Dynamic LP profiles and cost rule on the embedded
//! synthetic pools, and minute files.

use alloy_primitives::{Address, I256, U256};
use sextant_backtest::lp::{LpEngine, PoolMarket};
use sextant_backtest::{BacktestConfig, run_lp_backtest};
use sextant_data::synth_pool::{PoolStep, SwapRequest, limit_for};
use sextant_market::MarketView;
use sextant_protocols::uniswap_v3::Pool;
use sextant_strategy::{PortfolioView, Strategy};
use sextant_types::{Amount, AmountSpec, ChainId, Intent, PoolRef, Token};

fn example(name: &str) -> BacktestConfig {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    BacktestConfig::load(&path).unwrap()
}

/// Buys half its cash of the asset at the first step and puts everything in one full-range position at the
/// second; then holds.
struct FullRange {
    pool: PoolRef,
}

const FULL: (i32, i32) = (-887_270, 887_270);

impl Strategy for FullRange {
    type State = usize;
    fn name(&self) -> String {
        "full_range".into()
    }
    fn init(&self, _: &MarketView) -> usize {
        0
    }
    fn on_step(&self, step: &mut usize, m: &MarketView, p: &PortfolioView, out: &mut Vec<Intent>) {
        let a = &m.assets[0];
        match *step {
            0 => out.push(Intent::Swap {
                sell: a.quote.clone(),
                buy: a.base.clone(),
                amount: AmountSpec::Exact(Amount::from_units(p.cash / 2.0, &a.quote).unwrap()),
                max_slippage_bps: 10_000,
            }),
            1 => out.push(Intent::LpOpen {
                pool: self.pool.clone(),
                tick_lower: FULL.0,
                tick_upper: FULL.1,
                amount0: Amount::from_units(p.positions[0].quantity, &a.base).unwrap(),
                amount1: Amount::from_units(p.cash, &a.quote).unwrap(),
            }),
            _ => {}
        }
        *step += 1;
    }
}

/// With all liquidity full range, every swap pays each LP its fee times its share of the liquidity (the
/// whitepaper's rule, computed here from the swap amounts alone): the engine's fees must agree to a few base units
/// per swap (the pool's per-swap rounding).
#[test]
fn full_range_fees_are_the_pro_rata_share_of_every_swap_fee() {
    let fee = 3000u32;
    let mut pool = Pool::new(fee, 10, U256::from(1u8) << 96).unwrap(); // price 1 (raw)
    let background = 10u128.pow(24);
    pool.mint(Address::repeat_byte(0xee), FULL.0, FULL.1, background).unwrap();
    let mut steps = Vec::new();
    let mut sizes = Vec::new();
    for i in 0..400u64 {
        let zero_for_one = i % 2 == 0;
        let amount = 10u128.pow(20) + u128::from(i) * 7_919_000_000_000_000;
        sizes.push((zero_for_one, amount));
        steps.push(PoolStep {
            timestamp_ms: 1_700_000_000_000 + i as i64 * 60_000,
            background_liquidity: None,
            recentre: false,
            swaps: vec![SwapRequest {
                zero_for_one,
                amount_specified: I256::try_from(amount).unwrap(),
                sqrt_price_limit_x96: limit_for(zero_for_one),
            }],
            volume_in: None,
            close_sqrt_price_x96: None,
        });
    }
    let base = Token::simulated("AAA", 18).unwrap();
    let quote = Token::simulated("BBB", 18).unwrap();
    let pool_ref = PoolRef { chain: ChainId::SIMULATED, address: "pool".into(), fee_pips: fee };
    let market = PoolMarket {
        base,
        quote,
        pool_ref: pool_ref.clone(),
        pool,
        base_is_token0: true,
        steps,
        source: "hand-made".into(),
    };
    let costs =
        BacktestConfig::parse("[strategy]\nkind = \"rsi\"\n[execution]\ncosts = \"none\"\n", "t").unwrap().costs();
    let strategy = FullRange { pool: pool_ref };
    let r = LpEngine::new(&strategy, &market, costs, 1_000.0).run(&mut |_| {});
    assert_eq!(r.positions.len(), 1);
    let p = &r.positions[0];
    let share = p.liquidity as f64 / (p.liquidity + background) as f64;
    assert!(share > 1e-4, "share {share}");
    // The position opens after step 1's swaps: steps 2.. pay it.
    let (mut expect0, mut expect1) = (0.0, 0.0);
    for &(zero_for_one, amount) in &sizes[2..] {
        let after_fee = amount * u128::from(1_000_000 - fee) / 1_000_000;
        let paid = (amount - after_fee) as f64 * share;
        if zero_for_one {
            expect0 += paid;
        } else {
            expect1 += paid;
        }
    }
    let swaps = sizes.len() as f64;
    assert!((p.fees_base as f64 - expect0).abs() <= swaps, "{} vs {expect0}", p.fees_base);
    assert!((p.fees_quote as f64 - expect1).abs() <= swaps, "{} vs {expect1}", p.fees_quote);
    assert!(r.lp.fees_earned > 0.0 && (r.lp.time_in_range - 1.0).abs() < 1e-12);
}

#[test]
fn blue_chip_moves_less_than_degen_and_every_range_loses_to_holding_before_fees() {
    let blue = run_lp_backtest(&example("lp-blue-chip.toml"), &mut |_| {}).unwrap();
    let mut degen_on_blue = example("lp-blue-chip.toml");
    degen_on_blue.strategy = example("lp-degen.toml").strategy;
    let degen = run_lp_backtest(&degen_on_blue, &mut |_| {}).unwrap();
    assert!(blue.lp.rebalances < degen.lp.rebalances, "{} vs {}", blue.lp.rebalances, degen.lp.rebalances);
    for r in [&blue, &degen] {
        assert!(r.lp.fees_earned > 0.0);
        assert!((0.0..=1.0).contains(&r.lp.time_in_range));
        // Impermanent loss is never a gain (a few base units of rounding aside).
        assert!(r.positions.iter().all(|p| p.impermanent_loss <= 1e-6), "{:?}", r.positions);
        let closed = r.positions.iter().filter(|p| p.closed_ms.is_some()).count();
        assert!(closed + 1 >= r.positions.len());
        // Equity at the end is what the positions, the balances and the costs add up to: cross-check the LP
        // metrics against the equity curve.
        let first = r.result.equity.first().unwrap().equity;
        assert!(first > 0.0 && r.result.metrics.final_equity > 0.0);
        assert!((r.lp.rebalance_cost - (r.lp.gas + r.lp.swap_fees + r.lp.swap_impact)).abs() < 1e-9);
    }
    // Seeded: the same config gives the same run.
    assert_eq!(run_lp_backtest(&example("lp-blue-chip.toml"), &mut |_| {}).unwrap(), blue);
}

#[test]
fn the_cost_rule_holds_ranges_whose_move_would_cost_more_than_it_earns() {
    let mut cheap = example("lp-degen.toml");
    let mut dear = cheap.clone();
    let sextant_strategies::StrategySpec::DynamicLp { rebalance_gas, .. } = &mut dear.strategy else { panic!() };
    *rebalance_gas = Some(1e12);
    let a = run_lp_backtest(&cheap, &mut |_| {}).unwrap();
    let b = run_lp_backtest(&dear, &mut |_| {}).unwrap();
    assert!(b.lp.held_by_cost > 0 && b.lp.rebalances < a.lp.rebalances, "{:?} vs {:?}", b.lp, a.lp);
    // A fixed width is honoured.
    let sextant_strategies::StrategySpec::DynamicLp { width_ticks, .. } = &mut cheap.strategy else { panic!() };
    *width_ticks = Some(1000);
    let c = run_lp_backtest(&cheap, &mut |_| {}).unwrap();
    assert!(c.positions.iter().all(|p| p.tick_upper - p.tick_lower >= 2000 && p.tick_upper - p.tick_lower <= 2400));
}

#[test]
fn a_demeter_minute_file_backtests_as_a_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weth-usdc.minute.csv");
    let mut text = String::from(
        "timestamp,netAmount0,netAmount1,closeTick,openTick,lowestTick,highestTick,inAmount0,inAmount1,currentLiquidity\n",
    );
    let mut tick = -200_311;
    for i in 0..600 {
        let next = tick + [3, -2, 5, -6, 1][i % 5];
        text.push_str(&format!(
            "2024-01-01 {:02}:{:02}:00,0,0,{next},{tick},{},{},{},{},{}\n",
            i / 60,
            i % 60,
            tick.min(next),
            tick.max(next),
            2 * 10u128.pow(18),
            4_000 * 10u128.pow(6),
            3 * 10u128.pow(18),
        ));
        tick = next;
    }
    std::fs::write(&path, &text).unwrap();
    let toml = format!(
        "[strategy]\nkind = \"dynamic_lp\"\nwidth_ticks = 200\n[market]\nsymbol = \"WETH\"\nquote = \"USDC\"\n[pool]\ndata = {:?}\n",
        path.display().to_string()
    );
    let config = BacktestConfig::parse(&toml, "t.toml").unwrap();
    let r = run_lp_backtest(&config, &mut |_| {}).unwrap();
    assert_eq!(r.prices.len(), 600);
    assert!(r.lp.fees_earned > 0.0 && !r.positions.is_empty());
    assert!(r.result.markets[0].contains("demeter minutes"));
    // Read while it runs (as above) or loaded first, in one block or several: the same backtest.
    let market = config.load_pool().unwrap();
    let strategy = sextant_backtest::build_lp_strategy(&config, &market).unwrap();
    let engine = LpEngine::new(&strategy, &market, config.costs(), config.portfolio.initial_cash);
    assert_eq!(engine.run(&mut |_| {}), r);
    let mut blocks = [1usize, 59, 200, 7, 333].iter().scan(0, |at, &n| {
        let block = market.steps[*at..*at + n].to_vec();
        *at += n;
        Some(block)
    });
    assert_eq!(engine.run_blocks(&mut blocks, &mut |_| {}), r);
    // A malformed row is an error naming its line, not a backtest of the rows before it.
    std::fs::write(&path, text.replacen(",0,0,", ",0,x,", 1)).unwrap();
    let e = run_lp_backtest(&config, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("weth-usdc.minute.csv:2:"), "{e}");
    // Candle data cannot drive a pool.
    let bad = "[strategy]\nkind = \"dynamic_lp\"\n[market]\ndata = \"x.csv\"\n";
    let e = BacktestConfig::parse(bad, "t.toml").unwrap_err().to_string();
    assert!(e.contains("pool.data"), "{e}");
}

/// Sends what it is told at the first step, then holds.
struct Script(Vec<Intent>);

impl Strategy for Script {
    type State = bool;
    fn name(&self) -> String {
        "script".into()
    }
    fn init(&self, _: &MarketView) -> bool {
        false
    }
    fn on_step(&self, done: &mut bool, _: &MarketView, _: &PortfolioView, out: &mut Vec<Intent>) {
        if !*done {
            out.extend(self.0.iter().cloned());
            *done = true;
        }
    }
}

#[test]
fn refused_intents_cost_nothing_and_balances_never_wrap() {
    let mut config = example("lp-blue-chip.toml");
    config.market.bars = 50;
    config.portfolio.initial_cash = 50.0;
    config.execution.gas_price_gwei = Some(60.0); // a swap costs 27 USDC of gas, an open 90
    let market = config.load_pool().unwrap();
    let (usdc, weth) = (market.quote.clone(), market.base.clone());
    let pool = market.pool_ref.clone();
    let t = market.pool.tick / 10 * 10;
    let open = Intent::LpOpen {
        pool,
        tick_lower: t - 600,
        tick_upper: t + 600,
        amount0: Amount(u128::MAX),
        amount1: Amount(u128::MAX),
    };
    let intents = vec![
        // Selling all the cash: the gas comes out first, and the swap sells what is left.
        Intent::Swap { sell: usdc.clone(), buy: weth.clone(), amount: AmountSpec::All, max_slippage_bps: 10_000 },
        // Too little left for an open's gas: refused, and charged nothing.
        open.clone(),
        // A swap refused for its price impact: charged nothing.
        Intent::Swap { sell: weth, buy: usdc, amount: AmountSpec::All, max_slippage_bps: 0 },
    ];
    let costs = config.costs();
    let r = LpEngine::new(&Script(intents), &market, costs, 50.0).run(&mut |_| {});
    assert_eq!(r.result.flows.completed, 1, "{:?}", r.result.flows);
    assert_eq!(r.result.flows.failed.get("insufficient_balance"), Some(&1));
    assert_eq!(r.result.flows.failed.get("slippage_exceeded"), Some(&1));
    let gas_one_swap = 150_000.0 * 60.0 * 1e-9 * costs.native_price_usd;
    assert!((r.lp.gas - gas_one_swap).abs() < 1e-9, "{}", r.lp.gas);
    let last = r.result.metrics.final_equity;
    // What is left is the swap's WETH, worth about 50 - 18 at a price that moved a few percent: nothing wrapped.
    assert!(last.is_finite() && last > 20.0 && last < 45.0, "{last}");
    // The same range twice: the second open is refused (the pool would merge them into one position).
    let mut config = example("lp-blue-chip.toml");
    config.market.bars = 5;
    let market = config.load_pool().unwrap();
    let twice = Script(vec![
        Intent::Swap {
            sell: market.quote.clone(),
            buy: market.base.clone(),
            amount: AmountSpec::Exact(Amount(5_000_000_000)),
            max_slippage_bps: 10_000,
        },
        open.clone(),
        open,
    ]);
    let r = LpEngine::new(&twice, &market, config.costs(), 10_000.0).run(&mut |_| {});
    assert_eq!((r.positions.len(), r.result.flows.failed.get("invalid")), (1, Some(&1)));
}

/// The same pool written in the other token order: token0 and token1 swap columns, and every tick t becomes
/// -t - 1 (the price inverts; the middle of tick t maps to the middle of -t - 1).
fn mirrored(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let t = |k: usize| -f[k].parse::<i64>().unwrap() - 1;
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            f[0],
            f[2],
            f[1],
            t(3),
            t(4),
            t(6),
            t(5),
            f[8],
            f[7],
            f[9]
        ));
    }
    out
}

#[test]
fn a_pool_with_the_asset_as_token1_backtests_like_its_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sextant_data::synth_pool::PoolSynthSpec::default();
    spec.market.bars = 3000;
    spec.market.interval = sextant_data::Interval::M1;
    let (mut pool, steps) = spec.generate().unwrap();
    let mut text = Vec::new();
    sextant_data::pool_minutes::write_pool_minutes(&mut pool, &steps, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    std::fs::write(dir.path().join("weth-usdc.csv"), &text).unwrap();
    std::fs::write(dir.path().join("usdc-weth.csv"), mirrored(&text)).unwrap();
    let run = |file: &str, pool: &str| {
        let toml = format!(
            "[strategy]\nkind = \"dynamic_lp\"\nwidth_ticks = 100\nrebalance_gas = 1\n[market]\nsymbol = \"WETH\"\nquote = \"USDC\"\n[pool]\ndata = {:?}\n{pool}\n[portfolio]\ninitial_cash = 100000\n",
            dir.path().join(file).display().to_string()
        );
        run_lp_backtest(&BacktestConfig::parse(&toml, "t.toml").unwrap(), &mut |_| {}).unwrap()
    };
    let a = run("weth-usdc.csv", "decimals0 = 18\ndecimals1 = 6");
    let b = run("usdc-weth.csv", "decimals0 = 6\ndecimals1 = 18\nasset_is_token0 = false");
    // The same prices of WETH in USDC, step by step.
    assert_eq!(a.prices.len(), b.prices.len());
    for (x, y) in a.prices.iter().zip(&b.prices) {
        // (The middle of a tick is the middle of its sqrt prices: mirrored, it lands a hair off.)
        assert!((x / y - 1.0).abs() < 1e-7, "{x} vs {y}");
    }
    assert!(a.positions.len() > 1, "the strategy should re-range: {:?}", a.lp);
    // The same strategy on the same market: ranges are placed on mirrored ticks (floors differ by a tick), so the
    // results agree closely rather than exactly.
    assert!(
        (a.positions.len() as i64 - b.positions.len() as i64).abs() <= 1,
        "{} vs {}",
        a.positions.len(),
        b.positions.len()
    );
    let close = |x: f64, y: f64, tol: f64| (x - y).abs() <= tol * x.abs().max(y.abs());
    assert!(close(a.lp.fees_earned, b.lp.fees_earned, 0.03), "{:?}\n{:?}", a.lp, b.lp);
    assert!(close(a.result.metrics.final_equity, b.result.metrics.final_equity, 0.005), "{:?}\n{:?}", a.lp, b.lp);
    for p in &b.positions {
        assert!(p.price_lower < p.price_upper && p.deposit_base > 0 && p.deposit_quote > 0, "{p:?}");
    }
    // Synthetic pools have the asset as token0.
    let bad = "[strategy]\nkind = \"dynamic_lp\"\n[pool]\nasset_is_token0 = false\n";
    assert!(BacktestConfig::parse(bad, "t").unwrap_err().to_string().contains("pool.asset_is_token0"));
}
