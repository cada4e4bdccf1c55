//! Sextant's Uniswap v3 pool maths (`sextant_protocols::uniswap_v3::Pool`) against the real pool contract: the
//! `UniswapV3Factory` bytecode of `@uniswap/v3-core` on anvil creates a 0.05 % pool of two fresh OpenZeppelin test
//! tokens, and a driver contract (`contracts/src/PoolDriver.sol`) mints, burns, collects and swaps on it directly.
//! A seeded random history of positions over random ranges, flash loans and over a thousand swaps (both directions,
//! exact input and exact output, price limits near and far, many tick crossings), with the protocol fee switched on
//! halfway, is replayed on both. After every step the price, tick, liquidity, global fee growth, protocol fees, every touched
//! tick and every position (liquidity, fee growth inside, tokens owed) must be equal bit for bit, and so must each
//! call's returned amounts and whether it reverts. State is read in one JSON-RPC batch per step.
//! Steps: `SEXTANT_POOL_STEPS` (default 1500), seed `SEXTANT_POOL_SEED`.

mod common;

use common::{Rng, hex, testnet, unhex};
use sextant_chain::alloy::primitives::{Address, I256, U256, aliases::I24, aliases::U160, keccak256};
use sextant_chain::alloy::sol;
use sextant_chain::alloy::sol_types::SolCall;
use sextant_devnet::abi::{Value, call, encode};
use sextant_devnet::{Client, rpc_batch, rpc_call};
use sextant_protocols::uniswap_v3::math::{MAX_SQRT_RATIO, MIN_SQRT_RATIO, sqrt_ratio_at_tick};
use sextant_protocols::uniswap_v3::{Pool, PositionInfo, TickInfo};

sol! {
    interface IDriver {
        function mint(address pool, int24 lower, int24 upper, uint128 amount) external returns (uint256, uint256);
        function burn(address pool, int24 lower, int24 upper, uint128 amount) external returns (uint256, uint256);
        function collect(address pool, int24 lower, int24 upper, uint128 max0, uint128 max1) external returns (uint128, uint128);
        function swap(address pool, bool zeroForOne, int256 amountSpecified, uint160 limit) external returns (int256, int256);
        function flash(address pool, uint256 amount0, uint256 amount1) external;
    }
    interface IPoolState {
        function slot0() external view returns (uint160 sqrtPriceX96, int24 tick, uint16 observationIndex, uint16 observationCardinality, uint16 observationCardinalityNext, uint8 feeProtocol, bool unlocked);
        function liquidity() external view returns (uint128);
        function feeGrowthGlobal0X128() external view returns (uint256);
        function feeGrowthGlobal1X128() external view returns (uint256);
        function protocolFees() external view returns (uint128 token0, uint128 token1);
        function ticks(int24 tick) external view returns (uint128 liquidityGross, int128 liquidityNet, uint256 feeGrowthOutside0X128, uint256 feeGrowthOutside1X128, int56 tickCumulativeOutside, uint160 secondsPerLiquidityOutsideX128, uint32 secondsOutside, bool initialized);
        function positions(bytes32 key) external view returns (uint128 liquidity, uint256 feeGrowthInside0LastX128, uint256 feeGrowthInside1LastX128, uint128 tokensOwed0, uint128 tokensOwed1);
        function setFeeProtocol(uint8 feeProtocol0, uint8 feeProtocol1) external;
        function initialize(uint160 sqrtPriceX96) external;
    }
}

impl Rng {
    /// Log-uniform-ish between 1 and 10^hi, at least 10^lo digits' worth.
    fn magnitude(&mut self, lo: u32, hi: u32) -> u128 {
        let digits = lo + self.below(u64::from(hi - lo + 1)) as u32;
        let top = 10u128.pow(digits);
        1 + (u128::from(self.next()) * u128::from(self.next())) % top
    }
}

struct Chain {
    url: String,
    deployer: String,
}

impl Chain {
    fn send(&self, what: &str, to: Address, data: Vec<u8>) {
        let tx = serde_json::json!({"from": self.deployer, "to": to.to_string(), "data": format!("0x{}", hex(&data)), "gas": "0x1baf800"});
        let hash = rpc_call(&self.url, "eth_sendTransaction", serde_json::json!([tx]))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        for _ in 0..2_000 {
            let r = rpc_call(&self.url, "eth_getTransactionReceipt", serde_json::json!([hash])).unwrap();
            if !r.is_null() {
                assert_eq!(r["status"], "0x1", "{what} reverted on chain after its eth_call succeeded");
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("{what}: no receipt");
    }

    /// eth_call from the deployer: Ok(return data) or Err(revert message).
    fn try_call(&self, to: Address, data: &[u8]) -> Result<Vec<u8>, String> {
        let req = serde_json::json!([{"from": self.deployer, "to": to.to_string(), "data": format!("0x{}", hex(data))}, "latest"]);
        rpc_call(&self.url, "eth_call", req).map(|v| unhex(v.as_str().unwrap_or_default())).map_err(|e| e.to_string())
    }
}

fn i24(t: i32) -> I24 {
    I24::try_from(t).unwrap()
}

fn position_key(owner: Address, lower: i32, upper: i32) -> [u8; 32] {
    let mut packed = owner.to_vec();
    packed.extend_from_slice(&lower.to_be_bytes()[1..]);
    packed.extend_from_slice(&upper.to_be_bytes()[1..]);
    keccak256(packed).0
}

#[test]
fn the_rust_pool_equals_the_uniswap_v3_contract_bit_for_bit() {
    let steps: usize = std::env::var("SEXTANT_POOL_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(1500);
    let seed: u64 = std::env::var("SEXTANT_POOL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_cafe);
    eprintln!("pool differential: {steps} steps, seed {seed}");
    let mut rng = Rng(seed | 1);

    let net = testnet(true);
    let devnet = &net.devnet;
    let url = devnet.rpc_url.clone();
    let deployer = devnet.accounts[0].address.clone();
    let client = Client { rpc: &url };
    let root = sextant_devnet::find_root().unwrap();
    let bytecode = |name: &str| -> Vec<u8> {
        let path = root.join(format!("contracts/out/{name}.json"));
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        unhex(v["bytecode"].as_str().unwrap())
    };
    let deploy = |what: &str, code: Vec<u8>| -> Address {
        let r = client.send(what, &deployer, None, &code, 0).unwrap();
        r["contractAddress"].as_str().unwrap().parse().unwrap()
    };
    let token = |sym: &str| {
        let mut code = bytecode("TestToken");
        code.extend(encode(&[Value::Str(format!("{sym} (pool test)")), Value::Str(sym.into()), Value::Uint(18)]));
        deploy(sym, code)
    };
    let (a, b) = (token("TKA"), token("TKB"));
    let driver = deploy("PoolDriver", bytecode("PoolDriver"));
    for t in [a, b] {
        let mint = call("mint(address,uint256)", &[Value::Address(driver.to_string()), Value::Uint(10u128.pow(36))]);
        client.send("fund driver", &deployer, Some(&t.to_string()), &mint, 0).unwrap();
    }
    let factory = &devnet.contracts["UniswapV3Factory"];
    let args = [Value::Address(a.to_string()), Value::Address(b.to_string()), Value::Uint(500)];
    client.send("createPool", &deployer, Some(factory), &call("createPool(address,address,uint24)", &args), 0).unwrap();
    let ret = client.view(factory, &call("getPool(address,address,uint24)", &args)).unwrap();
    let pool_addr: Address = sextant_devnet::abi::word_address(&ret, 0).unwrap().parse().unwrap();
    let chain = Chain { url: url.clone(), deployer: deployer.clone() };

    // Start near tick 23,027 (a price of about 10) but not on a tick boundary.
    let start = sqrt_ratio_at_tick(23_027).unwrap() + U256::from(123_456_789u64);
    chain.send("initialize", pool_addr, IPoolState::initializeCall { sqrtPriceX96: U160::from(start) }.abi_encode());
    let mut pool = Pool::new(500, 10, start).unwrap();

    // A fixed menu of ranges (positions keyed by owner and range, as the pool keys them), one of them full range.
    let centre = pool.tick - pool.tick.rem_euclid(10);
    let mut ranges = vec![(-887_270, 887_270), (centre - 2_000, centre + 2_000)];
    while ranges.len() < 16 {
        let lo = centre - 3_000 + 10 * rng.below(600) as i32;
        let hi = lo + 10 * (1 + rng.below(300) as i32);
        ranges.push((lo, hi));
    }
    ranges.sort();
    ranges.dedup();
    let mut touched: Vec<i32> = ranges.iter().flat_map(|&(l, u)| [l, u]).collect();
    touched.sort();
    touched.dedup();
    let full = ranges.iter().position(|&r| r == (-887_270, 887_270)).unwrap();
    let wide = ranges.iter().position(|&r| r == (centre - 2_000, centre + 2_000)).unwrap();

    let mut counts = [0usize; 7];
    let mut crossings = 0u32;
    let mut unfunded = 0;
    for step in 0..steps {
        let before = pool.clone();
        // The first steps provide liquidity; then mostly swaps.
        let roll = if step < 10 { 0 } else { rng.below(100) };
        let (what, data, rust): (String, Vec<u8>, Result<Vec<u8>, String>) = if step == steps / 2 {
            counts[5] += 1;
            let data = IPoolState::setFeeProtocolCall { feeProtocol0: 4, feeProtocol1: 6 }.abi_encode();
            let r = pool.set_fee_protocol(4, 6).map(|()| Vec::new()).map_err(|e| e.to_string());
            ("setFeeProtocol(4, 6)".into(), data, r)
        } else if roll < 12 {
            counts[0] += 1;
            let i = match step {
                0 => full,
                1 => wide,
                _ => rng.below(ranges.len() as u64) as usize,
            };
            let (l, u) = ranges[i];
            let amount = if step < 2 { 10u128.pow(21) } else { rng.magnitude(9, 20) };
            let data = IDriver::mintCall { pool: pool_addr, lower: i24(l), upper: i24(u), amount }.abi_encode();
            let r = pool
                .mint(driver, l, u, amount)
                .map(|(x, y)| IDriver::mintCall::abi_encode_returns(&IDriver::mintReturn { _0: x, _1: y }))
                .map_err(|e| e.to_string());
            (format!("mint {amount} in [{l}, {u}]"), data, r)
        } else if roll < 20 {
            counts[1] += 1;
            let (l, u) = ranges[rng.below(ranges.len() as u64) as usize];
            let have = pool.positions.get(&(driver, l, u)).map_or(0, |p| p.liquidity);
            let amount = match rng.below(3) {
                0 => have,
                1 => have / (1 + u128::from(rng.below(5))),
                _ => rng.magnitude(6, 19),
            };
            let data = IDriver::burnCall { pool: pool_addr, lower: i24(l), upper: i24(u), amount }.abi_encode();
            let r = pool
                .burn(driver, l, u, amount)
                .map(|(x, y)| IDriver::burnCall::abi_encode_returns(&IDriver::burnReturn { _0: x, _1: y }))
                .map_err(|e| e.to_string());
            (format!("burn {amount} of [{l}, {u}] (holding {have})"), data, r)
        } else if (26..29).contains(&roll) {
            counts[6] += 1;
            // Borrow part of what the pool holds (more would fail its transfer, which is not the maths).
            let (t0, t1) = if a < b { (a, b) } else { (b, a) };
            let held = |t: Address| {
                let out =
                    chain.try_call(t, &call("balanceOf(address)", &[Value::Address(pool_addr.to_string())])).unwrap();
                U256::from_be_slice(&out)
            };
            let (h0, h1) = (held(t0), held(t1));
            let part = |h: U256, r: u64| h * U256::from(r) / U256::from(1_000u32);
            let (a0, a1) = (part(h0, rng.below(1_000)), part(h1, rng.below(1_000)));
            let data = IDriver::flashCall { pool: pool_addr, amount0: a0, amount1: a1 }.abi_encode();
            let r = pool
                .flash_fees(a0, a1)
                .and_then(|(f0, f1)| pool.flash_paid(f0, f1))
                .map(|()| Vec::new())
                .map_err(|e| e.to_string());
            (format!("flash {a0} / {a1}"), data, r)
        } else if roll < 26 {
            counts[2] += 1;
            let (l, u) = ranges[rng.below(ranges.len() as u64) as usize];
            let (m0, m1) =
                if rng.below(2) == 0 { (u128::MAX, u128::MAX) } else { (rng.magnitude(3, 18), rng.magnitude(3, 18)) };
            let data =
                IDriver::collectCall { pool: pool_addr, lower: i24(l), upper: i24(u), max0: m0, max1: m1 }.abi_encode();
            let (x, y) = pool.collect(driver, l, u, m0, m1);
            let r = Ok(IDriver::collectCall::abi_encode_returns(&IDriver::collectReturn { _0: x, _1: y }));
            (format!("collect [{l}, {u}]"), data, r)
        } else {
            // Random direction while the price is among the ranges; back towards them when it has run away, so
            // the history keeps crossing initialized ticks.
            let zero_for_one = if pool.tick > centre + 3_000 {
                true
            } else if pool.tick < centre - 3_000 {
                false
            } else {
                rng.below(2) == 0
            };
            let exact_in = rng.below(3) != 0;
            counts[if exact_in { 3 } else { 4 }] += 1;
            // Exact outputs stay below the pool's depth: asking for more than it holds pushes the price to the end of
            // its range and the input past any balance (the driver's transfer would fail, not the maths).
            let magnitude = I256::try_from(rng.magnitude(8, if exact_in { 21 } else { 19 })).unwrap();
            let amount = if exact_in { magnitude } else { -magnitude };
            let limit = match rng.below(4) {
                0 if zero_for_one => MIN_SQRT_RATIO + U256::from(1u8),
                0 => MAX_SQRT_RATIO - U256::from(1u8),
                // Sometimes on the wrong side: both must refuse it ("SPL").
                1 => sqrt_ratio_at_tick((pool.tick + rng.below(400) as i32 - 200).clamp(-887_000, 887_000)).unwrap(),
                _ => {
                    let d = 50 + rng.below(4_000) as i32;
                    let t = pool.tick + if zero_for_one { -d } else { d };
                    sqrt_ratio_at_tick(t.clamp(-887_000, 887_000)).unwrap()
                }
            };
            let data = IDriver::swapCall {
                pool: pool_addr,
                zeroForOne: zero_for_one,
                amountSpecified: amount,
                limit: U160::from(limit),
            }
            .abi_encode();
            let r = pool
                .swap(zero_for_one, amount, limit)
                .map(|s| {
                    crossings += s.ticks_crossed;
                    IDriver::swapCall::abi_encode_returns(&IDriver::swapReturn { _0: s.amount0, _1: s.amount1 })
                })
                .map_err(|e| e.to_string());
            (format!("swap {} {amount} to limit {limit}", if zero_for_one { "0->1" } else { "1->0" }), data, r)
        };
        let target = if what.starts_with("setFeeProtocol") { pool_addr } else { driver };
        let contract = chain.try_call(target, &data);
        match (&contract, &rust) {
            (Ok(c), Ok(r)) => {
                assert_eq!(c, r, "step {step}: {what}: returned amounts differ");
                chain.send(&what, target, data);
            }
            (Err(_), Err(_)) => {}
            // ERC20InsufficientBalance from the driver's payment: a swap into thin liquidity, or a mint at a price
            // near the end of the range, that needs more than the driver holds (10^36). The Rust pool agrees it
            // needs that much; the step is dropped on both sides.
            (Err(e), Ok(r)) if e.contains("0xe450d38c") && (what.starts_with("swap") || what.starts_with("mint")) => {
                let needed = if what.starts_with("swap") {
                    let out = IDriver::swapCall::abi_decode_returns(r).unwrap();
                    out._0.max(out._1).into_raw()
                } else {
                    let out = IDriver::mintCall::abi_decode_returns(r).unwrap();
                    out._0.max(out._1)
                };
                assert!(needed > U256::from(10u128.pow(35)), "step {step}: {what}: unfunded but needs only {needed}");
                pool = before;
                unfunded += 1;
            }
            _ => panic!("step {step}: {what}: contract {contract:?} but Rust {rust:?}"),
        }
        compare(&url, pool_addr, driver, &pool, &ranges, &touched, &format!("step {step} ({what})"));
    }
    eprintln!(
        "{steps} steps: {} mints, {} burns, {} collects, {} flash loans, {} exact-in and {} exact-out swaps, {} fee switch; \
         {crossings} initialized ticks crossed; {unfunded} steps beyond the driver's funds dropped",
        counts[0], counts[1], counts[2], counts[6], counts[3], counts[4], counts[5]
    );
    // The default run makes over a thousand swaps; shorter runs (SEXTANT_POOL_STEPS) about two thirds of their steps.
    assert!(counts[3] + counts[4] >= 1_000.min(steps * 3 / 5), "too few swaps: {}", counts[3] + counts[4]);
    assert!(crossings >= 200.min(steps as u32 / 5), "too few tick crossings to prove anything: {crossings}");
}

/// Reads the contract's state in one batch and compares it with the Rust pool's.
fn compare(
    url: &str,
    pool_addr: Address,
    driver: Address,
    pool: &Pool,
    ranges: &[(i32, i32)],
    touched: &[i32],
    ctx: &str,
) {
    let view = |data: Vec<u8>| {
        ("eth_call", serde_json::json!([{"to": pool_addr.to_string(), "data": format!("0x{}", hex(&data))}, "latest"]))
    };
    let mut calls = vec![
        view(IPoolState::slot0Call {}.abi_encode()),
        view(IPoolState::liquidityCall {}.abi_encode()),
        view(IPoolState::feeGrowthGlobal0X128Call {}.abi_encode()),
        view(IPoolState::feeGrowthGlobal1X128Call {}.abi_encode()),
        view(IPoolState::protocolFeesCall {}.abi_encode()),
    ];
    calls.extend(touched.iter().map(|&t| view(IPoolState::ticksCall { tick: i24(t) }.abi_encode())));
    calls.extend(
        ranges
            .iter()
            .map(|&(l, u)| view(IPoolState::positionsCall { key: position_key(driver, l, u).into() }.abi_encode())),
    );
    let out = rpc_batch(url, &calls).unwrap();
    let raw = |i: usize| unhex(out[i].as_str().unwrap());
    let slot0 = IPoolState::slot0Call::abi_decode_returns(&raw(0)).unwrap();
    assert_eq!(U256::from(slot0.sqrtPriceX96), pool.sqrt_price_x96, "sqrtPriceX96 after {ctx}");
    assert_eq!(slot0.tick.as_i32(), pool.tick, "tick after {ctx}");
    assert_eq!(
        IPoolState::liquidityCall::abi_decode_returns(&raw(1)).unwrap(),
        pool.liquidity,
        "liquidity after {ctx}"
    );
    let g0 = IPoolState::feeGrowthGlobal0X128Call::abi_decode_returns(&raw(2)).unwrap();
    let g1 = IPoolState::feeGrowthGlobal1X128Call::abi_decode_returns(&raw(3)).unwrap();
    assert_eq!((g0, g1), (pool.fee_growth_global0_x128, pool.fee_growth_global1_x128), "fee growth after {ctx}");
    let pf = IPoolState::protocolFeesCall::abi_decode_returns(&raw(4)).unwrap();
    assert_eq!((pf.token0, pf.token1), (pool.protocol_fees0, pool.protocol_fees1), "protocol fees after {ctx}");
    for (i, &t) in touched.iter().enumerate() {
        let c = IPoolState::ticksCall::abi_decode_returns(&raw(5 + i)).unwrap();
        let r = pool.ticks.get(&t).copied().unwrap_or(TickInfo::default());
        assert_eq!(
            (c.liquidityGross, c.liquidityNet, c.feeGrowthOutside0X128, c.feeGrowthOutside1X128, c.initialized),
            (
                r.liquidity_gross,
                r.liquidity_net,
                r.fee_growth_outside0_x128,
                r.fee_growth_outside1_x128,
                pool.ticks.contains_key(&t)
            ),
            "tick {t} after {ctx}"
        );
    }
    for (i, &(l, u)) in ranges.iter().enumerate() {
        let c = IPoolState::positionsCall::abi_decode_returns(&raw(5 + touched.len() + i)).unwrap();
        let r = pool.positions.get(&(driver, l, u)).copied().unwrap_or(PositionInfo::default());
        assert_eq!(
            (c.liquidity, c.feeGrowthInside0LastX128, c.feeGrowthInside1LastX128, c.tokensOwed0, c.tokensOwed1),
            (
                r.liquidity,
                r.fee_growth_inside0_last_x128,
                r.fee_growth_inside1_last_x128,
                r.tokens_owed0,
                r.tokens_owed1
            ),
            "position [{l}, {u}] after {ctx}"
        );
    }
}
