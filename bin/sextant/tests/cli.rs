//! The `sextant` binary end to end: help texts, outputs, and clear errors for bad input.

mod common;

use common::{fails, ok, root, sextant};

use std::process::Command;

#[test]
fn every_command_has_help() {
    for cmd in [
        &["--help"][..],
        &["backtest", "--help"],
        &["optimize", "--help"],
        &["optimize", "merge", "--help"],
        &["stress", "--help"],
        &["stress", "merge", "--help"],
        &["indicator", "--help"],
        &["data", "--help"],
        &["data", "synth", "--help"],
        &["data", "pool-minutes", "--help"],
        &["data", "rates", "--help"],
        &["devnet", "--help"],
        &["devnet", "up", "--help"],
        &["devnet", "down", "--help"],
        &["key", "--help"],
        &["key", "new", "--help"],
        &["key", "import", "--help"],
        &["key", "list", "--help"],
        &["key", "address", "--help"],
        &["pool", "--help"],
        &["pool", "state", "--help"],
        &["run", "--help"],
        &["status", "--help"],
        &["teardown", "--help"],
        &["diagnose", "--help"],
    ] {
        let text = ok(cmd);
        assert!(text.contains("Usage:"), "{cmd:?}: {text}");
    }
    let help = ok(&["indicator", "--help"]).split_whitespace().collect::<Vec<_>>().join(" ");
    for default in
        ["rsi/atr period 14", "sma/ema period 20", "bbands period 20, nbdev 2.0", "macd fast 12, slow 26, signal 9"]
    {
        assert!(help.contains(default), "indicator --help should state {default:?}");
    }
}

#[test]
fn a_live_config_backtests_too() {
    // One file drives both: the backtest ignores [live], `sextant run` ignores the backtest-only tables.
    let out = ok(&["backtest", "examples/live-devnet.toml"]);
    assert!(out.contains("rsi backtest of examples/live-devnet.toml"), "{out}");
    let out = ok(&["backtest", "examples/lp-live-devnet.toml"]);
    assert!(out.contains("LP backtest of examples/lp-live-devnet.toml") && out.contains("fee=3000 pips"), "{out}");
}

#[test]
fn default_backtest_prints_every_metric() {
    let out = ok(&["backtest"]);
    for metric in [
        "total_return",
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "win_rate",
        "n_trades",
        "fees_paid",
        "gas_paid",
        "slippage_paid",
        "mev_paid",
        "final_equity",
    ] {
        assert!(out.lines().any(|l| l.starts_with(metric)), "missing {metric} in\n{out}");
    }
    assert!(out.contains("synthetic(seed=42"), "{out}");
}

#[test]
fn json_and_html_reports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let html = dir.path().join("r.html");
    ok(&["backtest", "examples/ma-cross.toml", "--json", json.to_str().unwrap(), "--report", html.to_str().unwrap()]);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let trades = doc["trades"].as_array().unwrap();
    assert!(trades.len() > 10);
    for key in ["entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl", "return"] {
        assert!(trades[0].get(key).is_some(), "trade lacks {key}");
    }
    assert_eq!(trades[0]["entry_time"].as_str().unwrap().len(), 10, "daily data keeps date-only times");
    assert_eq!(doc["equity"].as_array().unwrap().len(), 2148);
    let final_equity = doc["metrics"]["final_equity"].as_f64().unwrap();
    assert_eq!(doc["equity"].as_array().unwrap().last().unwrap()["equity"].as_f64().unwrap(), final_equity);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("Drawdown") && page.contains("<table"));
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("<script"),
        "report must be self-contained"
    );
}

#[test]
fn data_override_and_bad_csv_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,9\n2024-01-02,1,2,x,1.5,9\n")
        .unwrap();
    let err = fails(&["backtest", "examples/rsi.toml", "--data", bad.to_str().unwrap()]);
    assert!(err.contains("bad.csv:3: column low: expected a number, got \"x\""), "{err}");
    let err = fails(&["indicator", "sma", "--data", bad.to_str().unwrap()]);
    assert!(err.contains("bad.csv:3"), "{err}");
    let err = fails(&["backtest", "examples/bollinger.toml", "--data", bad.to_str().unwrap()]);
    assert!(err.contains("[[market.assets]]"), "{err}");
    let err = fails(&["indicator", "rsi", "--data", dir.path().join("missing.csv").to_str().unwrap()]);
    assert!(err.contains("missing.csv"), "{err}");
}

#[test]
fn bad_config_values_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[strategy]\nkind = \"ma_cross\"\nfast = 50\nslow = 20\n").unwrap();
    let err = fails(&["backtest", cfg.to_str().unwrap()]);
    assert!(err.contains("strategy.fast must be below strategy.slow (20), got 50"), "{err}");
    std::fs::write(&cfg, "[strategy]\nkind = \"rsi\"\n[risk]\nstop_loss = 5\n").unwrap();
    let err = fails(&["backtest", cfg.to_str().unwrap()]);
    assert!(err.contains("unknown field `stop_loss`") && err.contains("line 4"), "{err}");
    let err = fails(&["indicator", "rsi", "--data", "tests/data/GOOG.csv", "--period", "1"]);
    assert!(err.contains("period must be >= 2, got 1"), "{err}");
    let err = fails(&["indicator", "sma", "--data", "tests/data/GOOG.csv", "--nbdev", "2"]);
    assert!(err.contains("--nbdev does not apply to sma"), "{err}");
}

/// Parses `sextant indicator` output: (timestamp, fields) per row.
fn rows(csv: &str) -> Vec<(String, Vec<Option<f64>>)> {
    csv.lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            let t = f.next().unwrap().to_string();
            (t, f.map(|v| if v.is_empty() { None } else { Some(v.parse().unwrap()) }).collect())
        })
        .collect()
}

#[test]
fn indicator_output_equals_talib_fixtures() {
    let fixtures = root().join("crates/indicators/tests/fixtures");
    let cases: [(&[&str], &str, usize); 4] = [
        (&["rsi"], "goog_rsi_14.csv", 1),
        (&["bbands"], "goog_bbands_20_2.0.csv", 3),
        (&["macd"], "eurusd_macd_12_26_9.csv", 3),
        (&["atr", "--period", "7"], "eurusd_atr_7.csv", 1),
    ];
    for (args, fixture, n_out) in cases {
        let data = if fixture.starts_with("goog") { "tests/data/GOOG.csv" } else { "tests/data/EURUSD.csv" };
        let mut full = vec!["indicator", args[0], "--data", data];
        full.extend_from_slice(&args[1..]);
        let out = ok(&full);
        let header = out.lines().next().unwrap();
        assert_eq!(header.split(',').count(), 1 + n_out, "{header}");
        let ours = rows(&out);
        let expected = std::fs::read_to_string(fixtures.join(fixture)).unwrap();
        let mut compared = 0;
        for (line, (_, fields)) in expected.lines().skip(1).zip(&ours) {
            let want: Vec<Option<f64>> = line
                .split(',')
                .rev()
                .take(n_out)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|v| v.parse().ok())
                .collect();
            assert_eq!(fields, &want, "{fixture} row {compared}");
            compared += 1;
        }
        assert!(compared >= 1000, "{fixture}: compared {compared} rows");
    }
    let out = ok(&["indicator", "sma", "--data", "tests/data/EURUSD.csv", "--period", "3"]);
    assert!(
        out.lines().nth(1).unwrap().starts_with("2017-04-19 09:00:00,"),
        "times are written as the data writes them"
    );
    assert_eq!(rows(&out).iter().take_while(|(_, f)| f[0].is_none()).count(), 2);
}

#[test]
fn synth_is_seeded_and_round_trips() {
    let a = ok(&["data", "synth", "--seed", "9", "--bars", "300", "--interval", "5m"]);
    assert_eq!(a, ok(&["data", "synth", "--seed", "9", "--bars", "300", "--interval", "5m"]));
    assert_ne!(a, ok(&["data", "synth", "--seed", "10", "--bars", "300", "--interval", "5m"]));
    assert_eq!(a.lines().count(), 301);
    assert!(a.starts_with("timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,2000,"), "{}", &a[..80]);
    assert!(a.lines().nth(2).unwrap().starts_with("2024-01-01T00:05:00Z,"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.csv");
    std::fs::write(&file, &a).unwrap();
    let out = ok(&["backtest", "--data", file.to_str().unwrap()]);
    assert!(out.contains("300 bars"), "{out}");
    let err = fails(&["data", "synth", "--bars", "0"]);
    assert!(err.contains("bars must be between 1 and 100000000, got 0"), "{err}");
    let stable = ok(&["data", "synth", "--profile", "stable", "--start-price", "1", "--bars", "50"]);
    assert!(stable.lines().nth(50).unwrap().split(',').nth(4).unwrap().parse::<f64>().unwrap() > 0.95);
}

#[test]
fn optimize_ranks_a_grid() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("grid.json");
    let out = ok(&[
        "optimize",
        "examples/rsi.toml",
        "--grid",
        "period=7,14;oversold=20..30:5",
        "--jobs",
        "2",
        "--json",
        json.to_str().unwrap(),
        "--out",
        dir.path().join("grid.jsonl").to_str().unwrap(),
    ]);
    assert!(out.contains("6 points"), "{out}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let points = doc["ranked"].as_array().unwrap();
    assert_eq!(points.len(), 6);
    let sharpe: Vec<f64> = points.iter().map(|p| p["metrics"]["sharpe"].as_f64().unwrap()).collect();
    assert!(sharpe.windows(2).all(|w| w[0] >= w[1]), "ranked best first: {sharpe:?}");
    let distinct: std::collections::HashSet<_> =
        points.iter().map(|p| p["params"].as_str().unwrap().to_string()).collect();
    assert_eq!(distinct.len(), 6);
    let err = fails(&["optimize", "examples/rsi.toml", "--grid", "period=1,14"]);
    assert!(err.contains("strategy.period must be between 2 and 100000, got 1"), "{err}");
    let err = fails(&["optimize", "examples/rsi.toml", "--grid", "period=7", "--metric", "luck"]);
    assert!(err.contains("unknown metric"), "{err}");
}

#[test]
fn a_run_stopped_and_resumed_from_its_saved_state_ends_identical() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    ok(&["backtest", "examples/bollinger.toml", "--json", &p("full.json")]);
    let out = ok(&["backtest", "examples/bollinger.toml", "--stop-after", "1777", "--save-state", &p("state.json")]);
    assert!(out.starts_with("stopped after step 1777;"), "{out}");
    assert!(!out.contains("sharpe"), "a stopped run prints no metrics");
    ok(&["backtest", "examples/bollinger.toml", "--resume", &p("state.json"), "--json", &p("resumed.json")]);
    assert_eq!(std::fs::read(p("full.json")).unwrap(), std::fs::read(p("resumed.json")).unwrap());
    let err = fails(&["backtest", "examples/rsi.toml", "--resume", &p("state.json")]);
    assert!(err.contains("saved from a different config"), "{err}");
    // Same config, different data under the same file name.
    std::fs::copy(root().join("tests/data/GOOG.csv"), p("goog.csv")).unwrap();
    let cfg = std::fs::read_to_string(root().join("examples/ma-cross.toml"))
        .unwrap()
        .replace("../tests/data/GOOG.csv", "goog.csv");
    std::fs::write(p("ma.toml"), cfg).unwrap();
    ok(&["backtest", &p("ma.toml"), "--stop-after", "500", "--save-state", &p("ma.json")]);
    let edited = std::fs::read_to_string(p("goog.csv")).unwrap().replacen("100.34", "100.35", 1);
    std::fs::write(p("goog.csv"), edited).unwrap();
    let err = fails(&["backtest", &p("ma.toml"), "--resume", &p("ma.json")]);
    assert!(err.contains("different market data"), "{err}");
    std::fs::write(p("junk.json"), "{}").unwrap();
    let err = fails(&["backtest", "examples/bollinger.toml", "--resume", &p("junk.json")]);
    assert!(err.contains("not a saved backtest state"), "{err}");
}

#[test]
fn keys_are_created_imported_listed_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("ks");
    let ks = ks.to_str().unwrap();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_sextant"))
            .args(args)
            .args(["--keystore-dir", ks])
            .env("SEXTANT_KEY_PASSWORD", "correct horse")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap())
    };
    let secret = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let (code, out) = run(&["key", "import", "anvil0"], &format!("0x{secret}\n"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"), "{out}");
    let (code, out) = run(&["key", "new", "bot"], "");
    assert_eq!(code, Some(0), "{out}");
    let (_, list) = run(&["key", "list"], "");
    assert!(list.contains("anvil0") && list.contains("bot"), "{list}");
    let (_, address) = run(&["key", "address", "anvil0"], "");
    assert_eq!(address.trim(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    let (code, err) = run(&["key", "new", "bot"], "");
    assert_eq!(code, Some(1));
    assert!(err.contains("already exists"), "{err}");
    let (code, err) = run(&["key", "import", "short"], "0xdeadbeef\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("32 bytes") && !err.contains("deadbeef"), "{err}");
    // No output anywhere, nor any keystore file, holds the secret in the clear.
    for entry in std::fs::read_dir(ks).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains(secret));
    }
    assert!(!list.contains(secret) && !address.contains(secret));
}

#[test]
fn lp_examples_backtest_with_lp_metrics_json_and_a_range_chart() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("lp.json");
    let html = dir.path().join("lp.html");
    let out = ok(&[
        "backtest",
        "examples/lp-blue-chip.toml",
        "--json",
        json.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    assert!(out.starts_with("dynamic_lp(blue_chip"), "{out}");
    for metric in ["fees_earned", "fee_apr", "impermanent_loss", "value_vs_hold", "time_in_range", "rebalances"] {
        assert!(out.contains(metric), "{metric} missing: {out}");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["lp"]["fees_earned"].as_f64().unwrap() > 0.0);
    let positions = v["positions"].as_array().unwrap();
    assert!(!positions.is_empty() && positions[0]["price_lower"].as_f64() < positions[0]["price_upper"].as_f64());
    assert_eq!(v["equity"].as_array().unwrap().len(), 2160);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Price and ranges") && page.matches("<rect").count() >= positions.len());
    let degen = ok(&["backtest", "examples/lp-degen.toml"]);
    assert!(degen.starts_with("dynamic_lp(degen"), "{degen}");
    // LP configs have no candles to swap in.
    assert!(fails(&["backtest", "examples/lp-degen.toml", "--data", "x.csv"]).contains("pool.data"));
}

#[test]
fn an_lp_backtest_stopped_and_resumed_ends_identical_to_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let out = ok(&["backtest", "examples/lp-degen.toml", "--stop-after", "300", "--save-state", &path("s.json")]);
    assert!(out.starts_with("stopped after step 300"), "{out}");
    ok(&["backtest", "examples/lp-degen.toml", "--resume", &path("s.json"), "--json", &path("resumed.json")]);
    ok(&["backtest", "examples/lp-degen.toml", "--json", &path("whole.json")]);
    let (resumed, whole) = (std::fs::read(path("resumed.json")).unwrap(), std::fs::read(path("whole.json")).unwrap());
    assert!(resumed == whole, "a resumed LP run must end byte-identical");
    // A state belongs to its config.
    let e = fails(&["backtest", "examples/lp-blue-chip.toml", "--resume", &path("s.json")]);
    assert!(e.contains("different config"), "{e}");
}

#[test]
fn lp_configs_optimize_on_their_pool_and_rank_by_lp_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("lp.jsonl");
    let out = ok(&[
        "optimize",
        "--out",
        results.to_str().unwrap(),
        "examples/lp-blue-chip.toml",
        "--grid",
        "width_ticks=400,1200;recenter_at=0.6,1.0",
        "--metric",
        "fees_earned",
        "--top",
        "4",
    ]);
    assert!(
        out.starts_with("4 points of examples/lp-blue-chip.toml") && out.contains("ranked by fees_earned"),
        "{out}"
    );
    let fees: Vec<f64> = out.lines().skip(2).map(|l| l.split_whitespace().nth(3).unwrap().parse().unwrap()).collect();
    assert_eq!(fees.len(), 4);
    assert!(fees.windows(2).all(|w| w[0] >= w[1]), "ranked best first: {fees:?}");
    // Narrower ranges earn more fees on the same pool.
    assert!(out.lines().nth(2).unwrap().contains("width_ticks=400"), "{out}");
    let e = fails(&["optimize", "examples/rsi.toml", "--grid", "period=7,14", "--metric", "fees_earned"]);
    assert!(e.contains("unknown metric"), "{e}");
}

#[test]
fn pool_minutes_write_a_demeter_file_that_backtests_as_a_pool() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.minute.csv");
    ok(&["data", "pool-minutes", "--bars", "2000", "--out", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("timestamp,netAmount0,netAmount1,closeTick,openTick,lowestTick,highestTick,inAmount0,inAmount1,currentLiquidity\n2024-01-01 00:00:00,"));
    assert_eq!(text.lines().count(), 2001);
    let config = dir.path().join("lp.toml");
    std::fs::write(
        &config,
        "[strategy]\nkind = \"dynamic_lp\"\nwidth_ticks = 300\n[pool]\ndata = \"pool.minute.csv\"\n",
    )
    .unwrap();
    let out = ok(&["backtest", config.to_str().unwrap()]);
    assert!(out.contains("demeter minutes") && out.contains("2000 steps"), "{out}");
    assert!(fails(&["data", "pool-minutes", "examples/rsi.toml"]).contains("not an LP config"));
}

#[test]
fn the_stable_rotator_backtests_with_its_markets_and_decision_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let out = ok(&["backtest", "examples/stable-rotator.toml", "--json", &path("r.json"), "--report", &path("r.html")]);
    assert!(out.starts_with("stable_rotator("), "{out}");
    for id in ["aave-v3-usdc", "compound-v3-usdc", "morpho-usdc", "euler-v2-usdc", "fluid-usdc", "yearn-v3-usdc"] {
        assert!(out.contains(id), "{id} missing: {out}");
    }
    for word in
        ["realised_apy", "best_single_apy", "rewards_claimed", "gas_paid", "decision log:", "intents failed: none"]
    {
        assert!(out.contains(word), "{word} missing: {out}");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path("r.json")).unwrap()).unwrap();
    let decisions = v["decisions"].as_array().unwrap();
    assert!(decisions.iter().any(|d| d["rule"] == "initial_allocation"));
    assert!(decisions.iter().any(|d| d["rule"] == "tvl_collapse" && d["from"] == "euler-v2-usdc"));
    assert!(decisions.iter().all(|d| d["time"].as_str().is_some_and(|t| t.starts_with("2024-"))));
    assert_eq!(v["equity"].as_array().unwrap().len(), 8760);
    assert!(v["realised_apy"].as_f64().unwrap() > 0.03);
    let page = std::fs::read_to_string(path("r.html")).unwrap();
    assert!(page.contains("Decision log") && page.contains("Where the money sat") && page.contains("tvl_collapse"));

    // Stopped and resumed, the run ends identical.
    let stopped =
        ok(&["backtest", "examples/stable-rotator.toml", "--stop-after", "4000", "--save-state", &path("s.json")]);
    assert!(stopped.starts_with("stopped after step 4000"), "{stopped}");
    ok(&["backtest", "examples/stable-rotator.toml", "--resume", &path("s.json"), "--json", &path("resumed.json")]);
    assert!(std::fs::read(path("resumed.json")).unwrap() == std::fs::read(path("r.json")).unwrap());

    // A grid over the rotator's parameters.
    let results = tempfile::NamedTempFile::new().unwrap();
    let grid = ok(&[
        "optimize",
        "examples/stable-rotator.toml",
        "--grid",
        "horizon_days=7,30",
        "--metric",
        "cagr",
        "--out",
        results.path().to_str().unwrap(),
    ]);
    assert!(grid.contains("2 points") && grid.contains("horizon_days=30"), "{grid}");
}

#[test]
fn rates_written_as_csv_backtest_as_lending_data_and_bad_rates_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rates.csv");
    let out = sextant(&["data", "rates", "--steps", "500", "-o", csv.to_str().unwrap()]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 1 + 6 * 500);
    assert!(text.starts_with("timestamp,market,supply_apy,borrow_apy,tvl_usd,utilization,reward_apy,frozen,bad_debt"));
    let config = dir.path().join("rot.toml");
    std::fs::write(
        &config,
        "[strategy]\nkind = \"stable_rotator\"\n[lending]\ndata = \"rates.csv\"\n[[lending.markets]]\nid = \"morpho-usdc\"\nprotocol = \"morpho\"\n",
    )
    .unwrap();
    let out = ok(&["backtest", config.to_str().unwrap()]);
    assert!(out.contains("rates.csv (6 lending markets)") && out.contains("500 steps"), "{out}");

    std::fs::write(&csv, "timestamp,market,supply_apy,borrow_apy,tvl_usd,utilization\n2024-01-01,a,0.05,0.07,-3,0.5\n")
        .unwrap();
    let e = fails(&["backtest", config.to_str().unwrap()]);
    assert!(e.contains("rates.csv:2: tvl_usd must be between 0 and"), "{e}");

    // Config mistakes name the key.
    let bad = |toml: &str| {
        std::fs::write(&config, toml).unwrap();
        fails(&["backtest", config.to_str().unwrap()])
    };
    let e = bad("[strategy]\nkind = \"rsi\"\n[lending]\nseed = 1\n");
    assert!(e.contains("lending") && e.contains("stable_rotator"), "{e}");
    let e = bad("[strategy]\nkind = \"stable_rotator\"\nmax_share = 1.5\n");
    assert!(e.contains("strategy.max_share") && e.contains("1.5"), "{e}");
    let e = bad("[strategy]\nkind = \"stable_rotator\"\n[[lending.markets]]\nid = \"x\"\nprotocol = \"maker\"\n");
    assert!(e.contains("lending.markets[0].protocol"), "{e}");
    let e = bad("[strategy]\nkind = \"stable_rotator\"\n[[lending.markets]]\nid = \"spark-usdc\"\n");
    assert!(e.contains("lending.markets[0].curve") && e.contains("spark-usdc"), "{e}");
}

#[test]
fn the_leverage_loop_and_fixed_yield_examples_backtest_with_their_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let out = ok(&["backtest", "examples/leverage-loop.toml", "--json", &path("lev.json")]);
    assert!(out.starts_with("leverage_loop("), "{out}");
    for word in ["min_health_factor", "max_leverage", "liquidation_penalty", "liquidated 2024-", "decision log:"] {
        assert!(out.contains(word), "{word} missing: {out}");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path("lev.json")).unwrap()).unwrap();
    assert!(!v["liquidations"].as_array().unwrap().is_empty());
    assert!(v["liquidations"][0]["debt_repaid"].as_str().unwrap().parse::<u128>().unwrap() > 0);
    let out = ok(&["backtest", "examples/fixed-yield.toml", "--json", &path("fy.json")]);
    assert!(out.starts_with("fixed_yield("), "{out}");
    for word in ["realised_apy", "floating_apy", "time_in_pt", "fixed_beats_floating", "spread_inverted"] {
        assert!(out.contains(word), "{word} missing: {out}");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path("fy.json")).unwrap()).unwrap();
    assert_eq!(v["benchmark"].as_array().unwrap().len(), 5040);
    // Bad values name their key.
    let config = dir.path().join("bad.toml");
    let bad = |toml: &str| {
        std::fs::write(&config, toml).unwrap();
        fails(&["backtest", config.to_str().unwrap()])
    };
    let e = bad("[strategy]\nkind = \"leverage_loop\"\ntarget_health_factor = 1.0\n");
    assert!(e.contains("strategy.target_health_factor"), "{e}");
    let e = bad("[strategy]\nkind = \"leverage_loop\"\n[leverage]\nltv = 0.9\nliquidation_threshold = 0.85\n");
    assert!(e.contains("leverage.ltv"), "{e}");
    let e = bad("[strategy]\nkind = \"leverage_loop\"\n[leverage]\nliquidation_threshold = 0.97\n");
    assert!(e.contains("leverage.liquidation_bonus"), "{e}");
    let e = bad("[strategy]\nkind = \"fixed_yield\"\n[fixed_yield]\nmaturity_days = 0\n");
    assert!(e.contains("fixed_yield.maturity_days"), "{e}");
    let e = bad("[strategy]\nkind = \"rsi\"\n[fixed_yield]\nseed = 1\n");
    assert!(e.contains("fixed_yield") && e.contains("rsi"), "{e}");

    // Both stop and resume to the same end as an uninterrupted run.
    for (example, json) in [("examples/leverage-loop.toml", "lev.json"), ("examples/fixed-yield.toml", "fy.json")] {
        let stopped = ok(&["backtest", example, "--stop-after", "1400", "--save-state", &path("s.json")]);
        assert!(stopped.starts_with("stopped after step 1400"), "{stopped}");
        ok(&["backtest", example, "--resume", &path("s.json"), "--json", &path("resumed.json")]);
        assert!(std::fs::read(path("resumed.json")).unwrap() == std::fs::read(path(json)).unwrap(), "{example}");
    }
}
