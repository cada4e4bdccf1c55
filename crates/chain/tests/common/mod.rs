//! What the chain crate's differential tests share: a devnet that stops when dropped, hex, the word of a return,
//! environment knobs and a small seeded generator. (Each test binary uses a part of it.)
#![allow(dead_code)]

use sextant_chain::alloy::primitives::U256;
use sextant_devnet::{Devnet, UpOptions};

/// A devnet in a temporary state directory, stopped when dropped (also when a test fails).
pub struct TestNet {
    /// The running devnet (RPC URL, accounts, deployed contracts).
    pub devnet: Devnet,
    dir: tempfile::TempDir,
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = sextant_devnet::down(self.dir.path());
    }
}

/// Starts anvil on a free loopback port, with Sextant's devnet contracts (`deploy`) or bare.
pub fn testnet(deploy: bool) -> TestNet {
    let dir = tempfile::tempdir().unwrap();
    let devnet =
        sextant_devnet::up(&UpOptions { port: 0, state_dir: dir.path().into(), anvil: None, deploy, fork_url: None })
            .unwrap();
    TestNet { devnet, dir }
}

/// A number from the environment, or the default.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Lower-case hex without `0x`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes from hex, with or without `0x`.
pub fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim_start_matches("0x");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The `i`-th 32-byte word of return data.
pub fn word(ret: &[u8], i: usize) -> U256 {
    U256::from_be_slice(&ret[32 * i..32 * (i + 1)])
}

/// Creation bytecode from an artifact under the repository root (`bytecode` field).
pub fn artifact(path: &str) -> Vec<u8> {
    let root = sextant_devnet::find_root().unwrap();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join(path)).unwrap()).unwrap();
    unhex(v["bytecode"].as_str().unwrap())
}

/// xorshift64: a seeded, stable stream for random histories.
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
