//! Sextant's Aave v3 pool model (`sextant_protocols::aave_v3::Market`) against the real pool: the npm package
//! `@aave/core-v3` (1.19.3) is deployed on a bare anvil from its own artifacts, the way a market is listed on a
//! live chain: `PoolAddressesProvider`, `ACLManager`, the logic libraries linked into `Pool` and
//! `PoolConfigurator`, the token implementations, a settable `PriceOracle` and a `DefaultReserveInterestRateStrategy`
//! per reserve, then `initReserves` and the risk parameters for three reserves of OpenZeppelin test tokens (18, 6 and
//! 8 decimals). The same reserves are built in Rust.
//!
//! A seeded random history is replayed on both, every transaction in a block whose timestamp the test sets so the
//! model runs at the same `now`: supplies, withdrawals (exact, everything, too much, zero), variable borrows (within
//! the LTV, at its edge, beyond it, beyond the reserve's cash), repayments (part, exact, everything), oracle price
//! moves, time jumps from seconds to months, and liquidations: a price crash aimed at a health factor between 0.95
//! and 1 (half the debt may be repaid) or below 0.95 (all of it), then `liquidationCall` with a random
//! `debtToCover` (`type(uint256).max` included), besides attempts on healthy accounts and on the wrong reserves.
//!
//! Every call must succeed on both sides or revert on both with the same `Errors` code (a checked-arithmetic panic
//! where the model reports an underflow). After every step, read in one JSON-RPC batch at that block, each reserve's
//! `getReserveData` (indexes, rates, last update, accrued to the treasury), normalized income and debt, the aToken's
//! and the variable debt token's scaled and total supplies, the underlying the aToken holds, the treasury's aTokens,
//! and each user's scaled balances, collateral and borrowing flags and `getUserAccountData` must equal the model's
//! bit for bit. Withdraw and repay return the same amounts; a liquidation repays the same debt, hands the liquidator
//! the same collateral and the treasury the same fee.
//!
//! Every 20th step, Sextant's position reader (`sextant_chain::lending`, which values a vault's Aave positions from
//! `getReserveData` and scaled balances) must equal each aToken's and debt token's `balanceOf`.
//!
//! Steps: `SEXTANT_AAVE_STEPS` (default 400), seed `SEXTANT_AAVE_SEED`.

#[path = "support/aave.rs"]
mod aave;
mod common;

use aave::{IOracle, Listing, deploy, deploy_market};
use common::{Rng, hex, testnet, unhex, word};
use sextant_chain::alloy::primitives::{Address, U256, keccak256};
use sextant_chain::alloy::sol;
use sextant_chain::alloy::sol_types::{SolCall, SolValue};
use sextant_chain::bindings::IAaveV3Pool;
use sextant_devnet::abi::{Value, encode};
use sextant_devnet::{Client, rpc_batch_each, rpc_call};
use sextant_protocols::aave_v3::{
    self, AaveError, CLOSE_FACTOR_HF_THRESHOLD, HEALTH_FACTOR_LIQUIDATION_THRESHOLD, Holding, Liquidation, Market,
    RateStrategy, Reserve, ReserveConfig, WAD,
};
use std::collections::BTreeMap;

sol! {
    interface IPool {
        function supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode) external;
        function withdraw(address asset, uint256 amount, address to) external returns (uint256);
        function borrow(address asset, uint256 amount, uint256 interestRateMode, uint16 referralCode, address onBehalfOf) external;
        function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf) external returns (uint256);
        function liquidationCall(address collateralAsset, address debtAsset, address user, uint256 debtToCover, bool receiveAToken) external;
        function getReserveNormalizedIncome(address asset) external view returns (uint256);
        function getReserveNormalizedVariableDebt(address asset) external view returns (uint256);
        function getUserAccountData(address user) external view returns (uint256 totalCollateralBase, uint256 totalDebtBase, uint256 availableBorrowsBase, uint256 currentLiquidationThreshold, uint256 ltv, uint256 healthFactor);
        function getUserConfiguration(address user) external view returns (uint256);
    }
    interface IScaled {
        function scaledTotalSupply() external view returns (uint256);
        function scaledBalanceOf(address user) external view returns (uint256);
        function totalSupply() external view returns (uint256);
        function balanceOf(address user) external view returns (uint256);
    }
    interface IToken {
        function approve(address spender, uint256 amount) external returns (bool);
        function mint(address to, uint256 amount) external;
        function balanceOf(address who) external view returns (uint256);
    }
}

impl Rng {
    /// A fraction in basis points, 1..=10_000.
    fn bps(&mut self) -> u64 {
        1 + self.below(10_000)
    }
    /// Log-uniform between 10^lo and 10^hi.
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        10f64.powf(lo + (hi - lo) * self.below(1_000_001) as f64 / 1e6)
    }
}

fn u(x: u64) -> U256 {
    U256::from(x)
}

fn bps_of(x: U256, bps: u64) -> U256 {
    x * u(bps) / u(10_000)
}

fn json_u64(v: &serde_json::Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// The revert as the model names it: an `Errors` code, `panic 0x..` or the raw data.
fn revert_code(data: &[u8]) -> String {
    if data.len() >= 4 && data[..4] == [0x08, 0xc3, 0x79, 0xa0] {
        return String::abi_decode(&data[4..]).unwrap_or_else(|_| hex(data));
    }
    if data.len() == 36 && data[..4] == [0x4e, 0x48, 0x7b, 0x71] {
        return format!("panic 0x{:x}", U256::from_be_slice(&data[4..]));
    }
    if data.is_empty() { "empty revert".into() } else { format!("0x{}", hex(data)) }
}

/// Whether the contract's revert is the model's error: the same `Errors` code, or the checked-arithmetic panic (or
/// `WadRayMath`'s bare revert) for the model's arithmetic errors.
fn same_revert(model: AaveError, chain: &str) -> bool {
    match model.0 {
        "UNDERFLOW" => chain == "panic 0x11",
        "M" => chain == "panic 0x11" || chain == "empty revert",
        code => chain == code,
    }
}

struct Chain {
    url: String,
}

impl Chain {
    fn rpc(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        rpc_call(&self.url, method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Mines one transaction in a block stamped `now`: the block number and Ok(return data) or Err(revert data), with
    /// the receipt's logs.
    fn tx_at(
        &self,
        now: u64,
        from: Address,
        to: Address,
        data: &[u8],
    ) -> (u64, Result<Vec<u8>, Vec<u8>>, Vec<serde_json::Value>) {
        self.rpc("anvil_setNextBlockTimestamp", serde_json::json!([now]));
        let tx = serde_json::json!({"from": from.to_string(), "to": to.to_string(), "data": format!("0x{}", hex(data)), "gas": "0x7a1200"});
        let hash = self.rpc("eth_sendTransaction", serde_json::json!([tx]));
        let mut receipt = serde_json::Value::Null;
        for _ in 0..2_000 {
            receipt = self.rpc("eth_getTransactionReceipt", serde_json::json!([hash]));
            if !receipt.is_null() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!receipt.is_null(), "no receipt for {hash}");
        let block = json_u64(&receipt["blockNumber"]);
        let trace = self.rpc("debug_traceTransaction", serde_json::json!([hash, {"tracer": "callTracer"}]));
        let output = unhex(trace["output"].as_str().unwrap_or("0x"));
        let logs = receipt["logs"].as_array().cloned().unwrap_or_default();
        if receipt["status"] == "0x1" { (block, Ok(output), logs) } else { (block, Err(output), logs) }
    }

    /// Mines an empty block stamped `now`.
    fn mine_at(&self, now: u64) -> u64 {
        self.rpc("anvil_setNextBlockTimestamp", serde_json::json!([now]));
        self.rpc("evm_mine", serde_json::json!([]));
        json_u64(&self.rpc("eth_blockNumber", serde_json::json!([])))
    }

    /// The views at `block`, in one batch; none may revert.
    fn views(&self, block: u64, calls: &[(Address, Vec<u8>)]) -> Vec<Vec<u8>> {
        let tag = format!("0x{block:x}");
        let batch: Vec<(&str, serde_json::Value)> = calls
            .iter()
            .map(|(to, data)| {
                let tx = serde_json::json!({"to": to.to_string(), "data": format!("0x{}", hex(data))});
                ("eth_call", serde_json::json!([tx, tag]))
            })
            .collect();
        rpc_batch_each(&self.url, &batch)
            .unwrap()
            .into_iter()
            .map(|r| unhex(r.unwrap_or_else(|e| panic!("a view reverted: {e}")).as_str().unwrap()))
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Supply {
        user: usize,
        i: usize,
        amount: U256,
    },
    /// `U256::MAX` withdraws everything.
    Withdraw {
        user: usize,
        i: usize,
        amount: U256,
    },
    Borrow {
        user: usize,
        i: usize,
        amount: U256,
    },
    /// `U256::MAX` repays everything.
    Repay {
        user: usize,
        i: usize,
        amount: U256,
    },
    Price {
        i: usize,
        price: U256,
    },
    /// `aimed`: right after a crash aimed at this account.
    Liquidate {
        user: usize,
        coll: usize,
        debt: usize,
        cover: U256,
        aimed: bool,
    },
    Wait,
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Supply { .. } => "supply",
            Action::Withdraw { amount, .. } if *amount == U256::MAX => "withdraw max",
            Action::Withdraw { .. } => "withdraw",
            Action::Borrow { .. } => "borrow",
            Action::Repay { amount, .. } if *amount == U256::MAX => "repay max",
            Action::Repay { .. } => "repay",
            Action::Price { .. } => "price move",
            Action::Liquidate { aimed: true, cover, .. } if *cover == U256::MAX => "liquidation max",
            Action::Liquidate { aimed: true, .. } => "liquidation",
            Action::Liquidate { cover, .. } if *cover == U256::MAX => "random liq. max",
            Action::Liquidate { .. } => "random liq.",
            Action::Wait => "time jump",
        }
    }
}

/// What the model returned for a call.
#[derive(Debug)]
enum Outcome {
    Amount(U256),
    Done,
    Liquidated(Liquidation),
}

/// The addresses of the deployed market.
struct Deployed {
    pool: Address,
    oracle: Address,
    assets: Vec<Address>,
    a_tokens: Vec<Address>,
    debt_tokens: Vec<Address>,
    treasury: Address,
    liquidator: Address,
    users: Vec<Address>,
}

/// What the state check also reads for the liquidation checks: the liquidator's underlying balances.
struct Balances {
    liquidator: Vec<U256>,
}

/// Reads everything at block `at.0` and asserts it equals the model at `now = at.1`.
fn check_state(
    chain: &Chain,
    d: &Deployed,
    at: (u64, u64),
    market: &Market,
    accounts: &[Vec<Holding>],
    treasury_scaled: &[U256],
    what: &str,
) -> Balances {
    let (block, now) = at;
    let n = d.assets.len();
    let mut calls: Vec<(Address, Vec<u8>)> = Vec::new();
    for i in 0..n {
        let asset = d.assets[i];
        calls.push((d.pool, IAaveV3Pool::getReserveDataCall { asset }.abi_encode()));
        calls.push((d.pool, IPool::getReserveNormalizedIncomeCall { asset }.abi_encode()));
        calls.push((d.pool, IPool::getReserveNormalizedVariableDebtCall { asset }.abi_encode()));
        calls.push((d.a_tokens[i], IScaled::scaledTotalSupplyCall {}.abi_encode()));
        calls.push((d.a_tokens[i], IScaled::totalSupplyCall {}.abi_encode()));
        calls.push((d.debt_tokens[i], IScaled::scaledTotalSupplyCall {}.abi_encode()));
        calls.push((d.debt_tokens[i], IScaled::totalSupplyCall {}.abi_encode()));
        calls.push((asset, IToken::balanceOfCall { who: d.a_tokens[i] }.abi_encode()));
        calls.push((d.a_tokens[i], IScaled::scaledBalanceOfCall { user: d.treasury }.abi_encode()));
        calls.push((d.a_tokens[i], IScaled::balanceOfCall { user: d.treasury }.abi_encode()));
        calls.push((asset, IToken::balanceOfCall { who: d.liquidator }.abi_encode()));
    }
    for &user in &d.users {
        for i in 0..n {
            calls.push((d.a_tokens[i], IScaled::scaledBalanceOfCall { user }.abi_encode()));
            calls.push((d.debt_tokens[i], IScaled::scaledBalanceOfCall { user }.abi_encode()));
        }
        calls.push((d.pool, IPool::getUserAccountDataCall { user }.abi_encode()));
        calls.push((d.pool, IPool::getUserConfigurationCall { user }.abi_encode()));
    }
    let ret = chain.views(block, &calls);
    let mut it = ret.iter();
    let mut next = || it.next().unwrap();
    let mut balances = Balances { liquidator: Vec::new() };
    for (i, r) in market.reserves.iter().enumerate() {
        let ctx = format!("{what}: reserve {i} at {now}");
        let data = IAaveV3Pool::getReserveDataCall::abi_decode_returns(next()).unwrap();
        assert_eq!(U256::from(data.liquidityIndex), r.liquidity_index, "{ctx}: liquidityIndex");
        assert_eq!(U256::from(data.variableBorrowIndex), r.variable_borrow_index, "{ctx}: variableBorrowIndex");
        assert_eq!(U256::from(data.currentLiquidityRate), r.current_liquidity_rate, "{ctx}: currentLiquidityRate");
        assert_eq!(
            U256::from(data.currentVariableBorrowRate),
            r.current_variable_borrow_rate,
            "{ctx}: currentVariableBorrowRate"
        );
        assert_eq!(data.lastUpdateTimestamp.to::<u64>(), r.last_update, "{ctx}: lastUpdateTimestamp");
        assert_eq!(U256::from(data.accruedToTreasury), r.accrued_to_treasury, "{ctx}: accruedToTreasury");
        assert_eq!(Some(word(next(), 0)), r.normalized_income(now), "{ctx}: normalized income");
        assert_eq!(Some(word(next(), 0)), r.normalized_debt(now), "{ctx}: normalized variable debt");
        assert_eq!(word(next(), 0), r.scaled_a_supply, "{ctx}: aToken scaledTotalSupply");
        assert_eq!(Some(word(next(), 0)), r.total_supply(now), "{ctx}: aToken totalSupply");
        assert_eq!(word(next(), 0), r.scaled_variable_debt, "{ctx}: debt token scaledTotalSupply");
        assert_eq!(Some(word(next(), 0)), r.total_debt(now), "{ctx}: debt token totalSupply");
        assert_eq!(word(next(), 0), r.cash, "{ctx}: underlying held by the aToken");
        assert_eq!(word(next(), 0), treasury_scaled[i], "{ctx}: treasury's scaled aTokens");
        let treasury = aave_v3::ray_mul(treasury_scaled[i], r.normalized_income(now).unwrap());
        assert_eq!(Some(word(next(), 0)), treasury, "{ctx}: treasury's aTokens");
        balances.liquidator.push(word(next(), 0));
    }
    for (k, account) in accounts.iter().enumerate() {
        let ctx = format!("{what}: user {k} at {now}");
        for (i, h) in account.iter().enumerate() {
            assert_eq!(word(next(), 0), h.scaled_supply, "{ctx}: scaled aTokens of reserve {i}");
            assert_eq!(word(next(), 0), h.scaled_debt, "{ctx}: scaled debt of reserve {i}");
        }
        let got = IPool::getUserAccountDataCall::abi_decode_returns(next()).unwrap();
        let expect = market.account_data(account, now).unwrap();
        assert_eq!(got.totalCollateralBase, expect.total_collateral_base, "{ctx}: totalCollateralBase");
        assert_eq!(got.totalDebtBase, expect.total_debt_base, "{ctx}: totalDebtBase");
        assert_eq!(got.ltv, expect.avg_ltv_bps, "{ctx}: ltv");
        assert_eq!(
            got.currentLiquidationThreshold, expect.avg_liquidation_threshold_bps,
            "{ctx}: currentLiquidationThreshold"
        );
        assert_eq!(got.healthFactor, expect.health_factor, "{ctx}: healthFactor");
        // GenericLogic.calculateAvailableBorrows, from the model's figures
        let can = aave_v3::percent_mul(expect.total_collateral_base, expect.avg_ltv_bps).unwrap();
        assert_eq!(got.availableBorrowsBase, can.saturating_sub(expect.total_debt_base), "{ctx}: availableBorrowsBase");
        // UserConfiguration: bit 2i borrowing, bit 2i + 1 collateral
        let config = word(next(), 0);
        for (i, h) in account.iter().enumerate() {
            assert_eq!(config.bit(2 * i), !h.scaled_debt.is_zero(), "{ctx}: borrowing flag of reserve {i}");
            assert_eq!(config.bit(2 * i + 1), h.collateral, "{ctx}: collateral flag of reserve {i}");
        }
    }
    balances
}

/// Sextant's reader of Aave positions (`sextant_chain::lending::aave_position`, what a vault's NAV counts) equals
/// the aToken's and the variable debt token's `balanceOf` for every user and reserve at `block`. Returns how many
/// (supply, debt) balances were non-zero.
fn check_reader(rpc: &sextant_chain::Rpc, chain: &Chain, d: &Deployed, at: (u64, u64), what: &str) -> (usize, usize) {
    let (block, now) = at;
    let mut calls: Vec<(Address, Vec<u8>)> = Vec::new();
    for &user in &d.users {
        for i in 0..d.assets.len() {
            calls.push((d.a_tokens[i], IScaled::balanceOfCall { user }.abi_encode()));
            calls.push((d.debt_tokens[i], IScaled::balanceOfCall { user }.abi_encode()));
        }
    }
    let ret = chain.views(block, &calls);
    let mut it = ret.iter();
    let mut seen = (0, 0);
    for (k, &user) in d.users.iter().enumerate() {
        for (i, &asset) in d.assets.iter().enumerate() {
            let p = sextant_chain::lending::aave_position(rpc, d.pool, asset, user, block, now)
                .unwrap_or_else(|e| panic!("{what}: reading user {k}'s reserve {i}: {e}"))
                .expect("the pool lists the asset");
            assert_eq!(p.supplied, word(it.next().unwrap(), 0), "{what}: user {k}'s supply in reserve {i}");
            assert_eq!(p.debt, word(it.next().unwrap(), 0), "{what}: user {k}'s debt in reserve {i}");
            seen.0 += usize::from(!p.supplied.is_zero());
            seen.1 += usize::from(!p.debt.is_zero());
        }
    }
    seen
}

/// A price of reserve `k` between `a` and `b` at which the account's health factor is just below `target` (wad), by
/// bisection on the model (the health factor is monotonic in one price); None when the range does not cross it.
fn price_for_health(
    market: &Market,
    account: &[Holding],
    k: usize,
    target: U256,
    (mut a, mut b): (U256, U256),
    now: u64,
) -> Option<U256> {
    let below = |p: U256| {
        let mut m = market.clone();
        m.prices[k] = p;
        m.account_data(account, now).unwrap().health_factor < target
    };
    let below_a = below(a);
    if below_a == below(b) {
        return None;
    }
    while b.abs_diff(a) > U256::from(1u8) {
        let mid = (a + b) / u(2);
        if below(mid) == below_a { a = mid } else { b = mid }
    }
    Some(if below_a { a } else { b })
}

#[test]
fn the_rust_pool_equals_the_aave_v3_pool_bit_for_bit() {
    let steps: usize = std::env::var("SEXTANT_AAVE_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(400);
    let seed: u64 = std::env::var("SEXTANT_AAVE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xaa7e_5eed);
    eprintln!("aave pool differential: {steps} steps, seed {seed}");
    let mut rng = Rng(seed | 1);
    let started = std::time::Instant::now();

    let net = testnet(false);
    let devnet = &net.devnet;
    let url = devnet.rpc_url.clone();
    let client = Client { rpc: &url };
    let chain = Chain { url: url.clone() };
    let accounts: Vec<Address> = chain
        .rpc("eth_accounts", serde_json::json!([]))
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().parse().unwrap())
        .collect();
    let admin = accounts[0];
    let from = admin.to_string();
    let send = |what: &str, to: Address, data: Vec<u8>| {
        client.send(what, &from, Some(&to.to_string()), &data, 0).unwrap_or_else(|e| panic!("{what}: {e}"));
    };
    let sender = |who: Address, what: &str, to: Address, data: Vec<u8>| {
        client.send(what, &who.to_string(), Some(&to.to_string()), &data, 0).unwrap_or_else(|e| panic!("{what}: {e}"));
    };
    let root = sextant_devnet::find_root().unwrap();

    // --- the market, as a listing would build it ---------------------------------------------------------------
    // WETH-, USDC- and WBTC-like reserves. USDC pays no liquidation protocol fee; WBTC has a base rate.
    let specs: [(&str, ReserveConfig, u64); 3] = [
        (
            "WETH",
            ReserveConfig {
                decimals: 18,
                ltv_bps: 8_000,
                liquidation_threshold_bps: 8_250,
                liquidation_bonus_bps: 10_500,
                liquidation_protocol_fee_bps: 1_000,
                reserve_factor_bps: 1_500,
                strategy: RateStrategy::from_fractions(0.8, 0.0, 0.033, 0.8),
            },
            2_000 * 100_000_000,
        ),
        (
            "USDC",
            ReserveConfig {
                decimals: 6,
                ltv_bps: 7_700,
                liquidation_threshold_bps: 8_000,
                liquidation_bonus_bps: 10_450,
                liquidation_protocol_fee_bps: 0,
                reserve_factor_bps: 1_000,
                strategy: RateStrategy::from_fractions(0.9, 0.0, 0.06, 0.6),
            },
            100_000_000,
        ),
        (
            "WBTC",
            ReserveConfig {
                decimals: 8,
                ltv_bps: 7_000,
                liquidation_threshold_bps: 7_500,
                liquidation_bonus_bps: 10_650,
                liquidation_protocol_fee_bps: 2_000,
                reserve_factor_bps: 2_000,
                strategy: RateStrategy::from_fractions(0.45, 0.01, 0.04, 3.0),
            },
            60_000 * 100_000_000,
        ),
    ];
    let treasury: Address = "0x00000000000000000000000000000000000fee50".parse().unwrap();
    let users: Vec<Address> = accounts[1..5].to_vec();
    let liquidator = accounts[5];
    let token_code = unhex(
        serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(root.join("contracts/out/TestToken.json")).unwrap(),
        )
        .unwrap()["bytecode"]
            .as_str()
            .unwrap(),
    );
    let mut listings = Vec::new();
    for (symbol, config, price) in &specs {
        let mut c = token_code.clone();
        c.extend(encode(&[
            Value::Str(format!("Test {symbol}")),
            Value::Str((*symbol).into()),
            Value::Uint(config.decimals.into()),
        ]));
        let asset = deploy(&client, &from, symbol, &c);
        listings.push(Listing { asset, symbol: (*symbol).to_string(), config: *config, price: u(*price) });
    }
    let listed = deploy_market(&client, admin, &listings, treasury);
    let (pool, oracle) = (listed.pool, listed.oracle);
    let assets: Vec<Address> = listings.iter().map(|l| l.asset).collect();
    let mut reserves = Vec::new();
    for (i, l) in listings.iter().enumerate() {
        // the chain's reserve starts where ReserveLogic.init left it: its last update is the model's `now`
        reserves.push(Reserve::new(l.config, listed.listed_at[i]).unwrap());
        for &who in users.iter().chain([&liquidator]) {
            let plenty = U256::from(10u8).pow(U256::from(l.config.decimals + 24));
            send("mint", l.asset, IToken::mintCall { to: who, amount: plenty }.abi_encode());
            sender(who, "approve", l.asset, IToken::approveCall { spender: pool, amount: U256::MAX }.abi_encode());
        }
    }
    let (a_tokens, debt_tokens) = (listed.a_tokens, listed.debt_tokens);
    let base_prices: Vec<U256> = specs.iter().map(|s| u(s.2)).collect();
    let mut market = Market { reserves, prices: base_prices.clone() };
    let d = Deployed { pool, oracle, assets, a_tokens, debt_tokens, treasury, liquidator, users };
    let n = d.assets.len();
    let mut accounts_model: Vec<Vec<Holding>> = vec![vec![Holding::default(); n]; d.users.len()];
    let mut treasury_scaled = vec![U256::ZERO; n];
    eprintln!("deployed Aave v3 in {:.1?} ({} libraries linked)", started.elapsed(), listed.libraries);

    let latest = chain.rpc("eth_getBlockByNumber", serde_json::json!(["latest", false]));
    let mut now = json_u64(&latest["timestamp"]) + 1;
    let block = chain.mine_at(now);
    let mut before = check_state(&chain, &d, (block, now), &market, &accounts_model, &treasury_scaled, "start");
    let reader = sextant_chain::Rpc::new(&url, std::time::Duration::from_secs(30)).unwrap();
    let mut read_positions = (0, 0);

    // --- the history ---------------------------------------------------------------------------------------------
    let transfer_topic = keccak256("Transfer(address,address,uint256)");
    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let (mut half_close, mut full_close, mut whole_collateral, mut fees) = (0, 0, 0, 0);
    let mut pending: Option<(usize, usize)> = None; // a crash aimed at (user, collateral reserve)
    let amount_of = |market: &Market, i: usize, usd: f64| {
        let unit = 10f64.powi(i32::from(market.reserves[i].config.decimals));
        U256::from((usd * 1e8 / f64::from(market.prices[i]) * unit) as u128)
    };
    for step in 0..steps {
        let dt = if pending.is_some() {
            rng.below(3)
        } else {
            match rng.below(10) {
                0..=5 => rng.below(120),
                6..=8 => rng.below(86_400),
                _ => rng.below(60 * 86_400),
            }
        };
        now += dt;
        let users_n = d.users.len() as u64;
        let debt_now = |market: &Market, h: &Holding, i: usize| {
            aave_v3::ray_mul(h.scaled_debt, market.reserves[i].normalized_debt(now).unwrap()).unwrap()
        };
        let action = if step < 2 * n + 2 {
            // every reserve gets suppliers first
            let i = step % n;
            Action::Supply { user: step % d.users.len(), i, amount: amount_of(&market, i, rng.log_uniform(4.0, 6.0)) }
        } else if let Some((user, coll)) = pending.take() {
            let with_debt: Vec<usize> =
                (0..n).filter(|&i| i != coll && !accounts_model[user][i].scaled_debt.is_zero()).collect();
            let debt = if with_debt.is_empty() {
                (coll + 1 + rng.below(n as u64 - 1) as usize) % n
            } else {
                with_debt[rng.below(with_debt.len() as u64) as usize]
            };
            let owed = debt_now(&market, &accounts_model[user][debt], debt);
            let cover = match rng.below(8) {
                0..=2 => U256::MAX,
                3 => owed / u(2),
                4 => owed,
                _ => bps_of(owed, rng.bps()),
            };
            Action::Liquidate { user, coll, debt, cover, aimed: true }
        } else {
            let user = rng.below(users_n) as usize;
            let i = rng.below(n as u64) as usize;
            let account = &accounts_model[user];
            match rng.below(100) {
                0..=17 => {
                    let amount = match rng.below(40) {
                        0 => U256::ZERO,
                        1 => u(1 + rng.below(1_000)),
                        _ => amount_of(&market, i, rng.log_uniform(1.0, 6.0)),
                    };
                    Action::Supply { user, i, amount }
                }
                18..=31 => {
                    // mostly a reserve the user supplies
                    let supplied: Vec<usize> = (0..n).filter(|&k| !account[k].scaled_supply.is_zero()).collect();
                    let i = if !supplied.is_empty() && rng.below(5) > 0 {
                        supplied[rng.below(supplied.len() as u64) as usize]
                    } else {
                        i
                    };
                    let r = &market.reserves[i];
                    let balance =
                        aave_v3::ray_mul(account[i].scaled_supply, r.normalized_income(now).unwrap()).unwrap();
                    let amount = match rng.below(20) {
                        0..=4 => U256::MAX,
                        5 | 6 => balance,
                        7 => balance + u(1),
                        8 => U256::ZERO,
                        _ => bps_of(balance, rng.bps()),
                    };
                    Action::Withdraw { user, i, amount }
                }
                32..=51 => {
                    let data = market.account_data(account, now).unwrap();
                    let room = aave_v3::percent_mul(data.total_collateral_base, data.avg_ltv_bps)
                        .unwrap()
                        .saturating_sub(data.total_debt_base);
                    let unit = market.reserves[i].unit();
                    let room = room * unit / market.prices[i];
                    let amount = match rng.below(20) {
                        0 => U256::ZERO,
                        1..=3 => bps_of(room, 9_900 + rng.below(200)),
                        4 => room,
                        5 => market.reserves[i].cash + u(1 + rng.below(1_000)),
                        6 => room * u(2),
                        _ => bps_of(room, rng.bps()).max(u(1)),
                    };
                    Action::Borrow { user, i, amount }
                }
                52..=63 => {
                    // mostly a reserve the user owes
                    let owing: Vec<usize> = (0..n).filter(|&k| !account[k].scaled_debt.is_zero()).collect();
                    let i = if !owing.is_empty() && rng.below(5) > 0 {
                        owing[rng.below(owing.len() as u64) as usize]
                    } else {
                        i
                    };
                    let owed = debt_now(&market, &account[i], i);
                    let amount = match rng.below(20) {
                        0..=5 => U256::MAX,
                        6 | 7 => owed,
                        8 => U256::ZERO,
                        9 => owed * u(2) + u(1),
                        _ => bps_of(owed, rng.bps()).max(u(1)),
                    };
                    Action::Repay { user, i, amount }
                }
                64..=71 => {
                    // a random walk kept within a third and three times the starting price
                    let p = bps_of(market.prices[i], 8_500 + rng.below(3_001));
                    let price = p.clamp(base_prices[i] / u(3), base_prices[i] * u(3));
                    Action::Price { i, price }
                }
                72..=85 => {
                    // a crash aimed at a health factor just under one, under 0.95, or just above one
                    let borrowers: Vec<usize> = (0..d.users.len())
                        .filter(|&k| accounts_model[k].iter().any(|h| !h.scaled_debt.is_zero()))
                        .collect();
                    let mut crash = None;
                    if !borrowers.is_empty() {
                        let user = borrowers[rng.below(borrowers.len() as u64) as usize];
                        let account = &accounts_model[user];
                        // the collateral worth the most
                        let coll = (0..n)
                            .filter(|&k| account[k].collateral && !account[k].scaled_supply.is_zero())
                            .max_by_key(|&k| account[k].scaled_supply * market.prices[k] / market.reserves[k].unit());
                        if let Some(coll) = coll {
                            let target_bps = match rng.below(5) {
                                0 | 1 => 9_501 + rng.below(499),
                                2 | 3 => 6_000 + rng.below(3_500),
                                _ => 10_000 + rng.below(300),
                            };
                            let target = WAD * u(target_bps) / u(10_000);
                            if market.account_data(account, now).unwrap().health_factor < target {
                                pending = Some((user, coll)); // already below: liquidate straight away
                            } else {
                                // the collateral falls, down to a tenth of its starting price; when that is not
                                // enough (other collateral) a debt asset rises, up to ten times its starting price
                                let mut moves = vec![(coll, (base_prices[coll] / u(10), market.prices[coll]))];
                                for k in (0..n).filter(|&k| !account[k].scaled_debt.is_zero()) {
                                    moves.push((k, (market.prices[k], base_prices[k] * u(10))));
                                }
                                crash = moves.into_iter().find_map(|(k, range)| {
                                    let price = price_for_health(&market, account, k, target, range, now)?;
                                    Some(Action::Price { i: k, price })
                                });
                                if crash.is_some() {
                                    pending = Some((user, coll));
                                }
                            }
                        }
                    }
                    crash.unwrap_or(Action::Wait)
                }
                86..=93 => {
                    // a random attempt, mostly on an unhealthy account
                    let unhealthy: Vec<usize> = (0..d.users.len())
                        .filter(|&k| {
                            market.account_data(&accounts_model[k], now).unwrap().health_factor
                                < HEALTH_FACTOR_LIQUIDATION_THRESHOLD
                        })
                        .collect();
                    let user = if !unhealthy.is_empty() && rng.below(3) > 0 {
                        unhealthy[rng.below(unhealthy.len() as u64) as usize]
                    } else {
                        user
                    };
                    let debt = (i + 1 + rng.below(n as u64 - 1) as usize) % n;
                    let owed = debt_now(&market, &accounts_model[user][debt], debt);
                    let cover = match rng.below(6) {
                        0 | 1 => U256::MAX,
                        2 => U256::ZERO,
                        _ => bps_of(owed, rng.bps()),
                    };
                    Action::Liquidate { user, coll: i, debt, cover, aimed: false }
                }
                _ => Action::Wait,
            }
        };

        // --- on chain ---
        let (block, chain_result, logs) = match action {
            Action::Supply { user, i, amount } => chain.tx_at(
                now,
                d.users[user],
                d.pool,
                &IPool::supplyCall { asset: d.assets[i], amount, onBehalfOf: d.users[user], referralCode: 0 }
                    .abi_encode(),
            ),
            Action::Withdraw { user, i, amount } => chain.tx_at(
                now,
                d.users[user],
                d.pool,
                &IPool::withdrawCall { asset: d.assets[i], amount, to: d.users[user] }.abi_encode(),
            ),
            Action::Borrow { user, i, amount } => chain.tx_at(
                now,
                d.users[user],
                d.pool,
                &IPool::borrowCall {
                    asset: d.assets[i],
                    amount,
                    interestRateMode: u(2),
                    referralCode: 0,
                    onBehalfOf: d.users[user],
                }
                .abi_encode(),
            ),
            Action::Repay { user, i, amount } => chain.tx_at(
                now,
                d.users[user],
                d.pool,
                &IPool::repayCall { asset: d.assets[i], amount, interestRateMode: u(2), onBehalfOf: d.users[user] }
                    .abi_encode(),
            ),
            Action::Price { i, price } => chain.tx_at(
                now,
                admin,
                d.oracle,
                &IOracle::setAssetPriceCall { asset: d.assets[i], price }.abi_encode(),
            ),
            Action::Liquidate { user, coll, debt, cover, .. } => chain.tx_at(
                now,
                d.liquidator,
                d.pool,
                &IPool::liquidationCallCall {
                    collateralAsset: d.assets[coll],
                    debtAsset: d.assets[debt],
                    user: d.users[user],
                    debtToCover: cover,
                    receiveAToken: false,
                }
                .abi_encode(),
            ),
            Action::Wait => (chain.mine_at(now), Ok(Vec::new()), Vec::new()),
        };

        // --- in the model ---
        let max_or = |a: U256| if a == U256::MAX { None } else { Some(a) };
        let model_result = match action {
            Action::Supply { user, i, amount } => {
                market.supply(&mut accounts_model[user], i, amount, now).map(|_| Outcome::Done)
            }
            Action::Withdraw { user, i, amount } => {
                market.withdraw(&mut accounts_model[user], i, max_or(amount), now).map(Outcome::Amount)
            }
            Action::Borrow { user, i, amount } => {
                market.borrow(&mut accounts_model[user], i, amount, now).map(|()| Outcome::Done)
            }
            Action::Repay { user, i, amount } => {
                market.repay(&mut accounts_model[user], i, max_or(amount), now).map(Outcome::Amount)
            }
            Action::Price { i, price } => {
                market.prices[i] = price;
                Ok(Outcome::Done)
            }
            Action::Liquidate { user, coll, debt, cover, .. } => {
                market.liquidate(&mut accounts_model[user], coll, debt, cover, now).map(Outcome::Liquidated)
            }
            Action::Wait => Ok(Outcome::Done),
        };

        let what = format!("step {step} {action:?}");
        let entry = tally.entry(action.name()).or_default();
        match (&chain_result, &model_result) {
            (Ok(_), Ok(_)) => entry.0 += 1,
            (Err(data), Err(e)) => {
                let code = revert_code(data);
                assert!(same_revert(*e, &code), "{what}: the contract reverted with {code}, the model with {e}");
                entry.1 += 1;
                *codes.entry(code).or_default() += 1;
            }
            (Ok(_), Err(e)) => panic!("{what}: the contract succeeded, the model failed: {e}"),
            (Err(data), Ok(o)) => {
                panic!("{what}: the contract reverted with {}, the model returned {o:?}", revert_code(data))
            }
        }
        // the protocol fee moves to the treasury as aTokens
        if let (Action::Liquidate { coll, .. }, Ok(Outcome::Liquidated(l))) = (action, &model_result) {
            let index = market.reserves[coll].liquidity_index;
            treasury_scaled[coll] += aave_v3::ray_div(l.protocol_fee, index).unwrap();
        }
        let after = check_state(&chain, &d, (block, now), &market, &accounts_model, &treasury_scaled, &what);
        if step % 20 == 19 {
            let (supplies, debts) = check_reader(&reader, &chain, &d, (block, now), &what);
            read_positions.0 += supplies;
            read_positions.1 += debts;
        }
        if let (Ok(out), Ok(o)) = (&chain_result, &model_result) {
            match (action, o) {
                (Action::Withdraw { .. } | Action::Repay { .. }, Outcome::Amount(a)) => {
                    assert_eq!(word(out, 0), *a, "{what}: returned amount");
                }
                (Action::Liquidate { user, coll, debt, .. }, Outcome::Liquidated(l)) => {
                    assert_eq!(before.liquidator[debt] - after.liquidator[debt], l.debt_repaid, "{what}: debt repaid");
                    assert_eq!(
                        after.liquidator[coll] - before.liquidator[coll],
                        l.collateral_to_liquidator,
                        "{what}: collateral to the liquidator"
                    );
                    // the fee moves as the aToken's Transfer(user, treasury, amount)
                    let fee_logs: Vec<U256> = logs
                        .iter()
                        .filter(|log| {
                            let topics = log["topics"].as_array().unwrap();
                            log["address"].as_str().unwrap().parse::<Address>().unwrap() == d.a_tokens[coll]
                                && topics.len() == 3
                                && topics[0]
                                    .as_str()
                                    .unwrap()
                                    .parse::<sextant_chain::alloy::primitives::B256>()
                                    .unwrap()
                                    == transfer_topic
                                && Address::from_word(topics[1].as_str().unwrap().parse().unwrap()) == d.users[user]
                                && Address::from_word(topics[2].as_str().unwrap().parse().unwrap()) == d.treasury
                        })
                        .map(|log| U256::from_be_slice(&unhex(log["data"].as_str().unwrap())))
                        .collect();
                    if l.protocol_fee.is_zero() {
                        assert!(fee_logs.is_empty(), "{what}: a fee the model did not take: {fee_logs:?}");
                    } else {
                        assert_eq!(fee_logs, vec![l.protocol_fee], "{what}: protocol fee");
                        fees += 1;
                    }
                    if l.health_factor_before > CLOSE_FACTOR_HF_THRESHOLD {
                        half_close += 1
                    } else {
                        full_close += 1
                    }
                    if !accounts_model[user][coll].collateral {
                        whole_collateral += 1;
                    }
                }
                _ => {}
            }
        }
        before = after;
    }

    eprintln!("aave pool differential: {steps} steps equal in {:.1?}", started.elapsed());
    for (name, (ok, reverted)) in &tally {
        eprintln!("  {name:16} {ok:4} done, {reverted:4} reverted on both sides");
    }
    eprintln!("  revert codes: {codes:?}");
    eprintln!(
        "  liquidations: {half_close} at the 50 % close factor (0.95 <= HF < 1), {full_close} at 100 % (HF < 0.95), \
         {whole_collateral} taking the whole collateral, {fees} paying the treasury a fee"
    );
    assert!(half_close > 0 && full_close > 0, "both close factors must be exercised");
    eprintln!(
        "  position reader: {} supplies and {} debts equal to balanceOf (every 20th step)",
        read_positions.0, read_positions.1
    );
    assert!(read_positions.0 > 0 && read_positions.1 > 0, "the reader must see supplies and debts");
}
