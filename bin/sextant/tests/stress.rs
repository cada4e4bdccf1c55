//! `sextant stress` end to end: the summary, shards that merge into exactly the unsharded run, the HTML report,
//! clear errors.

mod common;

use common::{fails, ok};

#[test]
fn stress_summarises_paths_and_shards_merge_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let args = |out: &str| {
        vec![
            "stress",
            "examples/rsi.toml",
            "--paths",
            "30",
            "--model",
            "regime",
            "--scenario",
            "flash_crash",
            "--seed",
            "9",
            "--out",
            out.to_string().leak(),
        ]
    };
    let mut whole_args = args(&p("whole.jsonl"));
    let json = p("s.json");
    let report = p("s.html");
    whole_args.extend(["--json", json.as_str(), "--report", report.as_str()]);
    let out = ok(&whole_args);
    assert!(out.starts_with("30 paths of examples/rsi.toml: model=regime;scenarios=flash_crash"), "{out}");
    for needle in [
        "total_return",
        "max_drawdown",
        "P(loss) = ",
        "P(ruin: drawdown >= 50%)",
        "worst path: #",
        "the data itself with the scenarios",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(p("whole.jsonl"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    // the summary's probabilities and worst path are the paths' own
    let ret = |v: &serde_json::Value| v["metrics"]["total_return"].as_f64().unwrap();
    let losses = lines.iter().filter(|v| ret(v) < 0.0).count() as f64 / 30.0;
    assert!((doc["summary"]["p_loss"].as_f64().unwrap() - losses).abs() < 1e-12);
    let worst = lines.iter().min_by(|a, b| ret(a).total_cmp(&ret(b))).unwrap();
    assert_eq!(doc["summary"]["worst"][0], worst["index"]);
    let median = doc["summary"]["metrics"].as_array().unwrap().iter().find(|m| m[0] == "total_return").unwrap()[1][2]
        .as_f64()
        .unwrap();
    let mut rets: Vec<f64> = lines.iter().map(ret).collect();
    rets.sort_by(f64::total_cmp);
    assert!((median - (rets[14] + rets[15]) / 2.0).abs() < 1e-12, "median of 30 paths");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && html.contains("Probability of a loss"));

    let shards: Vec<String> = (1..=3).map(|i| p(&format!("s{i}.jsonl"))).collect();
    for (i, s) in shards.iter().enumerate() {
        let mut a = args(s);
        let shard = format!("{}/3", i + 1);
        a.extend(["--shard", shard.as_str().to_string().leak()]);
        ok(&a);
    }
    let merged = p("merged.jsonl");
    let out = ok(&["stress", "merge", "--out", &merged, &shards[1], &shards[2], &shards[0]]);
    assert!(out.contains("30 of 30 paths merged"), "{out}");
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), std::fs::read_to_string(p("whole.jsonl")).unwrap());
}

#[test]
fn stress_explains_bad_input() {
    let e = fails(&["stress", "examples/rsi.toml", "--scenario", "meteor"]);
    assert!(e.contains("unknown scenario \"meteor\"") && e.contains("flash_crash"), "{e}");
    let e = fails(&["stress", "examples/rsi.toml", "--model", "history", "--scenario", "depeg"]);
    assert!(e.contains("needs a stablecoin"), "{e}");
    let e = fails(&["stress", "examples/leverage-loop.toml"]);
    assert!(e.contains("candle, dynamic_lp and stable_rotator configs so far"), "{e}");
    let e = fails(&["stress", "examples/rsi.toml", "--model", "history", "--paths", "5"]);
    assert!(e.contains("one path"), "{e}");
    let e = fails(&["stress", "examples/rsi.toml", "--ruin-drawdown", "2"]);
    assert!(e.contains("--ruin-drawdown must be in (0, 1]"), "{e}");
}
