//! Starts a real anvil (the npm package the test command installs) on a free loopback port, and stops it.

use sextant_devnet::abi::{Value, call, word_address, word_u128};
use sextant_devnet::{ANVIL_MNEMONIC, Client, DEVNET_CHAIN_ID, Error, UpOptions, alive, down, rpc_call, status, up};

/// Port 0: anvil binds a free port itself, so parallel tests cannot race for one.
fn free_port() -> u16 {
    0
}

#[test]
fn up_answers_json_rpc_refuses_a_second_start_and_down_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let opts = UpOptions {
        port: free_port(),
        state_dir: dir.path().to_path_buf(),
        anvil: None,
        deploy: false,
        fork_url: None,
    };
    let devnet = up(&opts).unwrap();
    assert_eq!(devnet.chain_id, DEVNET_CHAIN_ID);
    assert!(alive(devnet.pid));
    assert_eq!(devnet.mnemonic, ANVIL_MNEMONIC);
    let roles: Vec<_> = devnet.accounts.iter().map(|a| a.role.as_str()).collect();
    assert_eq!(roles, ["deployer", "safe_owner", "deployment_key", "trader"]);

    // The recorded accounts are the node's funded accounts.
    let listed = rpc_call(&devnet.rpc_url, "eth_accounts", serde_json::json!([])).unwrap();
    let listed: Vec<String> = listed.as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_lowercase()).collect();
    for a in &devnet.accounts {
        assert!(listed.contains(&a.address.to_lowercase()), "{} not funded", a.address);
        let balance = rpc_call(&devnet.rpc_url, "eth_getBalance", serde_json::json!([a.address, "latest"])).unwrap();
        assert_ne!(balance.as_str().unwrap(), "0x0");
    }
    assert_eq!(status(dir.path()).unwrap().as_ref(), Some(&devnet));

    let again = up(&opts).unwrap_err();
    assert!(matches!(again, Error::AlreadyRunning { pid, .. } if pid == devnet.pid), "{again}");

    assert_eq!(down(dir.path()).unwrap(), Some(devnet.pid));
    assert!(!alive(devnet.pid));
    assert!(rpc_call(&devnet.rpc_url, "eth_chainId", serde_json::json!([])).is_err(), "the port should be closed");
    assert_eq!(status(dir.path()).unwrap(), None);
    assert_eq!(down(dir.path()).unwrap(), None, "down with nothing running is a no-op");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = UpOptions {
        port: taken.local_addr().unwrap().port(),
        state_dir: dir.path().to_path_buf(),
        anvil: None,
        deploy: false,
        fork_url: None,
    };
    let err = up(&opts).unwrap_err().to_string();
    assert!(err.contains("did not answer") && err.contains("log ends"), "{err}");
    assert_eq!(status(dir.path()).unwrap(), None);
}

#[test]
fn up_deploys_tokens_a_liquid_uniswap_v3_pool_that_swaps_and_a_funded_safe() {
    let dir = tempfile::tempdir().unwrap();
    let opts =
        UpOptions { port: free_port(), state_dir: dir.path().to_path_buf(), anvil: None, deploy: true, fork_url: None };
    let devnet = up(&opts).unwrap();
    let rpc = devnet.rpc_url.clone();
    let client = Client { rpc: &rpc };
    let view = |to: &str, data: &[u8]| client.view(to, data).unwrap();
    let c = |name: &str| devnet.contracts[name].clone();
    for (name, address) in &devnet.contracts {
        let code = rpc_call(&rpc, "eth_getCode", serde_json::json!([address, "latest"])).unwrap();
        assert!(code.as_str().unwrap().len() > 100, "{name} has no code");
    }
    let (weth, usdc, pool) = (c("WETH"), c("USDC"), c("pool_WETH_USDC_3000"));
    // The pool trades at about 2000 USDC per WETH and holds liquidity.
    let slot0 = view(&pool, &call("slot0()", &[]));
    let sqrt_price_x96 = word_u128(&slot0, 0).unwrap() as f64;
    let raw = (sqrt_price_x96 / 2f64.powi(96)).powi(2);
    let usdc_per_weth = if weth.to_lowercase() < usdc.to_lowercase() { raw * 1e12 } else { 1e12 / raw };
    assert!((usdc_per_weth - 2000.0).abs() < 0.01, "pool price {usdc_per_weth}");
    assert!(word_u128(&view(&pool, &call("liquidity()", &[])), 0).unwrap() > 0);

    // The trader wraps 1 ETH and sells it through the router.
    let trader = devnet.accounts.iter().find(|a| a.role == "trader").unwrap().address.clone();
    let usdc_balance =
        || word_u128(&view(&usdc, &call("balanceOf(address)", &[Value::Address(trader.clone())])), 0).unwrap();
    let before = usdc_balance();
    assert_eq!(before, 1_000_000 * 1_000_000, "accounts are funded with test USDC");
    let one = 10u128.pow(18);
    client.send("wrap", &trader, Some(&weth), &call("deposit()", &[]), one).unwrap();
    let approve = call("approve(address,uint256)", &[Value::Address(c("SwapRouter")), Value::Uint(one)]);
    client.send("approve", &trader, Some(&weth), &approve, 0).unwrap();
    let swap = call(
        "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
        &[
            Value::Address(weth.clone()),
            Value::Address(usdc.clone()),
            Value::Uint(3000),
            Value::Address(trader.clone()),
            Value::Uint(u128::from(u64::MAX)),
            Value::Uint(one),
            Value::Uint(0),
            Value::Uint(0),
        ],
    );
    client.send("swap", &trader, Some(&c("SwapRouter")), &swap, 0).unwrap();
    let received = (usdc_balance() - before) as f64 / 1e6;
    // Full-range liquidity trades like x*y=k: 100 WETH and 200,000 USDC, 0.3 % fee on the way in.
    let expected = 200_000.0 * 0.997 / (100.0 + 0.997);
    assert!((received / expected - 1.0).abs() < 1e-3, "received {received} USDC for 1 WETH, expected about {expected}");
    // The Safe is owned by the safe_owner account alone and holds its test funds.
    let safe = c("Safe");
    let owner = devnet.accounts.iter().find(|a| a.role == "safe_owner").unwrap().address.clone();
    let owners = view(&safe, &call("getOwners()", &[]));
    assert_eq!((word_u128(&owners, 1), word_address(&owners, 2)), (Some(1), Some(owner.to_lowercase())));
    assert_eq!(word_u128(&view(&safe, &call("getThreshold()", &[])), 0), Some(1));
    let version = view(&safe, &call("VERSION()", &[]));
    assert_eq!(&version[64..69], b"1.4.1");
    let safe_usdc = word_u128(&view(&usdc, &call("balanceOf(address)", &[Value::Address(safe.clone())])), 0);
    assert_eq!(safe_usdc, Some(100_000 * 1_000_000));
    let eth = rpc_call(&rpc, "eth_getBalance", serde_json::json!([safe, "latest"])).unwrap();
    assert_eq!(u128::from_str_radix(eth.as_str().unwrap().trim_start_matches("0x"), 16).unwrap(), 10 * 10u128.pow(18));
    down(dir.path()).unwrap();
}
