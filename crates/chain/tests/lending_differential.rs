//! Sextant's lending maths against the real contracts on anvil.
//!
//! - Aave v3: `WadRayMath`, `PercentageMath` and `MathUtils` compiled from `@aave/core-v3`'s own sources into
//!   `contracts/src/LendingMathDriver.sol`, and the package's compiled `DefaultReserveInterestRateStrategy`
//!   bytecode deployed with random curves. Thousands of random inputs (magnitudes from one wei to the overflow
//!   bounds, the bounds themselves) must give the same result, or revert on both sides.
//! - ERC-4626: OpenZeppelin 5's `ERC4626` (`Vault4626`, decimals offsets 0, 3 and 6) driven through a random
//!   history of deposits, mints, withdrawals, redemptions and gains; after every step every conversion and preview
//!   for random amounts, and the totals, must equal `protocols::erc4626::Vault`'s.
//!
//! Cases: `SEXTANT_LENDING_CASES` (default 3000 per function), seed `SEXTANT_LENDING_SEED`.

mod common;

use common::{Rng, hex, testnet, unhex, word};
use sextant_chain::alloy::primitives::{Address, U256};
use sextant_chain::alloy::sol;
use sextant_chain::alloy::sol_types::SolCall;
use sextant_devnet::abi::{Value, encode};
use sextant_devnet::{Client, rpc_batch_each};
use sextant_protocols::aave_v3::{self, RAY, RateParams, RateStrategy};
use sextant_protocols::erc4626::Vault;

sol! {
    interface IMath {
        function wadMul(uint256 a, uint256 b) external pure returns (uint256);
        function wadDiv(uint256 a, uint256 b) external pure returns (uint256);
        function rayMul(uint256 a, uint256 b) external pure returns (uint256);
        function rayDiv(uint256 a, uint256 b) external pure returns (uint256);
        function rayToWad(uint256 a) external pure returns (uint256);
        function wadToRay(uint256 a) external pure returns (uint256);
        function percentMul(uint256 v, uint256 p) external pure returns (uint256);
        function percentDiv(uint256 v, uint256 p) external pure returns (uint256);
        function linearInterest(uint256 rate, uint256 elapsed) external view returns (uint256);
        function compoundedInterest(uint256 rate, uint256 elapsed) external view returns (uint256);
    }
    struct CalculateInterestRatesParams {
        uint256 unbacked;
        uint256 liquidityAdded;
        uint256 liquidityTaken;
        uint256 totalStableDebt;
        uint256 totalVariableDebt;
        uint256 averageStableBorrowRate;
        uint256 reserveFactor;
        address reserve;
        address aToken;
    }
    interface IRateStrategy {
        function calculateInterestRates(CalculateInterestRatesParams params) external view returns (uint256, uint256, uint256);
    }
    interface IVault {
        function deposit(uint256 assets, address receiver) external returns (uint256);
        function mint(uint256 shares, address receiver) external returns (uint256);
        function withdraw(uint256 assets, address receiver, address owner) external returns (uint256);
        function redeem(uint256 shares, address receiver, address owner) external returns (uint256);
        function convertToShares(uint256 assets) external view returns (uint256);
        function convertToAssets(uint256 shares) external view returns (uint256);
        function previewDeposit(uint256 assets) external view returns (uint256);
        function previewMint(uint256 shares) external view returns (uint256);
        function previewWithdraw(uint256 assets) external view returns (uint256);
        function previewRedeem(uint256 shares) external view returns (uint256);
        function maxWithdraw(address owner) external view returns (uint256);
        function maxRedeem(address owner) external view returns (uint256);
        function totalAssets() external view returns (uint256);
        function totalSupply() external view returns (uint256);
        function balanceOf(address who) external view returns (uint256);
    }
    interface IToken {
        function approve(address spender, uint256 amount) external returns (bool);
        function transfer(address to, uint256 amount) external returns (bool);
        function mint(address to, uint256 amount) external;
    }
}

impl Rng {
    /// A number of about `bits` random bits (0 <= bits <= 256).
    fn bits(&mut self, bits: u32) -> U256 {
        let limbs = [self.next(), self.next(), self.next(), self.next()];
        let x = U256::from_limbs(limbs);
        if bits >= 256 { x } else { x >> (256 - bits as usize) }
    }
    /// Anything from tiny to huge, log-uniform in bit length.
    fn any(&mut self) -> U256 {
        let b = self.below(257) as u32;
        self.bits(b)
    }
    /// A value in a realistic range: up to `max_bits` bits.
    fn upto(&mut self, max_bits: u32) -> U256 {
        let b = self.below(u64::from(max_bits) + 1) as u32;
        self.bits(b)
    }
}

struct Chain {
    url: String,
    from: String,
}

impl Chain {
    /// Runs the eth_calls in batches; each outcome is Some(return data) or None for a revert.
    fn calls(&self, to: Address, data: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
        let mut out = Vec::with_capacity(data.len());
        for chunk in data.chunks(250) {
            let calls: Vec<(&str, serde_json::Value)> = chunk
                .iter()
                .map(|d| {
                    let tx =
                        serde_json::json!({"from": self.from, "to": to.to_string(), "data": format!("0x{}", hex(d))});
                    ("eth_call", serde_json::json!([tx, "latest"]))
                })
                .collect();
            for r in rpc_batch_each(&self.url, &calls).unwrap() {
                out.push(match r {
                    Ok(v) => Some(unhex(v.as_str().unwrap())),
                    Err(e) => {
                        assert!(e.contains("revert"), "an eth_call failed for another reason than a revert: {e}");
                        None
                    }
                });
            }
        }
        out
    }
}

/// Edge values around a function's overflow bound `(MAX - half) / b`.
fn near_bound(rng: &mut Rng, b: U256, half: U256) -> U256 {
    if b.is_zero() {
        return rng.any();
    }
    let bound = (U256::MAX - half) / b;
    match rng.below(3) {
        0 => bound,
        1 => bound.saturating_add(U256::from(1u8)),
        _ => bound.saturating_sub(U256::from(1u8)),
    }
}

#[test]
fn aave_and_erc4626_maths_equal_the_contracts() {
    let cases: usize = std::env::var("SEXTANT_LENDING_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let seed: u64 = std::env::var("SEXTANT_LENDING_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x1e4d_0a7e);
    eprintln!("lending differential: {cases} cases per function, seed {seed}");
    let mut rng = Rng(seed | 1);

    let net = testnet(false);
    let devnet = &net.devnet;
    let url = devnet.rpc_url.clone();
    let from = devnet.accounts[0].address.clone();
    let client = Client { rpc: &url };
    let root = sextant_devnet::find_root().unwrap();
    let artifact = |path: &str| -> Vec<u8> {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join(path)).unwrap()).unwrap();
        unhex(v["bytecode"].as_str().unwrap())
    };
    let deploy = |what: &str, mut code: Vec<u8>, args: &[Value]| -> Address {
        code.extend(encode(args));
        let r = client.send(what, &from, None, &code, 0).unwrap();
        r["contractAddress"].as_str().unwrap().parse().unwrap()
    };
    let chain = Chain { url: url.clone(), from: from.clone() };
    let driver = deploy("LendingMathDriver", artifact("contracts/out/LendingMathDriver.json"), &[]);

    // --- WadRayMath, PercentageMath, MathUtils -------------------------------------------------------------
    type Pair = fn(U256, U256) -> Option<U256>;
    type Encode = fn(U256, U256) -> Vec<u8>;
    let halves = [aave_v3::HALF_WAD, aave_v3::HALF_WAD, aave_v3::HALF_RAY, aave_v3::HALF_RAY];
    let pf = U256::from(aave_v3::PERCENTAGE_FACTOR);
    let scales = [aave_v3::WAD, aave_v3::WAD, RAY, RAY, pf, pf];
    let binary: [(&str, Pair, Encode); 6] = [
        ("wadMul", aave_v3::wad_mul, |a, b| IMath::wadMulCall { a, b }.abi_encode()),
        ("wadDiv", aave_v3::wad_div, |a, b| IMath::wadDivCall { a, b }.abi_encode()),
        ("rayMul", aave_v3::ray_mul, |a, b| IMath::rayMulCall { a, b }.abi_encode()),
        ("rayDiv", aave_v3::ray_div, |a, b| IMath::rayDivCall { a, b }.abi_encode()),
        ("percentMul", aave_v3::percent_mul, |v, p| IMath::percentMulCall { v, p }.abi_encode()),
        ("percentDiv", aave_v3::percent_div, |v, p| IMath::percentDivCall { v, p }.abi_encode()),
    ];
    let mut compared = 0usize;
    let mut reverts = 0usize;
    for (k, (name, rust, encode_call)) in binary.iter().enumerate() {
        let mut inputs = Vec::with_capacity(cases);
        for i in 0..cases {
            let b = match rng.below(4) {
                0 => rng.any(),
                1 => rng.upto(130),
                2 if k >= 4 => U256::from(rng.below(20_001)),
                _ => rng.upto(96),
            };
            let b = if i % 97 == 0 { U256::ZERO } else { b };
            let a = match rng.below(5) {
                0 => rng.any(),
                1 => near_bound(&mut rng, b, *halves.get(k).unwrap_or(&U256::from(5_000u16))),
                _ => rng.upto(160),
            };
            // Exact ties, where half-up rounding shows: a * b ends in exactly half a unit (mul), or the remainder
            // is exactly half the divisor (div).
            let (a, b) = match (i % 13, k % 2) {
                (1, 0) => (scales[k] / U256::from(2u8) + rng.upto(64) * scales[k], U256::from(1u8)),
                (1, _) => (rng.upto(64) * U256::from(2u8) + U256::from(1u8), scales[k] * U256::from(2u8)),
                _ => (a, b),
            };
            inputs.push((a, b));
        }
        let data: Vec<Vec<u8>> = inputs.iter().map(|&(a, b)| encode_call(a, b)).collect();
        for (&(a, b), got) in inputs.iter().zip(chain.calls(driver, &data)) {
            let expect = rust(a, b);
            assert_eq!(got.as_deref().map(|r| word(r, 0)), expect, "{name}({a}, {b})");
            compared += 1;
            reverts += usize::from(expect.is_none());
        }
    }
    let unary = (0..cases).map(|_| rng.any()).collect::<Vec<_>>();
    let data: Vec<Vec<u8>> = unary.iter().map(|&a| IMath::rayToWadCall { a }.abi_encode()).collect();
    for (&a, got) in unary.iter().zip(chain.calls(driver, &data)) {
        assert_eq!(got.map(|r| word(&r, 0)), Some(aave_v3::ray_to_wad(a)), "rayToWad({a})");
    }
    let data: Vec<Vec<u8>> = unary.iter().map(|&a| IMath::wadToRayCall { a }.abi_encode()).collect();
    for (&a, got) in unary.iter().zip(chain.calls(driver, &data)) {
        assert_eq!(got.map(|r| word(&r, 0)), aave_v3::wad_to_ray(a), "wadToRay({a})");
    }
    compared += 2 * cases;

    // Interest over up to ten years at rates from zero to far beyond any market (10,000 % a year and more).
    let mut inputs = Vec::with_capacity(cases);
    for i in 0..cases {
        let rate = match rng.below(4) {
            0 => rng.any(),
            1 => U256::from(rng.below(100_000)) * RAY / U256::from(1_000u16),
            _ => rng.upto(100),
        };
        let elapsed = match i % 5 {
            0 => rng.below(3),
            1 => rng.below(86_400),
            _ => rng.below(10 * aave_v3::SECONDS_PER_YEAR),
        };
        inputs.push((rate, elapsed));
    }
    for (name, encode_call, rust) in [
        (
            "linearInterest",
            (|rate, e| IMath::linearInterestCall { rate, elapsed: U256::from(e) }.abi_encode())
                as fn(U256, u64) -> Vec<u8>,
            aave_v3::linear_interest as fn(U256, u64) -> Option<U256>,
        ),
        (
            "compoundedInterest",
            |rate, e| IMath::compoundedInterestCall { rate, elapsed: U256::from(e) }.abi_encode(),
            aave_v3::compounded_interest,
        ),
    ] {
        let data: Vec<Vec<u8>> = inputs.iter().map(|&(r, e)| encode_call(r, e)).collect();
        for (&(rate, e), got) in inputs.iter().zip(chain.calls(driver, &data)) {
            let expect = rust(rate, e);
            assert_eq!(got.map(|r| word(&r, 0)), expect, "{name}({rate}, {e})");
            compared += 1;
            reverts += usize::from(expect.is_none());
        }
    }

    // --- DefaultReserveInterestRateStrategy -----------------------------------------------------------------
    let strategy_code = artifact(
        "node_modules/@aave/core-v3/artifacts/contracts/protocol/pool/DefaultReserveInterestRateStrategy.sol/DefaultReserveInterestRateStrategy.json",
    );
    let pct = |rng: &mut Rng, max_bps: u64| U256::from(rng.below(max_bps + 1)) * RAY / U256::from(10_000u16);
    let mut rate_cases = 0;
    for s in 0..12 {
        let strategy = RateStrategy {
            optimal_usage_ratio: if s == 0 { RAY } else { pct(&mut rng, 9_999) + U256::from(1u8) },
            base_variable_borrow_rate: pct(&mut rng, 500),
            variable_rate_slope1: pct(&mut rng, 2_000),
            variable_rate_slope2: pct(&mut rng, 30_000),
            stable_rate_slope1: pct(&mut rng, 2_000),
            stable_rate_slope2: pct(&mut rng, 30_000),
            base_stable_rate_offset: pct(&mut rng, 500),
            stable_rate_excess_offset: pct(&mut rng, 2_000),
            optimal_stable_to_total_debt_ratio: pct(&mut rng, 10_000),
        };
        // constructor(provider, optimal usage, base, slope1, slope2, stable slope1, stable slope2, base stable
        // offset, stable excess offset, optimal stable ratio): static words
        let mut code = strategy_code.clone();
        code.extend_from_slice(&driver.into_word().0);
        for x in [
            strategy.optimal_usage_ratio,
            strategy.base_variable_borrow_rate,
            strategy.variable_rate_slope1,
            strategy.variable_rate_slope2,
            strategy.stable_rate_slope1,
            strategy.stable_rate_slope2,
            strategy.base_stable_rate_offset,
            strategy.stable_rate_excess_offset,
            strategy.optimal_stable_to_total_debt_ratio,
        ] {
            code.extend_from_slice(&x.to_be_bytes::<32>());
        }
        let address = deploy("DefaultReserveInterestRateStrategy", code, &[]);
        let n = cases / 4;
        let mut params = Vec::with_capacity(n);
        for i in 0..n {
            // Reserves from dust to 10^30 base units; stable debt absent most of the time, as on live markets.
            let debt_bits = if i % 7 == 0 { 0 } else { 100 };
            let p = RateParams {
                unbacked: if rng.below(5) == 0 { rng.upto(100) } else { U256::ZERO },
                a_token_balance: rng.upto(100),
                liquidity_added: if rng.below(2) == 0 { rng.upto(100) } else { U256::ZERO },
                liquidity_taken: if rng.below(2) == 0 { rng.upto(100) } else { U256::ZERO },
                total_stable_debt: if rng.below(3) == 0 { rng.upto(debt_bits) } else { U256::ZERO },
                total_variable_debt: rng.upto(debt_bits),
                average_stable_borrow_rate: pct(&mut rng, 5_000),
                reserve_factor_bps: if i % 53 == 0 { 10_000 + rng.below(3) } else { rng.below(10_001) },
            };
            params.push(p);
        }
        let data: Vec<Vec<u8>> = params
            .iter()
            .map(|p| {
                // the aToken's address is its balance (LendingMathDriver.balanceOf)
                let a_token = Address::from_word(p.a_token_balance.to_be_bytes().into());
                IRateStrategy::calculateInterestRatesCall {
                    params: CalculateInterestRatesParams {
                        unbacked: p.unbacked,
                        liquidityAdded: p.liquidity_added,
                        liquidityTaken: p.liquidity_taken,
                        totalStableDebt: p.total_stable_debt,
                        totalVariableDebt: p.total_variable_debt,
                        averageStableBorrowRate: p.average_stable_borrow_rate,
                        reserveFactor: U256::from(p.reserve_factor_bps),
                        reserve: driver,
                        aToken: a_token,
                    },
                }
                .abi_encode()
            })
            .collect();
        for (p, got) in params.iter().zip(chain.calls(address, &data)) {
            let expect = strategy.calculate_interest_rates(p);
            let got = got.map(|r| (word(&r, 0), word(&r, 1), word(&r, 2)));
            let expect = expect.map(|r| (r.liquidity_rate, r.stable_borrow_rate, r.variable_borrow_rate));
            assert_eq!(got, expect, "strategy {s}: {strategy:?} on {p:?}");
            rate_cases += 1;
            reverts += usize::from(expect.is_none());
        }
    }
    compared += rate_cases;
    eprintln!(
        "aave maths: {compared} calls equal ({reverts} reverting on both sides), {rate_cases} of them rate curves"
    );

    // --- OpenZeppelin ERC4626 ---------------------------------------------------------------------------------
    let mut token_code = artifact("contracts/out/TestToken.json");
    token_code.extend(encode(&[Value::Str("Vault asset".into()), Value::Str("VA".into()), Value::Uint(6)]));
    let r = client.send("TestToken", &from, None, &token_code, 0).unwrap();
    let asset: Address = r["contractAddress"].as_str().unwrap().parse().unwrap();
    let me: Address = from.parse().unwrap();
    let send = |what: &str, to: Address, data: Vec<u8>| {
        client.send(what, &from, Some(&to.to_string()), &data, 0).unwrap();
    };
    send("mint asset", asset, IToken::mintCall { to: me, amount: U256::from(10u8).pow(U256::from(40u8)) }.abi_encode());
    let mut vault_steps = 0;
    for offset in [0u8, 3, 6] {
        let vault_addr = deploy(
            "Vault4626",
            artifact("contracts/out/Vault4626.json"),
            &[Value::Address(asset.to_string()), Value::Uint(u128::from(offset))],
        );
        send("approve", asset, IToken::approveCall { spender: vault_addr, amount: U256::MAX }.abi_encode());
        let mut model = Vault::new(offset, None);
        let mut held = U256::ZERO; // our shares
        for step in 0..cases / 30 {
            // One state change, on both sides.
            let roll = if step < 2 { 0 } else { rng.below(10) };
            let amount = match rng.below(3) {
                0 => U256::from(rng.below(1_000)),
                1 => rng.upto(60),
                _ => rng.upto(100),
            };
            match roll {
                0..=2 => {
                    let a = amount.max(U256::from(1u8));
                    let shares = model.deposit(a).unwrap();
                    send("deposit", vault_addr, IVault::depositCall { assets: a, receiver: me }.abi_encode());
                    held += shares;
                }
                3 => {
                    let s = amount.max(U256::from(1u8));
                    model.mint(s).unwrap();
                    send("mint", vault_addr, IVault::mintCall { shares: s, receiver: me }.abi_encode());
                    held += s;
                }
                4 | 5 => {
                    let max = model.max_withdraw(held).unwrap();
                    let a = if max.is_zero() { U256::ZERO } else { amount % (max + U256::from(1u8)) };
                    let burnt = model.withdraw(a, held).unwrap();
                    send(
                        "withdraw",
                        vault_addr,
                        IVault::withdrawCall { assets: a, receiver: me, owner: me }.abi_encode(),
                    );
                    held -= burnt;
                }
                6 | 7 => {
                    let s = if held.is_zero() { U256::ZERO } else { amount % (held + U256::from(1u8)) };
                    model.redeem(s, held).unwrap();
                    send("redeem", vault_addr, IVault::redeemCall { shares: s, receiver: me, owner: me }.abi_encode());
                    held -= s;
                }
                _ => {
                    // a gain: assets arrive without shares (a strategy's profit, or a donation)
                    let g = amount % U256::from(10u128.pow(24));
                    model.accrue(i128::try_from(g).unwrap());
                    send("gain", asset, IToken::transferCall { to: vault_addr, amount: g }.abi_encode());
                }
            }
            // Every view for random amounts, plus the totals.
            let probes: Vec<U256> = (0..6).map(|_| if rng.below(4) == 0 { rng.any() } else { rng.upto(100) }).collect();
            let mut data = vec![
                IVault::totalAssetsCall {}.abi_encode(),
                IVault::totalSupplyCall {}.abi_encode(),
                IVault::balanceOfCall { who: me }.abi_encode(),
                IVault::maxWithdrawCall { owner: me }.abi_encode(),
                IVault::maxRedeemCall { owner: me }.abi_encode(),
            ];
            data.push(IVault::convertToSharesCall { assets: probes[0] }.abi_encode());
            data.push(IVault::convertToAssetsCall { shares: probes[1] }.abi_encode());
            data.push(IVault::previewDepositCall { assets: probes[2] }.abi_encode());
            data.push(IVault::previewMintCall { shares: probes[3] }.abi_encode());
            data.push(IVault::previewWithdrawCall { assets: probes[4] }.abi_encode());
            data.push(IVault::previewRedeemCall { shares: probes[5] }.abi_encode());
            let got: Vec<Option<U256>> =
                chain.calls(vault_addr, &data).into_iter().map(|r| r.map(|r| word(&r, 0))).collect();
            use sextant_protocols::erc4626::Rounding::Floor;
            let expect = vec![
                Some(model.total_assets),
                Some(model.total_supply),
                Some(held),
                model.max_withdraw(held),
                Some(held),
                model.to_shares(probes[0], Floor),
                model.to_assets(probes[1], Floor),
                model.preview_deposit(probes[2]),
                model.preview_mint(probes[3]),
                model.preview_withdraw(probes[4]),
                model.preview_redeem(probes[5]),
            ];
            assert_eq!(got, expect, "vault offset {offset}, step {step}, probes {probes:?}");
            vault_steps += 1;
        }
    }
    eprintln!("erc4626: {vault_steps} steps, 11 views compared after each");
}
