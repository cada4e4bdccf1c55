//! Moving average convergence/divergence (TA-Lib `TA_MACD`).

use serde::{Deserialize, Serialize};

use crate::error::{Result, check_period};
use crate::{Ema, Indicator};

/// One bar of MACD.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MacdValue {
    /// Fast EMA minus slow EMA.
    pub macd: f64,
    /// EMA of the MACD line.
    pub signal: f64,
    /// `macd - signal`.
    pub hist: f64,
}

/// MACD: fast EMA minus slow EMA, its signal EMA and the histogram.
///
/// Mirrors `TA_MACD` (default compatibility), including its alignment: both
/// price EMAs produce their first value on bar `slow - 1`, so the fast EMA's
/// SMA seed is taken over bars `slow - fast ..= slow - 1`, not over the first
/// `fast` bars. The signal EMA is seeded with the SMA of the first `signal`
/// MACD values. All three EMAs step with TA-Lib 0.8's fused multiply-add (see
/// [`Ema`]). Nothing is output before bar `lookback = (slow - 1) + (signal - 1)`.
/// If `slow < fast` the two are swapped, as TA-Lib does. O(1) state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Macd {
    fast: Ema,
    slow: Ema,
    signal: Ema,
    /// Bars still to skip before the fast EMA starts (initially `slow - fast`).
    fast_delay: usize,
}

impl Macd {
    /// A new MACD. `fast` and `slow` must be in `2..=100000`, `signal` in
    /// `1..=100000`; `fast` and `slow` are swapped if `slow < fast`.
    pub fn new(fast: usize, slow: usize, signal: usize) -> Result<Self> {
        let fast = check_period("macd", "fast period", fast, 2)?;
        let slow = check_period("macd", "slow period", slow, 2)?;
        let signal = check_period("macd", "signal period", signal, 1)?;
        let (fast, slow) = if slow < fast { (slow, fast) } else { (fast, slow) };
        Ok(Self {
            fast: Ema::unchecked(fast),
            slow: Ema::unchecked(slow),
            signal: Ema::unchecked(signal),
            fast_delay: slow - fast,
        })
    }

    /// The fast EMA period (after any swap, so `fast_period() <= slow_period()`).
    pub fn fast_period(&self) -> usize {
        self.fast.period()
    }

    /// The slow EMA period (after any swap).
    pub fn slow_period(&self) -> usize {
        self.slow.period()
    }

    /// The signal EMA period.
    pub fn signal_period(&self) -> usize {
        self.signal.period()
    }
}

impl Indicator for Macd {
    type Input = f64;
    type Output = MacdValue;

    fn update(&mut self, input: f64) -> Option<MacdValue> {
        let slow = self.slow.update(input);
        if self.fast_delay > 0 {
            self.fast_delay -= 1;
            return None;
        }
        let fast = self.fast.update(input);
        let macd = fast? - slow?;
        let signal = self.signal.update(macd)?;
        Some(MacdValue { macd, signal, hist: macd - signal })
    }

    fn lookback(&self) -> usize {
        (self.slow.period() - 1) + (self.signal.period() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ind: &mut Macd, xs: &[f64]) -> Vec<Option<MacdValue>> {
        xs.iter().map(|&x| ind.update(x)).collect()
    }

    #[test]
    fn matches_ta_lib_on_a_small_series() {
        // Values from TA-Lib: MACD(2, 4, 3). Seeding the fast EMA on bars 0..2
        // instead of 2..4 would give a MACD of 1.5166666666666657 on bar 5.
        let mut macd = Macd::new(2, 4, 3).unwrap();
        let out = run(&mut macd, &[1.0, 3.0, 2.0, 5.0, 4.0, 8.0, 6.0, 9.0, 7.0, 10.0]);
        assert!(out[..5].iter().all(Option::is_none));
        let expected = [
            (1.4611111111111104, 0.9314814814814812, 0.5296296296296291),
            (0.7137037037037031, 0.8225925925925921, -0.10888888888888903),
            (1.1739012345679, 0.9982469135802461, 0.175654320987654),
            (0.41956707818930017, 0.7089069958847731, -0.28933991769547296),
            (0.9568156927297675, 0.8328613443072703, 0.1239543484224972),
        ];
        let got: Vec<_> = out[5..].iter().map(|v| v.map(|v| (v.macd, v.signal, v.hist)).unwrap()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn equals_its_parts() {
        let xs: Vec<f64> = (0..120).map(|i| 30.0 + (i as f64 * 0.21).sin() * 4.0 + i as f64 * 0.05).collect();
        let (f, s, g) = (5, 13, 4);
        let mut macd = Macd::new(f, s, g).unwrap();
        let mut fast = Ema::new(f).unwrap();
        let mut slow = Ema::new(s).unwrap();
        let mut signal = Ema::new(g).unwrap();
        for (i, &x) in xs.iter().enumerate() {
            let slow_v = slow.update(x);
            let fast_v = if i >= s - f { fast.update(x) } else { None };
            let want = match (fast_v, slow_v) {
                (Some(a), Some(b)) => {
                    signal.update(a - b).map(|sig| MacdValue { macd: a - b, signal: sig, hist: a - b - sig })
                }
                _ => None,
            };
            assert_eq!(macd.update(x), want, "bar {i}");
        }
    }

    #[test]
    fn swaps_fast_and_slow() {
        let xs: Vec<f64> = (0..60).map(|i| (i as f64 * 0.3).cos()).collect();
        let mut a = Macd::new(12, 26, 9).unwrap();
        let mut b = Macd::new(26, 12, 9).unwrap();
        assert_eq!((b.fast_period(), b.slow_period(), b.signal_period()), (12, 26, 9));
        assert_eq!(run(&mut a, &xs), run(&mut b, &xs));
    }

    #[test]
    fn lookback_matches_warm_up() {
        for (f, s, g) in [(12, 26, 9), (5, 35, 5), (2, 3, 1), (7, 7, 2)] {
            let mut macd = Macd::new(f, s, g).unwrap();
            assert_eq!(macd.lookback(), (s - 1) + (g - 1));
            let leading_none = (0..100).map(|i| macd.update(i as f64 * 0.5)).take_while(Option::is_none).count();
            assert_eq!(leading_none, macd.lookback(), "({f}, {s}, {g})");
        }
    }

    #[test]
    fn rejects_out_of_range_periods() {
        assert_eq!(Macd::new(1, 26, 9).unwrap_err().to_string(), "macd fast period must be >= 2, got 1");
        assert_eq!(Macd::new(12, 1, 9).unwrap_err().to_string(), "macd slow period must be >= 2, got 1");
        assert_eq!(Macd::new(12, 26, 0).unwrap_err().to_string(), "macd signal period must be >= 1, got 0");
        assert_eq!(
            Macd::new(12, 100_001, 9).unwrap_err().to_string(),
            "macd slow period must be <= 100000, got 100001"
        );
        assert!(Macd::new(2, 2, 1).is_ok());
    }

    #[test]
    fn save_and_restore_mid_stream_continues_identically() {
        let xs: Vec<f64> = (0..120).map(|i| 100.0 + (i as f64 * 0.17).sin() * 5.0).collect();
        let mut straight = Macd::new(12, 26, 9).unwrap();
        let expected = run(&mut straight, &xs);
        for cut in [0, 13, 14, 25, 30, 33, 34, 80] {
            let mut first = Macd::new(12, 26, 9).unwrap();
            let mut got = run(&mut first, &xs[..cut]);
            let json = serde_json::to_string(&first).unwrap();
            let mut restored: Macd = serde_json::from_str(&json).unwrap();
            assert_eq!(restored, first);
            got.extend(run(&mut restored, &xs[cut..]));
            assert_eq!(got, expected, "cut at {cut}");
        }
    }
}
