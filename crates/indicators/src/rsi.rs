//! Relative strength index, Wilder smoothing (TA-Lib `TA_RSI`).

use serde::{Deserialize, Serialize};

use crate::Indicator;
use crate::error::{Result, check_period};

/// Wilder's relative strength index, in `[0, 100]`.
///
/// Mirrors `TA_RSI` of TA-Lib 0.8 (default compatibility): for each bar after
/// the first, `d = x - prev`, `up = d` if `d > 0` else `0`, `down = up - d`.
/// The ups and downs of the first `period` differences are summed and
/// multiplied by `1 / period`; after that
/// `gain = (gain * (period - 1) + up) * (1 / period)` and likewise for the
/// loss. The output is `100 * gain / (gain + loss)`, or `0` when
/// `gain + loss` is not positive (a flat window). Lookback `period`. O(1) state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rsi {
    period: usize,
    /// Bars seen so far, saturating at `period + 1`.
    seen: usize,
    /// Previous input.
    prev: f64,
    /// Sum of ups while warming up, then the smoothed average gain.
    gain: f64,
    /// Sum of downs while warming up, then the smoothed average loss.
    loss: f64,
}

impl Rsi {
    /// A new RSI. `period` must be in `2..=100000`.
    pub fn new(period: usize) -> Result<Self> {
        let period = check_period("rsi", "period", period, 2)?;
        Ok(Self { period, seen: 0, prev: 0.0, gain: 0.0, loss: 0.0 })
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// The smoothed average gain and loss, `None` while warming up.
    pub fn averages(&self) -> Option<(f64, f64)> {
        (self.seen > self.period).then_some((self.gain, self.loss))
    }

    fn value(&self) -> f64 {
        let total = self.loss + self.gain;
        if total > 0.0 { (self.gain / total) * 100.0 } else { 0.0 }
    }
}

impl Indicator for Rsi {
    type Input = f64;
    type Output = f64;

    fn update(&mut self, input: f64) -> Option<f64> {
        if self.seen == 0 {
            self.prev = input;
            self.seen = 1;
            return None;
        }
        let diff = input - self.prev;
        self.prev = input;
        let up = if 0.0 < diff { diff } else { 0.0 };
        let down = up - diff;
        let inv_period = 1.0 / self.period as f64;
        if self.seen <= self.period {
            self.gain += up;
            self.loss += down;
            self.seen += 1;
            if self.seen <= self.period {
                return None;
            }
            self.gain *= inv_period;
            self.loss *= inv_period;
        } else {
            let keep = (self.period - 1) as f64;
            self.gain = (self.gain * keep + up) * inv_period;
            self.loss = (down + self.loss * keep) * inv_period;
        }
        Some(self.value())
    }

    fn lookback(&self) -> usize {
        self.period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ind: &mut Rsi, xs: &[f64]) -> Vec<Option<f64>> {
        xs.iter().map(|&x| ind.update(x)).collect()
    }

    #[test]
    fn matches_ta_lib_on_a_small_series() {
        // Values from TA-Lib: RSI(2) of 1, 2, 1.5, 1.5, 3, 2, 2.5.
        let mut rsi = Rsi::new(2).unwrap();
        assert_eq!(
            run(&mut rsi, &[1.0, 2.0, 1.5, 1.5, 3.0, 2.0, 2.5]),
            [
                None,
                None,
                Some(66.66666666666666),
                Some(66.66666666666666),
                Some(93.33333333333333),
                Some(45.16129032258064),
                Some(63.829787234042556)
            ]
        );
    }

    #[test]
    fn flat_and_one_way_series() {
        let mut flat = Rsi::new(3).unwrap();
        assert_eq!(run(&mut flat, &[1.0; 6]), [None, None, None, Some(0.0), Some(0.0), Some(0.0)]);
        let mut rising = Rsi::new(3).unwrap();
        assert_eq!(run(&mut rising, &[1.0, 2.0, 3.0, 4.0, 5.0])[3..], [Some(100.0), Some(100.0)]);
        let mut falling = Rsi::new(3).unwrap();
        assert_eq!(run(&mut falling, &[5.0, 4.0, 3.0, 2.0, 1.0])[3..], [Some(0.0), Some(0.0)]);
        // A rise after a flat start: gain + loss becomes positive again.
        let mut rsi = Rsi::new(2).unwrap();
        assert_eq!(run(&mut rsi, &[1.0, 1.0, 1.0, 2.0]), [None, None, Some(0.0), Some(100.0)]);
    }

    #[test]
    fn lookback_is_period_and_matches_warm_up() {
        for period in [2, 14, 30] {
            let mut rsi = Rsi::new(period).unwrap();
            assert_eq!(rsi.lookback(), period);
            assert_eq!(rsi.averages(), None);
            let leading_none =
                (0..period * 3).map(|i| rsi.update((i as f64 * 0.9).sin())).take_while(Option::is_none).count();
            assert_eq!(leading_none, rsi.lookback());
            assert!(rsi.averages().is_some());
        }
    }

    #[test]
    fn rejects_out_of_range_periods() {
        assert_eq!(Rsi::new(1).unwrap_err().to_string(), "rsi period must be >= 2, got 1");
        assert_eq!(Rsi::new(100_001).unwrap_err().to_string(), "rsi period must be <= 100000, got 100001");
        assert_eq!(Rsi::new(14).unwrap().period(), 14);
    }

    #[test]
    fn save_and_restore_mid_stream_continues_identically() {
        let xs: Vec<f64> = (0..90).map(|i| 20.0 + (i as f64 * 0.53).sin() * 2.0 + i as f64 * 0.01).collect();
        let mut straight = Rsi::new(14).unwrap();
        let expected = run(&mut straight, &xs);
        for cut in [0, 1, 14, 15, 50] {
            let mut first = Rsi::new(14).unwrap();
            let mut got = run(&mut first, &xs[..cut]);
            let json = serde_json::to_string(&first).unwrap();
            let mut restored: Rsi = serde_json::from_str(&json).unwrap();
            assert_eq!(restored, first);
            got.extend(run(&mut restored, &xs[cut..]));
            assert_eq!(got, expected, "cut at {cut}");
        }
    }
}
