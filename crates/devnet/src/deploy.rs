//! Deploys the devnet's contracts from real artifacts: WETH9 (`@uniswap/v2-periphery`), two test tokens
//! (OpenZeppelin 5 compiled by the npm `solc`: `contracts/out/TestToken.json`), Uniswap v3's factory, swap router
//! and position manager (`@uniswap/v3-core`, `@uniswap/v3-periphery`), a WETH/USDC 0.3 % pool at 2000 USDC per WETH
//! with full-range liquidity, and a Safe 1.4.1 (singleton and proxy factory from `@safe-global/safe-contracts`) owned
//! by the `safe_owner` account and funded with ETH, WETH and USDC. Transactions go from anvil's unlocked default
//! accounts over raw JSON-RPC.

use crate::abi::{Value, call, hex, hex_decode, word_address};
use crate::{Account, Error, Result, rpc_call};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Price the WETH/USDC pool starts at, in USDC per WETH.
pub const WETH_PRICE_USDC: f64 = 2000.0;
/// Fee tier of the pool, in hundredths of a basis point.
pub const POOL_FEE_PIPS: u32 = 3000;
/// Full-range ticks for tick spacing 60.
const MIN_TICK: i128 = -887_220;
const MAX_TICK: i128 = 887_220;

/// A blocking JSON-RPC client for the devnet: sends transactions from anvil's unlocked accounts and reads views.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The endpoint.
    pub rpc: &'a str,
}

impl Client<'_> {
    fn err(&self, what: &str, message: String) -> Error {
        Error::Rpc { url: self.rpc.to_string(), method: what.to_string(), message }
    }

    /// Sends a transaction from an unlocked account and waits for its receipt; a revert is an error.
    ///
    /// # Errors
    /// A failed send, a revert, or no receipt within 5 seconds, each naming `what`.
    pub fn send(
        &self,
        what: &str,
        from: &str,
        to: Option<&str>,
        data: &[u8],
        value: u128,
    ) -> Result<serde_json::Value> {
        let mut tx = serde_json::json!({"from": from, "data": hex(data), "value": format!("0x{value:x}")});
        if let Some(to) = to {
            tx["to"] = serde_json::json!(to);
        }
        // anvil's own estimate can fall short when the block's timestamp moves on between estimating and mining
        // (Uniswap then writes a new oracle observation): estimate here and add a margin.
        let estimate = rpc_call(self.rpc, "eth_estimateGas", serde_json::json!([tx]))
            .map_err(|e| self.err(what, e.to_string()))?;
        let gas = estimate
            .as_str()
            .and_then(|g| u64::from_str_radix(g.trim_start_matches("0x"), 16).ok())
            .ok_or_else(|| self.err(what, format!("bad gas estimate {estimate}")))?;
        tx["gas"] = serde_json::json!(format!("0x{:x}", gas + gas / 3 + 50_000));
        let hash = rpc_call(self.rpc, "eth_sendTransaction", serde_json::json!([tx]))
            .map_err(|e| self.err(what, e.to_string()))?;
        for _ in 0..200 {
            let receipt = rpc_call(self.rpc, "eth_getTransactionReceipt", serde_json::json!([hash]))?;
            if !receipt.is_null() {
                if receipt["status"] != "0x1" {
                    return Err(self.err(what, format!("transaction {hash} reverted")));
                }
                return Ok(receipt);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(self.err(what, format!("no receipt for {hash}")))
    }

    fn deploy(&self, what: &str, from: &str, code: &[u8], args: &[Value]) -> Result<String> {
        let mut data = code.to_vec();
        data.extend_from_slice(&crate::abi::encode(args));
        let receipt = self.send(what, from, None, &data, 0)?;
        receipt["contractAddress"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(what, "receipt has no contract address".into()))
    }

    /// Calls a view function and returns the raw return data.
    ///
    /// # Errors
    /// A failed call or a malformed reply.
    pub fn view(&self, to: &str, data: &[u8]) -> Result<Vec<u8>> {
        let ret = rpc_call(self.rpc, "eth_call", serde_json::json!([{"to": to, "data": hex(data)}, "latest"]))?;
        let text = ret.as_str().unwrap_or_default().trim_start_matches("0x");
        hex_decode(text).ok_or_else(|| self.err("eth_call", format!("bad hex reply {text}")))
    }
}

/// Creation bytecode from an artifact JSON (`bytecode` as a hex string, with or without `0x`).
fn bytecode(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::State(format!("{}: {e}", path.display())))?;
    let code = json["bytecode"]
        .as_str()
        .or_else(|| json["evm"]["bytecode"]["object"].as_str())
        .ok_or_else(|| Error::State(format!("{}: no bytecode", path.display())))?;
    hex_decode(code.trim_start_matches("0x"))
        .ok_or_else(|| Error::State(format!("{}: bytecode is not hex", path.display())))
}

/// Deploys everything into the devnet at `rpc`, funding `accounts` with test tokens. `root` holds `node_modules`
/// and `contracts/out`. Returns contract addresses by name.
///
/// # Errors
/// A missing artifact (run `npm ci`), or a failed or reverted transaction, named.
pub fn deploy(rpc: &str, accounts: &[Account], root: &Path) -> Result<BTreeMap<String, String>> {
    let chain = Client { rpc };
    let artifact = |rel: &str| -> PathBuf { root.join(rel) };
    let deployer = &accounts[0].address;
    let mut out = BTreeMap::new();

    let weth = chain.deploy(
        "deploy WETH9",
        deployer,
        &bytecode(&artifact("node_modules/@uniswap/v2-periphery/build/WETH9.json"))?,
        &[],
    )?;
    let token_code = bytecode(&artifact("contracts/out/TestToken.json"))?;
    let usdc = chain.deploy(
        "deploy USDC",
        deployer,
        &token_code,
        &[Value::Str("USD Coin (devnet)".into()), Value::Str("USDC".into()), Value::Uint(6)],
    )?;
    let wbtc = chain.deploy(
        "deploy WBTC",
        deployer,
        &token_code,
        &[Value::Str("Wrapped Bitcoin (devnet)".into()), Value::Str("WBTC".into()), Value::Uint(8)],
    )?;
    let v3 = |name: &str| artifact(&format!("node_modules/@uniswap/v3-{name}"));
    let factory = chain.deploy(
        "deploy UniswapV3Factory",
        deployer,
        &bytecode(&v3("core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json"))?,
        &[],
    )?;
    let router = chain.deploy(
        "deploy SwapRouter",
        deployer,
        &bytecode(&v3("periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json"))?,
        &[Value::Address(factory.clone()), Value::Address(weth.clone())],
    )?;
    // No token descriptor: positions work; only their tokenURI (artwork) is unavailable on the devnet.
    let position_manager = chain.deploy(
        "deploy NonfungiblePositionManager",
        deployer,
        &bytecode(&v3("periphery/artifacts/contracts/NonfungiblePositionManager.sol/NonfungiblePositionManager.json"))?,
        &[
            Value::Address(factory.clone()),
            Value::Address(weth.clone()),
            Value::Address(format!("0x{}", "0".repeat(40))),
        ],
    )?;

    // Test funds for every account.
    for acc in accounts {
        chain.send(
            "mint USDC",
            deployer,
            Some(&usdc),
            &call("mint(address,uint256)", &[Value::Address(acc.address.clone()), Value::Uint(1_000_000 * 1_000_000)]),
            0,
        )?;
        chain.send(
            "mint WBTC",
            deployer,
            Some(&wbtc),
            &call("mint(address,uint256)", &[Value::Address(acc.address.clone()), Value::Uint(100 * 100_000_000)]),
            0,
        )?;
    }

    // The WETH/USDC pool at WETH_PRICE_USDC, full-range liquidity of 100 WETH and the matching USDC.
    chain.send(
        "create pool",
        deployer,
        Some(&factory),
        &call(
            "createPool(address,address,uint24)",
            &[Value::Address(weth.clone()), Value::Address(usdc.clone()), Value::Uint(u128::from(POOL_FEE_PIPS))],
        ),
        0,
    )?;
    let ret = chain.view(
        &factory,
        &call(
            "getPool(address,address,uint24)",
            &[Value::Address(weth.clone()), Value::Address(usdc.clone()), Value::Uint(u128::from(POOL_FEE_PIPS))],
        ),
    )?;
    let pool = word_address(&ret, 0).ok_or_else(|| chain.err("getPool", "empty reply".into()))?;
    let weth_is_token0 = weth.to_lowercase() < usdc.to_lowercase();
    // price of token0 in token1, in raw units
    let raw_price = if weth_is_token0 { WETH_PRICE_USDC * 1e6 / 1e18 } else { 1e18 / (WETH_PRICE_USDC * 1e6) };
    let sqrt_price_x96 = (raw_price.sqrt() * 2f64.powi(96)) as u128;
    chain.send(
        "initialize pool",
        deployer,
        Some(&pool),
        &call("initialize(uint160)", &[Value::Uint(sqrt_price_x96)]),
        0,
    )?;
    let weth_amount: u128 = 100 * 10u128.pow(18);
    let usdc_amount: u128 = (100.0 * WETH_PRICE_USDC) as u128 * 1_000_000;
    chain.send("wrap ETH", deployer, Some(&weth), &call("deposit()", &[]), weth_amount)?;
    for token in [&weth, &usdc] {
        chain.send(
            "approve position manager",
            deployer,
            Some(token),
            &call("approve(address,uint256)", &[Value::Address(position_manager.clone()), Value::Uint(u128::MAX)]),
            0,
        )?;
    }
    let (t0, t1, a0, a1) = if weth_is_token0 {
        (&weth, &usdc, weth_amount, usdc_amount)
    } else {
        (&usdc, &weth, usdc_amount, weth_amount)
    };
    chain.send(
        "mint liquidity",
        deployer,
        Some(&position_manager),
        &call(
            "mint((address,address,uint24,int24,int24,uint256,uint256,uint256,uint256,address,uint256))",
            &[
                Value::Address(t0.clone()),
                Value::Address(t1.clone()),
                Value::Uint(u128::from(POOL_FEE_PIPS)),
                Value::Int(MIN_TICK),
                Value::Int(MAX_TICK),
                Value::Uint(a0),
                Value::Uint(a1),
                Value::Uint(0),
                Value::Uint(0),
                Value::Address(deployer.clone()),
                Value::Uint(u128::from(u64::MAX)),
            ],
        ),
        0,
    )?;

    // A Safe 1.4.1 owned by the safe_owner account (threshold 1), through the official proxy factory, and funded.
    let safe_dir = "node_modules/@safe-global/safe-contracts/build/artifacts/contracts";
    let singleton = chain.deploy(
        "deploy Safe singleton",
        deployer,
        &bytecode(&artifact(&format!("{safe_dir}/Safe.sol/Safe.json")))?,
        &[],
    )?;
    let proxy_factory = chain.deploy(
        "deploy SafeProxyFactory",
        deployer,
        &bytecode(&artifact(&format!("{safe_dir}/proxies/SafeProxyFactory.sol/SafeProxyFactory.json")))?,
        &[],
    )?;
    let owner = accounts.iter().find(|a| a.role == "safe_owner").map_or(deployer, |a| &a.address);
    let zero = format!("0x{}", "0".repeat(40));
    let initializer = call(
        "setup(address[],uint256,address,bytes,address,address,uint256,address)",
        &[
            Value::Addresses(vec![owner.clone()]),
            Value::Uint(1),
            Value::Address(zero.clone()),
            Value::Bytes(Vec::new()),
            Value::Address(zero.clone()),
            Value::Address(zero.clone()),
            Value::Uint(0),
            Value::Address(zero),
        ],
    );
    let create = call(
        "createProxyWithNonce(address,bytes,uint256)",
        &[Value::Address(singleton.clone()), Value::Bytes(initializer), Value::Uint(0)],
    );
    // The proxy's address is what the call returns; simulate it first, then send it.
    let ret = rpc_call(
        rpc,
        "eth_call",
        serde_json::json!([{"from": deployer, "to": proxy_factory, "data": hex(&create)}, "latest"]),
    )?;
    let safe = hex_decode(ret.as_str().unwrap_or_default().trim_start_matches("0x"))
        .and_then(|r| word_address(&r, 0))
        .ok_or_else(|| chain.err("createProxyWithNonce", "no proxy address returned".into()))?;
    chain.send("create Safe proxy", deployer, Some(&proxy_factory), &create, 0)?;
    let ten = 10 * 10u128.pow(18);
    chain.send("fund Safe with ETH", deployer, Some(&safe), &[], ten)?;
    chain.send("wrap ETH for the Safe", deployer, Some(&weth), &call("deposit()", &[]), ten)?;
    chain.send(
        "fund Safe with WETH",
        deployer,
        Some(&weth),
        &call("transfer(address,uint256)", &[Value::Address(safe.clone()), Value::Uint(ten)]),
        0,
    )?;
    chain.send(
        "fund Safe with USDC",
        deployer,
        Some(&usdc),
        &call("mint(address,uint256)", &[Value::Address(safe.clone()), Value::Uint(100_000 * 1_000_000)]),
        0,
    )?;

    out.insert("SafeSingleton".into(), singleton);
    out.insert("SafeProxyFactory".into(), proxy_factory);
    out.insert("Safe".into(), safe);
    out.insert("WETH".into(), weth);
    out.insert("USDC".into(), usdc);
    out.insert("WBTC".into(), wbtc);
    out.insert("UniswapV3Factory".into(), factory);
    out.insert("SwapRouter".into(), router);
    out.insert("NonfungiblePositionManager".into(), position_manager);
    out.insert(format!("pool_WETH_USDC_{POOL_FEE_PIPS}"), pool);
    Ok(out)
}
