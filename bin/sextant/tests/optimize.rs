//! `sextant optimize` as a batch job: shards that merge into exactly the unsharded sweep, Ctrl-C that keeps every
//! finished point, `--resume` that ends byte for byte where an uninterrupted run ends, random search, constraints
//! and the Pareto front.

mod common;

use common::{fails, ok, root, sextant};

use std::path::Path;
use std::process::{Command, Stdio};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// Sharded 1/3, 2/3, 3/3 and merged (given in any order), a sweep equals the unsharded one byte for byte: the same
/// header and, point for point, the same lines. For a grid and for a random search.
#[test]
fn shards_merge_into_exactly_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for (tag, search) in [("grid", vec![]), ("random", vec!["--search", "random", "--samples", "17", "--seed", "7"])] {
        let run = |out: &str, shard: Option<&str>| {
            let mut args =
                vec!["optimize", "examples/rsi.toml", "--grid", "period=5..12;oversold=20..30:5", "--out", out];
            args.extend(&search);
            if let Some(s) = shard {
                args.extend(["--shard", s]);
            }
            ok(&args)
        };
        let whole = p(&format!("{tag}-whole.jsonl"));
        let table = run(&whole, None);
        let shards: Vec<String> = (1..=3).map(|i| p(&format!("{tag}-{i}.jsonl"))).collect();
        for (i, s) in shards.iter().enumerate() {
            let out = run(s, Some(&format!("{}/3", i + 1)));
            assert!(out.contains(&format!("(shard {}/3 of", i + 1)), "{out}");
        }
        let sizes: Vec<usize> = shards.iter().map(|s| read(Path::new(s)).lines().count() - 1).collect();
        let total = read(Path::new(&whole)).lines().count() - 1;
        assert_eq!(sizes.iter().sum::<usize>(), total, "{tag}: the shards split the points: {sizes:?}");
        assert!(sizes.iter().all(|&n| n > 0), "{sizes:?}");
        let merged = p(&format!("{tag}-merged.jsonl"));
        let out = ok(&["optimize", "merge", "--out", &merged, &shards[2], &shards[0], &shards[1]]);
        assert!(out.contains(&format!("{total} of {total} points merged")), "{out}");
        assert_eq!(read(Path::new(&merged)), read(Path::new(&whole)), "{tag}: merged != unsharded");
        assert!(table.contains(&format!("{total} points of examples/rsi.toml")), "{table}");
        if tag == "random" {
            assert!(table.contains("drawn at random (seed 7)"), "{table}");
            assert_eq!(total, 17);
        }
        // a missing shard, a shard twice, or a shard of another sweep is refused
        let e = fails(&["optimize", "merge", "--out", &shards[0], &shards[0], &shards[1], &shards[2]]);
        assert!(e.contains("is one of the inputs"), "{e}");
        let e = fails(&["optimize", "merge", "--out", &merged, &shards[0], &shards[1]]);
        assert!(e.contains("expected shards 1/3 to 3/3 once each"), "{e}");
        let e = fails(&["optimize", "merge", "--out", &merged, &shards[0], &shards[1], &shards[1]]);
        assert!(e.contains("once each"), "{e}");
    }
    let e = fails(&[
        "optimize",
        "merge",
        "--out",
        &p("x.jsonl"),
        &p("grid-1.jsonl"),
        &p("random-2.jsonl"),
        &p("grid-3.jsonl"),
    ]);
    assert!(e.contains("different sweep"), "{e}");
    // another sweep's results are not overwritten unless asked
    let e = fails(&["optimize", "examples/rsi.toml", "--grid", "period=5,6", "--out", &p("grid-whole.jsonl")]);
    assert!(e.contains("is not this job's results") && e.contains("--fresh"), "{e}");
    ok(&["optimize", "examples/rsi.toml", "--grid", "period=5,6", "--out", &p("grid-whole.jsonl"), "--fresh"]);
    assert_eq!(read(Path::new(&p("grid-whole.jsonl"))).lines().count(), 3);
    let e = fails(&["optimize", "examples/rsi.toml", "--grid", "period=5,6", "--shard", "4/3"]);
    assert!(e.contains("--shard expects i/n with 1 <= i <= n"), "{e}");
}

/// Ctrl-C (SIGINT) stops a sweep after the points under way: the results file holds every finished point, in
/// order, and the exit code says it stopped. Running again without --resume is refused (nothing is overwritten);
/// --resume runs only the rest and ends with the same file an uninterrupted run writes.
#[test]
fn ctrl_c_keeps_finished_points_and_resume_finishes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let grid = "period=2..80;oversold=10..40:5";
    let (cut, whole) = (p("cut.jsonl"), p("whole.jsonl"));
    let args = |out: &str| -> Vec<String> {
        ["optimize", "examples/rsi.toml", "--grid", grid, "--jobs", "2", "--out", out].map(String::from).to_vec()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(args(&cut))
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // interrupt once some points are on disk
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&cut).map_or(0, |t| t.lines().count()) < 3 {
        assert!(started.elapsed().as_secs() < 120, "no points written");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {err}");
    assert!(err.contains("stopped:") && err.contains("--resume"), "{err}");
    let kept = read(Path::new(&cut));
    let indices: Vec<u64> = kept
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["index"].as_u64().unwrap())
        .collect();
    let total = 79 * 7;
    assert!(!indices.is_empty() && indices.len() < total, "{} of {total} kept", indices.len());
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "in index order");

    let cut_args = args(&cut);
    let a: Vec<&str> = cut_args.iter().map(String::as_str).collect();
    let e = fails(&a);
    assert!(e.contains("unfinished run of this job") && e.contains("--resume"), "{e}");
    assert_eq!(read(Path::new(&cut)), kept, "a refused run leaves the file alone");
    let mut resume = a.clone();
    resume.push("--resume");
    ok(&resume);
    let whole_args = args(&whole);
    ok(&whole_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(read(Path::new(&cut)), read(Path::new(&whole)), "resumed != uninterrupted");
    // resuming a finished sweep runs nothing and changes nothing
    let again = sextant(&resume);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 points run, 553 kept from before"));
    assert_eq!(read(Path::new(&cut)), read(Path::new(&whole)));
    let e = fails(&["optimize", "examples/rsi.toml", "--grid", "period=5,6", "--out", &cut, "--resume"]);
    assert!(e.contains("holds no run of this job to resume"), "{e}");
}

/// Constraints drop points from the ranking (and mark them in the CSV); several metrics print their Pareto front,
/// in which no point is dominated by any feasible point of the sweep.
#[test]
fn constraints_and_the_pareto_front() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (out, json, csv) = (p("r.jsonl"), p("r.json"), p("r.csv"));
    let table = ok(&[
        "optimize",
        "examples/rsi.toml",
        "--grid",
        "period=5..16;oversold=20..35:5",
        "--metric",
        "sharpe,max_drawdown",
        "--constraint",
        "n_trades>=12",
        "--top",
        "48",
        "--out",
        &out,
        "--json",
        &json,
        "--csv",
        &csv,
    ]);
    assert!(table.contains("Pareto front of sharpe, max_drawdown"), "{table}");
    let doc: serde_json::Value = serde_json::from_str(&read(Path::new(&json))).unwrap();
    let ranked = doc["ranked"].as_array().unwrap();
    let front = doc["pareto_front"].as_array().unwrap();
    let m = |v: &serde_json::Value, k: &str| v["metrics"][k].as_f64().unwrap();
    assert!(ranked.iter().all(|v| m(v, "n_trades") >= 12.0), "only feasible points are ranked");
    assert_eq!(ranked.len() + doc["infeasible"].as_u64().unwrap() as usize, 48);
    assert!(doc["infeasible"].as_u64().unwrap() > 0, "the constraint must bite");
    assert!(!front.is_empty());
    for f in front {
        for r in ranked {
            let dominated = m(r, "sharpe") >= m(f, "sharpe")
                && m(r, "max_drawdown") <= m(f, "max_drawdown")
                && (m(r, "sharpe") > m(f, "sharpe") || m(r, "max_drawdown") < m(f, "max_drawdown"));
            assert!(!dominated, "{} dominates front point {}", r["params"], f["params"]);
        }
    }
    // every ranked point off the front is dominated by a front point
    for r in ranked.iter().filter(|r| !front.contains(r)) {
        assert!(front.iter().any(|f| m(f, "sharpe") >= m(r, "sharpe") && m(f, "max_drawdown") <= m(r, "max_drawdown")));
    }
    let rows = read(Path::new(&csv));
    let head: Vec<&str> = rows.lines().next().unwrap().split(',').collect();
    assert_eq!(&head[..3], ["index", "period", "oversold"]);
    let feasible = head.iter().position(|h| *h == "feasible").unwrap();
    let trades = head.iter().position(|h| *h == "n_trades").unwrap();
    assert_eq!(rows.lines().count(), 49);
    for row in rows.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(f[feasible] == "true", f[trades].parse::<f64>().unwrap() >= 12.0, "{row}");
    }
    // the HTML report: a heatmap cell per (oversold, period) pair, a sensitivity chart per axis
    let html = p("r.html");
    ok(&[
        "optimize",
        "examples/rsi.toml",
        "--grid",
        "period=5..16;oversold=20..35:5",
        "--constraint",
        "n_trades>=12",
        "--out",
        &out,
        "--resume",
        "--report",
        &html,
        "--heatmap",
        "oversold,period",
    ]);
    let text = read(Path::new(&html));
    assert_eq!(text.matches("<rect ").count(), 48, "4 x 12 cells");
    assert!(text.contains("Best sharpe by oversold and period"), "heatmap axes as asked");
    assert_eq!(text.matches("<h3>").count(), 2, "one sensitivity chart per axis");
    assert!(text.contains("oversold=20 period=5: "), "cells name their point");
    let e =
        fails(&["optimize", "examples/rsi.toml", "--grid", "period=5,6", "--report", &html, "--heatmap", "period,rsi"]);
    assert!(e.contains("rsi is not an axis"), "{e}");
    let e = fails(&["optimize", "examples/rsi.toml", "--grid", "period=5,6", "--constraint", "n_trades=>3"]);
    assert!(e.contains("expected metric>=value"), "{e}");
    let e = fails(&["optimize", "examples/leverage-loop.toml", "--grid", "target_health_factor=1.5,1.7"]);
    assert!(e.contains("is a leverage or fixed-yield config"), "{e}");
    let e = fails(&["optimize", "examples/rsi.toml", "--grid", "period=5,6", "--constraint", "n_trades=>3"]);
    assert!(e.contains("expected metric>=value"), "{e}");
}

/// `--walk-forward` prints each fold (its windows, the chosen point, in- and out-of-sample objective) and the
/// stitched out-of-sample result; `--json` has the same folds and the stitched equity curve.
#[test]
fn walk_forward_reports_folds_and_the_out_of_sample_gap() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("wf.json");
    let out = ok(&[
        "optimize",
        "examples/ma-cross.toml",
        "--grid",
        "fast=5..20:5;slow=30..90:15",
        "--walk-forward",
        "train=104w,test=26w",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.starts_with("walk-forward of examples/ma-cross.toml: 13 folds (train 728d, test 182d, step 182d)"),
        "{out}"
    );
    assert!(out.contains("out of sample, stitched: total return"), "{out}");
    assert!(out.contains("in sample on average"), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&read(&json)).unwrap();
    let folds = doc["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 13);
    for (f, line) in folds.iter().zip(out.lines().skip(2)) {
        assert!(line.contains(f["chosen"].as_str().unwrap()), "{line}");
        assert!(f["train_start_ms"].as_i64() < f["test_start_ms"].as_i64());
    }
    let equity = doc["equity"].as_array().unwrap();
    assert!(equity.first().unwrap()["timestamp_ms"].as_i64() >= folds[0]["test_start_ms"].as_i64());
    let e =
        fails(&["optimize", "examples/ma-cross.toml", "--grid", "fast=5,10", "--walk-forward", "train=520w,test=52w"]);
    assert!(e.contains("less than one training window plus one test window"), "{e}");
    let e = fails(&["optimize", "examples/ma-cross.toml", "--grid", "fast=5,10", "--walk-forward", "train=52w"]);
    assert!(e.contains("needs train= and test="), "{e}");
}

/// A TPE search proposes each batch from the results before it: the same seed gives the same points, a results
/// file cut short (as a crash leaves it) resumes into exactly the uninterrupted file, and it cannot be sharded.
#[test]
fn tpe_search_is_deterministic_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let grid = "period=2..40;oversold=10..40:2";
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "optimize",
            "examples/rsi.toml",
            "--grid",
            grid,
            "--search",
            "tpe",
            "--samples",
            "40",
            "--seed",
            "5",
            "--out",
            out,
        ];
        args.extend(extra);
        ok(&args)
    };
    let table = run(&p("a.jsonl"), &[]);
    assert!(table.contains("40 points of examples/rsi.toml chosen by TPE (seed 5)"), "{table}");
    run(&p("b.jsonl"), &[]);
    let full = read(Path::new(&p("a.jsonl")));
    assert_eq!(full, read(Path::new(&p("b.jsonl"))), "same seed, same search");
    let lines: Vec<&str> = full.lines().collect();
    assert_eq!(lines.len(), 41);
    let distinct: std::collections::HashSet<&str> =
        lines[1..].iter().map(|l| l.split("\"params\":").nth(1).unwrap().split(',').next().unwrap()).collect();
    assert!(distinct.len() >= 36, "TPE avoids repeating points: {} distinct of 40", distinct.len());
    // cut after 13 points (mid-batch), the 14th written halfway, as a crash leaves it, and resume
    std::fs::write(p("c.jsonl"), lines[..14].join("\n") + "\n" + &lines[14][..40]).unwrap();
    let e = fails(&[
        "optimize",
        "examples/rsi.toml",
        "--grid",
        grid,
        "--search",
        "tpe",
        "--samples",
        "40",
        "--seed",
        "5",
        "--out",
        &p("c.jsonl"),
    ]);
    assert!(e.contains("unfinished run"), "{e}");
    run(&p("c.jsonl"), &["--resume"]);
    assert_eq!(read(Path::new(&p("c.jsonl"))), full, "resumed != uninterrupted");
    let e = fails(&[
        "optimize",
        "examples/rsi.toml",
        "--grid",
        grid,
        "--search",
        "tpe",
        "--shard",
        "1/2",
        "--out",
        &p("d.jsonl"),
    ]);
    assert!(e.contains("cannot be sharded"), "{e}");
}
