//! Replays the TA-Lib reference fixtures in `tests/fixtures/` (written by
//! `scripts/make_indicator_fixtures.py` with the real TA-Lib) through the
//! streaming indicators and compares, for every file: which rows are warm-up
//! (empty), that `lookback()` equals the number of leading warm-up rows, and
//! every value, within 1e-9 relative and bit for bit.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sextant_indicators::{Atr, Bbands, Ema, Hlc, Indicator, Macd, Rsi, Sma};

/// Relative tolerance of the value comparison.
const REL_TOL: f64 = 1e-9;

/// One parsed fixture file.
struct Fixture {
    /// File name, e.g. `goog_bbands_20_2.0.csv`.
    name: String,
    header: Vec<String>,
    /// Data rows; `None` for an empty field (TA-Lib's NaN).
    rows: Vec<Vec<Option<f64>>>,
}

impl Fixture {
    fn load(path: &Path) -> Self {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut lines = text.lines();
        let header: Vec<String> = lines.next().unwrap_or_default().split(',').map(str::to_owned).collect();
        let rows = lines
            .enumerate()
            .map(|(i, line)| {
                let fields: Vec<Option<f64>> = line
                    .split(',')
                    .map(|f| {
                        (!f.is_empty()).then(|| {
                            f.parse().unwrap_or_else(|e| panic!("{name} line {}: bad float {f:?}: {e}", i + 2))
                        })
                    })
                    .collect();
                assert_eq!(fields.len(), header.len(), "{name} line {}: wrong field count", i + 2);
                fields
            })
            .collect();
        Self { name, header, rows }
    }

    fn column_index(&self, col: &str) -> usize {
        self.header.iter().position(|h| h == col).unwrap_or_else(|| panic!("{}: no column {col:?}", self.name))
    }

    /// An input column; inputs are never empty.
    fn input(&self, col: &str) -> Vec<f64> {
        let idx = self.column_index(col);
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| r[idx].unwrap_or_else(|| panic!("{} row {i}: empty input {col}", self.name)))
            .collect()
    }

    /// `(dataset, indicator, params)` from `dataset_indicator_p1_p2.csv`.
    fn parts(&self) -> (&str, &str, Vec<&str>) {
        let stem = self.name.strip_suffix(".csv").unwrap();
        let mut it = stem.split('_');
        let dataset = it.next().unwrap();
        let indicator = it.next().unwrap_or_else(|| panic!("{}: bad file name", self.name));
        (dataset, indicator, it.collect())
    }
}

/// What an indicator produced over a fixture, plus what TA-Lib wrote.
struct Replay {
    lookback: usize,
    /// Output column names, in the order of the values below.
    columns: Vec<&'static str>,
    ours: Vec<Option<Vec<f64>>>,
    theirs: Vec<Vec<Option<f64>>>,
}

fn replay<I: Indicator>(
    mut ind: I,
    inputs: Vec<I::Input>,
    columns: Vec<&'static str>,
    flatten: impl Fn(I::Output) -> Vec<f64>,
    fixture: &Fixture,
) -> Replay {
    let lookback = ind.lookback();
    let ours = inputs.into_iter().map(|x| ind.update(x).map(&flatten)).collect();
    let idx: Vec<usize> = columns.iter().map(|c| fixture.column_index(c)).collect();
    let theirs = fixture.rows.iter().map(|r| idx.iter().map(|&i| r[i]).collect()).collect();
    Replay { lookback, columns, ours, theirs }
}

fn param<T: std::str::FromStr>(fixture: &Fixture, params: &[&str], i: usize) -> T {
    params
        .get(i)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{}: missing or bad parameter #{i}", fixture.name))
}

fn run_fixture(fixture: &Fixture) -> Replay {
    let (_, indicator, params) = fixture.parts();
    let p = |i| param::<usize>(fixture, &params, i);
    match indicator {
        "sma" => replay(Sma::new(p(0)).unwrap(), fixture.input("close"), vec!["sma"], |v| vec![v], fixture),
        "ema" => replay(Ema::new(p(0)).unwrap(), fixture.input("close"), vec!["ema"], |v| vec![v], fixture),
        "rsi" => replay(Rsi::new(p(0)).unwrap(), fixture.input("close"), vec!["rsi"], |v| vec![v], fixture),
        "bbands" => replay(
            Bbands::new(p(0), param::<f64>(fixture, &params, 1)).unwrap(),
            fixture.input("close"),
            vec!["upper", "middle", "lower"],
            |v| vec![v.upper, v.middle, v.lower],
            fixture,
        ),
        "macd" => replay(
            Macd::new(p(0), p(1), p(2)).unwrap(),
            fixture.input("close"),
            vec!["macd", "signal", "hist"],
            |v| vec![v.macd, v.signal, v.hist],
            fixture,
        ),
        "atr" => {
            let (high, low, close) = (fixture.input("high"), fixture.input("low"), fixture.input("close"));
            let bars = (0..close.len()).map(|i| Hlc { high: high[i], low: low[i], close: close[i] }).collect();
            replay(Atr::new(p(0)).unwrap(), bars, vec!["atr"], |v| vec![v], fixture)
        }
        other => panic!("{}: unknown indicator {other:?}", fixture.name),
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

fn load_all() -> Vec<Fixture> {
    let dir = fixtures_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/make_indicator_fixtures.py)", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Fixture::load(p)).collect()
}

/// `|a - b| <= REL_TOL * max(|a|, |b|)`, which includes both being exactly 0.
fn close_enough(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= REL_TOL * a.abs().max(b.abs())
}

/// Compare every fixture with `same`; return one line per discrepancy.
fn discrepancies(same: impl Fn(f64, f64) -> bool) -> (usize, Vec<String>) {
    let fixtures = load_all();
    let mut problems = Vec::new();
    let mut values = 0;
    for fixture in &fixtures {
        let r = run_fixture(fixture);
        let name = &fixture.name;
        let mut leading_empty = None;
        for (row, (ours, theirs)) in r.ours.iter().zip(&r.theirs).enumerate() {
            let line = row + 2;
            let empty = theirs.iter().all(Option::is_none);
            if !empty && theirs.iter().any(Option::is_none) {
                problems.push(format!("{name} row {row} (line {line}): TA-Lib row is partly empty: {theirs:?}"));
                continue;
            }
            if !empty && leading_empty.is_none() {
                leading_empty = Some(row);
            }
            match ours {
                None if empty => {}
                None => {
                    problems.push(format!("{name} row {row} (line {line}): ours is warming up, TA-Lib has {theirs:?}"))
                }
                Some(v) if empty => {
                    problems.push(format!("{name} row {row} (line {line}): ours {v:?}, TA-Lib is empty"))
                }
                Some(v) => {
                    for ((col, &a), b) in r.columns.iter().zip(v).zip(theirs.iter().flatten()) {
                        values += 1;
                        if !same(a, *b) {
                            problems.push(format!("{name} row {row} (line {line}) {col}: ours {a:?}, TA-Lib {b:?}"));
                        }
                    }
                }
            }
        }
        let leading_empty = leading_empty.unwrap_or(r.theirs.len());
        if r.lookback != leading_empty {
            problems
                .push(format!("{name}: lookback() = {}, TA-Lib has {leading_empty} leading empty rows", r.lookback));
        }
    }
    (values, problems)
}

fn report(what: &str, values: usize, problems: &[String]) -> String {
    let mut msg = format!("{} of {values} values {what}:\n", problems.len());
    for p in problems.iter().take(40) {
        let _ = writeln!(msg, "  {p}");
    }
    if problems.len() > 40 {
        let _ = writeln!(msg, "  ... and {} more", problems.len() - 40);
    }
    msg
}

#[test]
fn every_indicator_is_covered_on_both_market_datasets() {
    let fixtures = load_all();
    let covered: BTreeSet<(String, String)> = fixtures
        .iter()
        .map(|f| {
            let (dataset, indicator, _) = f.parts();
            (dataset.to_owned(), indicator.to_owned())
        })
        .collect();
    for dataset in ["goog", "eurusd"] {
        for indicator in ["sma", "ema", "rsi", "bbands", "macd", "atr"] {
            assert!(
                covered.contains(&(dataset.to_owned(), indicator.to_owned())),
                "no {indicator} fixture for {dataset} in {}",
                fixtures_dir().display()
            );
        }
    }
    for f in &fixtures {
        assert!(f.rows.len() > 100, "{}: only {} rows", f.name, f.rows.len());
    }
}

#[test]
fn matches_ta_lib_within_tolerance() {
    let (values, problems) = discrepancies(close_enough);
    assert!(values > 50_000, "only {values} values compared");
    assert!(problems.is_empty(), "{}", report("differ from TA-Lib by more than 1e-9 relative", values, &problems));
}

#[test]
fn matches_ta_lib_bit_for_bit() {
    let (values, problems) = discrepancies(|a, b| a.to_bits() == b.to_bits());
    assert!(problems.is_empty(), "{}", report("are not bit-identical to TA-Lib", values, &problems));
}
