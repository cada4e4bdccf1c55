//! `sextant permissions` through the binary a user runs: the policy of every shipped example in words and JSON,
//! clear errors for bad input, and on a devnet (anvil from npm, Safe 1.4.1, Uniswap v3, the module's artifact):
//! `apply` installs the module and role, `run` trades through it with a key that owns nothing, `revoke` ends that.

#[path = "../../../crates/runtime/tests/common/mod.rs"]
mod common;

use common::{KEYS, Net, RSI_LIVE};
use sextant_chain::bindings::ISafe;
use sextant_exec::{Keystore, view};
use std::process::{Command, Output};

fn sextant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sextant"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const SAFE: &str = "0x1111111111111111111111111111111111111111";

fn examples() -> Vec<std::path::PathBuf> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn permissions_commands_have_help() {
    for (args, flags) in [
        (vec!["permissions", "--help"], vec!["--chain", "--safe", "--format", "--output", "--member", "--json"]),
        (vec!["permissions", "apply", "--help"], vec!["--rpc", "--safe", "--owner-keystore", "--member", "--module"]),
        (vec!["permissions", "revoke", "--help"], vec!["--module", "--member", "--role", "--owner-keystore"]),
    ] {
        let out = sextant().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        for f in flags {
            assert!(text(&out).contains(f), "{args:?} lacks {f}");
        }
    }
}

#[test]
fn every_example_has_a_policy_in_words_and_in_both_json_formats() {
    let dir = tempfile::tempdir().unwrap();
    for path in examples() {
        for chain in ["ethereum", "base", "arbitrum"] {
            let out =
                sextant().arg("permissions").arg(&path).args(["--chain", chain, "--safe", SAFE]).output().unwrap();
            let words = text(&out);
            assert!(out.status.success(), "{} on {chain}: {words}", path.display());
            assert!(words.contains("recipient is the Safe") && words.contains("Nothing else"), "{words}");
        }
        let policy = dir.path().join("policy.json");
        let out = sextant()
            .arg("permissions")
            .arg(&path)
            .args(["--chain", "ethereum", "--safe", SAFE, "-o"])
            .arg(&policy)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let p: sextant_policy::Policy = serde_json::from_str(&std::fs::read_to_string(&policy).unwrap()).unwrap();
        assert_eq!((p.chain_id, p.safe.to_string()), (1, SAFE.to_string()));
        let out = sextant()
            .arg("permissions")
            .arg(&path)
            .args(["--chain", "ethereum", "--safe", SAFE, "--format", "zodiac", "--json", "--member", SAFE])
            .output()
            .unwrap();
        let z: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(z["targets"].as_array().unwrap().len(), p.targets.len());
        assert!(z["calls"].as_array().unwrap().iter().any(|c| c["description"].as_str().unwrap().contains("member")));
    }
}

#[test]
fn bad_permissions_inputs_are_clear_errors() {
    let rsi = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rsi.toml");
    for (args, expect) in [
        (vec!["permissions", rsi, "--chain", "ethereum"], "--safe"),
        (vec!["permissions", rsi, "--chain", "ethereum", "--safe", "0x12"], "--safe"),
        (vec!["permissions", rsi, "--chain", "mars", "--safe", SAFE], "mars"),
        (vec!["permissions", rsi, "--safe", SAFE], "give --chain"),
        (vec!["permissions", "missing.toml", "--chain", "base", "--safe", SAFE], "missing.toml"),
    ] {
        let out = sextant().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(text(&out).contains(expect), "{args:?}: {}", text(&out));
    }
}

#[test]
fn apply_then_run_through_the_module_then_revoke() {
    let net = Net::up();
    net.fund_trader();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "devnet-only\n").unwrap();
    let keys = Keystore::new(dir.path().join("keys"));
    let owner = keys.import("owner", KEYS[1], "devnet-only").unwrap().path;
    let deployer = keys.import("bot", KEYS[2], "devnet-only").unwrap().path;
    let member = net.account("deployment_key");
    let config = dir.path().join("rsi.toml");
    std::fs::write(&config, RSI_LIVE).unwrap();
    let (url, safe) = (net.devnet.rpc_url.clone(), net.contract("Safe").to_string());

    let out = sextant()
        .args(["permissions", "apply"])
        .arg(&config)
        .args(["--rpc", &url, "--safe", &safe, "--member", &member, "--owner-keystore"])
        .arg(&owner)
        .arg("--password-file")
        .arg(&password)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("deployed the permissions module") && said.contains("configure role"), "{said}");
    let module = said.split("module = \"").nth(1).and_then(|s| s.split('"').next()).expect("module line").to_string();
    let rpc = net.rpc();
    assert!(view(&rpc, net.contract("Safe"), &ISafe::isModuleEnabledCall { module: module.parse().unwrap() }).unwrap());
    std::fs::write(&config, format!("{RSI_LIVE}\n[permissions]\nmodule = \"{module}\"\n")).unwrap();

    let run = |state: &str| {
        sextant()
            .arg("run")
            .arg(&config)
            .args(["--rpc", &url, "--safe", &safe, "--interval", "1s", "--max-ticks", "2", "--keystore"])
            .arg(&deployer)
            .arg("--password-file")
            .arg(&password)
            .arg("--state")
            .arg(dir.path().join(state))
            .output()
            .unwrap()
    };
    let out = run("bot.db");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("permissions module"), "{}", text(&out));

    let out = sextant()
        .args(["permissions", "revoke", "--rpc", &url, "--safe", &safe, "--module", &module, "--member", &member])
        .args(["--role", "sextant-rsi", "--owner-keystore"])
        .arg(&owner)
        .arg("--password-file")
        .arg(&password)
        .output()
        .unwrap();
    assert!(out.status.success() && text(&out).contains("can no longer act"), "{}", text(&out));
    let out = run("bot.db");
    assert!(!out.status.success() && text(&out).contains("not a member"), "{}", text(&out));
}
