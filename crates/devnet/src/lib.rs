//! The local devnet: starts anvil (from the npm package `@foundry-rs/anvil-linux-amd64`) in the background, deploys
//! WETH, test tokens and Uniswap v3 with a liquid pool from real artifacts, records it all in a state directory, and
//! stops it again.

pub mod abi;
mod deploy;
mod error;
mod rpc;

pub use deploy::{Client, deploy};
pub use error::{Error, Result};
pub use rpc::{rpc_batch, rpc_batch_each, rpc_call};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// anvil's default mnemonic: public test keys, never for real funds.
pub const ANVIL_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Chain id anvil runs with.
pub const DEVNET_CHAIN_ID: u64 = 31337;

/// What each of the first default accounts is for.
pub const ROLES: [&str; 4] = ["deployer", "safe_owner", "deployment_key", "trader"];

/// One funded account of the devnet and its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// What Sextant uses it for.
    pub role: String,
    /// Its address.
    pub address: String,
    /// Index of its key in [`ANVIL_MNEMONIC`] (m/44'/60'/0'/0/index).
    pub mnemonic_index: u32,
}

/// A running devnet, as recorded in its state directory (`devnet.json`) and in ADDRESSES.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Devnet {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// Chain id.
    pub chain_id: u64,
    /// Process id of anvil.
    pub pid: u32,
    /// The mnemonic of the accounts' keys (anvil's public default).
    pub mnemonic: String,
    /// Funded accounts and their roles.
    pub accounts: Vec<Account>,
    /// Deployed contracts by name (empty for a bare node).
    pub contracts: std::collections::BTreeMap<String, String>,
}

/// How to start a devnet.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Port on 127.0.0.1; 0 lets the system choose a free one (see `Devnet::rpc_url`).
    pub port: u16,
    /// Where the pid, logs and anvil's own config go.
    pub state_dir: PathBuf,
    /// The anvil binary; found by [`find_anvil`] when None.
    pub anvil: Option<PathBuf>,
    /// Deploy the contracts ([`deploy()`]); false starts a bare node.
    pub deploy: bool,
    /// Fork this JSON-RPC endpoint instead of starting an empty chain (paper trading on a copy of a real chain;
    /// the fork keeps that chain's id). Nothing is deployed on a fork.
    pub fork_url: Option<String>,
}

const STATE_FILE: &str = "devnet.json";

/// Finds the anvil binary: `SEXTANT_ANVIL`, else `node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil` in the
/// current directory or any parent of it or of the running executable (where `npm install` puts it).
///
/// # Errors
/// When none is found; the message says how to install it.
pub fn find_anvil() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SEXTANT_ANVIL") {
        return Ok(PathBuf::from(p));
    }
    Ok(find_root()?.join(ANVIL_REL))
}

const ANVIL_REL: &str = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";

/// The repository root: the nearest directory, above the current one or the running executable, whose
/// `node_modules` holds anvil (and the contract artifacts beside it).
///
/// # Errors
/// When there is none; the message says how to install the npm packages.
pub fn find_root() -> Result<PathBuf> {
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    for start in starts.iter().flatten() {
        for dir in start.ancestors() {
            if dir.join(ANVIL_REL).is_file() {
                return Ok(dir.to_path_buf());
            }
        }
    }
    Err(Error::AnvilNotFound)
}

/// Whether a process is running (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the command name, which is in parentheses.
        Ok(stat) => {
            stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()).is_some_and(|s| s != 'Z')
        }
        Err(_) => false,
    }
}

/// The devnet recorded in `state_dir`, if any.
///
/// # Errors
/// When the record exists but cannot be read.
pub fn status(state_dir: &Path) -> Result<Option<Devnet>> {
    let path = state_dir.join(STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| Error::State(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io(path.display().to_string(), e)),
    }
}

/// Starts anvil on `127.0.0.1:port` in the background, waits until it answers JSON-RPC, and records it in
/// `state_dir`. anvil keeps running after this process exits; [`down`] stops it.
///
/// # Errors
/// When a devnet recorded in `state_dir` is still running, anvil cannot be found or started, or it does not answer
/// within 20 seconds (its log is quoted).
pub fn up(opts: &UpOptions) -> Result<Devnet> {
    if let Some(running) = status(&opts.state_dir)?
        && alive(running.pid)
    {
        return Err(Error::AlreadyRunning { pid: running.pid, state_dir: opts.state_dir.display().to_string() });
    }
    std::fs::create_dir_all(&opts.state_dir).map_err(|e| Error::Io(opts.state_dir.display().to_string(), e))?;
    let anvil = match &opts.anvil {
        Some(p) => p.clone(),
        None => find_anvil()?,
    };
    let config_out = opts.state_dir.join("anvil-accounts.json");
    let _ = std::fs::remove_file(&config_out);
    let log_path = opts.state_dir.join("anvil.log");
    let log = std::fs::File::create(&log_path).map_err(|e| Error::Io(log_path.display().to_string(), e))?;
    let log2 = log.try_clone().map_err(|e| Error::Io(log_path.display().to_string(), e))?;
    let mut command = Command::new(&anvil);
    command.args(["--host", "127.0.0.1", "--port", &opts.port.to_string()]);
    // Past states stay in memory only (anvil keeps the recent ones): by default anvil moves older states to
    // ~/.foundry/anvil/tmp and removes them only on a clean exit, so killed devnets once left 76 GB there.
    command.args(["--max-persisted-states", "0"]);
    match &opts.fork_url {
        Some(url) => command.args(["--fork-url", url]),
        None => command.args(["--chain-id", &DEVNET_CHAIN_ID.to_string()]),
    };
    let child = command
        .arg("--config-out")
        .arg(&config_out)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| Error::Io(anvil.display().to_string(), e))?;
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    // anvil says where it listens once it does; with port 0 that is also how the chosen port is learnt.
    let listening = || {
        let log = std::fs::read_to_string(&log_path).ok()?;
        let addr = log.lines().find_map(|l| l.trim().strip_prefix("Listening on "))?;
        Some(format!("http://{}", addr.trim()))
    };
    let mut rpc_url = format!("http://127.0.0.1:{}", opts.port);
    let chain_id = loop {
        if let Some(url) = listening() {
            rpc_url = url;
            if let Ok(v) = rpc_call(&rpc_url, "eth_chainId", serde_json::json!([]))
                && let Some(id) = v.as_str().and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            {
                break id;
            }
        }
        if !alive(pid) || Instant::now() > deadline {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let tail: String = std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ");
            return Err(Error::NotReady { rpc_url, log: tail });
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let accounts_json =
        std::fs::read_to_string(&config_out).map_err(|e| Error::Io(config_out.display().to_string(), e))?;
    let parsed: serde_json::Value =
        serde_json::from_str(&accounts_json).map_err(|e| Error::State(format!("{}: {e}", config_out.display())))?;
    let addresses = parsed["available_accounts"].as_array().cloned().unwrap_or_default();
    let accounts = ROLES
        .iter()
        .zip(&addresses)
        .enumerate()
        .map(|(i, (role, address))| Account {
            role: (*role).to_string(),
            address: address.as_str().unwrap_or_default().to_string(),
            mnemonic_index: i as u32,
        })
        .collect::<Vec<_>>();
    if accounts.len() < ROLES.len() {
        return Err(Error::State(format!(
            "anvil listed {} accounts, expected at least {}",
            accounts.len(),
            ROLES.len()
        )));
    }
    let contracts = if opts.deploy && opts.fork_url.is_none() {
        match find_root().and_then(|root| deploy(&rpc_url, &accounts, &root)) {
            Ok(c) => c,
            Err(e) => {
                let _ = Command::new("kill").arg(pid.to_string()).status();
                return Err(e);
            }
        }
    } else {
        Default::default()
    };
    let devnet = Devnet { rpc_url, chain_id, pid, mnemonic: ANVIL_MNEMONIC.to_string(), accounts, contracts };
    write_json(&opts.state_dir.join(STATE_FILE), &devnet)?;
    Ok(devnet)
}

/// Writes a devnet record as pretty JSON.
///
/// # Errors
/// When the file cannot be written.
pub fn write_json(path: &Path, devnet: &Devnet) -> Result<()> {
    let text = serde_json::to_string_pretty(devnet).map_err(|e| Error::State(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::Io(path.display().to_string(), e))
}

/// Stops the devnet recorded in `state_dir` (by its pid) and removes the record. Returns the pid stopped, or None
/// when nothing was recorded.
///
/// # Errors
/// When the process does not exit within 10 seconds of SIGTERM and then SIGKILL.
pub fn down(state_dir: &Path) -> Result<Option<u32>> {
    let Some(devnet) = status(state_dir)? else { return Ok(None) };
    let pid = devnet.pid;
    if alive(pid) {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            std::thread::sleep(Duration::from_millis(200));
        }
        if alive(pid) {
            return Err(Error::State(format!("anvil (pid {pid}) did not stop")));
        }
    }
    let path = state_dir.join(STATE_FILE);
    std::fs::remove_file(&path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    Ok(Some(pid))
}
