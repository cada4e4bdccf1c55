//! Sextant's strategy vault (`contracts/src/SextantVault.sol`) against its Rust reference model
//! (`sextant_protocols::vault::VaultModel`) on anvil: random sequences of operations by ten accounts (the Safe, the
//! owner, the curator, the guardian, the fee recipient and five investors): deposit and redemption requests (by
//! owners, operators and share allowances, too large, zero, over the cap, while paused), claims through `deposit`,
//! `mint`, `redeem` and `withdraw` (whole, partial, too large, by strangers), settlements at the Safe's NAV (and
//! mis-marked, frozen, by the wrong account), gains and losses of the strategy, share transfers and approvals,
//! operator changes, fee changes (above the maximum too), caps, pauses and freezes, with time jumping between
//! batches so management fees accrue.
//!
//! Operations run in batches through `contracts/src/VaultDriver.sol` (one transaction per batch, an event per
//! operation with its outcome and the vault's totals), so CI stays fast. After every operation: success or the same
//! revert reason, the same return value, and total supply, total assets, reserved assets, pending totals, high-water
//! mark, the vault's asset and share balances, epoch and fee clock equal to the model's. After every batch: every
//! account's shares and every investor's pending and claimable requests equal; the vault holds what it owes; the
//! high-water mark never fell; a performance fee was charged only with the price above the mark.
//!
//! Sequences: `SEXTANT_VAULT_SEQUENCES` (default 10,000, about five operations each), seed `SEXTANT_VAULT_SEED`.

mod common;

use common::{Rng, artifact, env_or, hex, testnet, unhex};
use sextant_chain::alloy::primitives::{Address, Bytes, U256, keccak256};
use sextant_chain::alloy::sol;
use sextant_chain::alloy::sol_types::{SolCall, SolValue};
use sextant_chain::bindings::ISextantVault as IVault;
use sextant_devnet::{Client, rpc_call};
use sextant_protocols::vault::{VaultError, VaultModel};
use std::collections::BTreeMap;

sol! {
    struct Op { uint8 who; address target; bytes data; }
    interface IDriver {
        function run(Op[] ops, uint256 first) external;
        function actors(uint256 i) external view returns (address);
        function setVault(address vault) external;
    }
    interface IToken {
        function mint(address to, uint256 amount) external;
        function approve(address spender, uint256 amount) external returns (bool);
        function transfer(address to, uint256 amount) external returns (bool);
    }
}

const SAFE: usize = 0;
const OWNER: usize = 1;
const CURATOR: usize = 2;
const GUARDIAN: usize = 3;
const FEES: usize = 4;
const INVESTORS: std::ops::Range<usize> = 5..10;

fn selector(sig: &str) -> [u8; 4] {
    keccak256(sig.as_bytes())[..4].try_into().unwrap()
}

/// The revert selector the contract gives for a model error (None: any ERC-20 error or panic).
fn revert_selector(e: VaultError) -> Option<[u8; 4]> {
    Some(selector(match e {
        VaultError::Unauthorized => "Unauthorized()",
        VaultError::ZeroAmount => "ZeroAmount()",
        VaultError::IsPaused => "IsPaused()",
        VaultError::IsFrozen => "IsFrozen()",
        VaultError::CapExceeded => "CapExceeded(uint256,uint256)",
        VaultError::ExceedsClaimable => "ExceedsClaimable(uint256,uint256)",
        VaultError::FeeTooHigh => "FeeTooHigh()",
        VaultError::SafeCannotPay => "SafeCannotPay(uint256,uint256)",
        VaultError::InvalidAddress => "InvalidAddress()",
        VaultError::Token => return None,
    }))
}

/// What the test knows of the asset token: balances and allowances, mirrored from the operations it sends.
#[derive(Default, Clone)]
struct Tokens {
    balances: BTreeMap<Address, U256>,
    allowances: BTreeMap<(Address, Address), U256>,
}

impl Tokens {
    fn bal(&self, a: Address) -> U256 {
        self.balances.get(&a).copied().unwrap_or_default()
    }
    fn allow(&self, o: Address, s: Address) -> U256 {
        self.allowances.get(&(o, s)).copied().unwrap_or_default()
    }
    fn mov(&mut self, from: Address, to: Address, x: U256) {
        *self.balances.entry(from).or_default() -= x;
        *self.balances.entry(to).or_default() += x;
    }
    fn spend(&mut self, o: Address, s: Address, x: U256) {
        let a = self.allow(o, s);
        if a != U256::MAX {
            self.allowances.insert((o, s), a - x);
        }
    }
}

/// One operation: who sends it, where, the calldata, and what the model says it does.
struct Planned {
    who: usize,
    target: Address,
    data: Vec<u8>,
    expect: Result<Option<U256>, VaultError>,
    what: String,
    /// The vault's totals after it, as the model has them (filled in as it is planned).
    state: [U256; 10],
}

struct World {
    vault: Address,
    asset: Address,
    actors: Vec<Address>,
    model: VaultModel,
    tokens: Tokens,
    now: u64,
    /// High-water marks after each settlement.
    marks: Vec<U256>,
    /// Settlements that charged a fee, and those whose price was above the mark (a performance fee was due).
    fee_settlements: usize,
    performance_settlements: usize,
}

impl World {
    /// The totals `VaultDriver.state()` reads, from the model.
    fn snapshot(&self) -> [U256; 10] {
        let m = &self.model;
        [
            m.total_supply,
            m.total_assets,
            m.reserved_assets,
            m.pending_deposit_assets,
            m.pending_redeem_shares,
            m.high_water_mark,
            self.tokens.bal(self.vault),
            m.balance_of(self.vault),
            U256::from(m.epoch),
            U256::from(m.last_fee_accrual),
        ]
    }

    /// Plans one operation and records the state after it.
    fn step(&mut self, rng: &mut Rng, kind: u64) -> Planned {
        let mut p = self.plan(rng, kind);
        p.state = self.snapshot();
        assert!(self.model.solvent(), "the model owes more than it holds after {}", p.what);
        p
    }

    /// A random amount around `scale`: zero, a bit, most of it, all of it, or more than it.
    fn amount(rng: &mut Rng, scale: U256) -> U256 {
        match rng.below(10) {
            0 => U256::ZERO,
            1 => scale + U256::from(1 + rng.below(1_000_000)),
            2 | 3 => scale,
            4 => U256::from(1 + rng.below(1000)),
            _ => {
                if scale.is_zero() {
                    U256::from(rng.below(1_000_000_000))
                } else {
                    scale * U256::from(1 + rng.below(1000)) / U256::from(1000)
                }
            }
        }
    }

    fn plan(&mut self, rng: &mut Rng, kind: u64) -> Planned {
        let vault = self.vault;
        let actors = self.actors.clone();
        let a = |i: usize| actors[i];
        let inv = |rng: &mut Rng| INVESTORS.start + rng.below(INVESTORS.len() as u64) as usize;
        match kind {
            // a deposit request: by the owner or an operator, for oneself or another controller
            0 => {
                let owner_i = inv(rng);
                let who = if rng.below(5) == 0 { inv(rng) } else { owner_i };
                let controller = match rng.below(40) {
                    0 => Address::ZERO,
                    k if k < 10 => a(inv(rng)),
                    _ => a(owner_i),
                };
                let owner = a(owner_i);
                let sender = a(who);
                let assets = Self::amount(rng, self.tokens.bal(owner) / U256::from(4));
                let r = self.model.request_deposit(
                    sender,
                    assets,
                    controller,
                    owner,
                    self.tokens.bal(owner),
                    self.tokens.allow(owner, vault),
                );
                if r.is_ok() {
                    self.tokens.mov(owner, vault, assets);
                    self.tokens.spend(owner, vault, assets);
                }
                Planned {
                    who,
                    target: vault,
                    data: IVault::requestDepositCall { assets, controller, owner }.abi_encode(),
                    expect: r.map(|()| Some(U256::ZERO)),
                    what: format!("requestDeposit({assets}) by {who}"),
                    state: [U256::ZERO; 10],
                }
            }
            // a redemption request: by the owner, an operator, or a spender of a share allowance
            1 => {
                let owner_i = inv(rng);
                let who = if rng.below(4) == 0 { inv(rng) } else { owner_i };
                let controller = if rng.below(4) == 0 { a(inv(rng)) } else { a(owner_i) };
                let owner = a(owner_i);
                let shares = Self::amount(rng, self.model.balance_of(owner) / U256::from(2));
                let r = self.model.request_redeem(a(who), shares, controller, owner);
                Planned {
                    who,
                    target: vault,
                    data: IVault::requestRedeemCall { shares, controller, owner }.abi_encode(),
                    expect: r.map(|()| Some(U256::ZERO)),
                    what: format!("requestRedeem({shares}) by {who}"),
                    state: [U256::ZERO; 10],
                }
            }
            // claims: deposit / mint / redeem / withdraw, by the controller, an operator or a stranger
            2..=5 => {
                let c_i = inv(rng);
                let who = if rng.below(6) == 0 { inv(rng) } else { c_i };
                let controller = a(c_i);
                let receiver = match rng.below(40) {
                    0 => vault,
                    1 => Address::ZERO,
                    k if k < 14 => a(inv(rng)),
                    _ => a(c_i),
                };
                let sender = a(who);
                let (data, r, what) = match kind {
                    2 => {
                        let c = self.model.claimable_deposit(controller).unwrap();
                        let x = Self::amount(rng, c.assets);
                        let r = self.model.deposit(sender, x, receiver, controller);
                        (
                            IVault::deposit_0Call { assets: x, receiver, controller }.abi_encode(),
                            r,
                            format!("deposit({x})"),
                        )
                    }
                    3 => {
                        let c = self.model.claimable_deposit(controller).unwrap();
                        let x = Self::amount(rng, c.shares);
                        let r = self.model.mint(sender, x, receiver, controller);
                        (IVault::mint_0Call { shares: x, receiver, controller }.abi_encode(), r, format!("mint({x})"))
                    }
                    4 => {
                        let c = self.model.claimable_redeem(controller).unwrap();
                        let x = Self::amount(rng, c.shares);
                        let r = self.model.redeem(sender, x, receiver, controller);
                        if let Ok(assets) = r {
                            self.tokens.mov(vault, receiver, assets);
                        }
                        (IVault::redeemCall { shares: x, receiver, controller }.abi_encode(), r, format!("redeem({x})"))
                    }
                    _ => {
                        let c = self.model.claimable_redeem(controller).unwrap();
                        let x = Self::amount(rng, c.assets);
                        let r = self.model.withdraw(sender, x, receiver, controller);
                        if r.is_ok() {
                            self.tokens.mov(vault, receiver, x);
                        }
                        (
                            IVault::withdrawCall { assets: x, receiver, controller }.abi_encode(),
                            r,
                            format!("withdraw({x})"),
                        )
                    }
                };
                Planned {
                    who,
                    target: vault,
                    data,
                    expect: r.map(Some),
                    what: format!("{what} by {who} for {c_i}"),
                    state: [U256::ZERO; 10],
                }
            }
            // a settlement at the Safe's NAV (now and then mis-marked, or sent by the wrong account)
            6 => {
                let who = if rng.below(12) == 0 { inv(rng) } else { CURATOR };
                let safe = a(SAFE);
                let held = self.tokens.bal(safe);
                let nav = match rng.below(10) {
                    0 => held * U256::from(90 + rng.below(21)) / U256::from(100),
                    _ => held,
                };
                let before_mark = self.model.high_water_mark;
                let before_fees = self.model.balance_of(a(FEES));
                let perf_bps = self.model.performance_fee_bps;
                let r = self.model.settle(a(who), nav, self.now, held, self.tokens.allow(safe, vault));
                if let Ok(rep) = &r {
                    if !rep.to_safe.is_zero() {
                        self.tokens.mov(vault, safe, rep.to_safe);
                    }
                    if !rep.from_safe.is_zero() {
                        self.tokens.mov(safe, vault, rep.from_safe);
                        self.tokens.spend(safe, vault, rep.from_safe);
                    }
                    assert!(self.model.high_water_mark >= before_mark, "the high-water mark fell");
                    self.marks.push(self.model.high_water_mark);
                    if !rep.fee_shares.is_zero() {
                        self.fee_settlements += 1;
                        assert_eq!(self.model.balance_of(a(FEES)), before_fees + rep.fee_shares);
                    }
                    // a performance fee only when the price rose above the mark: the mark rose with it
                    if perf_bps > 0 && self.model.high_water_mark > before_mark {
                        self.performance_settlements += 1;
                    }
                }
                Planned {
                    who,
                    target: vault,
                    data: IVault::settleCall { nav }.abi_encode(),
                    expect: r.map(|_| None),
                    what: format!("settle({nav}) by {who}"),
                    state: [U256::ZERO; 10],
                }
            }
            // the strategy gains or loses
            7 => {
                let safe = a(SAFE);
                let held = self.tokens.bal(safe);
                if rng.below(2) == 0 {
                    let x = U256::from(rng.below(1_000_000_000)) + held / U256::from(20 + rng.below(100));
                    *self.tokens.balances.entry(safe).or_default() += x;
                    Planned {
                        who: SAFE,
                        target: self.asset,
                        data: IToken::mintCall { to: safe, amount: x }.abi_encode(),
                        expect: Ok(None),
                        what: format!("gain {x}"),
                        state: [U256::ZERO; 10],
                    }
                } else {
                    let x = held / U256::from(40 + rng.below(400));
                    let sink = a(GUARDIAN);
                    self.tokens.mov(safe, sink, x);
                    Planned {
                        who: SAFE,
                        target: self.asset,
                        data: IToken::transferCall { to: sink, amount: x }.abi_encode(),
                        expect: Ok(None),
                        what: format!("loss {x}"),
                        state: [U256::ZERO; 10],
                    }
                }
            }
            // shares change hands, allowances, operators
            8 => {
                let from = inv(rng);
                let to = a(inv(rng));
                match rng.below(3) {
                    0 => {
                        let x = Self::amount(rng, self.model.balance_of(a(from)) / U256::from(3));
                        let r = self.model.erc20_transfer(a(from), to, x);
                        Planned {
                            who: from,
                            target: vault,
                            data: IVault::transferCall { to, shares: x }.abi_encode(),
                            expect: r.map(|()| None),
                            what: format!("transfer({x}) by {from}"),
                            state: [U256::ZERO; 10],
                        }
                    }
                    1 => {
                        let x = if rng.below(3) == 0 { U256::MAX } else { U256::from(rng.below(1u64 << 50)) };
                        self.model.approve(a(from), to, x);
                        Planned {
                            who: from,
                            target: vault,
                            data: IVault::approveCall { spender: to, shares: x }.abi_encode(),
                            expect: Ok(None),
                            what: format!("approve({x}) by {from}"),
                            state: [U256::ZERO; 10],
                        }
                    }
                    _ => {
                        let approved = rng.below(3) != 0;
                        self.model.set_operator(a(from), to, approved);
                        Planned {
                            who: from,
                            target: vault,
                            data: IVault::setOperatorCall { operator: to, approved }.abi_encode(),
                            expect: Ok(None),
                            what: format!("setOperator({approved}) by {from}"),
                            state: [U256::ZERO; 10],
                        }
                    }
                }
            }
            // administration: fees, cap, pause, freeze, by the right account or not
            _ => {
                let who = match rng.below(4) {
                    0 => GUARDIAN,
                    1 => inv(rng),
                    _ => OWNER,
                };
                let sender = a(who);
                match rng.below(4) {
                    0 => {
                        let mgmt = rng.below(600);
                        let perf = rng.below(6000);
                        let r = self.model.set_fees(sender, mgmt, perf);
                        Planned {
                            who,
                            target: vault,
                            data: IVault::setFeesCall {
                                managementBps: U256::from(mgmt),
                                performanceBps: U256::from(perf),
                            }
                            .abi_encode(),
                            expect: r.map(|()| None),
                            what: format!("setFees({mgmt}, {perf}) by {who}"),
                            state: [U256::ZERO; 10],
                        }
                    }
                    1 => {
                        let cap = if rng.below(2) == 0 {
                            U256::MAX
                        } else {
                            self.model.total_assets + U256::from(rng.below(1u64 << 40))
                        };
                        let r = self.model.set_deposit_cap(sender, cap);
                        Planned {
                            who,
                            target: vault,
                            data: IVault::setDepositCapCall { cap }.abi_encode(),
                            expect: r.map(|()| None),
                            what: format!("setDepositCap by {who}"),
                            state: [U256::ZERO; 10],
                        }
                    }
                    2 => {
                        let paused = rng.below(2) == 0;
                        let r = self.model.set_paused(sender, paused);
                        Planned {
                            who,
                            target: vault,
                            data: IVault::setPausedCall { paused }.abi_encode(),
                            expect: r.map(|()| None),
                            what: format!("setPaused({paused}) by {who}"),
                            state: [U256::ZERO; 10],
                        }
                    }
                    _ => {
                        // thaw more often than freeze, so settlements go on
                        let frozen = rng.below(3) == 0;
                        let r = self.model.set_frozen(sender, frozen);
                        Planned {
                            who,
                            target: vault,
                            data: IVault::setFrozenCall { frozen }.abi_encode(),
                            expect: r.map(|()| None),
                            what: format!("setFrozen({frozen}) by {who}"),
                            state: [U256::ZERO; 10],
                        }
                    }
                }
            }
        }
    }

    /// A short sequence with a purpose: a round of deposits, a round of redemptions, claims, a settlement with
    /// flows around it, the strategy moving, transfers, or administration.
    fn sequence(&mut self, rng: &mut Rng) -> Vec<Planned> {
        let kinds: &[u64] = match rng.below(8) {
            0 => &[0, 0, 0, 6, 2],
            1 => &[1, 1, 6, 4, 5],
            2 => &[2, 3, 4, 5, 2],
            3 => &[7, 0, 1, 6, 3],
            4 => &[8, 8, 1, 0, 6],
            5 => &[9, 6, 7, 6, 4],
            6 => &[0, 7, 6, 2, 1],
            _ => &[9, 0, 1, 8, 6],
        };
        let n = 3 + rng.below(3) as usize;
        kinds.iter().take(n).map(|&k| self.step(rng, k)).collect()
    }
}

#[test]
fn the_vault_equals_its_model_over_random_sequences() {
    let sequences: usize = env_or("SEXTANT_VAULT_SEQUENCES", 10_000);
    let seed: u64 = env_or("SEXTANT_VAULT_SEED", 0x7a01_7540);
    let mut rng = Rng(seed | 1);
    let net = testnet(false);
    let url = net.devnet.rpc_url.clone();
    let from = net.devnet.accounts[0].address.clone();
    let client = Client { rpc: &url };
    let deploy = |what: &str, mut code: Vec<u8>, args: Vec<u8>| -> Address {
        code.extend(args);
        let r = client.send(what, &from, None, &code, 0).unwrap();
        r["contractAddress"].as_str().unwrap().parse().unwrap()
    };
    let view = |to: Address, data: Vec<u8>| -> Vec<u8> { client.view(&to.to_string(), &data).unwrap() };
    let send = |what: &str, to: Address, data: Vec<u8>| {
        client.send(what, &from, Some(&to.to_string()), &data, 0).unwrap();
    };

    let asset = deploy(
        "TestToken",
        artifact("contracts/out/TestToken.json"),
        ("Vault asset".to_string(), "VA".to_string(), U256::from(6u8)).abi_encode_params(),
    );
    let driver = deploy("VaultDriver", artifact("contracts/out/VaultDriver.json"), U256::from(10u8).abi_encode());
    let actors: Vec<Address> = (0..10)
        .map(|i| {
            Address::from_word(
                U256::from_be_slice(&view(driver, IDriver::actorsCall { i: U256::from(i) }.abi_encode())).into(),
            )
        })
        .collect();
    let vault = deploy(
        "SextantVault",
        artifact("contracts/out/SextantVault.json"),
        (
            asset,
            "Sextant test vault".to_string(),
            "sVA".to_string(),
            actors[SAFE],
            actors[OWNER],
            actors[CURATOR],
            actors[GUARDIAN],
            actors[FEES],
        )
            .abi_encode_params(),
    );
    send("setVault", driver, IDriver::setVaultCall { vault }.abi_encode());
    let deployed_at: u64 = U256::from_be_slice(&view(vault, IVault::lastFeeAccrualCall {}.abi_encode())).to();
    let mut world = World {
        vault,
        asset,
        actors: actors.clone(),
        model: VaultModel::new(
            vault,
            actors[SAFE],
            actors[OWNER],
            actors[CURATOR],
            actors[GUARDIAN],
            actors[FEES],
            deployed_at,
        ),
        tokens: Tokens::default(),
        now: deployed_at,
        marks: Vec::new(),
        fee_settlements: 0,
        performance_settlements: 0,
    };
    // Investors hold assets and let the vault take them; the Safe lets it take redemptions.
    for i in INVESTORS {
        let x = U256::from(10u64.pow(6)) * U256::from(1_000_000 + rng.below(10_000_000));
        send("fund", asset, IToken::mintCall { to: actors[i], amount: x }.abi_encode());
        world.tokens.balances.insert(actors[i], x);
    }
    let mut first: Vec<Planned> = INVESTORS
        .chain([SAFE])
        .map(|i| {
            world.tokens.allowances.insert((actors[i], vault), U256::MAX);
            let state = world.snapshot();
            Planned {
                who: i,
                target: asset,
                data: IToken::approveCall { spender: vault, amount: U256::MAX }.abi_encode(),
                expect: Ok(None),
                what: "approve the vault".into(),
                state,
            }
        })
        .collect();
    // the owner sets fees at the start (they apply from the first settlement after the next)
    world.model.set_fees(actors[OWNER], 200, 2_000).unwrap();
    let state = world.snapshot();
    first.push(Planned {
        who: OWNER,
        target: vault,
        data: IVault::setFeesCall { managementBps: U256::from(200u16), performanceBps: U256::from(2_000u16) }
            .abi_encode(),
        expect: Ok(None),
        what: "setFees(200, 2000) by the owner".into(),
        state,
    });

    let per_batch = 20;
    let batches = sequences.div_ceil(per_batch);
    let (mut ops_total, mut reverted, mut settled, mut claims) = (0usize, 0usize, 0usize, 0usize);
    let mut step = 0usize;
    for b in 0..=batches {
        // time moves between batches: seconds to two months
        let jump = match rng.below(4) {
            0 => rng.below(120),
            1 => rng.below(86_400),
            _ => rng.below(60 * 86_400),
        } + 1;
        world.now += jump;
        rpc_call(&url, "evm_setNextBlockTimestamp", serde_json::json!([world.now])).unwrap();
        let planned: Vec<Planned> = if b == 0 {
            std::mem::take(&mut first)
        } else {
            (0..per_batch).flat_map(|_| world.sequence(&mut rng)).collect()
        };
        let ops: Vec<Op> = planned
            .iter()
            .map(|p| Op { who: p.who as u8, target: p.target, data: Bytes::from(p.data.clone()) })
            .collect();
        let data = IDriver::runCall { ops, first: U256::from(step) }.abi_encode();
        let tx = serde_json::json!({"from": from, "to": driver.to_string(), "data": format!("0x{}", hex(&data)), "gas": "0x1c9c380"});
        let hash = rpc_call(&url, "eth_sendTransaction", serde_json::json!([tx])).unwrap();
        let receipt = loop {
            let r = rpc_call(&url, "eth_getTransactionReceipt", serde_json::json!([hash])).unwrap();
            if !r.is_null() {
                break r;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        assert_eq!(receipt["status"], "0x1", "batch {b} reverted as a whole");
        let logs: Vec<&serde_json::Value> = receipt["logs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["address"].as_str().unwrap().eq_ignore_ascii_case(&driver.to_string()))
            .collect();
        assert_eq!(logs.len(), planned.len(), "batch {b}: one Step event per operation");
        for (p, log) in planned.iter().zip(logs) {
            let (ok, ret, state) =
                <(bool, Bytes, [U256; 10])>::abi_decode_params(&unhex(log["data"].as_str().unwrap())).unwrap();
            match &p.expect {
                Ok(value) => {
                    assert!(
                        ok,
                        "step {step} ({}): the contract reverted with 0x{}, the model did not",
                        p.what,
                        hex(&ret)
                    );
                    if let Some(v) = value {
                        assert_eq!(U256::from_be_slice(&ret[..32]), *v, "step {step} ({}): return value", p.what);
                    }
                }
                Err(e) => {
                    assert!(!ok, "step {step} ({}): the model reverts ({e}), the contract did not", p.what);
                    if let Some(sel) = revert_selector(*e) {
                        assert_eq!(&ret[..4.min(ret.len())], &sel[..], "step {step} ({}): revert reason ({e})", p.what);
                    }
                    reverted += 1;
                }
            }
            let names = [
                "total supply",
                "total assets",
                "reserved assets",
                "pending deposits",
                "pending redemptions",
                "high-water mark",
                "vault's assets",
                "vault's shares",
                "epoch",
                "fee clock",
            ];
            for k in 0..10 {
                assert_eq!(state[k], p.state[k], "step {step} ({}): {}", p.what, names[k]);
            }
            step += 1;
        }
        // every account's shares, every investor's requests and claims
        let mut calls: Vec<(Vec<u8>, U256)> = Vec::new();
        for (i, who) in actors.iter().enumerate() {
            calls.push((IVault::balanceOfCall { who: *who }.abi_encode(), world.model.balance_of(*who)));
            if INVESTORS.contains(&i) {
                let d = world.model.claimable_deposit(*who).unwrap();
                let r = world.model.claimable_redeem(*who).unwrap();
                calls.push((IVault::maxDepositCall { controller: *who }.abi_encode(), d.assets));
                calls.push((IVault::maxMintCall { controller: *who }.abi_encode(), d.shares));
                calls.push((IVault::maxRedeemCall { controller: *who }.abi_encode(), r.shares));
                calls.push((IVault::maxWithdrawCall { controller: *who }.abi_encode(), r.assets));
                let zero = U256::ZERO;
                calls.push((
                    IVault::pendingDepositRequestCall { requestId: zero, controller: *who }.abi_encode(),
                    world.model.pending_deposit(*who),
                ));
                calls.push((
                    IVault::pendingRedeemRequestCall { requestId: zero, controller: *who }.abi_encode(),
                    world.model.pending_redeem(*who),
                ));
            }
        }
        let requests: Vec<(&str, serde_json::Value)> = calls
            .iter()
            .map(|(d, _)| {
                ("eth_call", serde_json::json!([{"to": vault.to_string(), "data": format!("0x{}", hex(d))}, "latest"]))
            })
            .collect();
        for (k, (r, (_, want))) in
            sextant_devnet::rpc_batch_each(&url, &requests).unwrap().into_iter().zip(&calls).enumerate()
        {
            let got = U256::from_be_slice(&unhex(r.unwrap().as_str().unwrap()));
            assert_eq!(got, *want, "batch {b}: view {k} after the batch");
        }
        ops_total += planned.len();
        settled += planned.iter().filter(|p| p.what.starts_with("settle") && p.expect.is_ok()).count();
        claims += planned
            .iter()
            .filter(|p| {
                ["deposit(", "mint(", "redeem(", "withdraw("].iter().any(|w| p.what.starts_with(w)) && p.expect.is_ok()
            })
            .count();
    }
    eprintln!(
        "vault property: {sequences} sequences, {ops_total} operations in {} batches: {settled} settlements ({} charging fees, {} above the mark with a performance fee), {claims} claims, {reverted} reverted on both sides",
        batches + 1,
        world.fee_settlements,
        world.performance_settlements
    );
    assert!(world.fee_settlements * 6 > settled && world.performance_settlements > 10, "fees were not exercised");
    assert!(world.marks.windows(2).all(|w| w[1] >= w[0]), "the high-water mark never falls");
    assert!(settled * 20 > sequences && claims * 10 > sequences && reverted * 10 > sequences, "too little exercised");
}
