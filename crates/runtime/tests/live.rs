//! The deployment against a real devnet (anvil from npm, real Uniswap v3 and Safe 1.4.1 bytecode): the RSI strategy
//! trades through the Safe while a trader moves the pool price; the journal, the chain and the strategy agree.

mod common;

use common::{KEYS, Net, RSI_LIVE};
use sextant_chain::alloy::primitives::{Address, U256};
use sextant_chain::bindings::{IERC20, ISafe};
use sextant_exec::journal::TxStatus;
use sextant_exec::{LocalKey, view};
use sextant_runtime::{Deployment, DeploymentConfig, OpenOptions, TickKind, TickReport};
use sextant_strategy::FlowStatus;
use sextant_types::Intent;

fn balance(rpc: &sextant_chain::Rpc, token: Address, who: Address) -> U256 {
    view(rpc, token, &IERC20::balanceOfCall { owner: who }).unwrap()
}

#[test]
fn the_built_in_registry_has_the_devnet_addresses_up_deploys() {
    let net = Net::up();
    let chain = net.registry().by_name("devnet").unwrap().clone();
    for (name, role) in [
        ("WETH", None),
        ("USDC", None),
        ("WBTC", None),
        ("UniswapV3Factory", Some("uniswap_v3_factory")),
        ("SwapRouter", Some("swap_router")),
        ("NonfungiblePositionManager", Some("position_manager")),
        ("SafeSingleton", Some("safe_singleton")),
        ("SafeProxyFactory", Some("safe_proxy_factory")),
    ] {
        let registry = match role {
            None => chain.tokens[name].address,
            Some(r) => chain.contract(r).unwrap(),
        };
        assert_eq!(registry, net.contract(name), "{name}");
    }
    assert_eq!(chain.pool("WETH", "USDC", None).unwrap().address, net.contract("pool_WETH_USDC_3000"));
}

#[test]
fn rsi_trades_live_through_the_safe_and_journal_chain_and_state_agree() {
    let net = Net::up();
    net.fund_trader();
    let rpc = net.rpc();
    let key = LocalKey::from_hex(KEYS[1]).unwrap();
    let safe = net.contract("Safe");
    let (weth, usdc) = (net.contract("WETH"), net.contract("USDC"));
    let owner: Address = net.account("safe_owner").parse().unwrap();
    let weth0 = balance(&rpc, weth, safe);
    let usdc0 = balance(&rpc, usdc, safe);
    let safe_nonce0 = view(&rpc, safe, &ISafe::nonceCall {}).unwrap();
    let sender_nonce0 = rpc.nonce(owner, false).unwrap();
    let state = net.state_path("live.db");
    let mut dep = Deployment::open(OpenOptions {
        config: DeploymentConfig::parse(RSI_LIVE, "test").unwrap(),
        rpc: &rpc,
        signer: &key,
        safe,
        state: state.clone(),
        registry: net.registry(),
        log: Box::new(|_, _| {}),
    })
    .unwrap();
    // Up, up, up (overbought: sell what the Safe holds), then down, down, down (oversold: buy), then up again.
    let moves =
        [None, Some(false), Some(false), Some(false), Some(true), Some(true), Some(true), Some(false), Some(false)];
    let mut fills = Vec::new();
    for m in moves {
        match m {
            Some(true) => net.push_price(true, 3 * 10u128.pow(18)),
            Some(false) => net.push_price(false, 6_000 * 10u128.pow(6)),
            None => {}
        }
        match dep.tick(TickKind::Step).unwrap() {
            TickReport::Stepped { outcomes, .. } => {
                for (intent, outcome) in outcomes {
                    let outcome = outcome.expect("settled");
                    assert!(matches!(outcome.status, FlowStatus::Completed { .. }), "{intent:?}: {:?}", outcome.status);
                    fills.push(outcome.fill().cloned().expect("a swap fills"));
                }
            }
            TickReport::Waiting { .. } => panic!("nothing should wait on a healthy devnet"),
        }
    }
    let sells = fills.iter().filter(|f| f.token_in.symbol == "WETH").count();
    let buys = fills.iter().filter(|f| f.token_in.symbol == "USDC").count();
    assert!(sells >= 1 && buys >= 1, "expected both a sell and a buy, got {sells} sells and {buys} buys");

    // The chain moved exactly what the fills say.
    let mut weth_expect = weth0;
    let mut usdc_expect = usdc0;
    for f in &fills {
        let (i, o) = (U256::from(f.amount_in.0), U256::from(f.amount_out.0));
        if f.token_in.symbol == "WETH" {
            weth_expect -= i;
            usdc_expect += o;
        } else {
            usdc_expect -= i;
            weth_expect += o;
        }
    }
    assert_eq!(balance(&rpc, weth, safe), weth_expect);
    assert_eq!(balance(&rpc, usdc, safe), usdc_expect);

    // Every mined transaction in the journal is one Safe transaction and one nonce of the key; none is in flight.
    let txs = dep.journal().all_txs().unwrap();
    let mined = txs.iter().filter(|t| t.status == TxStatus::Mined).count() as u64;
    assert_eq!(mined, txs.len() as u64, "{txs:?}");
    let safe_nonce1 = view(&rpc, safe, &ISafe::nonceCall {}).unwrap();
    assert_eq!(safe_nonce1 - safe_nonce0, U256::from(mined));
    assert_eq!(rpc.nonce(owner, false).unwrap() - sender_nonce0, mined);
    let mut nonces: Vec<u64> = txs.iter().map(|t| t.nonce).collect();
    nonces.dedup();
    assert_eq!(nonces.len() as u64, mined, "one transaction per nonce");
    // Approvals are exact: nothing is left approved to the router after the swaps.
    let router = net.contract("SwapRouter");
    for t in [weth, usdc] {
        assert_eq!(view(&rpc, t, &IERC20::allowanceCall { owner: safe, spender: router }).unwrap(), U256::ZERO);
    }

    // The strategy's state was committed after every tick and outcome; nothing is in flight or pending.
    let stored = dep.journal().state().unwrap().unwrap();
    assert_eq!(stored.tick, moves.len() as u64);
    let st: serde_json::Value = serde_json::from_str(&stored.state).unwrap();
    assert_eq!(st["assets"][0]["in_flight"], false, "{st}");
    assert!(dep.journal().pending_intents().unwrap().is_empty());
    let intents = dep.journal().all_intents().unwrap();
    assert_eq!(intents.len(), fills.len());
    assert!(intents.iter().all(|i| i.status == "done"));
    let _: Vec<Intent> = intents.iter().map(|i| serde_json::from_str(&i.intent_text).unwrap()).collect();
    // Nothing moved the pool between planning and execution, so each swap paid out exactly its quote: the pool
    // maths (over the pool's initialized ticks, read from the chain) is the contract's.
    for i in &intents {
        let plan: sextant_exec::Plan = serde_json::from_value(i.plan.clone().unwrap()).unwrap();
        let outcome: sextant_strategy::FlowOutcome = serde_json::from_str(i.outcome_text.as_deref().unwrap()).unwrap();
        let swap = plan.swap.unwrap();
        assert_eq!(U256::from(outcome.fill().unwrap().amount_out.0), swap.quote_out, "intent {}", i.id);
    }
    dep.close().unwrap();
}
