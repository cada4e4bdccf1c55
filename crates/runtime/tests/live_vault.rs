//! A deployment that settles a strategy vault: the devnet's Safe is the vault's Safe and curator; an investor
//! requests a deposit; the next tick values the Safe's positions (its USDC and WETH at the pool price) and settles
//! the epoch at that NAV through a Safe transaction, journaled like any intent; the investor claims. A redemption is
//! settled the same way: the Safe approves exactly what it can cost and the vault takes it. Between settlements, a
//! tick before `settle_every_secs` has passed settles nothing.

#[path = "../../chain/tests/support/aave.rs"]
mod aave;
mod common;

use aave::{Listing, deploy_market};
use common::{KEYS, Net, RSI_LIVE};
use sextant_chain::alloy::primitives::{Address, U256};
use sextant_chain::alloy::sol_types::{SolCall, SolValue};
use sextant_chain::bindings::{IAaveV3Pool, IERC20, ISextantVault as V};
use sextant_chain::calls::Call;
use sextant_exec::{LocalKey, view};
use sextant_protocols::aave_v3::{RateStrategy, ReserveConfig};
use sextant_runtime::{Deployment, DeploymentConfig, OpenOptions, TickKind, TickReport};
use sextant_strategy::FlowStatus;
use sextant_types::Intent;

/// A vault on the devnet's USDC: the Safe manages its assets and settles it; the deployer owns it.
fn deploy_vault(net: &Net) -> Address {
    let (safe, usdc, deployer) = (net.contract("Safe"), net.contract("USDC"), net.account("deployer"));
    let artifact: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sextant_devnet::find_root().unwrap().join("contracts/out/SextantVault.json")).unwrap(),
    )
    .unwrap();
    let mut code = sextant_chain::alloy::hex::decode(artifact["bytecode"].as_str().unwrap()).unwrap();
    let owner: Address = deployer.parse().unwrap();
    code.extend(
        (usdc, "Devnet vault".to_string(), "dv".to_string(), safe, owner, safe, owner, owner).abi_encode_params(),
    );
    let client = sextant_devnet::Client { rpc: &net.devnet.rpc_url };
    let r = client.send("deploy the vault", &deployer, None, &code, 0).unwrap();
    r["contractAddress"].as_str().unwrap().parse().unwrap()
}

#[test]
fn a_deployment_settles_its_vault_at_the_safes_nav() {
    let net = Net::up();
    let rpc = net.rpc();
    let safe = net.contract("Safe");
    let usdc = net.contract("USDC");
    let investor = net.account("trader");
    let investor_a: Address = investor.parse().unwrap();
    let vault = deploy_vault(&net);
    let send = |from: &str, to: Address, data: Vec<u8>, what: &str| {
        net.send(what, from, &Call { to, value: U256::ZERO, data: data.into(), label: what.to_string() });
    };
    let usd = |x: u64| U256::from(x) * U256::from(1_000_000u64);
    send(&investor, usdc, IERC20::approveCall { spender: vault, amount: U256::MAX }.abi_encode(), "approve");
    send(
        &investor,
        vault,
        V::requestDepositCall { assets: usd(10_000), controller: investor_a, owner: investor_a }.abi_encode(),
        "request a deposit",
    );

    let config = |every: u64| {
        let text = format!("{RSI_LIVE}\n[vault]\naddress = \"{vault}\"\nsettle_every_secs = {every}\n");
        DeploymentConfig::parse(&text, "test").unwrap()
    };
    let key = LocalKey::from_hex(KEYS[1]).unwrap();
    let open = |every: u64| {
        Deployment::open(OpenOptions {
            config: config(every),
            rpc: &rpc,
            signer: &key,
            safe,
            state: net.state_path("vault.db"),
            registry: net.registry(),
            log: Box::new(|_, _| {}),
        })
        .unwrap()
    };
    let settled = |report: &TickReport| -> Option<u128> {
        let TickReport::Stepped { outcomes, .. } = report else { return None };
        outcomes.iter().find_map(|(intent, outcome)| match intent {
            Intent::VaultSettle { nav, .. } => {
                let outcome = outcome.as_ref().expect("the settlement was carried out");
                assert!(matches!(outcome.status, FlowStatus::Completed { .. }), "{:?}", outcome.status);
                Some(nav.0)
            }
            _ => None,
        })
    };

    // First tick: due (never settled), the NAV is the Safe's equity at the tick.
    let mut dep = open(0);
    let report = dep.tick(TickKind::Step).unwrap();
    let nav = settled(&report).expect("a settlement");
    let TickReport::Stepped { record, .. } = &report else { unreachable!() };
    assert_eq!(nav, (record.equity * 1e6).floor() as u128, "NAV = the tick's equity, in USDC base units");
    assert!(nav > 100_000 * 1_000_000, "the Safe's USDC and WETH: {nav}");
    assert_eq!(view(&rpc, vault, &V::epochCall {}).unwrap(), U256::from(2));
    assert_eq!(view(&rpc, vault, &V::totalAssetsCall {}).unwrap(), U256::from(nav) + usd(10_000));
    // the Safe's own capital, there before the vault, is the Safe's shares (at one share per asset unit)
    let seeded = view(&rpc, vault, &V::balanceOfCall { who: safe }).unwrap();
    assert_eq!(seeded, U256::from(nav) * U256::from(1_000_000u64));
    // the deposit is priced at the NAV and claimable
    let claimable = view(&rpc, vault, &V::maxDepositCall { controller: investor_a }).unwrap();
    assert_eq!(claimable, usd(10_000));
    send(
        &investor,
        vault,
        V::deposit_0Call { assets: claimable, receiver: investor_a, controller: investor_a }.abi_encode(),
        "claim",
    );
    let shares = view(&rpc, vault, &V::balanceOfCall { who: investor_a }).unwrap();
    assert!(!shares.is_zero());

    // Not due yet: no settlement.
    dep.close().unwrap();
    let mut dep = open(86_400);
    let report = dep.tick(TickKind::Step).unwrap();
    assert!(settled(&report).is_none(), "settled before settle_every_secs");
    dep.close().unwrap();

    // A redemption: the next due tick settles it, the Safe approving what it costs; the investor is paid.
    let half = shares / U256::from(2);
    send(
        &investor,
        vault,
        V::requestRedeemCall { shares: half, controller: investor_a, owner: investor_a }.abi_encode(),
        "request a redemption",
    );
    let mut dep = open(0);
    let safe_usdc = view(&rpc, usdc, &IERC20::balanceOfCall { owner: safe }).unwrap();
    let report = dep.tick(TickKind::Step).unwrap();
    assert!(settled(&report).is_some());
    let owed = view(&rpc, vault, &V::maxWithdrawCall { controller: investor_a }).unwrap();
    assert!(owed > usd(4_900) && owed < usd(5_100), "half of 10,000 at about the same price: {owed}");
    assert_eq!(
        view(&rpc, usdc, &IERC20::balanceOfCall { owner: safe }).unwrap(),
        safe_usdc - owed,
        "paid from the Safe"
    );
    let left = view(&rpc, usdc, &IERC20::allowanceCall { owner: safe, spender: vault }).unwrap();
    assert!(left <= U256::from(1_000_000u64), "no more than dust left approved: {left}");
    let before = view(&rpc, usdc, &IERC20::balanceOfCall { owner: investor_a }).unwrap();
    send(
        &investor,
        vault,
        V::redeemCall { shares: half, receiver: investor_a, controller: investor_a }.abi_encode(),
        "claim",
    );
    assert_eq!(view(&rpc, usdc, &IERC20::balanceOfCall { owner: investor_a }).unwrap() - before, owed);
}

/// The Safe's Aave positions count in the NAV: Aave v3 (the npm package's artifacts) is listed on the devnet with its
/// USDC and WETH; the trader supplies USDC and WETH on the Safe's behalf, borrows USDC against its own WETH so the
/// supply earns interest, and a month passes. The settlement's NAV is the tick's equity plus the Safe's aUSDC and its
/// aWETH at the pool price, the aTokens' `balanceOf` at the tick's block (interest since the reserves' last update
/// included). A pool that is not an Aave pool is refused when the deployment opens.
#[test]
fn the_nav_counts_the_safes_aave_positions() {
    let net = Net::up();
    net.fund_trader();
    let rpc = net.rpc();
    let (safe, usdc, weth) = (net.contract("Safe"), net.contract("USDC"), net.contract("WETH"));
    let trader = net.account("trader");
    let trader_a: Address = trader.parse().unwrap();
    let admin: Address = net.account("deployer").parse().unwrap();
    let client = sextant_devnet::Client { rpc: &net.devnet.rpc_url };
    let listing = |asset: Address, symbol: &str, decimals: u8, price: u64| Listing {
        asset,
        symbol: symbol.to_string(),
        config: ReserveConfig {
            decimals,
            ltv_bps: 7_500,
            liquidation_threshold_bps: 8_000,
            liquidation_bonus_bps: 10_500,
            liquidation_protocol_fee_bps: 1_000,
            reserve_factor_bps: 1_000,
            strategy: RateStrategy::from_fractions(0.8, 0.0, 0.04, 0.75),
        },
        price: U256::from(price),
    };
    let aave = deploy_market(
        &client,
        admin,
        &[listing(usdc, "USDC", 6, 100_000_000), listing(weth, "WETH", 18, 2_000 * 100_000_000)],
        admin,
    );
    let send = |to: Address, data: Vec<u8>, what: &str| {
        net.send(what, &trader, &Call { to, value: U256::ZERO, data: data.into(), label: what.to_string() });
    };
    for token in [usdc, weth] {
        send(token, IERC20::approveCall { spender: aave.pool, amount: U256::MAX }.abi_encode(), "approve Aave");
    }
    let usd = |x: u64| U256::from(x) * U256::from(1_000_000u64);
    let eth = |milli: u64| U256::from(milli) * U256::from(10u64.pow(15));
    let supply = |asset: Address, amount: U256, on_behalf: Address, what: &str| {
        let call = IAaveV3Pool::supplyCall { asset, amount, onBehalfOf: on_behalf, referralCode: 0 };
        send(aave.pool, call.abi_encode(), what);
    };
    supply(usdc, usd(20_000), safe, "supply USDC for the Safe");
    supply(weth, eth(1_500), safe, "supply WETH for the Safe");
    supply(weth, eth(100_000), trader_a, "the trader's collateral");
    let borrow = IAaveV3Pool::borrowCall {
        asset: usdc,
        amount: usd(15_000),
        interestRateMode: U256::from(2u8),
        referralCode: 0,
        onBehalfOf: trader_a,
    };
    send(aave.pool, borrow.abi_encode(), "borrow USDC");
    rpc.request("evm_increaseTime", serde_json::json!([30 * 86_400])).unwrap();
    rpc.request("evm_mine", serde_json::json!([])).unwrap();

    let vault = deploy_vault(&net);
    let key = LocalKey::from_hex(KEYS[1]).unwrap();
    let open = |pool: Address| {
        let text =
            format!("{RSI_LIVE}\n[vault]\naddress = \"{vault}\"\nsettle_every_secs = 0\naave_pool = \"{pool}\"\n");
        Deployment::open(OpenOptions {
            config: DeploymentConfig::parse(&text, "test").unwrap(),
            rpc: &rpc,
            signer: &key,
            safe,
            state: net.state_path("aave.db"),
            registry: net.registry(),
            log: Box::new(|_, _| {}),
        })
        .map_err(|e| e.to_string())
    };
    let Err(err) = open(usdc) else { panic!("USDC is not an Aave pool") };
    assert!(err.contains("is not an Aave v3 pool"), "{err}");

    let mut dep = open(aave.pool).unwrap();
    let report = dep.tick(TickKind::Step).unwrap();
    let TickReport::Stepped { record, outcomes, .. } = &report else { panic!("{report:?}") };
    let nav = outcomes
        .iter()
        .find_map(|(intent, _)| match intent {
            Intent::VaultSettle { nav, .. } => Some(nav.0),
            _ => None,
        })
        .expect("a settlement");
    let at_block = |token: Address| {
        let req = sextant_chain::alloy::rpc::types::TransactionRequest::default().to(token).input(
            sextant_chain::alloy::primitives::Bytes::from(IERC20::balanceOfCall { owner: safe }.abi_encode()).into(),
        );
        U256::from_be_slice(&rpc.call_at(&req, record.block).unwrap())
    };
    let a_usdc = at_block(aave.a_tokens[0]);
    let a_weth = at_block(aave.a_tokens[1]);
    assert!(a_usdc > usd(20_000), "a month of interest on the USDC supply: {a_usdc}");
    assert!(a_weth >= eth(1_500), "{a_weth}");
    let expect = record.equity + f64::from(a_usdc) / 1e6 + f64::from(a_weth) / 1e18 * record.price;
    let expect = (expect * 1e6).floor();
    assert!((nav as f64 - expect).abs() <= 2.0, "NAV {nav} = equity + aUSDC + aWETH at the price = {expect}");
    assert!(nav as f64 > (record.equity + 20_000.0 + 1.5 * record.price) * 1e6, "{nav}");
    dep.close().unwrap();
}
