//! One Uniswap v3 LP position held over a minute file, backtested by Sextant and by demeter (PyPI
//! `zelos-demeter`, through `scripts/bench_demeter.py`) on the same file: fees earned and time, side by side.
//!
//! ```text
//! cargo run --release -p sextant-bench --bin lp_vs_demeter -- MINUTES.csv \
//!     [--tick-lower L --tick-upper U --amount0 A0 --amount1 A1 --fee-pips 500 --tick-spacing 10 --python PY]
//! ```
//!
//! Sextant replays the file through its pool engine (the position inside the pool, so every swap pays it what
//! the contract would); demeter credits each minute's recorded volume times the position's share of the
//! recorded liquidity. The position is opened at the first minute with the same amounts on both sides.

use sextant_backtest::BacktestConfig;
use sextant_backtest::lp::{LpEngine, PoolMarket};
use sextant_market::MarketView;
use sextant_strategy::{PortfolioView, Strategy};
use sextant_types::{Amount, ChainId, Intent, PoolRef, Token};
use std::process::Command;
use std::time::Instant;

/// Opens one range with everything held at the first step, then holds.
struct Hold {
    pool: PoolRef,
    range: (i32, i32),
}

impl Strategy for Hold {
    type State = bool;
    fn name(&self) -> String {
        format!("hold [{}, {})", self.range.0, self.range.1)
    }
    fn init(&self, _: &MarketView) -> bool {
        false
    }
    fn on_step(&self, opened: &mut bool, m: &MarketView, p: &PortfolioView, out: &mut Vec<Intent>) {
        if !*opened {
            let a = &m.assets[0];
            out.push(Intent::LpOpen {
                pool: self.pool.clone(),
                tick_lower: self.range.0,
                tick_upper: self.range.1,
                amount0: Amount::from_units(p.positions[0].quantity, &a.base).unwrap_or(Amount::ZERO),
                amount1: Amount::from_units(p.cash, &a.quote).unwrap_or(Amount::ZERO),
            });
            *opened = true;
        }
    }
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.into())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = args.get(1).filter(|a| !a.starts_with("--")).expect("usage: lp_vs_demeter MINUTES.csv [options]");
    let (lower, upper): (i32, i32) = (
        arg(&args, "--tick-lower", "-201300").parse().unwrap(),
        arg(&args, "--tick-upper", "-199300").parse().unwrap(),
    );
    let (amount0, amount1): (f64, f64) =
        (arg(&args, "--amount0", "25").parse().unwrap(), arg(&args, "--amount1", "50000").parse().unwrap());
    let fee: u32 = arg(&args, "--fee-pips", "500").parse().unwrap();
    let spacing: i32 = arg(&args, "--tick-spacing", "10").parse().unwrap();
    let python = arg(&args, "--python", ".cache/demeter-venv/bin/python");

    let t = Instant::now();
    let minutes = sextant_data::load_pool_minutes(std::path::Path::new(file)).expect("a demeter minute file");
    let (pool, steps) = sextant_data::pool_minutes::minutes_flow(&minutes, fee, spacing).expect("a pool");
    let load = t.elapsed().as_secs_f64();
    let pool_ref = PoolRef { chain: ChainId::SIMULATED, address: "pool".into(), fee_pips: fee };
    let market = PoolMarket {
        base: Token::simulated("WETH", 18).unwrap(),
        quote: Token::simulated("USDC", 6).unwrap(),
        pool_ref: pool_ref.clone(),
        pool,
        base_is_token0: true,
        steps,
        source: file.clone(),
    };
    let costs = BacktestConfig::parse("[strategy]\nkind = \"rsi\"\n[execution]\ncosts = \"none\"\n", "bench")
        .expect("a valid config")
        .costs();
    let strategy = Hold { pool: pool_ref, range: (lower, upper) };
    let t = Instant::now();
    let r = LpEngine::new(&strategy, &market, costs, amount1).with_initial_base(amount0).run(&mut |_| {});
    let run = t.elapsed().as_secs_f64();
    let p = r.positions.first().expect("the position opened");
    let ours = (p.fees_base as f64 / 1e18, p.fees_quote as f64 / 1e6);

    let out = Command::new(&python)
        .args(["scripts/bench_demeter.py", "--minutes", file, "--decimals0", "18", "--decimals1", "6"])
        .args(["--fee-pips", &fee.to_string(), "--tick-lower", &lower.to_string(), "--tick-upper", &upper.to_string()])
        .args(["--amount0", &amount0.to_string(), "--amount1", &amount1.to_string(), "--json"])
        .output()
        .expect("demeter runs (scripts/bench_demeter.py; see docs/BENCHMARKS.md for its venv)");
    assert!(out.status.success(), "demeter failed: {}", String::from_utf8_lossy(&out.stderr));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("demeter's JSON");
    let num = |k: &str| d[k].as_str().and_then(|s| s.parse::<f64>().ok()).or_else(|| d[k].as_f64()).unwrap_or(f64::NAN);
    let theirs = (num("fees0_raw") / 1e18, num("fees1_raw") / 1e6);
    let their_liquidity = num("liquidity");
    let (their_load, their_run) = (num("load_seconds"), num("run_seconds"));

    println!("{} minutes, position [{lower}, {upper}), fee {fee} pips", minutes.len());
    println!("{:<28} {:>22} {:>22}", "", "sextant", "demeter");
    println!("{:<28} {:>22} {:>22.0}", "liquidity", p.liquidity, their_liquidity);
    println!("{:<28} {:>22.9} {:>22.9}", "fees token0", ours.0, theirs.0);
    println!("{:<28} {:>22.6} {:>22.6}", "fees token1", ours.1, theirs.1);
    let per_l = |f: f64, l: f64| f / l;
    let ratio0 = per_l(ours.0, p.liquidity as f64) / per_l(theirs.0, their_liquidity);
    let ratio1 = per_l(ours.1, p.liquidity as f64) / per_l(theirs.1, their_liquidity);
    println!("{:<28} {:>22.4} {:>22.4}", "fees per liquidity, ratio", ratio0, ratio1);
    println!("{:<28} {:>22.3} {:>22.3}", "load seconds", load, their_load);
    println!("{:<28} {:>22.3} {:>22.3}", "backtest seconds", run, their_run);
    println!("{:<28} {:>22.1}x", "backtest speed-up", their_run / run);
    let recorded = minutes.iter().fold((0.0, 0.0), |(a, b), m| (a + m.in_amount0 as f64, b + m.in_amount1 as f64));
    println!(
        "steps in range: {} of {}; swaps replayed {}, ticks crossed {}",
        p.steps_in_range, p.steps_held, r.flow.0, r.flow.2
    );
    println!(
        "volume replayed over volume recorded: token0 {:.5}, token1 {:.5} (swaps that carry the price to a close the \
         recorded volume does not reach)",
        r.volume_in.0 / recorded.0,
        r.volume_in.1 / recorded.1
    );
}
