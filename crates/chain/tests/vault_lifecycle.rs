//! Sextant's strategy vault on anvil, as investors and a curator use it, and against the standards.
//!
//! Lifecycle: three investors request deposits; the curator settles at the Safe's NAV; they claim their shares
//! (one through an operator, one with `mint`); the strategy gains, fees are set and charged (management by time,
//! performance above the high-water mark); a late investor enters at the higher price; redemptions are requested,
//! the strategy loses, the next settlement prices them and pulls the assets from the Safe; claims pay out. Every
//! amount equals `protocols::vault::VaultModel`'s to the wei, and the investors' gains are in the right order.
//!
//! Conformance (ERC-7540, ERC-7575, ERC-4626, ERC-165): the interface ids are the standards' constants; the
//! synchronous previews revert; `share()` is the vault; requests emit `DepositRequest` / `RedeemRequest` with
//! request id 0 and move the assets or shares into the vault; pending and claimable views move from one to the other
//! at settlement; `maxDeposit`/`maxMint`/`maxRedeem`/`maxWithdraw` are what can be claimed; claims need the
//! controller or its operator; `convertToShares`/`convertToAssets` follow the posted NAV, and a donation does not
//! move them (no inflation attack); pause stops deposit requests only; a frozen vault cannot be settled.

mod common;

use common::{artifact, testnet};
use sextant_chain::alloy::primitives::{Address, U256, keccak256};
use sextant_chain::alloy::sol;
use sextant_chain::alloy::sol_types::{SolCall, SolValue};
use sextant_chain::bindings::ISextantVault as IVault;
use sextant_devnet::{Client, rpc_call};
use sextant_protocols::vault::VaultModel;

sol! {
    interface IToken {
        function mint(address to, uint256 amount) external;
        function approve(address spender, uint256 amount) external returns (bool);
        function transfer(address to, uint256 amount) external returns (bool);
        function balanceOf(address who) external view returns (uint256);
    }
}

struct Net<'a> {
    client: Client<'a>,
    url: String,
}

impl Net<'_> {
    fn send(&self, from: Address, to: Address, data: Vec<u8>) -> serde_json::Value {
        self.client.send("tx", &from.to_string(), Some(&to.to_string()), &data, 0).unwrap_or_else(|e| panic!("{e}"))
    }
    /// eth_call from `from`: Ok(return) or Err(revert data as text).
    fn call(&self, from: Address, to: Address, data: Vec<u8>) -> Result<Vec<u8>, String> {
        let req = serde_json::json!([{"from": from.to_string(), "to": to.to_string(), "data": format!("0x{}", common::hex(&data))}, "latest"]);
        rpc_call(&self.url, "eth_call", req).map(|v| common::unhex(v.as_str().unwrap())).map_err(|e| e.to_string())
    }
    fn u(&self, to: Address, data: Vec<u8>) -> U256 {
        U256::from_be_slice(&self.call(Address::ZERO, to, data).unwrap()[..32])
    }
    fn time(&self, t: u64) {
        rpc_call(&self.url, "evm_setNextBlockTimestamp", serde_json::json!([t])).unwrap();
    }
}

fn sel(sig: &str) -> String {
    common::hex(&keccak256(sig.as_bytes())[..4])
}

#[test]
fn investors_curator_and_standards() {
    let tn = testnet(false);
    let url = tn.devnet.rpc_url.clone();
    let acct: Vec<Address> = rpc_call(&url, "eth_accounts", serde_json::json!([]))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().parse().unwrap())
        .collect();
    assert!(acct.len() >= 10, "anvil's ten unlocked accounts");
    let (deployer, safe, owner, curator, guardian, fees) = (acct[0], acct[1], acct[2], acct[3], acct[4], acct[5]);
    let (alice, bob, carol, dave, operator) = (acct[6], acct[7], acct[8], acct[9], acct[2]);
    let net = Net { client: Client { rpc: &url }, url: url.clone() };
    let deploy = |mut code: Vec<u8>, args: Vec<u8>| -> Address {
        code.extend(args);
        let r = net.client.send("deploy", &deployer.to_string(), None, &code, 0).unwrap();
        r["contractAddress"].as_str().unwrap().parse().unwrap()
    };
    let usdc = deploy(
        artifact("contracts/out/TestToken.json"),
        ("USD Coin".to_string(), "USDC".to_string(), U256::from(6)).abi_encode_params(),
    );
    let vault = deploy(
        artifact("contracts/out/SextantVault.json"),
        (usdc, "Sextant USDC vault".to_string(), "sxUSDC".to_string(), safe, owner, curator, guardian, fees)
            .abi_encode_params(),
    );
    let t0: u64 = net.u(vault, IVault::lastFeeAccrualCall {}.abi_encode()).to();
    let mut model = VaultModel::new(vault, safe, owner, curator, guardian, fees, t0);
    let usd = |x: u64| U256::from(x) * U256::from(1_000_000u64);
    for who in [alice, bob, carol, dave, safe] {
        net.send(deployer, usdc, IToken::mintCall { to: who, amount: usd(1_000_000) }.abi_encode());
        net.send(who, usdc, IToken::approveCall { spender: vault, amount: U256::MAX }.abi_encode());
    }
    let bal = |who: Address| net.u(usdc, IToken::balanceOfCall { who }.abi_encode());
    let shares = |who: Address| net.u(vault, IVault::balanceOfCall { who }.abi_encode());

    // --- standards: interface ids, share(), previews revert ------------------------------------------------
    for (id, yes) in [
        ("01ffc9a7", true),
        ("e3bc4e65", true),
        ("ce3bbe50", true),
        ("620ee8e4", true),
        ("2f0a18c5", true),
        ("ffffffff", false),
    ] {
        let id: [u8; 4] = common::unhex(id).try_into().unwrap();
        let got = net.u(vault, IVault::supportsInterfaceCall { id: id.into() }.abi_encode());
        assert_eq!(got == U256::from(1), yes, "supportsInterface({})", common::hex(&id));
    }
    assert_eq!(Address::from_word(net.u(vault, IVault::shareCall {}.abi_encode()).into()), vault);
    assert_eq!(Address::from_word(net.u(vault, IVault::assetCall {}.abi_encode()).into()), usdc);
    assert_eq!(net.u(vault, IVault::decimalsCall {}.abi_encode()), U256::from(12), "6 + 6 offset decimals");
    for data in [
        IVault::previewDepositCall { assets: usd(1) }.abi_encode(),
        IVault::previewMintCall { shares: usd(1) }.abi_encode(),
        IVault::previewWithdrawCall { assets: usd(1) }.abi_encode(),
        IVault::previewRedeemCall { shares: usd(1) }.abi_encode(),
    ] {
        let e = net.call(alice, vault, data).unwrap_err();
        assert!(e.contains(&sel("AsyncVault()")), "previews revert on an async vault: {e}");
    }

    // --- epoch 1: three deposit requests, one by an operator ------------------------------------------------
    net.send(bob, vault, IVault::setOperatorCall { operator, approved: true }.abi_encode());
    model.set_operator(bob, operator, true);
    assert_eq!(net.u(vault, IVault::isOperatorCall { controller: bob, operator }.abi_encode()), U256::from(1));
    let mut t = t0 + 10;
    for (who, sender, amount) in [(alice, alice, 100_000), (bob, operator, 50_000), (carol, carol, 25_000)] {
        net.time(t);
        let r = net.send(
            sender,
            vault,
            IVault::requestDepositCall { assets: usd(amount), controller: who, owner: who }.abi_encode(),
        );
        model.request_deposit(sender, usd(amount), who, who, usd(1_000_000), U256::MAX).unwrap();
        // DepositRequest(controller, owner, requestId 0, sender, assets)
        let topic = format!(
            "0x{}",
            common::hex(keccak256(b"DepositRequest(address,address,uint256,address,uint256)").as_slice())
        );
        let log =
            r["logs"].as_array().unwrap().iter().find(|l| l["topics"][0] == topic).expect("DepositRequest emitted");
        assert_eq!(log["topics"][3].as_str().unwrap(), format!("0x{}", "0".repeat(64)), "request id 0");
        t += 10;
    }
    assert_eq!(bal(vault), usd(175_000), "requested assets wait in the vault");
    assert_eq!(
        net.u(vault, IVault::pendingDepositRequestCall { requestId: U256::ZERO, controller: alice }.abi_encode()),
        usd(100_000)
    );
    assert_eq!(
        net.u(vault, IVault::claimableDepositRequestCall { requestId: U256::ZERO, controller: alice }.abi_encode()),
        U256::ZERO
    );
    // a stranger cannot request for alice's assets, nor settle
    assert!(
        net.call(
            carol,
            vault,
            IVault::requestDepositCall { assets: usd(1), controller: carol, owner: alice }.abi_encode()
        )
        .is_err()
    );
    assert!(
        net.call(alice, vault, IVault::settleCall { nav: U256::ZERO }.abi_encode())
            .unwrap_err()
            .contains(&sel("Unauthorized()"))
    );

    // --- settle at the Safe's (empty) NAV; claims ------------------------------------------------------------
    let settle = |net: &Net, model: &mut VaultModel, t: u64, nav: U256| {
        net.time(t);
        let safe_held = bal(safe);
        let rep = model.settle(curator, nav, t, safe_held, U256::MAX).unwrap();
        net.send(curator, vault, IVault::settleCall { nav }.abi_encode());
        assert_eq!(shares(fees), model.balance_of(fees), "fee shares");
        assert_eq!(net.u(vault, IVault::totalAssetsCall {}.abi_encode()), model.total_assets);
        assert_eq!(net.u(vault, IVault::totalSupplyCall {}.abi_encode()), model.total_supply);
        assert_eq!(net.u(vault, IVault::highWaterMarkCall {}.abi_encode()), model.high_water_mark);
        rep
    };
    t += 3600;
    settle(&net, &mut model, t, U256::ZERO);
    assert_eq!(bal(safe), usd(1_175_000), "deposits went to the Safe");
    assert_eq!(
        net.u(vault, IVault::pendingDepositRequestCall { requestId: U256::ZERO, controller: alice }.abi_encode()),
        U256::ZERO
    );
    assert_eq!(
        net.u(vault, IVault::claimableDepositRequestCall { requestId: U256::ZERO, controller: alice }.abi_encode()),
        usd(100_000)
    );
    let max_mint = net.u(vault, IVault::maxMintCall { controller: alice }.abi_encode());
    assert_eq!(max_mint, model.claimable_deposit(alice).unwrap().shares);
    // only the controller or its operator claims
    assert!(
        net.call(
            carol,
            vault,
            IVault::deposit_0Call { assets: usd(1), receiver: carol, controller: alice }.abi_encode()
        )
        .unwrap_err()
        .contains(&sel("Unauthorized()"))
    );
    t += 10;
    net.time(t);
    net.send(
        alice,
        vault,
        IVault::deposit_0Call { assets: usd(100_000), receiver: alice, controller: alice }.abi_encode(),
    );
    model.deposit(alice, usd(100_000), alice, alice).unwrap();
    net.send(
        operator,
        vault,
        IVault::deposit_0Call { assets: usd(50_000), receiver: bob, controller: bob }.abi_encode(),
    );
    model.deposit(operator, usd(50_000), bob, bob).unwrap();
    let carol_shares = model.claimable_deposit(carol).unwrap().shares;
    net.send(
        carol,
        vault,
        IVault::mint_0Call { shares: carol_shares, receiver: carol, controller: carol }.abi_encode(),
    );
    model.mint(carol, carol_shares, carol, carol).unwrap();
    for who in [alice, bob, carol] {
        assert_eq!(shares(who), model.balance_of(who));
        assert_eq!(net.u(vault, IVault::maxDepositCall { controller: who }.abi_encode()), U256::ZERO);
    }
    // one share per dollar at the first price (12-decimal shares, 6-decimal assets)
    assert_eq!(shares(alice), U256::from(100_000u64) * U256::from(10u64.pow(12)));

    // --- a donation does not move the price; the strategy gains; fees ------------------------------------------
    let before = net.u(vault, IVault::convertToAssetsCall { shares: U256::from(10u64.pow(12)) }.abi_encode());
    net.send(dave, usdc, IToken::transferCall { to: vault, amount: usd(500_000) }.abi_encode());
    model.asset_balance += usd(500_000);
    assert_eq!(
        net.u(vault, IVault::convertToAssetsCall { shares: U256::from(10u64.pow(12)) }.abi_encode()),
        before,
        "a donation is not NAV"
    );
    net.send(
        owner,
        vault,
        IVault::setFeesCall { managementBps: U256::from(200), performanceBps: U256::from(2000) }.abi_encode(),
    );
    model.set_fees(owner, 200, 2000).unwrap();
    // the new rates apply after the next settlement: a settlement now charges nothing
    t += 86_400;
    let nav = bal(safe) - usd(1_000_000); // the Safe's own million is not the vault's
    let rep = settle(&net, &mut model, t, nav);
    assert!(rep.fee_shares.is_zero(), "fees at the old (zero) rates");
    // the strategy earns 10 % over 90 days
    net.send(deployer, usdc, IToken::mintCall { to: safe, amount: usd(17_500) }.abi_encode());
    t += 90 * 86_400;
    let nav = bal(safe) - usd(1_000_000);
    let hwm_before = model.high_water_mark;
    let rep = settle(&net, &mut model, t, nav);
    assert!(!rep.fee_shares.is_zero() && model.high_water_mark > hwm_before);
    // management ~ 2 % x 90/365 of 192,500 and performance 20 % of the gain above the mark, in shares
    let fee_value = net.u(vault, IVault::convertToAssetsCall { shares: shares(fees) }.abi_encode());
    let expect = 192_500.0 * 0.02 * 90.0 / 365.0 + 0.2 * (17_500.0 - 192_500.0 * 0.02 * 90.0 / 365.0);
    assert!((f64::from(fee_value) / 1e6 - expect).abs() < 1.0, "fees worth {fee_value}, expected about {expect}");

    // --- a late investor enters at the higher price -------------------------------------------------------------
    t += 10;
    net.time(t);
    net.send(
        dave,
        vault,
        IVault::requestDepositCall { assets: usd(20_000), controller: dave, owner: dave }.abi_encode(),
    );
    model.request_deposit(dave, usd(20_000), dave, dave, usd(500_000), U256::MAX).unwrap();
    // pause stops deposit requests, not redemptions
    net.send(guardian, vault, IVault::setPausedCall { paused: true }.abi_encode());
    model.set_paused(guardian, true).unwrap();
    assert!(
        net.call(
            carol,
            vault,
            IVault::requestDepositCall { assets: usd(1), controller: carol, owner: carol }.abi_encode()
        )
        .unwrap_err()
        .contains(&sel("IsPaused()"))
    );
    let half = shares(alice) / U256::from(2);
    t += 10;
    net.time(t);
    net.send(alice, vault, IVault::requestRedeemCall { shares: half, controller: alice, owner: alice }.abi_encode());
    model.request_redeem(alice, half, alice, alice).unwrap();
    assert_eq!(
        net.u(vault, IVault::pendingRedeemRequestCall { requestId: U256::ZERO, controller: alice }.abi_encode()),
        half
    );
    // a frozen vault is not settled
    net.send(guardian, vault, IVault::setFrozenCall { frozen: true }.abi_encode());
    model.set_frozen(guardian, true).unwrap();
    assert!(
        net.call(curator, vault, IVault::settleCall { nav }.abi_encode()).unwrap_err().contains(&sel("IsFrozen()"))
    );
    net.send(owner, vault, IVault::setFrozenCall { frozen: false }.abi_encode());
    model.set_frozen(owner, false).unwrap();

    // --- the strategy loses 5 %; the redemption is priced and paid from the Safe ------------------------------------
    net.send(safe, usdc, IToken::transferCall { to: deployer, amount: usd(10_000) }.abi_encode());
    t += 7 * 86_400;
    let nav = bal(safe) - usd(1_000_000);
    let hwm = model.high_water_mark;
    let rep = settle(&net, &mut model, t, nav);
    assert_eq!(model.high_water_mark, hwm, "no performance fee and no new mark after a loss");
    assert!(!rep.from_safe.is_zero(), "the redemption outweighs the deposit: assets come from the Safe");
    let owed = net.u(vault, IVault::maxWithdrawCall { controller: alice }.abi_encode());
    assert_eq!(owed, model.claimable_redeem(alice).unwrap().assets);
    assert_eq!(
        net.u(vault, IVault::claimableRedeemRequestCall { requestId: U256::ZERO, controller: alice }.abi_encode()),
        half
    );
    let cash_before = bal(alice);
    t += 10;
    net.time(t);
    net.send(alice, vault, IVault::redeemCall { shares: half, receiver: alice, controller: alice }.abi_encode());
    let paid = model.redeem(alice, half, alice, alice).unwrap();
    assert_eq!(bal(alice) - cash_before, paid);
    assert_eq!(paid, owed);
    let dave_assets = model.claimable_deposit(dave).unwrap().assets;
    net.send(dave, vault, IVault::deposit_1Call { assets: dave_assets, receiver: dave }.abi_encode());
    model.deposit(dave, dave_assets, dave, dave).unwrap();
    assert_eq!(shares(dave), model.balance_of(dave));
    // dave paid the higher price: fewer shares per dollar than alice got
    assert!(shares(dave) < U256::from(20_000u64) * U256::from(10u64.pow(12)));
    // alice's half came back with the gain, less the fees and the loss
    assert!(paid > usd(50_000) && paid < usd(55_000), "paid {paid}");
    assert!(model.solvent());
}
