//! Strategies live through the permissions module on a devnet (anvil from npm, Safe 1.4.1, Uniswap v3 and the
//! module from their artifacts): the deployment key is no Safe owner, only a member of the role whose policy is
//! derived from the strategy's config. RSI and Dynamic LP trade with that policy and nothing broader; a stolen
//! key's moves (output to the thief, approval to the thief, a transfer out, a delegatecall) are refused by the
//! off-chain checker before signing and by the module on chain; a revoked key can no longer open the deployment.

mod common;
mod ticks;

use common::{KEYS, LP_LIVE, Net, RSI_LIVE};
use sextant_chain::Call;
use sextant_chain::alloy::primitives::{Address, Bytes, U256};
use sextant_chain::alloy::rpc::types::TransactionRequest;
use sextant_chain::alloy::sol_types::{SolCall, SolError, SolEvent};
use sextant_chain::bindings::{IERC20, INonfungiblePositionManager, ISafe, ISextantRoles};
use sextant_chain::calls::{self, RouterKind, SwapParams};
use sextant_exec::{LocalKey, TransactionManager, TxSettings, view};
use sextant_runtime::permissions::{derive_for_config, install, revoke};
use sextant_runtime::{Deployment, DeploymentConfig, OpenOptions, TickKind, TickReport};
use sextant_strategy::FlowStatus;
use sextant_types::IntentKind;
use ticks::tick;

fn balance(rpc: &sextant_chain::Rpc, token: Address, who: Address) -> U256 {
    view(rpc, token, &IERC20::balanceOfCall { owner: who }).unwrap()
}

/// Installs the config's derived policy with the deployment key as member (signed by the Safe owner) and returns
/// the config routed through the module.
fn install_for(net: &Net, config: &str) -> (String, Address) {
    let rpc = net.rpc();
    let owner = LocalKey::from_hex(KEYS[1]).unwrap();
    let safe = net.contract("Safe");
    let tm = TransactionManager::new(&rpc, &owner, 31337, safe, TxSettings::default()).unwrap();
    let derived = derive_for_config(config, "test", &net.registry(), "devnet", safe).unwrap();
    let member: Address = net.account("deployment_key").parse().unwrap();
    let module = install(&tm, &derived.policy, member, None, &|_| {}).unwrap();
    (format!("{config}\n[permissions]\nmodule = \"{module}\"\n"), module)
}

fn open<'a>(net: &Net, rpc: &'a sextant_chain::Rpc, key: &'a LocalKey, config: &str, state: &str) -> Deployment<'a> {
    Deployment::open(OpenOptions {
        config: DeploymentConfig::parse(config, "test").unwrap(),
        rpc,
        signer: key,
        safe: net.contract("Safe"),
        state: net.state_path(state),
        registry: net.registry(),
        log: Box::new(|_, _| {}),
    })
    .unwrap()
}

/// What a thief holding the deployment key would try, each refused: by the TransactionManager's checker before
/// anything is signed, and by the module when sent straight to it.
fn stolen_key_is_refused(net: &Net, module: Address, config: &str) {
    let rpc = net.rpc();
    let key = LocalKey::from_hex(KEYS[2]).unwrap();
    let member: Address = net.account("deployment_key").parse().unwrap();
    let safe = net.contract("Safe");
    let thief = Address::repeat_byte(0x7e);
    let (weth, usdc, router) = (net.contract("WETH"), net.contract("USDC"), net.contract("SwapRouter"));
    let policy = derive_for_config(config, "test", &net.registry(), "devnet", safe).unwrap().policy;
    let tm = TransactionManager::new(&rpc, &key, 31337, safe, TxSettings::default())
        .unwrap()
        .with_module(module, policy.clone());
    let swap_to_thief = calls::swap_exact_in(
        &SwapParams {
            router,
            kind: RouterKind::V1,
            token_in: weth,
            token_out: usdc,
            fee_pips: 3000,
            recipient: thief,
            amount_in: U256::from(10u64.pow(16)),
            min_out: U256::ZERO,
            deadline: u64::MAX / 2,
        },
        "swap to the thief",
    );
    let transfer = Call {
        to: usdc,
        value: U256::ZERO,
        data: IERC20::transferCall { to: thief, amount: U256::from(1_000_000u64) }.abi_encode().into(),
        label: "transfer to the thief".into(),
    };
    let attempts: Vec<(Call, u8)> = vec![
        (swap_to_thief.clone(), 0),
        (calls::approve(usdc, thief, U256::from(1_000_000u64), "approve the thief"), 0),
        (transfer, 0),
        (calls::approve(weth, router, U256::from(10u128.pow(30)), "approve beyond the allowance"), 0),
        (swap_to_thief, 1),
    ];
    let before = (balance(&rpc, weth, safe), balance(&rpc, usdc, safe));
    for (call, operation) in &attempts {
        if *operation == 0 {
            let e = tm.build(call, rpc.nonce(member, true).unwrap()).unwrap_err();
            assert!(matches!(e, sextant_exec::Error::Policy(_)), "{}: {e}", call.label);
        }
        let exec = ISextantRoles::execTransactionWithRoleCall {
            to: call.to,
            value: call.value,
            data: call.data.clone(),
            operation: *operation,
            roleKey: policy.role_key,
            shouldRevert: true,
        }
        .abi_encode();
        let req = TransactionRequest::default().from(member).to(module).input(Bytes::from(exec).into());
        let err = rpc.call(&req).expect_err(&call.label).to_string();
        assert!(err.contains("refused by the permissions module"), "{} (operation {operation}): {err}", call.label);
    }
    assert_eq!((balance(&rpc, weth, safe), balance(&rpc, usdc, safe)), before);
    let raw = ISextantRoles::ConditionViolation { status: 2, info: Default::default() }.abi_encode();
    assert!(sextant_chain::revert::decode_revert(&raw).contains("TargetAddressNotAllowed"));
}

/// Every token transfer out of the Safe went to an address the policy names.
fn tokens_left_only_to_named_addresses(net: &Net, config: &str) {
    let rpc = net.rpc();
    let safe = net.contract("Safe");
    let policy = derive_for_config(config, "test", &net.registry(), "devnet", safe).unwrap().policy;
    let head = rpc.block_number().unwrap();
    let from_safe = sextant_chain::alloy::primitives::B256::left_padding_from(safe.as_slice());
    let mut seen = 0;
    for token in [net.contract("WETH"), net.contract("USDC")] {
        for l in rpc.logs(token, &[IERC20::Transfer::SIGNATURE_HASH, from_safe], 0, head).unwrap() {
            let to = Address::from_slice(&l.topics()[2].as_slice()[12..]);
            assert!(policy.counterparties.iter().any(|c| c.address == to), "{token} left the Safe to {to}");
            seen += 1;
        }
    }
    assert!(seen > 0, "the strategy paid something out");
}

#[test]
fn rsi_trades_through_the_module_with_its_derived_policy_and_a_stolen_key_gets_nothing() {
    let net = Net::up();
    net.fund_trader();
    let rpc = net.rpc();
    let safe = net.contract("Safe");
    let (weth, usdc) = (net.contract("WETH"), net.contract("USDC"));
    let (config, module) = install_for(&net, RSI_LIVE);
    let member: Address = net.account("deployment_key").parse().unwrap();
    let owners = view(&rpc, safe, &ISafe::getOwnersCall {}).unwrap();
    assert!(!owners.contains(&member), "the deployment key is no owner");
    let safe_nonce0 = view(&rpc, safe, &ISafe::nonceCall {}).unwrap();
    let (weth0, usdc0) = (balance(&rpc, weth, safe), balance(&rpc, usdc, safe));

    let key = LocalKey::from_hex(KEYS[2]).unwrap();
    let mut dep = open(&net, &rpc, &key, &config, "module.db");
    let moves = [None, Some(false), Some(false), Some(false), Some(true), Some(true), Some(true), Some(false)];
    let mut fills = Vec::new();
    for m in moves {
        match m {
            Some(true) => net.push_price(true, 3 * 10u128.pow(18)),
            Some(false) => net.push_price(false, 6_000 * 10u128.pow(6)),
            None => {}
        }
        if let TickReport::Stepped { outcomes, .. } = dep.tick(TickKind::Step).unwrap() {
            for (intent, outcome) in outcomes {
                let outcome = outcome.expect("settled");
                assert!(matches!(outcome.status, FlowStatus::Completed { .. }), "{intent:?}: {:?}", outcome.status);
                fills.push(outcome.fill().cloned().expect("a swap fills"));
            }
        }
    }
    let sells = fills.iter().filter(|f| f.token_in.symbol == "WETH").count();
    let buys = fills.iter().filter(|f| f.token_in.symbol == "USDC").count();
    assert!(sells >= 1 && buys >= 1, "{sells} sells, {buys} buys");
    let (mut weth_expect, mut usdc_expect) = (weth0, usdc0);
    for f in &fills {
        let (i, o) = (U256::from(f.amount_in.0), U256::from(f.amount_out.0));
        if f.token_in.symbol == "WETH" {
            (weth_expect, usdc_expect) = (weth_expect - i, usdc_expect + o);
        } else {
            (weth_expect, usdc_expect) = (weth_expect + o, usdc_expect - i);
        }
    }
    assert_eq!((balance(&rpc, weth, safe), balance(&rpc, usdc, safe)), (weth_expect, usdc_expect));
    // Nothing went through owner-signed Safe transactions: the Safe's nonce did not move; every mined transaction
    // of the journal was the key's call to the module.
    assert_eq!(view(&rpc, safe, &ISafe::nonceCall {}).unwrap(), safe_nonce0);
    let txs = dep.journal().all_txs().unwrap();
    assert!(!txs.is_empty() && txs.iter().all(|t| t.status == sextant_exec::journal::TxStatus::Mined), "{txs:?}");
    dep.close().unwrap();
    tokens_left_only_to_named_addresses(&net, &config);

    stolen_key_is_refused(&net, module, &config);

    // The owners revoke the key: the deployment no longer opens with it.
    let owner = LocalKey::from_hex(KEYS[1]).unwrap();
    let tm = TransactionManager::new(&rpc, &owner, 31337, safe, TxSettings::default()).unwrap();
    assert!(revoke(&tm, module, "sextant-rsi", member, &|_| {}).unwrap());
    let e = Deployment::open(OpenOptions {
        config: DeploymentConfig::parse(&config, "test").unwrap(),
        rpc: &rpc,
        signer: &key,
        safe,
        state: net.state_path("module.db"),
        registry: net.registry(),
        log: Box::new(|_, _| {}),
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("not a member"), "{e}");
}

#[test]
fn dynamic_lp_opens_moves_and_closes_ranges_through_the_module() {
    let net = Net::up();
    net.fund_trader();
    let rpc = net.rpc();
    let safe = net.contract("Safe");
    let manager = net.contract("NonfungiblePositionManager");
    let (config, module) = install_for(&net, LP_LIVE);
    let safe_nonce0 = view(&rpc, safe, &ISafe::nonceCall {}).unwrap();
    let key = LocalKey::from_hex(KEYS[2]).unwrap();
    let mut dep = open(&net, &rpc, &key, &config, "lp-module.db");
    let count = || view(&rpc, manager, &INonfungiblePositionManager::balanceOfCall { owner: safe }).unwrap();

    let first = tick(&mut dep, TickKind::Step);
    let opened = if first.contains(&IntentKind::LpOpen) { first } else { tick(&mut dep, TickKind::Step) };
    assert!(opened.contains(&IntentKind::LpOpen), "{opened:?}");
    assert_eq!(count(), U256::from(1));
    for _ in 0..4 {
        net.push_price(true, 20 * 10u128.pow(18));
    }
    let moved = tick(&mut dep, TickKind::Step);
    assert_eq!(moved.first(), Some(&IntentKind::LpClose), "{moved:?}");
    if !moved.contains(&IntentKind::LpOpen) {
        assert!(tick(&mut dep, TickKind::Step).contains(&IntentKind::LpOpen));
    }
    assert_eq!(count(), U256::from(1), "the old range was burned, a new one opened");
    assert_eq!(tick(&mut dep, TickKind::Teardown), vec![IntentKind::LpClose]);
    assert_eq!(count(), U256::ZERO);
    assert_eq!(view(&rpc, safe, &ISafe::nonceCall {}).unwrap(), safe_nonce0, "no owner-signed Safe transaction");
    dep.close().unwrap();
    tokens_left_only_to_named_addresses(&net, &config);

    stolen_key_is_refused(&net, module, &config);
    // The LP policy's own refusals: a position minted for the thief, or collected to the thief.
    let thief = Address::repeat_byte(0x7e);
    let policy = derive_for_config(&config, "test", &net.registry(), "devnet", safe).unwrap().policy;
    let tm =
        TransactionManager::new(&rpc, &key, 31337, safe, TxSettings::default()).unwrap().with_module(module, policy);
    for call in
        [calls::lp_collect(manager, U256::from(1), thief), calls::lp_burn(Address::repeat_byte(1), U256::from(1))]
    {
        let e = tm.check_policy(&call).unwrap_err();
        assert!(matches!(e, sextant_exec::Error::Policy(_)), "{e}");
    }
}

/// Installing again replaces the role's scope (what the new policy does not allow is revoked), a second module is
/// refused while one is enabled, and a contract that is not the module is never enabled.
#[test]
fn reinstalling_narrows_the_role_and_a_second_or_fake_module_is_refused() {
    let net = Net::up();
    let rpc = net.rpc();
    let safe = net.contract("Safe");
    let manager = net.contract("NonfungiblePositionManager");
    let (_, module) = install_for(&net, LP_LIVE);
    let owner = LocalKey::from_hex(KEYS[1]).unwrap();
    let tm = TransactionManager::new(&rpc, &owner, 31337, safe, TxSettings::default()).unwrap();
    let member: Address = net.account("deployment_key").parse().unwrap();
    let lp = derive_for_config(LP_LIVE, "lp", &net.registry(), "devnet", safe).unwrap().policy;
    let scope = |call: &Call| {
        let q = ISextantRoles::checkScopeCall {
            to: call.to,
            value: call.value,
            data: call.data.clone(),
            operation: 0,
            roleKey: lp.role_key,
        };
        view(&rpc, module, &q).unwrap().status
    };
    let burn = calls::lp_burn(manager, U256::from(1));
    assert_eq!(scope(&burn), 0, "the LP role may burn positions");

    // The same role, now with the RSI strategy's needs: the position manager is revoked in the same transaction.
    let narrower = format!("{RSI_LIVE}\n[permissions]\nrole = \"{}\"\n", lp.role);
    let policy = derive_for_config(&narrower, "rsi", &net.registry(), "devnet", safe).unwrap().policy;
    let lines = std::cell::RefCell::new(Vec::new());
    install(&tm, &policy, member, Some(module), &|l| lines.borrow_mut().push(l.to_string())).unwrap();
    assert!(
        lines.borrow().iter().any(|l| l.contains("revoke target") && l.contains(&manager.to_string())),
        "{lines:?}"
    );
    assert_eq!(scope(&burn), 2, "TargetAddressNotAllowed after the narrower install");
    let weth = net.contract("WETH");
    assert_eq!(scope(&calls::approve(weth, manager, U256::from(1), "a")), 7, "approvals to the manager are gone");
    assert_eq!(scope(&calls::approve(weth, net.contract("SwapRouter"), U256::from(1), "a")), 0);

    let e = install(&tm, &policy, member, None, &|_| {}).unwrap_err().to_string();
    assert!(e.contains("already has") && e.contains(&module.to_string()), "{e}");
    let e = install(&tm, &policy, member, Some(net.contract("WETH")), &|_| {}).unwrap_err().to_string();
    assert!(e.contains("is not Sextant's permissions module"), "{e}");
}
