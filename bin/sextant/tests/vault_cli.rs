//! `sextant vault` through the binary on a devnet: the owner deploys a vault over the devnet's USDC with fees, an
//! investor requests a deposit, the curator settles, the investor claims its shares; the strategy gains, the
//! investor redeems half, the next settlement charges the fees and prices the redemption, the claim pays the assets.
//! `status` shows each stage (text and JSON); bad input and refused calls say why.

#[path = "../../../crates/runtime/tests/common/mod.rs"]
mod common;

use common::{KEYS, Net};
use sextant_exec::Keystore;
use std::process::{Command, Output};

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn sextant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sextant")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = sextant(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn send(url: &str, from: &str, to: &str, data: Vec<u8>) {
    let client = sextant_devnet::Client { rpc: url };
    client.send("tx", from, Some(to), &data, 0).unwrap();
}

#[test]
fn vault_commands_have_help() {
    for (sub, flags) in [
        (
            "deploy",
            vec!["--asset", "--safe", "--curator", "--guardian", "--management-fee-bps", "--performance-fee-bps"],
        ),
        ("status", vec!["--vault", "--controller", "--json"]),
        ("request-deposit", vec!["--vault", "--amount", "--controller", "--keystore"]),
        ("request-redeem", vec!["--vault", "--amount"]),
        ("claim", vec!["--vault", "--receiver"]),
        ("settle", vec!["--vault", "--nav"]),
        ("set-operator", vec!["--operator", "--revoke"]),
    ] {
        let said = ok(&["vault", sub, "--help"]);
        for f in flags {
            assert!(said.contains(f), "vault {sub} --help lacks {f}");
        }
    }
}

#[test]
fn deploy_deposit_settle_claim_redeem() {
    use sextant_chain::alloy::primitives::{Address, U256};
    use sextant_chain::alloy::sol_types::SolCall;
    use sextant_chain::bindings::IERC20;
    let net = Net::up();
    let url = net.devnet.rpc_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "devnet-only\n").unwrap();
    let keys = Keystore::new(dir.path().join("keys"));
    let owner_key = keys.import("owner", KEYS[1], "devnet-only").unwrap();
    let investor_key = keys.import("investor", KEYS[3], "devnet-only").unwrap();
    let (owner_ks, investor_ks) =
        (owner_key.path.to_str().unwrap().to_string(), investor_key.path.to_str().unwrap().to_string());
    let pw = password.to_str().unwrap();
    let investor = investor_key.address.clone();
    // the "Safe" here is a plain account that approves the vault (a real Safe would do it by a Safe transaction)
    let accounts: Vec<String> = sextant_devnet::rpc_call(&url, "eth_accounts", serde_json::json!([]))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let safe = accounts[2].clone();
    let usdc = net.contract("USDC").to_string();
    let mint_data = |to: &str, amount: u64| -> Vec<u8> {
        let mut d = sextant_devnet::abi::selector("mint(address,uint256)").to_vec();
        d.extend(sextant_devnet::abi::encode(&[
            sextant_devnet::abi::Value::Address(to.to_string()),
            sextant_devnet::abi::Value::Uint(u128::from(amount) * 1_000_000),
        ]));
        d
    };
    send(&url, &accounts[0], &usdc, mint_data(&investor, 5_000));
    send(&url, &accounts[0], &usdc, mint_data(&safe, 0));

    let said = ok(&[
        "vault",
        "deploy",
        "--rpc",
        &url,
        "--keystore",
        &owner_ks,
        "--password-file",
        pw,
        "--asset",
        &usdc,
        "--safe",
        &safe,
        "--name",
        "Devnet USDC vault",
        "--symbol",
        "dvUSDC",
        "--management-fee-bps",
        "100",
        "--performance-fee-bps",
        "1000",
    ]);
    let vault = said.split_whitespace().nth(1).unwrap().to_string();
    assert!(vault.starts_with("0x") && said.contains("fees 100 bp a year and 1000 bp"), "{said}");
    let vault_addr: Address = vault.parse().unwrap();
    let approve = IERC20::approveCall { spender: vault_addr, amount: U256::MAX }.abi_encode();
    send(&url, &safe, &usdc, approve);

    let invest = |args: &[&str]| -> String {
        let mut v = vec!["vault"];
        v.extend_from_slice(args);
        v.extend(["--rpc", &url, "--keystore", &investor_ks, "--password-file", pw, "--vault", &vault]);
        ok(&v)
    };
    let curate = |nav: &str| -> String {
        ok(&[
            "vault",
            "settle",
            "--rpc",
            &url,
            "--keystore",
            &owner_ks,
            "--password-file",
            pw,
            "--vault",
            &vault,
            "--nav",
            nav,
        ])
    };
    let status = || -> serde_json::Value {
        serde_json::from_str(&ok(&[
            "vault",
            "status",
            "--rpc",
            &url,
            "--vault",
            &vault,
            "--controller",
            &investor,
            "--json",
        ]))
        .unwrap()
    };

    let said = invest(&["request-deposit", "--amount", "1000"]);
    assert!(said.contains("requested a deposit of 1000"), "{said}");
    let s = status();
    assert_eq!(s["controller"]["pending_deposit"], "1000");
    assert_eq!(s["pending_deposits"], "1000");

    let said = curate("0");
    assert!(said.contains("epoch 1 settled") && said.contains("deposits    1000 for 1000 shares"), "{said}");
    let s = status();
    assert_eq!(s["controller"]["claimable_deposit"], "1000");
    let said = invest(&["claim"]);
    assert!(said.contains("claimed 1000 shares for a deposit of 1000"), "{said}");
    let s = status();
    assert_eq!(
        (s["nav"].as_str(), s["controller"]["shares"].as_str(), s["price_per_share"].as_str()),
        (Some("1000"), Some("1000"), Some("1"))
    );
    let text_status = ok(&["vault", "status", "--rpc", &url, "--vault", &vault]);
    assert!(text_status.contains("NAV                 1000") && text_status.contains("epoch 2 open"), "{text_status}");

    // The strategy earns 10 %; half the shares are redeemed; the settlement charges fees and prices the redemption.
    send(&url, &accounts[0], &usdc, mint_data(&safe, 100));
    invest(&["request-redeem", "--amount", "500"]);
    assert_eq!(status()["controller"]["pending_redeem"], "500");
    let said = curate("1100");
    assert!(said.contains("epoch 2 settled") && !said.contains("fees        0 shares"), "{said}");
    let s = status();
    assert!(s["fee_shares"].as_str().unwrap() != "0", "{s}");
    let paid: f64 = s["controller"]["claimable_redeem_assets"].as_str().unwrap().parse().unwrap();
    // 500 of 1000 shares of 1100, less a 10 % performance fee on the 100 gained (and a sliver of management fee)
    assert!(paid > 540.0 && paid < 550.0, "{paid}");
    let said = invest(&["claim"]);
    assert!(said.contains("for a redemption of 500 shares"), "{said}");
    assert_eq!(status()["controller"]["claimable_redeem_shares"], "0");

    // Refusals and bad input say why.
    let out = sextant(&[
        "vault",
        "settle",
        "--rpc",
        &url,
        "--keystore",
        &investor_ks,
        "--password-file",
        pw,
        "--vault",
        &vault,
        "--nav",
        "1",
    ]);
    assert!(
        !out.status.success() && text(&out).contains("refused by the vault: this account may not do that"),
        "{}",
        text(&out)
    );
    let out = sextant(&[
        "vault",
        "request-deposit",
        "--rpc",
        &url,
        "--keystore",
        &investor_ks,
        "--password-file",
        pw,
        "--vault",
        &vault,
        "--amount",
        "1.0000001",
    ]);
    assert!(!out.status.success() && text(&out).contains("more than 6 decimals"), "{}", text(&out));
    let out = sextant(&["vault", "status", "--rpc", &url, "--vault", &usdc]);
    assert!(!out.status.success() && text(&out).contains("does not answer as a Sextant vault"), "{}", text(&out));
}
