//! Simple moving average (TA-Lib `TA_SMA`).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::Indicator;
use crate::error::{Result, check_period};

/// Simple moving average over the last `period` values.
///
/// Mirrors `TA_SMA`: a running sum to which the new value is added, the sum is
/// divided by `period` for the output and the value leaving the window is then
/// subtracted. Lookback `period - 1`. Keeps the last `period - 1` inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sma {
    period: usize,
    /// Running sum of the window (TA-Lib's `periodTotal`).
    total: f64,
    /// The last `period - 1` inputs, oldest first.
    window: VecDeque<f64>,
}

impl Sma {
    /// A new SMA. `period` must be in `2..=100000`.
    pub fn new(period: usize) -> Result<Self> {
        let period = check_period("sma", "period", period, 2)?;
        Ok(Self { period, total: 0.0, window: VecDeque::with_capacity(period - 1) })
    }

    /// The averaging period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Whether the next [`update`](Indicator::update) returns a value.
    pub fn is_ready(&self) -> bool {
        self.window.len() + 1 >= self.period
    }
}

impl Indicator for Sma {
    type Input = f64;
    type Output = f64;

    fn update(&mut self, input: f64) -> Option<f64> {
        self.total += input;
        if !self.is_ready() {
            self.window.push_back(input);
            return None;
        }
        let sum = self.total;
        // `period >= 2`, so the window holds the value leaving it.
        if let Some(oldest) = self.window.pop_front() {
            self.total -= oldest;
        }
        self.window.push_back(input);
        Some(sum / self.period as f64)
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ind: &mut Sma, xs: &[f64]) -> Vec<Option<f64>> {
        xs.iter().map(|&x| ind.update(x)).collect()
    }

    #[test]
    fn averages_the_last_period_values() {
        let mut sma = Sma::new(3).unwrap();
        assert_eq!(
            run(&mut sma, &[1.0, 2.0, 3.0, 4.0, 8.0, -3.0]),
            [None, None, Some(2.0), Some(3.0), Some(5.0), Some(3.0)]
        );
    }

    #[test]
    fn lookback_is_period_minus_one_and_matches_warm_up() {
        for period in [2, 5, 20] {
            let mut sma = Sma::new(period).unwrap();
            assert_eq!(sma.lookback(), period - 1);
            assert_eq!(sma.period(), period);
            let leading_none = (0..period * 2).map(|i| sma.update(i as f64)).take_while(Option::is_none).count();
            assert_eq!(leading_none, sma.lookback());
        }
    }

    #[test]
    fn rejects_out_of_range_periods() {
        assert_eq!(Sma::new(1).unwrap_err().to_string(), "sma period must be >= 2, got 1");
        assert_eq!(Sma::new(0).unwrap_err().to_string(), "sma period must be >= 2, got 0");
        assert_eq!(Sma::new(100_001).unwrap_err().to_string(), "sma period must be <= 100000, got 100001");
        assert!(Sma::new(100_000).is_ok());
    }

    #[test]
    fn keeps_ta_lib_running_sum_rounding() {
        // TA-Lib keeps one running sum (add the new value, subtract the one
        // leaving), so a huge value absorbs the small ones that follow it; a
        // fresh sum per window would give 1.5, 2.5, 3.5. Values from TA-Lib.
        let mut sma = Sma::new(2).unwrap();
        let out: Vec<_> = [1e16, 1.0, 2.0, 3.0, 4.0].into_iter().map(|x| sma.update(x)).collect();
        assert_eq!(out, [None, Some(5e15), Some(1.0), Some(2.0), Some(3.0)]);
    }

    #[test]
    fn save_and_restore_mid_stream_continues_identically() {
        let xs: Vec<f64> = (0..60).map(|i| 100.0 + (i as f64 * 0.7).sin() * 3.1).collect();
        let mut straight = Sma::new(7).unwrap();
        let expected: Vec<_> = xs.iter().map(|&x| straight.update(x)).collect();
        for cut in [0, 3, 6, 7, 30] {
            let mut first = Sma::new(7).unwrap();
            let mut got: Vec<_> = xs[..cut].iter().map(|&x| first.update(x)).collect();
            let json = serde_json::to_string(&first).unwrap();
            let mut restored: Sma = serde_json::from_str(&json).unwrap();
            assert_eq!(restored, first);
            got.extend(xs[cut..].iter().map(|&x| restored.update(x)));
            assert_eq!(got, expected, "cut at {cut}");
        }
    }
}
