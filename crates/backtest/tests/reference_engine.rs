//! Differential test against a reference engine: with `costs = "none"` and `fill = "next_open"`, a long-only
//! `ma_cross` makes exactly the trades (times and prices) that backtesting.py makes with the same rules, except
//! where the rules differ by design: a position still open when the data ends is closed at the last close here and
//! at the last open by backtesting.py (checked explicitly below).
//! The reference trades in `tests/reference/` are written by `scripts/make_reference_trades.py` (backtesting.py with
//! TA-Lib's SMA); the test command re-runs that script with `--check` so the files stay what the reference produces.

use sextant_backtest::report::json_report;
use sextant_backtest::{BacktestConfig, run_backtest};
use std::path::Path;

#[test]
fn ma_cross_trades_equal_backtesting_py() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cases = 0;
    let (mut compared, mut end_closes) = (0, 0);
    let mut entries: Vec<_> =
        std::fs::read_dir(root.join("tests/reference")).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        // <dataset>_sma_cross_<fast>_<slow>
        let Some((dataset, params)) = name.split_once("_sma_cross_") else { continue };
        let (fast, slow) = params.split_once('_').unwrap();
        let data = match dataset {
            "goog" => root.join("tests/data/GOOG.csv"),
            "eurusd" => root.join("tests/data/EURUSD.csv"),
            other => panic!("unknown dataset {other}"),
        };
        let text = format!(
            "[strategy]\nkind = \"ma_cross\"\nfast = {fast}\nslow = {slow}\nma = \"sma\"\n[market]\ndata = {data:?}\n[execution]\ncosts = \"none\"\nfill = \"next_open\"\n[portfolio]\ninitial_cash = 1000000\n"
        );
        let config = BacktestConfig::parse(&text, &name).unwrap();
        let markets = config.load_markets().unwrap();
        let result = run_backtest(&config, &markets).unwrap();
        let ours = json_report(&result, markets[0].series.time_style).trades;
        let expected = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<Vec<&str>> = expected.lines().skip(1).map(|l| l.split(',').collect()).collect();
        assert_eq!(ours.len(), expected.len(), "{name}: trade count");
        let last = markets[0].series.candles.last().unwrap();
        let last_time = sextant_data::time::format_time(last.timestamp_ms, markets[0].series.time_style);
        for (i, (t, e)) in ours.iter().zip(&expected).enumerate() {
            let got = (t.entry_time.as_str(), t.exit_time.as_str(), t.trade.entry_price);
            let want = (e[0], e[1], e[2].parse::<f64>().unwrap());
            assert_eq!(got, want, "{name}: trade {i}");
            let their_exit: f64 = e[3].parse().unwrap();
            if i == ours.len() - 1 && t.exit_time == last_time && t.trade.exit_price != their_exit {
                // The one documented difference: a position still open when the data ends is closed at the last
                // close by Sextant (as its rules say) and at the last bar's open by backtesting.py's
                // finalize_trades. Anything else differing fails.
                assert_eq!((t.trade.exit_price, their_exit), (last.close, last.open), "{name}: end-of-data close");
                end_closes += 1;
            } else {
                assert_eq!(t.trade.exit_price, their_exit, "{name}: trade {i} exit price");
            }
        }
        compared += ours.len();
        cases += 1;
    }
    assert!(cases >= 2, "expected at least two reference cases, found {cases}");
    assert!(compared > 100 && end_closes < cases, "{compared} trades compared, {end_closes} end-of-data closes");
}
