//! The permissions module on a devnet (anvil from npm, Safe 1.4.1, Uniswap v3 from their npm artifacts, and
//! `contracts/out/SextantRoles.json`), against the off-chain checker: a derived policy is installed through the
//! Safe, then random calls (targets, selectors, parameters, values, operations, truncated calldata) are sent by the
//! deployment key through the module. On every case the checker's verdict (status and info) equals the module's;
//! every allowed call is mined and succeeds, sampled refused ones are mined and revert; allowances agree after each
//! spending; and no token leaves the Safe except to the pool the policy's router and position manager trade with.
//!
//! `SEXTANT_FUZZ_CASES` sets the number of cases (default 10,000), `SEXTANT_FUZZ_SEED` the seed.

use serde_json::{Value, json};
use sextant_chain::alloy::primitives::{Address, B256, Bytes, U256, aliases::I24, aliases::U24, aliases::U160};
use sextant_chain::alloy::sol_types::{SolCall, SolError, SolValue};
use sextant_chain::bindings::{IERC20, INonfungiblePositionManager, ISwapRouter, IWETH9};
use sextant_devnet::UpOptions;
use sextant_policy::{Checker, Needs, Policy, RolesAbi, Status, SwapVenue, TokenNeed, derive, module_calls};

sextant_chain::alloy::sol! {
    interface ITransfers {
        function transferFrom(address from, address to, uint256 amount) external returns (bool);
    }
}

struct Net {
    url: String,
    contracts: std::collections::BTreeMap<String, String>,
    accounts: Vec<sextant_devnet::Account>,
    dir: tempfile::TempDir,
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = sextant_devnet::down(self.dir.path());
    }
}

impl Net {
    fn up() -> Net {
        let dir = tempfile::tempdir().unwrap();
        let opts =
            UpOptions { port: 0, state_dir: dir.path().to_path_buf(), anvil: None, deploy: true, fork_url: None };
        let d = sextant_devnet::up(&opts).expect("devnet up");
        Net { url: d.rpc_url, contracts: d.contracts, accounts: d.accounts, dir }
    }

    fn rpc(&self, method: &str, params: Value) -> Value {
        sextant_devnet::rpc_call(&self.url, method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    fn contract(&self, name: &str) -> Address {
        self.contracts[name].parse().unwrap()
    }

    fn account(&self, role: &str) -> Address {
        self.accounts.iter().find(|a| a.role == role).unwrap().address.parse().unwrap()
    }

    /// Sends from an unlocked account; returns the receipt (mined with automine).
    fn send(&self, from: Address, to: Option<Address>, value: U256, data: &[u8]) -> Value {
        let mut tx = json!({"from": from.to_string(), "data": Bytes::copy_from_slice(data).to_string(),
            "value": format!("0x{value:x}"), "gas": "0x989680"});
        if let Some(to) = to {
            tx["to"] = json!(to.to_string());
        }
        let hash = self.rpc("eth_sendTransaction", json!([tx]));
        for _ in 0..500 {
            let r = self.rpc("eth_getTransactionReceipt", json!([hash]));
            if !r.is_null() {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("no receipt for {hash}");
    }

    /// `eth_call`: Ok(return data) or Err(revert data).
    fn call(&self, from: Address, to: Address, data: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
        let tx = json!({"from": from.to_string(), "to": to.to_string(), "data": Bytes::copy_from_slice(data).to_string(), "gas": "0x989680"});
        match sextant_devnet::rpc_call(&self.url, "eth_call", json!([tx, "latest"])) {
            Ok(v) => Ok(hex(v.as_str().unwrap())),
            Err(e) => {
                let text = e.to_string();
                let data = text.split("\"data\":\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("0x");
                Err(hex(data))
            }
        }
    }

    /// A Safe transaction by its owner (the pre-validated signature of the sender).
    fn safe_exec(&self, to: Address, data: Vec<u8>) {
        let safe = self.contract("Safe");
        let owner = self.account("safe_owner");
        let nonce = self.call(owner, safe, &hex("0xaffed0e0")).unwrap();
        let call = sextant_chain::Call { to, value: U256::ZERO, data: data.into(), label: String::new() };
        let tx = sextant_chain::safe::safe_tx(&call, U256::from_be_slice(&nonce).to::<u64>());
        let mut sig = [0u8; 65];
        sig[12..32].copy_from_slice(owner.as_slice());
        sig[64] = 1;
        let r = self.send(owner, Some(safe), U256::ZERO, &sextant_chain::safe::exec_transaction_calldata(&tx, &sig));
        assert_eq!(r["status"], "0x1", "Safe transaction to {to}");
        let success = "0x442e715f626346e8c54381002da614f62bee8d27386535b2521ec8540898556e"; // ExecutionSuccess
        assert!(r["logs"].as_array().unwrap().iter().any(|l| l["topics"][0] == success), "Safe call to {to} failed");
    }

    /// Deploys the module for the devnet's Safe and enables it (a Safe transaction by the owner).
    fn deploy_module(&self) -> Address {
        let safe = self.contract("Safe");
        let artifact: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts/out/SextantRoles.json"))
                .unwrap(),
        )
        .unwrap();
        let mut code = hex(artifact["bytecode"].as_str().unwrap());
        code.extend(safe.abi_encode());
        let r = self.send(self.account("safe_owner"), None, U256::ZERO, &code);
        assert_eq!(r["status"], "0x1", "module deployment: {r}");
        let module: Address = r["contractAddress"].as_str().unwrap().parse().unwrap();
        self.safe_exec(safe, hex(&format!("0x610b5925{:0>64}", hex_addr(module))));
        module
    }

    fn now(&self) -> u64 {
        let b = self.rpc("eth_getBlockByNumber", json!(["latest", false]));
        u64::from_str_radix(b["timestamp"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }
}

fn hex(s: &str) -> Vec<u8> {
    sextant_devnet::abi::hex_decode(s.trim_start_matches("0x")).unwrap_or_else(|| panic!("not hex: {s}"))
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct World {
    safe: Address,
    module: Address,
    weth: Address,
    usdc: Address,
    wbtc: Address,
    router: Address,
    npm: Address,
    pool: Address,
    attacker: Address,
    key: Address,
}

/// One random call: mostly shaped like the calls the policy is about, with its parameters drawn from values that
/// sit on both sides of every condition.
fn random_call(r: &mut Rng, w: &World) -> (Address, U256, Vec<u8>, u8) {
    let tokens = [w.weth, w.usdc, w.wbtc, w.attacker];
    let people = [w.safe, w.attacker, w.router, w.npm, w.key];
    let amounts = [
        U256::ZERO,
        U256::from(1_000u64),
        U256::from(10u64.pow(6)),
        U256::from(10u64.pow(15)),
        U256::from(10u128.pow(21)),
        U256::MAX,
    ];
    let amount = |r: &mut Rng| r.pick(&amounts);
    let targets = [w.weth, w.usdc, w.wbtc, w.router, w.npm, w.safe, w.module, w.pool, w.attacker];
    let (mut to, mut data): (Address, Vec<u8>) = match r.below(12) {
        0 | 1 => (
            r.pick(&tokens[..3]),
            IERC20::approveCall { spender: r.pick(&[w.router, w.npm, w.attacker, w.safe]), amount: amount(r) }
                .abi_encode(),
        ),
        2 => (r.pick(&tokens[..3]), IERC20::transferCall { to: r.pick(&people), amount: amount(r) }.abi_encode()),
        3 => (
            r.pick(&tokens[..3]),
            ITransfers::transferFromCall { from: w.safe, to: r.pick(&people), amount: amount(r) }.abi_encode(),
        ),
        4 | 5 => {
            let (a, b) = if r.chance(50) { (w.weth, w.usdc) } else { (w.usdc, w.weth) };
            let params = ISwapRouter::ExactInputSingleParams {
                tokenIn: if r.chance(85) { a } else { r.pick(&tokens) },
                tokenOut: if r.chance(85) { b } else { r.pick(&tokens) },
                fee: U24::from(r.pick(&[3000u32, 3000, 500, 10_000])),
                recipient: if r.chance(75) { w.safe } else { r.pick(&people) },
                deadline: U256::from(u64::MAX / 2),
                amountIn: U256::from(if a == w.weth { 10u64.pow(14) } else { 100_000 }),
                amountOutMinimum: U256::ZERO,
                sqrtPriceLimitX96: U160::ZERO,
            };
            (
                if r.chance(90) { w.router } else { r.pick(&targets) },
                ISwapRouter::exactInputSingleCall { params }.abi_encode(),
            )
        }
        6 => {
            let (t0, t1) = if w.weth < w.usdc { (w.weth, w.usdc) } else { (w.usdc, w.weth) };
            let params = INonfungiblePositionManager::MintParams {
                token0: if r.chance(85) { t0 } else { r.pick(&tokens) },
                token1: if r.chance(85) { t1 } else { r.pick(&tokens) },
                fee: U24::from(r.pick(&[3000u32, 3000, 3000, 500])),
                tickLower: I24::try_from(-887_220).unwrap(),
                tickUpper: I24::try_from(887_220).unwrap(),
                amount0Desired: U256::from(if t0 == w.weth { 10u64.pow(13) } else { 20_000 }),
                amount1Desired: U256::from(if t1 == w.weth { 10u64.pow(13) } else { 20_000 }),
                amount0Min: U256::ZERO,
                amount1Min: U256::ZERO,
                recipient: if r.chance(75) { w.safe } else { r.pick(&people) },
                deadline: U256::from(u64::MAX / 2),
            };
            (w.npm, INonfungiblePositionManager::mintCall { params }.abi_encode())
        }
        7 => {
            let params = INonfungiblePositionManager::CollectParams {
                tokenId: U256::from(r.below(4) + 1),
                recipient: if r.chance(60) { w.safe } else { r.pick(&people) },
                amount0Max: u128::MAX,
                amount1Max: u128::MAX,
            };
            (w.npm, INonfungiblePositionManager::collectCall { params }.abi_encode())
        }
        8 => {
            let id = U256::from(r.below(4) + 1);
            let data = match r.below(3) {
                0 => INonfungiblePositionManager::burnCall { tokenId: id }.abi_encode(),
                1 => ITransfers::transferFromCall { from: w.safe, to: w.attacker, amount: id }.abi_encode(),
                _ => INonfungiblePositionManager::decreaseLiquidityCall {
                    params: INonfungiblePositionManager::DecreaseLiquidityParams {
                        tokenId: id,
                        liquidity: 1,
                        amount0Min: U256::ZERO,
                        amount1Min: U256::ZERO,
                        deadline: U256::from(u64::MAX / 2),
                    },
                }
                .abi_encode(),
            };
            (w.npm, data)
        }
        9 => (w.weth, IWETH9::depositCall {}.abi_encode()),
        10 => {
            let n = r.below(40) as usize;
            (r.pick(&targets), (0..n).map(|_| r.next() as u8).collect())
        }
        _ => (w.weth, IWETH9::withdrawCall { amount: U256::from(10u64.pow(15)) }.abi_encode()),
    };
    if r.chance(5) {
        to = r.pick(&targets);
    }
    if r.chance(5) && !data.is_empty() {
        data.truncate(r.below(data.len() as u64) as usize);
    }
    let deposit = IWETH9::depositCall {}.abi_encode();
    let value = if data == deposit || r.chance(4) {
        r.pick(&[U256::ZERO, U256::from(10u64.pow(15)), U256::from(6 * 10u64.pow(17)), U256::from(10u64.pow(19))])
    } else {
        U256::ZERO
    };
    let operation = if r.chance(4) { 1 } else { 0 };
    (to, value, data, operation)
}

#[test]
fn module_and_checker_agree_on_random_calls_and_nothing_leaves_the_safe() {
    let cases: usize = std::env::var("SEXTANT_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let seed: u64 = std::env::var("SEXTANT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5e47_a471);
    eprintln!("fuzz: {cases} cases, seed {seed}");
    let net = Net::up();
    let safe = net.contract("Safe");
    let key = net.account("deployment_key");

    // Deploy the module for this Safe, enable it, and install the derived policy, all through the Safe.
    let module = net.deploy_module();

    let (weth, usdc) = (net.contract("WETH"), net.contract("USDC"));
    let needs = Needs {
        role: "fuzz".into(),
        chain: "devnet".into(),
        chain_id: 31337,
        safe,
        tokens: vec![
            TokenNeed { symbol: "WETH".into(), address: weth, approval_per_period: 3 * 10u128.pow(15) },
            TokenNeed { symbol: "USDC".into(), address: usdc, approval_per_period: 3_000_000 },
        ],
        swaps: Some((SwapVenue::V1(net.contract("SwapRouter")), vec![3000])),
        positions: Some(net.contract("NonfungiblePositionManager")),
        wrap: Some((weth, 10u128.pow(18))),
        lending: None,
        vaults: vec![],
        period_secs: 3600,
        pools: vec![("pool WETH/USDC 0.3%".into(), net.contract("pool_WETH_USDC_3000"))],
    };
    let policy: Policy = derive(&needs).unwrap();
    let calls: Vec<Bytes> = module_calls(&policy, key).unwrap().into_iter().map(|c| c.1).collect();
    net.safe_exec(module, RolesAbi::multicallCall { calls }.abi_encode());
    let applied_at = net.now();
    let mut checker = Checker::new(&policy, applied_at).unwrap();

    let w = World {
        safe,
        module,
        weth,
        usdc,
        wbtc: net.contract("WBTC"),
        router: net.contract("SwapRouter"),
        npm: net.contract("NonfungiblePositionManager"),
        pool: net.contract("pool_WETH_USDC_3000"),
        attacker: Address::repeat_byte(0xa7),
        key,
    };
    let mut r = Rng(seed | 1);
    let (mut allowed, mut succeeded, mut refused) = (0usize, 0usize, 0usize);
    let mut statuses = std::collections::BTreeMap::new();
    for case in 0..cases {
        // Refills: jump a whole period now and then (the clock stays well inside a period otherwise).
        if case % 1500 == 1499 {
            net.rpc("evm_increaseTime", json!([3600]));
            net.rpc("evm_mine", json!([]));
        }
        let (to, value, data, operation) = random_call(&mut r, &w);
        let now = net.now();
        let verdict = checker.check(to, value, &data, operation, now);
        let exec = RolesAbi::execTransactionWithRoleCall {
            to,
            value,
            data: data.clone().into(),
            operation,
            roleKey: policy.role_key,
            shouldRevert: false,
        }
        .abi_encode();
        let what = format!("case {case}: to {to} value {value} op {operation} data {}", Bytes::from(data.clone()));
        *statuses.entry(format!("{:?}", verdict.status)).or_insert(0usize) += 1;
        match net.call(key, module, &exec) {
            Ok(_) => assert!(verdict.allowed(), "{what}: the module allows it, the checker says {verdict:?}"),
            Err(revert) => {
                let v = RolesAbi::ConditionViolation::abi_decode(&revert)
                    .unwrap_or_else(|_| panic!("{what}: unexpected revert {}", Bytes::from(revert.clone())));
                assert_eq!(
                    (Status::from_u8(v.status), v.info),
                    (Some(verdict.status), verdict.info),
                    "{what}: module and checker disagree"
                );
            }
        }
        if verdict.allowed() {
            allowed += 1;
            let receipt = net.send(key, Some(module), U256::ZERO, &exec);
            assert_eq!(receipt["status"], "0x1", "{what}: an allowed call is mined and succeeds");
            let inner_ok = executed_ok(&receipt);
            succeeded += usize::from(inner_ok);
            checker.commit(&verdict, inner_ok);
            for c in &verdict.consumptions {
                let ret = net.call(key, module, &RolesAbi::accruedAllowanceCall { key: c.key }.abi_encode()).unwrap();
                let on_chain = U256::from_be_slice(&ret[..32]).to::<u128>();
                assert_eq!(on_chain, checker.allowance(c.key, net.now()), "{what}: allowance {}", c.key);
            }
        } else {
            refused += 1;
            if refused % 25 == 1 {
                let receipt = net.send(key, Some(module), U256::ZERO, &exec);
                assert_eq!(receipt["status"], "0x0", "{what}: a refused call reverts when mined");
            }
        }
    }
    eprintln!("fuzz: {allowed} allowed ({succeeded} succeeded inside the Safe), {refused} refused: {statuses:?}");
    assert!(allowed > cases / 20 && refused > cases / 4, "the generator reaches both sides of the policy");
    assert!(succeeded > 0, "some allowed calls moved funds");

    // No token left the Safe except to the addresses the policy names (swaps and mints pay the pool).
    let transfer = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
    let from_safe = format!("0x{:0>64}", hex_addr(safe));
    for token in [weth, usdc, w.wbtc] {
        let logs = net.rpc(
            "eth_getLogs",
            json!([{"address": token.to_string(), "fromBlock": "0x0", "toBlock": "latest", "topics": [transfer, from_safe]}]),
        );
        for l in logs.as_array().unwrap() {
            let to: Address = Address::from_slice(&hex(l["topics"][2].as_str().unwrap())[12..]);
            assert!(
                policy.counterparties.iter().any(|c| c.address == to),
                "token {token} left the Safe to {to}, which the policy does not name"
            );
        }
    }
}

fn hex_addr(a: Address) -> String {
    a.to_string().trim_start_matches("0x").to_lowercase()
}

/// The `success` flag of the module's ExecutedWithRole event in a receipt.
fn executed_ok(receipt: &Value) -> bool {
    let topic = B256::from(sextant_chain::alloy::primitives::keccak256(
        "ExecutedWithRole(bytes32,address,address,uint256,bytes4,uint8,bool)",
    ));
    let log = receipt["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["topics"][0] == topic.to_string())
        .unwrap_or_else(|| panic!("no ExecutedWithRole ({topic}) in {receipt}"));
    let data = hex(log["data"].as_str().unwrap());
    data[127] == 1
}

sextant_chain::alloy::sol! {
    /// Call shapes for the condition fuzz: nested calldata in an array, a dynamic struct, signed words, bytes,
    /// address arrays, ABI-encoded blobs, positional arrays.
    interface IShapes {
        struct Swap { address tokenIn; address tokenOut; uint24 fee; address recipient; uint256 amountIn; }
        struct Pair { uint256 x; bytes y; }
        function multicall(uint256 deadline, bytes[] data) external;
        function swap(Swap s) external;
        function f(uint256 a, int256 b, bytes c, address[] d, Pair e) external;
        function g(bytes blob) external;
        function h(uint256[] xs) external;
    }
}

/// The module's evaluator and the checker on every operator and parameter type, nested: a policy on call shapes
/// that do not exist on the devnet, judged by the module's `checkScope` view (no call is made) and by the checker,
/// on random calldata drawn around each condition's edges and then corrupted (truncated, offsets and lengths
/// overwritten, bytes flipped). Status and info must be equal on every case.
#[test]
fn module_and_checker_agree_on_every_operator_and_layout() {
    use sextant_chain::alloy::primitives::{FixedBytes, I256};
    use sextant_policy::{Allowance, Clearance, Condition as C, ExecOptions, Function, Operator, ParamType, Target};
    let cases: usize =
        std::env::var("SEXTANT_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).map_or(3_000, |n: usize| n / 3);
    let seed: u64 = std::env::var("SEXTANT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x000c_0de5);
    let net = Net::up();
    let safe = net.contract("Safe");
    let key = net.account("deployment_key");
    let module = net.deploy_module();
    let (a, b, thief) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb), Address::repeat_byte(0x7e));
    let shapes = Address::repeat_byte(0x5b);
    let (k1, k2) = (sextant_policy::key("shapes-amount"), sextant_policy::key("shapes-calls"));
    let word = |x: U256| Bytes::from(x.to_be_bytes::<32>().to_vec());
    let node = |t: ParamType, o: Operator, v: Bytes, kids: Vec<C>| C {
        param_type: t,
        operator: o,
        comp_value: v,
        children: kids,
    };
    let hello = Bytes::from(b"hello, permissions".to_vec()).abi_encode();
    let func = |sel: [u8; 4], sig: &str, c: C| Function {
        selector: FixedBytes(sel),
        signature: sig.into(),
        options: ExecOptions::None,
        condition: Some(c),
        params: vec![],
        why: "fuzz".into(),
    };
    let swap_tuple = C::tuple(vec![
        C::one_of_addresses(&[a, b]),
        C::or(vec![C::eq_address(a), C::eq_address(b)]),
        node(ParamType::None, Operator::Nor, Bytes::new(), vec![C::eq(U256::from(500)), C::eq(U256::from(10_000))]),
        C::avatar(),
    ]);
    let functions = vec![
        func(
            IShapes::multicallCall::SELECTOR,
            "multicall(uint256,bytes[])",
            C::calldata(vec![
                C::gt(U256::from(100)),
                C::every(C::inner_call(IShapes::swapCall::SELECTOR, vec![swap_tuple.clone()])),
            ]),
        ),
        func(IShapes::swapCall::SELECTOR, "swap", C::calldata(vec![swap_tuple])),
        func(
            IShapes::fCall::SELECTOR,
            "f",
            C::calldata(vec![
                C::and(vec![C::gt(U256::from(10)), C::lt(U256::from(1000))]),
                node(ParamType::Static, Operator::SignedIntLessThan, word(U256::ZERO), vec![]),
                node(ParamType::Dynamic, Operator::EqualTo, Bytes::from(hello.clone()), vec![]),
                node(ParamType::Array, Operator::ArraySome, Bytes::new(), vec![C::avatar()]),
                C::tuple(vec![C::within_allowance(k1), C::any_of_type(ParamType::Dynamic)]),
                C::call_within_allowance(k2),
            ]),
        ),
        func(
            IShapes::gCall::SELECTOR,
            "g(bytes)",
            C::calldata(vec![node(
                ParamType::AbiEncoded,
                Operator::Matches,
                Bytes::new(),
                vec![C::eq(U256::from(7)), C::lt(U256::from(100))],
            )]),
        ),
        func(
            IShapes::hCall::SELECTOR,
            "h(uint256[])",
            C::calldata(vec![node(
                ParamType::Array,
                Operator::Matches,
                Bytes::new(),
                vec![C::eq(U256::from(1)), C::eq(U256::from(2))],
            )]),
        ),
    ];
    let allowance = |k, name: &str, balance| Allowance {
        key: k,
        name: name.into(),
        balance,
        max_refill: 0,
        refill: 0,
        period_secs: 0,
        timestamp: 0,
        why: "fuzz".into(),
    };
    let policy = Policy {
        version: Policy::VERSION,
        role: "shapes".into(),
        role_key: sextant_policy::key("shapes"),
        chain: "devnet".into(),
        chain_id: 31337,
        safe,
        targets: vec![Target { address: shapes, name: "shapes".into(), clearance: Clearance::Functions(functions) }],
        allowances: vec![allowance(k1, "amount", 500), allowance(k2, "calls", 0)],
        ether_allowance: None,
        counterparties: vec![],
    };
    let calls: Vec<Bytes> = module_calls(&policy, key).unwrap().into_iter().map(|c| c.1).collect();
    net.safe_exec(module, RolesAbi::multicallCall { calls }.abi_encode());
    let checker = Checker::new(&policy, net.now()).unwrap();

    let mut r = Rng(seed | 1);
    let mut statuses = std::collections::BTreeMap::new();
    for case in 0..cases {
        let addr = |r: &mut Rng| r.pick(&[a, b, thief, safe]);
        let swap = |r: &mut Rng| IShapes::Swap {
            tokenIn: addr(r),
            tokenOut: addr(r),
            fee: U24::from(r.pick(&[3000u32, 500, 10_000, 100])),
            recipient: if r.chance(70) { safe } else { addr(r) },
            amountIn: U256::from(r.next()),
        };
        let mut data = match r.below(6) {
            4 => IShapes::swapCall { s: swap(&mut r) }.abi_encode(),
            5 => {
                let mut d = IShapes::hCall { xs: vec![U256::from(1), U256::from(2)] }.abi_encode();
                d[..4].copy_from_slice(&(r.next() as u32).to_be_bytes());
                d
            }
            0 => {
                let n = r.below(4) as usize;
                let inner: Vec<Bytes> = (0..n)
                    .map(|_| {
                        let mut call = IShapes::swapCall { s: swap(&mut r) }.abi_encode();
                        if r.chance(10) {
                            call[0] ^= 1;
                        }
                        call.into()
                    })
                    .collect();
                IShapes::multicallCall { deadline: U256::from(r.pick(&[0u64, 100, 101, u64::MAX])), data: inner }
                    .abi_encode()
            }
            1 => IShapes::fCall {
                a: U256::from(r.pick(&[0u64, 10, 11, 999, 1000, 5000])),
                b: I256::try_from(r.pick(&[-5i64, -1, 0, 1, 7])).unwrap(),
                c: if r.chance(60) {
                    Bytes::from(b"hello, permissions".to_vec())
                } else {
                    Bytes::from(b"hello".to_vec())
                },
                d: (0..r.below(4)).map(|_| addr(&mut r)).collect(),
                e: IShapes::Pair {
                    x: U256::from(r.pick(&[0u64, 1, 300, 500, 501])),
                    y: Bytes::from(vec![7u8; r.below(70) as usize]),
                },
            }
            .abi_encode(),
            2 => {
                let blob =
                    (U256::from(r.pick(&[7u64, 8])), U256::from(r.pick(&[5u64, 99, 100, 1000]))).abi_encode_params();
                IShapes::gCall { blob: blob.into() }.abi_encode()
            }
            _ => IShapes::hCall { xs: (0..r.below(4)).map(|i| U256::from(r.pick(&[i + 1, 2, 9]))).collect() }
                .abi_encode(),
        };
        match r.below(10) {
            0 if data.len() > 4 => data.truncate(4 + r.below(data.len() as u64 - 4) as usize),
            1 if data.len() > 36 => {
                let at = 4 + 32 * r.below((data.len() as u64 - 4) / 32) as usize;
                let v = U256::from(r.pick(&[0u64, 1, 32, 64, 96, 1 << 20, u64::MAX]));
                data[at..at + 32].copy_from_slice(&v.to_be_bytes::<32>());
            }
            2 if data.len() > 4 => {
                let at = 4 + r.below(data.len() as u64 - 4) as usize;
                data[at] ^= 1 << r.below(8);
            }
            _ => {}
        }
        let verdict = checker.check(shapes, U256::ZERO, &data, 0, net.now());
        let q = RolesAbi::checkScopeCall {
            to: shapes,
            value: U256::ZERO,
            data: data.clone().into(),
            operation: 0,
            roleKey: policy.role_key,
        };
        let ret = net
            .call(key, module, &q.abi_encode())
            .unwrap_or_else(|e| panic!("case {case}: checkScope reverted: {}", Bytes::from(e)));
        let on_chain = RolesAbi::checkScopeCall::abi_decode_returns(&ret).unwrap();
        assert_eq!(
            (Status::from_u8(on_chain.status), on_chain.info),
            (Some(verdict.status), verdict.info),
            "case {case}: module and checker disagree on {}",
            Bytes::from(data)
        );
        *statuses.entry(format!("{:?}", verdict.status)).or_insert(0usize) += 1;
    }
    eprintln!("condition fuzz: {cases} cases: {statuses:?}");
    for s in [
        "Ok",
        "ParameterNotAllowed",
        "OrViolation",
        "NorViolation",
        "NoArrayElementPasses",
        "NotEveryArrayElementPasses",
        "ParameterLessThanAllowed",
        "ParameterGreaterThanAllowed",
        "AllowanceExceeded",
        "ParameterNotAMatch",
        "CalldataOutOfBounds",
        "FunctionNotAllowed",
    ] {
        assert!(statuses.contains_key(s), "the generator never reached {s}: {statuses:?}");
    }
}
