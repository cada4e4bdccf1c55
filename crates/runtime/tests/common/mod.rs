//! Shared harness for the deployment tests: a devnet with the contracts, the role keys, and a trader who moves the
//! pool price.

#![allow(dead_code)]

use sextant_chain::alloy::primitives::{Address, U256};
use sextant_chain::calls::{self, RouterKind, SwapParams};
use sextant_chain::{Registry, Rpc};
use sextant_devnet::{Devnet, UpOptions};
use std::path::PathBuf;
use std::time::Duration;

/// anvil's public test keys (mnemonic indexes 0-3): never for real funds.
pub const KEYS: [&str; 4] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

/// A devnet that stops when dropped.
pub struct Net {
    pub devnet: Devnet,
    pub dir: tempfile::TempDir,
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = sextant_devnet::down(self.dir.path());
    }
}

impl Net {
    pub fn up() -> Net {
        let dir = tempfile::tempdir().unwrap();
        let devnet = sextant_devnet::up(&UpOptions {
            port: 0,
            state_dir: dir.path().to_path_buf(),
            anvil: None,
            deploy: true,
            fork_url: None,
        })
        .expect("devnet up");
        Net { devnet, dir }
    }

    pub fn rpc(&self) -> Rpc {
        Rpc::new(&self.devnet.rpc_url, Duration::from_secs(10)).unwrap()
    }

    pub fn contract(&self, name: &str) -> Address {
        self.devnet.contracts[name].parse().unwrap()
    }

    pub fn account(&self, role: &str) -> String {
        self.devnet.accounts.iter().find(|a| a.role == role).unwrap().address.clone()
    }

    pub fn state_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Sends from an unlocked devnet account with a generous gas limit (anvil's own estimate can fall a little
    /// short for swaps) and waits for success.
    pub fn send(&self, what: &str, from: &str, call: &sextant_chain::Call) -> serde_json::Value {
        let rpc = self.rpc();
        let tx = serde_json::json!({
            "from": from, "to": call.to.to_string(), "data": call.data.to_string(),
            "value": format!("0x{:x}", call.value), "gas": "0xf4240",
        });
        let hash =
            rpc.request("eth_sendTransaction", serde_json::json!([tx])).unwrap_or_else(|e| panic!("{what}: {e}"));
        for _ in 0..200 {
            let r = rpc.request("eth_getTransactionReceipt", serde_json::json!([hash])).unwrap();
            if !r.is_null() {
                assert_eq!(r["status"], "0x1", "{what} reverted");
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{what}: no receipt");
    }

    /// Gives the trader WETH and approves the router for both tokens.
    pub fn fund_trader(&self) {
        let trader = self.account("trader");
        let (weth, usdc, router) = (self.contract("WETH"), self.contract("USDC"), self.contract("SwapRouter"));
        self.send("wrap", &trader, &calls::wrap(weth, U256::from(500u128 * 10u128.pow(18))));
        for t in [weth, usdc] {
            self.send("approve", &trader, &calls::approve(t, router, U256::MAX, "approve"));
        }
    }

    /// The trader sells `amount` base units of WETH (down = true) or USDC for the other.
    pub fn push_price(&self, down: bool, amount: u128) {
        let trader = self.account("trader");
        let (weth, usdc) = (self.contract("WETH"), self.contract("USDC"));
        let (token_in, token_out) = if down { (weth, usdc) } else { (usdc, weth) };
        let p = SwapParams {
            router: self.contract("SwapRouter"),
            kind: RouterKind::V1,
            token_in,
            token_out,
            fee_pips: 3000,
            recipient: trader.parse().unwrap(),
            amount_in: U256::from(amount),
            min_out: U256::ZERO,
            deadline: u64::MAX / 2,
        };
        self.send("trader swap", &trader, &calls::swap_exact_in(&p, "trader swap"));
    }

    pub fn registry(&self) -> Registry {
        Registry::built_in()
    }
}

/// The devnet seen from another thread: enough to trade as the trader.
pub struct Remote {
    pub rpc_url: String,
    pub contracts: std::collections::BTreeMap<String, String>,
    pub trader: String,
}

impl Remote {
    pub fn push_price(&self, down: bool, amount: u128) {
        let c = |n: &str| -> Address { self.contracts[n].parse().unwrap() };
        let (token_in, token_out) = if down { (c("WETH"), c("USDC")) } else { (c("USDC"), c("WETH")) };
        let p = SwapParams {
            router: c("SwapRouter"),
            kind: RouterKind::V1,
            token_in,
            token_out,
            fee_pips: 3000,
            recipient: self.trader.parse().unwrap(),
            amount_in: U256::from(amount),
            min_out: U256::ZERO,
            deadline: u64::MAX / 2,
        };
        let call = calls::swap_exact_in(&p, "trader swap");
        let rpc = Rpc::new(&self.rpc_url, Duration::from_secs(10)).unwrap();
        let tx = serde_json::json!({
            "from": self.trader, "to": call.to.to_string(), "data": call.data.to_string(), "gas": "0xf4240",
        });
        // Fire and forget: a trader racing the runner only needs to move the price.
        let _ = rpc.request("eth_sendTransaction", serde_json::json!([tx]));
    }
}

/// A live RSI config for the devnet: a short period so a few price pushes make signals.
pub const RSI_LIVE: &str = r#"
[strategy]
kind = "rsi"
period = 2
oversold = 30
overbought = 70

[risk]
position_size = 0.05
max_slippage_bps = 1500

[live]
chain = "devnet"
base = "WETH"
quote = "USDC"
poll_ms = 20
stuck_after_secs = 30
retry_base_ms = 50
"#;

/// Dynamic LP on the devnet pool (120-tick ranges).
pub const LP_LIVE: &str = r#"
[strategy]
kind = "dynamic_lp"
width_ticks = 120

[live]
chain = "devnet"
base = "WETH"
quote = "USDC"
poll_ms = 20
stuck_after_secs = 30
retry_base_ms = 50
"#;
