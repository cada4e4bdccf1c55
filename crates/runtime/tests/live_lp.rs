//! Dynamic LP live on a devnet (anvil from npm, real Uniswap v3 position manager and Safe 1.4.1 bytecode): the same
//! strategy code as the LP backtest opens a range from the Safe, reads it back from the chain, moves it when a trader
//! pushes the price out, and tears it down.

mod common;
mod ticks;

use common::{KEYS, LP_LIVE, Net};
use sextant_chain::alloy::primitives::{Address, U256};
use sextant_chain::alloy::sol_types::SolCall;
use sextant_chain::bindings::{INonfungiblePositionManager, IUniswapV3Pool};
use sextant_exec::{LocalKey, view};
use sextant_runtime::{Deployment, DeploymentConfig, OpenOptions, TickKind};
use sextant_types::IntentKind;
use ticks::tick;

/// The Safe's positions as (token id, lower, upper, liquidity).
fn positions(net: &Net, safe: Address) -> Vec<(U256, i32, i32, u128)> {
    let rpc = net.rpc();
    let manager = net.contract("NonfungiblePositionManager");
    let n = view(&rpc, manager, &INonfungiblePositionManager::balanceOfCall { owner: safe }).unwrap();
    (0..n.to::<u64>())
        .map(|i| {
            let call = INonfungiblePositionManager::tokenOfOwnerByIndexCall { owner: safe, index: U256::from(i) };
            let id = view(&rpc, manager, &call).unwrap();
            let p = view(&rpc, manager, &INonfungiblePositionManager::positionsCall { tokenId: id }).unwrap();
            (id, p.tickLower.as_i32(), p.tickUpper.as_i32(), p.liquidity)
        })
        .collect()
}

#[test]
fn dynamic_lp_opens_reads_moves_and_tears_down_a_range_from_the_safe() {
    open_read_move_teardown(LP_LIVE);
}

/// The same with USDC as the asset, priced in WETH: USDC is the pool's token1, so ticks fall as the asset's price
/// rises and the mint's amounts come in the other order.
#[test]
fn dynamic_lp_with_the_asset_as_the_pools_token1_runs_the_same() {
    let config = LP_LIVE.replace("base = \"WETH\"\nquote = \"USDC\"", "base = \"USDC\"\nquote = \"WETH\"");
    let config = config.replace("width_ticks = 120", "width_ticks = 120\nrebalance_gas = 0.005");
    assert!(config.contains("base = \"USDC\""));
    open_read_move_teardown(&config);
}

fn open_read_move_teardown(config: &str) {
    let net = Net::up();
    net.fund_trader();
    let rpc = net.rpc();
    let key = LocalKey::from_hex(KEYS[1]).unwrap();
    let safe = net.contract("Safe");
    let pool = net.contract("pool_WETH_USDC_3000");
    let mut dep = Deployment::open(OpenOptions {
        config: DeploymentConfig::parse(config, "test").unwrap(),
        rpc: &rpc,
        signer: &key,
        safe,
        state: net.state_path("lp.db"),
        registry: net.registry(),
        log: Box::new(|_, _| {}),
    })
    .unwrap();
    let pool_tick = || view(&rpc, pool, &IUniswapV3Pool::slot0Call {}).unwrap().tick.as_i32();

    // First tick: swap towards the range's token ratio; the range opens at the next tick, from what the swap left.
    let first = tick(&mut dep, TickKind::Step);
    let opened = if first.contains(&IntentKind::LpOpen) { first } else { tick(&mut dep, TickKind::Step) };
    assert!(opened.contains(&IntentKind::LpOpen), "{opened:?}");
    let held = positions(&net, safe);
    assert_eq!(held.len(), 1, "{held:?}");
    let (id, lower, upper, liquidity) = held[0];
    let t = pool_tick();
    assert!(liquidity > 0 && lower <= t && t < upper && (upper - lower) % 60 == 0, "{held:?} at tick {t}");

    // In range: the next tick reads the position back from the chain and leaves it alone.
    assert!(tick(&mut dep, TickKind::Step).is_empty());

    // Trades through the range earn it fees: what the runner reads (the pool's fee growth inside the range) is what
    // the position manager would pay out now, to the base unit.
    net.push_price(true, 10u128.pow(17));
    net.push_price(false, 200 * 10u128.pow(6));
    let (_, portfolio) = dep.observe_now().unwrap();
    let lp = &portfolio.lp[0];
    assert_eq!(lp.id.0, id.to_string());
    let manager = net.contract("NonfungiblePositionManager");
    let collect = sextant_chain::calls::lp_collect(manager, id, safe);
    let tx = sextant_chain::alloy::rpc::types::TransactionRequest::default()
        .from(safe)
        .to(manager)
        .input(collect.data.clone().into());
    let owed = INonfungiblePositionManager::collectCall::abi_decode_returns(&rpc.call(&tx).unwrap()).unwrap();
    let weth_is_base = config.contains("base = \"WETH\"");
    let (base_owed, quote_owed) =
        if weth_is_base { (owed.amount0, owed.amount1) } else { (owed.amount1, owed.amount0) };
    let (base_dec, quote_dec) = if weth_is_base { (18, 6) } else { (6, 18) };
    assert!(base_owed > U256::ZERO || quote_owed > U256::ZERO, "the trades should have paid fees");
    for (seen, owed, dec) in [(lp.fees_base, base_owed, base_dec), (lp.fees_quote, quote_owed, quote_dec)] {
        let raw = (seen * 10f64.powi(dec)).round();
        assert!((raw - f64::from(owed)).abs() <= f64::from(owed) * 1e-12 + 0.5, "{seen} vs {owed}");
    }

    // A trader pushes the price far below the range: the strategy closes it and re-ranges around the new price.
    for _ in 0..4 {
        net.push_price(true, 20 * 10u128.pow(18));
    }
    let t = pool_tick();
    assert!(t < lower, "the push should leave the range: tick {t}, range [{lower}, {upper})");
    let moved = tick(&mut dep, TickKind::Step);
    assert_eq!(moved.first(), Some(&IntentKind::LpClose), "{moved:?}");
    if !moved.contains(&IntentKind::LpOpen) {
        assert!(tick(&mut dep, TickKind::Step).contains(&IntentKind::LpOpen));
    }
    let held = positions(&net, safe);
    let open: Vec<_> = held.iter().filter(|p| p.3 > 0).collect();
    assert_eq!(open.len(), 1, "{held:?}");
    assert!(open[0].0 != id && open[0].1 <= t && t < open[0].2, "{held:?} at tick {t}");
    // The old position was burned, not left empty in the Safe.
    assert!(held.iter().all(|p| p.0 != id), "{held:?}");

    // Teardown closes the range and burns it.
    let down = tick(&mut dep, TickKind::Teardown);
    assert_eq!(down, vec![IntentKind::LpClose]);
    assert!(positions(&net, safe).is_empty());
    assert!(dep.journal().pending_intents().unwrap().is_empty());
    // Approvals are exact: nothing is left approved to the position manager.
    let manager = net.contract("NonfungiblePositionManager");
    for t in [net.contract("WETH"), net.contract("USDC")] {
        let a = view(&rpc, t, &sextant_chain::bindings::IERC20::allowanceCall { owner: safe, spender: manager });
        assert_eq!(a.unwrap(), U256::ZERO);
    }
}
