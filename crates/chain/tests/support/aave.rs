//! An Aave v3 market on a devnet, deployed from the npm package `@aave/core-v3` (1.19.3) the way a market is listed
//! on a live chain: `PoolAddressesProvider`, `ACLManager`, the logic libraries linked into `Pool` and
//! `PoolConfigurator`, the token implementations, a settable `PriceOracle` and a `DefaultReserveInterestRateStrategy`
//! per reserve, then `initReserves` and each reserve's risk parameters. Shared by the chain layer's pool
//! differential and the runtime's vault NAV test (included by path).

#![allow(dead_code)]

use sextant_chain::alloy::hex;
use sextant_chain::alloy::primitives::{Address, Bytes, U256};
use sextant_chain::alloy::sol;
use sextant_chain::alloy::sol_types::{SolCall, SolValue};
use sextant_chain::bindings::IAaveV3Pool;
use sextant_devnet::Client;
use sextant_protocols::aave_v3::ReserveConfig;
use std::collections::BTreeMap;
use std::path::Path;

sol! {
    struct InitReserveInput {
        address aTokenImpl;
        address stableDebtTokenImpl;
        address variableDebtTokenImpl;
        uint8 underlyingAssetDecimals;
        address interestRateStrategyAddress;
        address underlyingAsset;
        address treasury;
        address incentivesController;
        string aTokenName;
        string aTokenSymbol;
        string variableDebtTokenName;
        string variableDebtTokenSymbol;
        string stableDebtTokenName;
        string stableDebtTokenSymbol;
        bytes params;
    }
    interface IProvider {
        function setACLAdmin(address admin) external;
        function setACLManager(address manager) external;
        function setPoolImpl(address implementation) external;
        function setPoolConfiguratorImpl(address implementation) external;
        function setPriceOracle(address oracle) external;
        function getPool() external view returns (address);
        function getPoolConfigurator() external view returns (address);
    }
    interface IACLManager {
        function addPoolAdmin(address admin) external;
    }
    interface IConfigurator {
        function initReserves(InitReserveInput[] input) external;
        function configureReserveAsCollateral(address asset, uint256 ltv, uint256 liquidationThreshold, uint256 liquidationBonus) external;
        function setReserveBorrowing(address asset, bool enabled) external;
        function setReserveFactor(address asset, uint256 newReserveFactor) external;
        function setLiquidationProtocolFee(address asset, uint256 newFee) external;
    }
    interface IOracle {
        function setAssetPrice(address asset, uint256 price) external;
    }
}

/// A reserve to list: an existing token, its risk parameters and curve, its oracle price (8 decimals).
pub struct Listing {
    pub asset: Address,
    pub symbol: String,
    pub config: ReserveConfig,
    pub price: U256,
}

/// The deployed market; per-reserve vectors follow the listings' order.
pub struct AaveMarket {
    pub pool: Address,
    pub oracle: Address,
    pub a_tokens: Vec<Address>,
    pub debt_tokens: Vec<Address>,
    /// Each reserve's `lastUpdateTimestamp` right after listing (where `ReserveLogic.init` left it).
    pub listed_at: Vec<u64>,
    /// How many logic libraries were deployed and linked.
    pub libraries: usize,
}

/// Deploys creation code from `from`; the new contract's address.
pub fn deploy(client: &Client, from: &str, what: &str, code: &[u8]) -> Address {
    let r = client.send(what, from, None, code, 0).unwrap_or_else(|e| panic!("deploying {what}: {e}"));
    r["contractAddress"].as_str().unwrap().parse().unwrap()
}

/// The creation code of the hardhat artifact at `rel` (under `artifacts`), with every library placeholder of its
/// `linkReferences` (byte offsets into the code) replaced by the library's address; libraries not yet in `libs` are
/// deployed first, linked the same way.
fn linked_code(
    client: &Client,
    from: &str,
    artifacts: &Path,
    rel: &str,
    libs: &mut BTreeMap<String, Address>,
) -> Vec<u8> {
    let text = std::fs::read_to_string(artifacts.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut code = v["bytecode"].as_str().unwrap().trim_start_matches("0x").to_string();
    if let Some(refs) = v["linkReferences"].as_object() {
        for (source, names) in refs {
            for (name, places) in names.as_object().unwrap() {
                let address = match libs.get(name) {
                    Some(a) => *a,
                    None => {
                        let lib = linked_code(client, from, artifacts, &format!("{source}/{name}.json"), libs);
                        let a = deploy(client, from, name, &lib);
                        libs.insert(name.clone(), a);
                        a
                    }
                };
                for place in places.as_array().unwrap() {
                    let start = 2 * usize::try_from(place["start"].as_u64().unwrap()).unwrap();
                    assert_eq!(place["length"], 20);
                    code.replace_range(start..start + 40, &hex::encode(address.as_slice()));
                }
            }
        }
    }
    hex::decode(&code).unwrap_or_else(|e| panic!("{rel}: unlinked placeholders left ({e})"))
}

/// Deploys an Aave v3 market administered by `admin` and lists `reserves` in it, borrowing enabled, fees to
/// `treasury`.
pub fn deploy_market(client: &Client, admin: Address, reserves: &[Listing], treasury: Address) -> AaveMarket {
    let from = admin.to_string();
    let send = |what: &str, to: Address, data: Vec<u8>| {
        client.send(what, &from, Some(&to.to_string()), &data, 0).unwrap_or_else(|e| panic!("{what}: {e}"));
    };
    let view = |to: Address, data: Vec<u8>| client.view(&to.to_string(), &data).unwrap();
    let root = sextant_devnet::find_root().unwrap();
    let artifacts = root.join("node_modules/@aave/core-v3/artifacts");
    let mut libs = BTreeMap::new();
    let mut code = |rel: &str| linked_code(client, &from, &artifacts, rel, &mut libs);

    let mut provider_code =
        code("contracts/protocol/configuration/PoolAddressesProvider.sol/PoolAddressesProvider.json");
    provider_code.extend(("Sextant devnet".to_string(), admin).abi_encode_params());
    let provider = deploy(client, &from, "PoolAddressesProvider", &provider_code);
    send("setACLAdmin", provider, IProvider::setACLAdminCall { admin }.abi_encode());
    let mut acl_code = code("contracts/protocol/configuration/ACLManager.sol/ACLManager.json");
    acl_code.extend(provider.abi_encode());
    let acl = deploy(client, &from, "ACLManager", &acl_code);
    send("setACLManager", provider, IProvider::setACLManagerCall { manager: acl }.abi_encode());
    send("addPoolAdmin", acl, IACLManager::addPoolAdminCall { admin }.abi_encode());
    let mut pool_code = code("contracts/protocol/pool/Pool.sol/Pool.json");
    pool_code.extend(provider.abi_encode());
    let pool_impl = deploy(client, &from, "Pool", &pool_code);
    send("setPoolImpl", provider, IProvider::setPoolImplCall { implementation: pool_impl }.abi_encode());
    let pool =
        IProvider::getPoolCall::abi_decode_returns(&view(provider, IProvider::getPoolCall {}.abi_encode())).unwrap();
    let configurator_impl = deploy(
        client,
        &from,
        "PoolConfigurator",
        &code("contracts/protocol/pool/PoolConfigurator.sol/PoolConfigurator.json"),
    );
    send(
        "setPoolConfiguratorImpl",
        provider,
        IProvider::setPoolConfiguratorImplCall { implementation: configurator_impl }.abi_encode(),
    );
    let configurator = IProvider::getPoolConfiguratorCall::abi_decode_returns(&view(
        provider,
        IProvider::getPoolConfiguratorCall {}.abi_encode(),
    ))
    .unwrap();
    let oracle = deploy(client, &from, "PriceOracle", &code("contracts/mocks/oracle/PriceOracle.sol/PriceOracle.json"));
    send("setPriceOracle", provider, IProvider::setPriceOracleCall { oracle }.abi_encode());
    let mut token_impl = |name: &str| {
        let mut c = code(&format!("contracts/protocol/tokenization/{name}.sol/{name}.json"));
        c.extend(pool.abi_encode());
        deploy(client, &from, name, &c)
    };
    let a_token_impl = token_impl("AToken");
    let stable_impl = token_impl("StableDebtToken");
    let variable_impl = token_impl("VariableDebtToken");
    let strategy_code =
        code("contracts/protocol/pool/DefaultReserveInterestRateStrategy.sol/DefaultReserveInterestRateStrategy.json");

    let mut inputs = Vec::new();
    for r in reserves {
        let s = &r.config.strategy;
        let mut c = strategy_code.clone();
        c.extend(
            (
                provider,
                s.optimal_usage_ratio,
                s.base_variable_borrow_rate,
                s.variable_rate_slope1,
                s.variable_rate_slope2,
                s.stable_rate_slope1,
                s.stable_rate_slope2,
                s.base_stable_rate_offset,
                s.stable_rate_excess_offset,
                s.optimal_stable_to_total_debt_ratio,
            )
                .abi_encode_params(),
        );
        let strategy = deploy(client, &from, "DefaultReserveInterestRateStrategy", &c);
        send("setAssetPrice", oracle, IOracle::setAssetPriceCall { asset: r.asset, price: r.price }.abi_encode());
        let symbol = &r.symbol;
        inputs.push(InitReserveInput {
            aTokenImpl: a_token_impl,
            stableDebtTokenImpl: stable_impl,
            variableDebtTokenImpl: variable_impl,
            underlyingAssetDecimals: r.config.decimals,
            interestRateStrategyAddress: strategy,
            underlyingAsset: r.asset,
            treasury,
            incentivesController: Address::ZERO,
            aTokenName: format!("Aave {symbol}"),
            aTokenSymbol: format!("a{symbol}"),
            variableDebtTokenName: format!("Variable debt {symbol}"),
            variableDebtTokenSymbol: format!("variableDebt{symbol}"),
            stableDebtTokenName: format!("Stable debt {symbol}"),
            stableDebtTokenSymbol: format!("stableDebt{symbol}"),
            params: Bytes::new(),
        });
    }
    send("initReserves", configurator, IConfigurator::initReservesCall { input: inputs }.abi_encode());
    let mut market =
        AaveMarket { pool, oracle, a_tokens: Vec::new(), debt_tokens: Vec::new(), listed_at: Vec::new(), libraries: 0 };
    let u = |x: u64| U256::from(x);
    for r in reserves {
        let (asset, config, symbol) = (r.asset, &r.config, &r.symbol);
        let set = |what: &str, data: Vec<u8>| send(&format!("{what} {symbol}"), configurator, data);
        set(
            "configureReserveAsCollateral",
            IConfigurator::configureReserveAsCollateralCall {
                asset,
                ltv: u(config.ltv_bps),
                liquidationThreshold: u(config.liquidation_threshold_bps),
                liquidationBonus: u(config.liquidation_bonus_bps),
            }
            .abi_encode(),
        );
        set("setReserveBorrowing", IConfigurator::setReserveBorrowingCall { asset, enabled: true }.abi_encode());
        set(
            "setReserveFactor",
            IConfigurator::setReserveFactorCall { asset, newReserveFactor: u(config.reserve_factor_bps) }.abi_encode(),
        );
        set(
            "setLiquidationProtocolFee",
            IConfigurator::setLiquidationProtocolFeeCall { asset, newFee: u(config.liquidation_protocol_fee_bps) }
                .abi_encode(),
        );
        let data = IAaveV3Pool::getReserveDataCall::abi_decode_returns(&view(
            pool,
            IAaveV3Pool::getReserveDataCall { asset }.abi_encode(),
        ))
        .unwrap();
        market.a_tokens.push(data.aTokenAddress);
        market.debt_tokens.push(data.variableDebtTokenAddress);
        market.listed_at.push(data.lastUpdateTimestamp.to::<u64>());
    }
    market.libraries = libs.len();
    market
}
