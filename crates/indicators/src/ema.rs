//! Exponential moving average (TA-Lib `TA_EMA`).

use serde::{Deserialize, Serialize};

use crate::Indicator;
use crate::error::{Result, check_period};

/// Exponential moving average with `k = 2 / (period + 1)`.
///
/// Mirrors `TA_EMA` in TA-Lib's default compatibility: the first value (bar
/// `period - 1`) is the simple average of the first `period` inputs, summed in
/// order from `0.0` and divided by `period`; after that each bar does
/// `prev = fma(x - prev, k, prev)`, the fused multiply-add TA-Lib 0.8 uses.
/// Lookback `period - 1`. O(1) state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ema {
    period: usize,
    /// Smoothing factor `2 / (period + 1)`.
    k: f64,
    /// Inputs seen so far, saturating at `period`.
    seen: usize,
    /// Seed accumulator while warming up, then the current EMA.
    value: f64,
}

impl Ema {
    /// A new EMA. `period` must be in `2..=100000`.
    pub fn new(period: usize) -> Result<Self> {
        check_period("ema", "period", period, 2).map(Self::unchecked)
    }

    /// An EMA without the range check; MACD uses it for a signal period of 1.
    pub(crate) fn unchecked(period: usize) -> Self {
        Self { period, k: 2.0 / (period + 1) as f64, seen: 0, value: 0.0 }
    }

    /// The period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// The smoothing factor `k = 2 / (period + 1)`.
    pub fn k(&self) -> f64 {
        self.k
    }

    /// The latest EMA value, `None` while warming up.
    pub fn value(&self) -> Option<f64> {
        (self.seen >= self.period).then_some(self.value)
    }
}

impl Indicator for Ema {
    type Input = f64;
    type Output = f64;

    fn update(&mut self, input: f64) -> Option<f64> {
        if self.seen >= self.period {
            self.value = (input - self.value).mul_add(self.k, self.value);
            return Some(self.value);
        }
        self.value += input;
        self.seen += 1;
        if self.seen < self.period {
            return None;
        }
        self.value /= self.period as f64;
        Some(self.value)
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_with_the_sma_then_smooths() {
        // Values from TA-Lib: EMA(3) of 1, 2, 3, 4, 5, 10.
        let mut ema = Ema::new(3).unwrap();
        let out: Vec<_> = [1.0, 2.0, 3.0, 4.0, 5.0, 10.0].into_iter().map(|x| ema.update(x)).collect();
        assert_eq!(out, [None, None, Some(2.0), Some(3.0), Some(4.0), Some(7.0)]);
        assert_eq!(ema.value(), Some(7.0));
        assert_eq!(ema.k(), 0.5);
    }

    #[test]
    fn uses_a_fused_multiply_add() {
        // Seed 1.0, k = 0.4: the fused step gives 0.64, the unfused one
        // 0.6399999999999999. TA-Lib 0.8 fuses.
        let mut ema = Ema::new(4).unwrap();
        for _ in 0..4 {
            ema.update(1.0);
        }
        let unfused = (0.1 - 1.0) * ema.k() + 1.0;
        assert_eq!(ema.update(0.1), Some(0.64));
        assert_ne!(unfused, 0.64);
    }

    #[test]
    fn lookback_matches_warm_up() {
        for period in [2, 3, 50] {
            let mut ema = Ema::new(period).unwrap();
            assert_eq!(ema.lookback(), period - 1);
            assert_eq!(ema.value(), None);
            let leading_none = (0..period * 2).map(|i| ema.update(i as f64)).take_while(Option::is_none).count();
            assert_eq!(leading_none, ema.lookback());
        }
    }

    #[test]
    fn rejects_out_of_range_periods() {
        assert_eq!(Ema::new(1).unwrap_err().to_string(), "ema period must be >= 2, got 1");
        assert_eq!(Ema::new(100_001).unwrap_err().to_string(), "ema period must be <= 100000, got 100001");
        assert_eq!(Ema::new(2).unwrap().period(), 2);
    }

    #[test]
    fn save_and_restore_mid_stream_continues_identically() {
        let xs: Vec<f64> = (0..80).map(|i| 50.0 + (i as f64 * 0.37).cos() * 7.3).collect();
        let mut straight = Ema::new(10).unwrap();
        let expected: Vec<_> = xs.iter().map(|&x| straight.update(x)).collect();
        for cut in [0, 5, 9, 10, 41] {
            let mut first = Ema::new(10).unwrap();
            let mut got: Vec<_> = xs[..cut].iter().map(|&x| first.update(x)).collect();
            let json = serde_json::to_string(&first).unwrap();
            let mut restored: Ema = serde_json::from_str(&json).unwrap();
            assert_eq!(restored, first);
            got.extend(xs[cut..].iter().map(|&x| restored.update(x)));
            assert_eq!(got, expected, "cut at {cut}");
        }
    }
}
