//! The shared `[risk]` settings of the indicator strategies, end to end through the engine.

use sextant_backtest::{BacktestConfig, BacktestResult, Market, run_backtest, run_backtest_from};
use sextant_data::SynthSpec;
use sextant_types::Token;

fn markets(seed: u64) -> Vec<Market> {
    let series = SynthSpec { seed, bars: 4000, ..SynthSpec::default() }.generate().unwrap();
    vec![Market {
        base: Token::simulated("WETH", 18).unwrap(),
        quote: Token::simulated("USDC", 6).unwrap(),
        series,
        source: "synthetic".into(),
    }]
}

fn run(text: &str, markets: &[Market]) -> BacktestResult {
    let config = BacktestConfig::parse(text, "t").unwrap();
    run_backtest(&config, markets).unwrap()
}

const FREE: &str = "[execution]\ncosts = \"none\"\nfill = \"close\"\n";

/// Index of the bar with this timestamp.
fn at(m: &[Market], t: i64) -> usize {
    m[0].series.candles.iter().position(|c| c.timestamp_ms == t).unwrap()
}

#[test]
fn stop_loss_and_take_profit_exit_at_their_thresholds() {
    let m = markets(31);
    // Overbought 100 never fires: every exit before the end is a protective one.
    let stopped = run(&format!("[strategy]\nkind = \"rsi\"\noverbought = 100\n[risk]\nstop_loss_pct = 3\n{FREE}"), &m);
    let taken = run(&format!("[strategy]\nkind = \"rsi\"\noverbought = 100\n[risk]\ntake_profit_pct = 4\n{FREE}"), &m);
    let never = run(&format!("[strategy]\nkind = \"rsi\"\noverbought = 100\n{FREE}"), &m);
    assert_eq!(never.trades.len(), 1, "without exits the first entry is held to the end");
    for (r, check) in [(&stopped, -1.0), (&taken, 1.0)] {
        assert!(r.trades.len() > 3, "{} trades", r.trades.len());
        for t in &r.trades[..r.trades.len() - 1] {
            // fill = close: the exit fills on the very close that crossed the threshold.
            let move_pct = (t.exit_price / t.entry_price - 1.0) * 100.0;
            if check < 0.0 {
                assert!(move_pct <= -3.0, "stop exit at {move_pct:.2}%");
            } else {
                assert!(move_pct >= 4.0, "take-profit exit at {move_pct:.2}%");
            }
            // And no earlier close in the trade crossed it.
            let (i, j) = (at(&m, t.entry_time_ms), at(&m, t.exit_time_ms));
            for c in &m[0].series.candles[i + 1..j] {
                let p = (c.close / t.entry_price - 1.0) * 100.0;
                assert!(if check < 0.0 { p > -3.0 } else { p < 4.0 }, "threshold crossed earlier at {p:.2}%");
            }
        }
    }
}

#[test]
fn cooldown_spaces_out_signal_trades() {
    let m = markets(32);
    let base = run(&format!("[strategy]\nkind = \"rsi\"\nperiod = 5\n{FREE}"), &m);
    let cooled = run(&format!("[strategy]\nkind = \"rsi\"\nperiod = 5\n[risk]\ncooldown_bars = 40\n{FREE}"), &m);
    assert!(cooled.trades.len() < base.trades.len());
    // The last trade may be closed by the end of the data, not by a signal.
    for t in &cooled.trades[..cooled.trades.len() - 1] {
        assert!(at(&m, t.exit_time_ms) - at(&m, t.entry_time_ms) >= 40, "exit within the cooldown");
    }
    for w in cooled.trades.windows(2) {
        assert!(at(&m, w[1].entry_time_ms) - at(&m, w[0].exit_time_ms) >= 40, "entry within the cooldown");
    }
}

#[test]
fn thin_bars_are_not_traded() {
    let m = markets(33);
    let max_volume = m[0].series.candles.iter().map(|c| c.volume).fold(0.0, f64::max);
    let all = run(&format!("[strategy]\nkind = \"rsi\"\n[risk]\nmin_volume = {}\n{FREE}", max_volume + 1.0), &m);
    assert_eq!(all.trades.len(), 0);
    let median = {
        let mut v: Vec<f64> = m[0].series.candles.iter().map(|c| c.volume).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let some = run(&format!("[strategy]\nkind = \"rsi\"\n[risk]\nmin_volume = {median}\n{FREE}"), &m);
    assert!(!some.trades.is_empty());
    for t in &some.trades[..some.trades.len() - 1] {
        assert!(m[0].series.candles[at(&m, t.entry_time_ms)].volume >= median);
        assert!(m[0].series.candles[at(&m, t.exit_time_ms)].volume >= median);
    }
}

#[test]
fn max_slippage_skips_trades_the_pool_cannot_take() {
    let m = markets(34);
    let pool = "[execution]\nslippage = \"constant_product\"\npool_depth_usd = 4000000\n";
    // 10k into a 2M side is ~50 bps of impact.
    let loose = run(&format!("[strategy]\nkind = \"rsi\"\n[risk]\nmax_slippage_bps = 80\n{pool}"), &m);
    let tight = run(&format!("[strategy]\nkind = \"rsi\"\n[risk]\nmax_slippage_bps = 20\n{pool}"), &m);
    assert!(loose.metrics.n_trades > 0 && loose.flows.failed.is_empty(), "{:?}", loose.flows);
    assert_eq!(tight.metrics.n_trades, 0);
    assert!(tight.flows.failed["slippage_exceeded"] > 0);
}

#[test]
fn position_size_scales_entries() {
    let m = markets(35);
    let full = run(&format!("[strategy]\nkind = \"rsi\"\n{FREE}"), &m);
    let quarter = run(&format!("[strategy]\nkind = \"rsi\"\n[risk]\nposition_size = 0.25\n{FREE}"), &m);
    let (f, q) = (&full.trades[0], &quarter.trades[0]);
    assert_eq!(f.entry_time_ms, q.entry_time_ms);
    assert!((q.size / f.size - 0.25).abs() < 1e-9, "{} vs {}", q.size, f.size);
}

#[test]
fn ema_cross_and_bollinger_exits_trade_differently() {
    let m = markets(36);
    let sma = run(&format!("[strategy]\nkind = \"ma_cross\"\nfast = 8\nslow = 21\n{FREE}"), &m);
    let ema = run(&format!("[strategy]\nkind = \"ma_cross\"\nfast = 8\nslow = 21\nma = \"ema\"\n{FREE}"), &m);
    assert!(!sma.trades.is_empty() && !ema.trades.is_empty());
    assert_ne!(sma.trades, ema.trades);
    let middle = run(&format!("[strategy]\nkind = \"bollinger\"\n{FREE}"), &m);
    let upper = run(&format!("[strategy]\nkind = \"bollinger\"\nexit = \"upper\"\n{FREE}"), &m);
    // Exiting at the upper band holds longer than exiting at the mean.
    let hold = |r: &BacktestResult| {
        r.trades.iter().map(|t| (t.exit_time_ms - t.entry_time_ms) as f64).sum::<f64>() / r.trades.len() as f64
    };
    assert!(hold(&upper) > hold(&middle));
}

/// A walk-forward's test window starts after a warm-up whose intents are all refused: a refusal must not start a
/// cooldown, or a signal that held through the window's start would wait out the cooldown before its first trade.
#[test]
fn a_refused_warm_up_intent_starts_no_cooldown() {
    let m = markets(33);
    let text =
        |cooldown: usize| format!("[strategy]\nkind = \"rsi\"\nperiod = 5\n[risk]\ncooldown_bars = {cooldown}\n{FREE}");
    let (plain, cooled) =
        (BacktestConfig::parse(&text(0), "t").unwrap(), BacktestConfig::parse(&text(40), "t").unwrap());
    let time = |i: usize| m[0].series.candles[i].timestamp_ms;
    let first_entry = |config: &BacktestConfig, from: usize| {
        run_backtest_from(config, &m, time(from)).unwrap().trades.first().map(|t| at(&m, t.entry_time_ms))
    };
    // Windows whose first bar and the bar before both signal a buy: the warm-up's last bar sent a buy (refused).
    let mut checked = 0;
    for from in 50..700 {
        if first_entry(&plain, from) == Some(from) && first_entry(&plain, from - 1) == Some(from - 1) {
            assert_eq!(first_entry(&cooled, from), Some(from), "window from bar {from}");
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} windows opened on a held signal");
}
