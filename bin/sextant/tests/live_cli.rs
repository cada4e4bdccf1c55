//! `sextant run`, `status`, `diagnose`, `teardown` and `--paper` end to end on a devnet (anvil from npm, real
//! Uniswap v3 and Safe 1.4.1 bytecode), through the binary a user runs.

#[path = "../../../crates/runtime/tests/common/mod.rs"]
mod common;

use common::{KEYS, Net, RSI_LIVE};
use sextant_chain::alloy::primitives::U256;
use sextant_chain::bindings::{IERC20, ISafe};
use sextant_exec::{Keystore, view};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn sextant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sextant"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn live_commands_have_help() {
    for (cmd, flag) in [("run", "--keystore"), ("status", "--state"), ("teardown", "--safe"), ("diagnose", "--rpc")] {
        let out = sextant().args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success(), "{cmd} --help");
        assert!(text(&out).contains(flag), "{cmd} --help lacks {flag}");
    }
    let out = sextant().args(["run", "--help"]).output().unwrap();
    for flag in ["--paper", "--interval", "--cron", "--max-ticks", "--metrics-addr", "--password-file"] {
        assert!(text(&out).contains(flag), "run --help lacks {flag}");
    }
}

struct Live {
    net: Net,
    dir: tempfile::TempDir,
    keystore: PathBuf,
}

impl Live {
    fn new() -> Live {
        let net = Net::up();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password"), "devnet-only\n").unwrap();
        std::fs::write(dir.path().join("rsi.toml"), RSI_LIVE).unwrap();
        let keystore = Keystore::new(dir.path().join("keys")).import("owner", KEYS[1], "devnet-only").unwrap().path;
        Live { net, dir, keystore }
    }

    fn target(&self, cmd: &str, rpc: &str, safe: &str, state: &str) -> Command {
        let mut c = sextant();
        c.arg(cmd)
            .arg(self.dir.path().join("rsi.toml"))
            .args(["--rpc", rpc, "--safe", safe])
            .arg("--keystore")
            .arg(&self.keystore)
            .arg("--password-file")
            .arg(self.dir.path().join("password"))
            .arg("--state")
            .arg(self.dir.path().join(state));
        c
    }
}

#[test]
fn run_serves_metrics_then_status_diagnose_and_teardown_tell_the_truth() {
    let live = Live::new();
    live.net.fund_trader();
    let url = live.net.devnet.rpc_url.clone();
    let safe = live.net.devnet.contracts["Safe"].clone();
    let mut child = live
        .target("run", &url, &safe, "d.db")
        .args(["--interval", "150ms", "--max-ticks", "14", "--metrics-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let metrics_url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("metrics at http://").map(|s| s.trim_end_matches("/metrics").to_string()))
        .expect("the runner says where its metrics are");
    // Move the price while it runs: up, up, then down, down (RSI(2) turns overbought, then oversold).
    let mut log = String::new();
    for line in lines.by_ref().map_while(Result::ok) {
        log.push_str(&line);
        log.push('\n');
        if line.starts_with("tick ") {
            let n = log.matches("\ntick ").count() + usize::from(log.starts_with("tick "));
            match n {
                2 | 3 => live.net.push_price(false, 8_000 * 10u128.pow(6)),
                6..=8 => live.net.push_price(true, 3 * 10u128.pow(18)),
                _ => {}
            }
            if n == 10 {
                let mut s = std::net::TcpStream::connect(&metrics_url).unwrap();
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut body = String::new();
                s.read_to_string(&mut body).unwrap();
                assert!(body.starts_with("HTTP/1.1 200"), "{body}");
                for m in [
                    "sextant_ticks_total ",
                    "sextant_transactions{status=\"mined\"}",
                    "sextant_equity ",
                    "sextant_gas_spent_wei_total ",
                ] {
                    assert!(body.contains(m), "metrics lack {m}:\n{body}");
                }
            }
        }
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{log}{err}");
    assert!(log.contains("done: sold"), "no trade happened:\n{log}");
    assert!(log.contains("signed ") && log.contains("mined in block"), "{log}");

    let state = live.dir.path().join("d.db");
    let out = sextant().arg("status").arg("--state").arg(&state).output().unwrap();
    let st = text(&out);
    assert!(out.status.success(), "{st}");
    assert!(st.contains("14 tick(s)") && st.contains("PnL") && st.contains("recent transactions:"), "{st}");
    assert!(st.contains("runner       none") && st.contains("0 pending"), "{st}");
    let out = sextant().arg("status").arg("--state").arg(&state).arg("--json").output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ticks"], 14);
    assert!(json["txs_by_status"]["mined"].as_u64().unwrap() >= 1);

    let out = sextant().arg("diagnose").arg("--state").arg(&state).args(["--rpc", &url]).output().unwrap();
    let d = text(&out);
    assert!(out.status.success() && d.contains("ok    RPC") && !d.contains("error"), "{d}");

    // Teardown sells everything back to USDC through the Safe.
    let out = live.target("teardown", &url, &safe, "d.db").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rpc = live.net.rpc();
    let weth =
        view(&rpc, live.net.contract("WETH"), &IERC20::balanceOfCall { owner: live.net.contract("Safe") }).unwrap();
    assert_eq!(weth, U256::ZERO, "teardown left WETH in the Safe:\n{}", text(&out));
}

#[test]
fn paper_trading_runs_on_a_private_fork_and_leaves_the_chain_alone() {
    let live = Live::new();
    let url = live.net.devnet.rpc_url.clone();
    let safe = live.net.devnet.contracts["Safe"].clone();
    let rpc = live.net.rpc();
    let safe_a = live.net.contract("Safe");
    let nonce = view(&rpc, safe_a, &ISafe::nonceCall {}).unwrap();
    let out =
        live.target("teardown", &url, &safe, "paper.db").arg("--paper").current_dir(live.dir.path()).output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("paper trading on a private fork") && t.contains("done: sold"), "{t}");
    // The real chain did not move: same Safe nonce, WETH still there; the fork was stopped.
    assert_eq!(view(&rpc, safe_a, &ISafe::nonceCall {}).unwrap(), nonce);
    let weth = view(&rpc, live.net.contract("WETH"), &IERC20::balanceOfCall { owner: safe_a }).unwrap();
    assert_eq!(weth, U256::from(10u128 * 10u128.pow(18)));
    let forks = std::fs::read_dir(live.dir.path().join(".sextant")).map_or(0, |d| d.count());
    assert_eq!(forks, 0, "the paper fork's directory is removed when the run ends");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let live = Live::new();
    let url = live.net.devnet.rpc_url.clone();
    let safe = live.net.devnet.contracts["Safe"].clone();
    let run = |c: &mut Command| {
        let o = c.args(["--max-ticks", "1"]).output().unwrap();
        assert!(!o.status.success());
        text(&o)
    };
    let e = run(&mut live.target("run", "http://127.0.0.1:1", &safe, "a.db"));
    assert!(e.contains("cannot reach the RPC at http://127.0.0.1:1"), "{e}");
    let e = run(&mut live.target("run", &url, "0x00000000000000000000000000000000000000aa", "b.db"));
    assert!(e.contains("no contract at") && e.contains("Safe address"), "{e}");
    let e = run(&mut live.target("run", &url, "0x1234", "c.db"));
    assert!(e.contains("--safe") && e.contains("not an address"), "{e}");
    // A second runner on the same deployment is refused while the first runs.
    let mut first = live
        .target("run", &url, &safe, "shared.db")
        .args(["--interval", "200ms"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(first.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("deployment on devnet"), "{line}");
    let e = run(&mut live.target("run", &url, &safe, "shared.db"));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(e.contains("is running this deployment; a second runner is refused"), "{e}");
    // A keystore file that is not there.
    let e = run(sextant()
        .arg("run")
        .arg(live.dir.path().join("rsi.toml"))
        .args(["--rpc", &url, "--safe", &safe, "--keystore", "/nonexistent/key.json"])
        .env("SEXTANT_KEY_PASSWORD", "x"));
    assert!(e.contains("/nonexistent/key.json") && e.contains("no such keystore file"), "{e}");
    std::fs::write(live.dir.path().join("password"), "wrong\n").unwrap();
    let e = run(&mut live.target("run", &url, &safe, "d.db"));
    assert!(e.contains("wrong password"), "{e}");
    let e = run(sextant()
        .args(["run", "missing.toml", "--rpc", &url, "--safe", &safe, "--keystore", "k.json"])
        .env("SEXTANT_KEY_PASSWORD", "x"));
    assert!(e.contains("missing.toml"), "{e}");
    let out = sextant().args(["status", "--state", "/nonexistent/x.db"]).output().unwrap();
    assert!(!out.status.success() && text(&out).contains("no deployment state here"), "{}", text(&out));
}
