//! Native Uniswap v3 swaps against the same swaps on the real pool bytecode in an in-process EVM (revm), bit for
//! bit. Deploys two OpenZeppelin test tokens, the `UniswapV3Factory` from `@uniswap/v3-core`, a 0.05 % pool and
//! Sextant's `PoolDriver` into revm's in-memory database, mints positions over a spread of ranges, then times the
//! same sequence of swaps (both directions, exact in and exact out, many tick crossings) in the EVM and in
//! `sextant_protocols::uniswap_v3::Pool`, checking every swap's amounts agree.
//!
//! `cargo run --release -p sextant-bench -- [SWAPS] [--anvil N]` (default 20,000 swaps); numbers go to
//! docs/BENCHMARKS.md. `--anvil N` also runs the first N swaps on the same contracts in anvil, one transaction and
//! its receipt each over JSON-RPC on loopback, as a script driving a local node or a fork would.

use alloy_primitives::{Address, I256, U256, aliases::I24, aliases::U160};
use alloy_sol_types::{SolCall, sol};
use revm::context::TxEnv;
use revm::context_interface::result::{ExecutionResult, Output};
use revm::database::InMemoryDB;
use revm::primitives::TxKind;
use revm::{Context, ExecuteCommitEvm, MainBuilder, MainContext};
use sextant_data::synth_pool::limit_for;
use sextant_devnet::abi::{hex, hex_decode};
use sextant_protocols::uniswap_v3::Pool;
use sextant_protocols::uniswap_v3::math::sqrt_ratio_at_tick;
use std::path::PathBuf;
use std::time::Instant;

sol! {
    function createPool(address tokenA, address tokenB, uint24 fee) external returns (address pool);
    function getPool(address tokenA, address tokenB, uint24 fee) external view returns (address pool);
    function initialize(uint160 sqrtPriceX96) external;
    function mint(address to, uint256 amount) external;
    interface IDriver {
        function mint(address pool, int24 lower, int24 upper, uint128 amount) external returns (uint256, uint256);
        function swap(address pool, bool zeroForOne, int256 amountSpecified, uint160 limit) external returns (int256, int256);
    }
}

fn root() -> PathBuf {
    let mut dir = std::env::current_dir().expect("a current directory");
    while !dir.join("node_modules/@uniswap/v3-core").is_dir() {
        assert!(dir.pop(), "run from the repository (node_modules with @uniswap/v3-core is needed: npm ci)");
    }
    dir
}

fn bytecode(path: PathBuf) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("artifact")).expect("json");
    hex_decode(v["bytecode"].as_str().expect("bytecode").trim_start_matches("0x")).expect("hex bytecode")
}

const USAGE: &str = "usage: sextant-bench [SWAPS] [--anvil N]

Times SWAPS Uniswap v3 swaps (default 20000) on the real pool bytecode in revm and in Sextant's native pool,
checking every swap's amounts are equal. --anvil N also runs the first N of them on the same contracts in anvil
over JSON-RPC (node_modules from `npm ci` must hold anvil and the contract artifacts).";

/// The creation code of the bench's contracts, in the order both EVMs deploy them: two 18-decimal test tokens (TKA,
/// TKB), the `UniswapV3Factory` and Sextant's `PoolDriver`.
fn contract_codes(root: &std::path::Path) -> [Vec<u8>; 4] {
    let token = |sym: &str| {
        let mut code = bytecode(root.join("contracts/out/TestToken.json"));
        code.extend(alloy_sol_types::SolValue::abi_encode_params(&(
            format!("{sym} bench"),
            sym.to_string(),
            U256::from(18u8),
        )));
        code
    };
    [
        token("TKA"),
        token("TKB"),
        bytecode(
            root.join("node_modules/@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json"),
        ),
        bytecode(root.join("contracts/out/PoolDriver.json")),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let mut swaps = 20_000usize;
    let mut anvil_swaps = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--anvil" => anvil_swaps = Some(it.next().and_then(|n| n.parse::<usize>().ok()).expect(USAGE)),
            n => swaps = n.parse().expect(USAGE),
        }
    }
    let root = root();
    let caller = Address::repeat_byte(0x11);
    let mut evm = Context::mainnet()
        .with_db(InMemoryDB::default())
        .modify_cfg_chained(|c| c.disable_nonce_check = true)
        .build_mainnet();
    let mut exec = |kind: TxKind, data: Vec<u8>| -> Result<Output, String> {
        let tx = TxEnv::builder().caller(caller).kind(kind).data(data.into()).gas_limit(16_000_000).build_fill();
        match evm.transact_commit(tx) {
            Ok(ExecutionResult::Success { output, .. }) => Ok(output),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(format!("{e:?}")),
        }
    };
    let mut deploy = |code: Vec<u8>| -> Address {
        match exec(TxKind::Create, code).expect("deploys") {
            Output::Create(_, Some(a)) => a,
            other => panic!("no address: {other:?}"),
        }
    };
    let [tka, tkb, factory_code, driver_code] = contract_codes(&root);
    let (a, b) = (deploy(tka), deploy(tkb));
    let factory = deploy(factory_code);
    let driver = deploy(driver_code);
    let call =
        |exec: &mut dyn FnMut(TxKind, Vec<u8>) -> Result<Output, String>, to: Address, data: Vec<u8>| -> Vec<u8> {
            match exec(TxKind::Call(to), data).expect("call succeeds") {
                Output::Call(b) => b.to_vec(),
                Output::Create(b, _) => b.to_vec(),
            }
        };
    for t in [a, b] {
        call(&mut exec, t, mintCall { to: driver, amount: U256::from(10u128.pow(36)) }.abi_encode());
    }
    let out = call(
        &mut exec,
        factory,
        createPoolCall { tokenA: a, tokenB: b, fee: alloy_primitives::aliases::U24::from(500) }.abi_encode(),
    );
    let pool_addr = createPoolCall::abi_decode_returns(&out).expect("pool address");
    let start = sqrt_ratio_at_tick(23_027).expect("tick") + U256::from(123_456_789u64);
    call(&mut exec, pool_addr, initializeCall { sqrtPriceX96: U160::from(start) }.abi_encode());
    let mut pool = Pool::new(500, 10, start).expect("pool");

    // Liquidity: a full-range position and 40 ranges around the price, so swaps cross many initialized ticks.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let centre = pool.tick - pool.tick.rem_euclid(10);
    let mut ranges = vec![(-887_270, 887_270)];
    for _ in 0..40 {
        let lo = centre - 2_000 + 10 * rand(300) as i32;
        ranges.push((lo, lo + 10 * (1 + rand(200) as i32)));
    }
    let mut minted = Vec::with_capacity(ranges.len());
    for (i, &(l, u)) in ranges.iter().enumerate() {
        let amount = if i == 0 { 10u128.pow(22) } else { 10u128.pow(18) * (1 + u128::from(rand(1000))) };
        minted.push((l, u, amount));
        call(
            &mut exec,
            driver,
            IDriver::mintCall {
                pool: pool_addr,
                lower: I24::try_from(l).unwrap(),
                upper: I24::try_from(u).unwrap(),
                amount,
            }
            .abi_encode(),
        );
        pool.mint(driver, l, u, amount).expect("mint");
    }

    // The swaps: sizes that move the price across a few ranges, back and forth.
    let plan: Vec<(bool, I256)> = (0..swaps)
        .map(|i| {
            let zero_for_one = i % 2 == 0;
            let size = I256::try_from(10u128.pow(17) * (1 + u128::from(rand(2_000)))).unwrap();
            (zero_for_one, if rand(3) == 0 { -size } else { size })
        })
        .collect();

    let t = Instant::now();
    let mut evm_results = Vec::with_capacity(swaps);
    for &(z, amount) in &plan {
        let data = IDriver::swapCall {
            pool: pool_addr,
            zeroForOne: z,
            amountSpecified: amount,
            limit: U160::from(limit_for(z)),
        }
        .abi_encode();
        let out = call(&mut exec, driver, data);
        let r = IDriver::swapCall::abi_decode_returns(&out).expect("swap returns");
        evm_results.push((r._0, r._1));
    }
    let evm_time = t.elapsed();

    // The native side takes about a hundredth of the EVM's time, so one pass is at the mercy of the machine's
    // noise: it runs `SEXTANT_BENCH_NATIVE_PASSES` times (default 20), each from a copy of the same starting pool,
    // and the fastest pass counts. Every pass must give the EVM's results.
    let passes: usize = std::env::var("SEXTANT_BENCH_NATIVE_PASSES").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut native_time = std::time::Duration::MAX;
    let mut times = Vec::with_capacity(passes);
    let mut crossed = 0u64;
    let mut native_results = Vec::with_capacity(swaps);
    for _ in 0..passes.max(1) {
        let mut run = pool.clone();
        native_results = Vec::with_capacity(swaps);
        crossed = 0;
        let t = Instant::now();
        for &(z, amount) in &plan {
            let r = run.swap(z, amount, limit_for(z)).expect("native swap");
            crossed += u64::from(r.ticks_crossed);
            native_results.push((r.amount0, r.amount1));
        }
        let took = t.elapsed();
        times.push(took);
        native_time = native_time.min(took);
        let mismatches = evm_results.iter().zip(&native_results).filter(|(a, b)| a != b).count();
        assert_eq!(mismatches, 0, "{mismatches} of {swaps} swaps differ between the EVM and the native pool");
    }
    times.sort();
    let native_median = times[times.len() / 2];
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / swaps as f64;
    println!(
        "swaps: {swaps}, initialized ticks crossed: {crossed} ({:.1} per swap), all {swaps} bit-exact",
        crossed as f64 / swaps as f64
    );
    println!(
        "EVM (revm, real UniswapV3Pool bytecode): {:.2} us per swap ({:.3} s)",
        per(evm_time),
        evm_time.as_secs_f64()
    );
    println!(
        "native (sextant_protocols::uniswap_v3::Pool): {:.3} us per swap ({:.4} s), fastest of {} passes; median {:.3} us",
        per(native_time),
        native_time.as_secs_f64(),
        times.len(),
        per(native_median),
    );
    println!(
        "ratio: {:.0}x (median pass: {:.0}x)",
        evm_time.as_secs_f64() / native_time.as_secs_f64(),
        evm_time.as_secs_f64() / native_median.as_secs_f64()
    );
    if let Some(n) = anvil_swaps {
        let n = n.min(swaps);
        let (took, round_trip) = anvil_side(&root, &minted, start, &plan[..n], &native_results[..n]);
        println!(
            "EVM (anvil, real UniswapV3Pool bytecode, JSON-RPC on loopback): {:.1} us per swap ({n} swaps, {:.2} s; an \
             empty call's round trip {:.1} us), all {n} bit-exact",
            took.as_secs_f64() * 1e6 / n as f64,
            took.as_secs_f64(),
            round_trip.as_secs_f64() * 1e6,
        );
        println!(
            "ratio to native: {:.0}x (median pass: {:.0}x)",
            took.as_secs_f64() / n as f64 / (native_time.as_secs_f64() / swaps as f64),
            took.as_secs_f64() / n as f64 / (native_median.as_secs_f64() / swaps as f64),
        );
    }
}

/// Deploys the same tokens, factory, pool (at `start`), driver and positions (`ranges`, the same amounts) into a
/// fresh anvil, then sends the `plan`'s swaps one at a time, each a transaction whose receipt is awaited before
/// the next (anvil mines every transaction as it arrives). Checks every swap's amounts in the pool's `Swap` event
/// against `expected`; returns the time of the swaps and the mean round trip of an empty call.
fn anvil_side(
    root: &std::path::Path,
    ranges: &[(i32, i32, u128)],
    start: U256,
    plan: &[(bool, I256)],
    expected: &[(I256, I256)],
) -> (std::time::Duration, std::time::Duration) {
    use sextant_devnet::{Client, rpc_call};
    let state_dir = std::env::temp_dir().join(format!("sextant-bench-anvil-{}", std::process::id()));
    let opts =
        sextant_devnet::UpOptions { port: 0, state_dir: state_dir.clone(), anvil: None, deploy: false, fork_url: None };
    let devnet = sextant_devnet::up(&opts).expect("anvil starts (npm ci installs it)");
    // anvil stops when this guard drops, whatever happens below.
    struct Down(std::path::PathBuf);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = sextant_devnet::down(&self.0);
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _down = Down(state_dir);
    let url = devnet.rpc_url.as_str();
    let from = devnet.accounts[0].address.clone();
    let client = Client { rpc: url };
    let deploy = |code: Vec<u8>| -> Address {
        let r = client.send("deploy", &from, None, &code, 0).expect("deploys");
        r["contractAddress"].as_str().expect("an address").parse().expect("an address")
    };
    let send = |to: Address, data: Vec<u8>| {
        client.send("setup", &from, Some(&to.to_string()), &data, 0).expect("setup transaction");
    };
    let [tka, tkb, factory_code, driver_code] = contract_codes(root);
    let (a, b) = (deploy(tka), deploy(tkb));
    let factory = deploy(factory_code);
    let driver = deploy(driver_code);
    for t in [a, b] {
        send(t, mintCall { to: driver, amount: U256::from(10u128.pow(36)) }.abi_encode());
    }
    let fee = alloy_primitives::aliases::U24::from(500);
    send(factory, createPoolCall { tokenA: a, tokenB: b, fee }.abi_encode());
    let ret =
        client.view(&factory.to_string(), &getPoolCall { tokenA: a, tokenB: b, fee }.abi_encode()).expect("getPool");
    let pool_addr = getPoolCall::abi_decode_returns(&ret).expect("pool address");
    send(pool_addr, initializeCall { sqrtPriceX96: U160::from(start) }.abi_encode());
    for &(lower, upper, amount) in ranges {
        let (lower, upper) = (I24::try_from(lower).unwrap(), I24::try_from(upper).unwrap());
        send(driver, IDriver::mintCall { pool: pool_addr, lower, upper, amount }.abi_encode());
    }

    let tx = |data: Vec<u8>| {
        serde_json::json!([{
            "from": from, "to": driver.to_string(), "gas": "0x1000000",
            "data": hex(&data),
        }])
    };
    let t = Instant::now();
    let mut receipts = Vec::with_capacity(plan.len());
    for &(z, amount) in plan {
        let data = IDriver::swapCall {
            pool: pool_addr,
            zeroForOne: z,
            amountSpecified: amount,
            limit: U160::from(limit_for(z)),
        }
        .abi_encode();
        let hash = rpc_call(url, "eth_sendTransaction", tx(data)).expect("swap sent");
        // anvil mines as the transaction arrives; the receipt is asked for until it is there (bounded).
        let receipt = (0..10_000)
            .map(|_| rpc_call(url, "eth_getTransactionReceipt", serde_json::json!([hash])).expect("receipt"))
            .find(|r| !r.is_null())
            .expect("a receipt within 10,000 asks");
        assert_eq!(receipt["status"], "0x1", "swap reverted on anvil");
        receipts.push(receipt);
    }
    let took = t.elapsed();
    let t = Instant::now();
    for _ in 0..100 {
        rpc_call(url, "eth_blockNumber", serde_json::json!([])).expect("eth_blockNumber");
    }
    let round_trip = t.elapsed() / 100;

    // Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, ...).
    let topic = format!("{}", alloy_primitives::keccak256("Swap(address,address,int256,int256,uint160,uint128,int24)"));
    for (i, (receipt, want)) in receipts.iter().zip(expected).enumerate() {
        let log = receipt["logs"]
            .as_array()
            .and_then(|logs| logs.iter().find(|l| l["topics"][0].as_str() == Some(topic.as_str())))
            .unwrap_or_else(|| panic!("swap {i}: no Swap event"));
        let data = hex_decode(log["data"].as_str().expect("log data").trim_start_matches("0x")).expect("hex log data");
        let word = |k: usize| I256::from_raw(U256::from_be_slice(&data[32 * k..32 * (k + 1)]));
        assert_eq!((word(0), word(1)), *want, "swap {i}: anvil and the native pool differ");
    }
    (took, round_trip)
}
