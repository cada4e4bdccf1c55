//! Starts a real anvil (the npm package the test command installs) on a free loopback port, and stops it.

use sextant_devnet::{ANVIL_MNEMONIC, DEVNET_CHAIN_ID, Error, UpOptions, alive, down, rpc_call, status, up};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn up_answers_json_rpc_refuses_a_second_start_and_down_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let opts = UpOptions { port: free_port(), state_dir: dir.path().to_path_buf(), anvil: None };
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
    let opts = UpOptions { port: taken.local_addr().unwrap().port(), state_dir: dir.path().to_path_buf(), anvil: None };
    let err = up(&opts).unwrap_err().to_string();
    assert!(err.contains("did not answer") && err.contains("log ends"), "{err}");
    assert_eq!(status(dir.path()).unwrap(), None);
}
