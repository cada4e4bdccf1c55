//! Average true range, Wilder smoothing (TA-Lib `TA_ATR`).

use serde::{Deserialize, Serialize};

use crate::Indicator;
use crate::error::{Result, check_period};

/// One bar's high, low and close: the input of [`Atr`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hlc {
    /// Highest price of the bar.
    pub high: f64,
    /// Lowest price of the bar.
    pub low: f64,
    /// Last price of the bar.
    pub close: f64,
}

/// Wilder's average true range.
///
/// Mirrors `TA_ATR` of TA-Lib 0.8. The true range of a bar (from the second
/// bar on) is `high - low`, replaced by `|prev_close - high|` and then by
/// `|prev_close - low|` when strictly greater (`TA_TRANGE`). The first ATR,
/// on bar `period`, is the mean of the first `period` true ranges (summed in
/// order, divided by `period`); after that
/// `atr = fma(atr, b, tr * a)` with `b = (period - 1) / period` and
/// `a = 1 - b`, the fused two-coefficient Wilder step of TA-Lib 0.8.
/// Lookback `period`. With `period == 1` the output is the true range itself
/// (for finite input). O(1) state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Atr {
    period: usize,
    /// Bars seen so far, saturating at `period + 1`.
    seen: usize,
    /// Close of the previous bar.
    prev_close: f64,
    /// Sum of true ranges while warming up, then the current ATR.
    value: f64,
}

impl Atr {
    /// A new ATR. `period` must be in `1..=100000`.
    pub fn new(period: usize) -> Result<Self> {
        let period = check_period("atr", "period", period, 1)?;
        Ok(Self { period, seen: 0, prev_close: 0.0, value: 0.0 })
    }

    /// The smoothing period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// The latest ATR, `None` while warming up.
    pub fn value(&self) -> Option<f64> {
        (self.seen > self.period).then_some(self.value)
    }
}

/// TA-Lib's true range of `bar` given the previous close, comparisons in
/// `TA_TRANGE`'s order (a NaN distance never replaces the running maximum).
fn true_range(bar: Hlc, prev_close: f64) -> f64 {
    let mut greatest = bar.high - bar.low;
    let to_high = (prev_close - bar.high).abs();
    if to_high > greatest {
        greatest = to_high;
    }
    let to_low = (prev_close - bar.low).abs();
    if to_low > greatest {
        greatest = to_low;
    }
    greatest
}

impl Indicator for Atr {
    type Input = Hlc;
    type Output = f64;

    fn update(&mut self, input: Hlc) -> Option<f64> {
        if self.seen == 0 {
            self.prev_close = input.close;
            self.seen = 1;
            return None;
        }
        let tr = true_range(input, self.prev_close);
        self.prev_close = input.close;
        if self.seen <= self.period {
            self.value += tr;
            self.seen += 1;
            if self.seen <= self.period {
                return None;
            }
            self.value /= self.period as f64;
        } else {
            let keep = (self.period - 1) as f64 / self.period as f64;
            let take = 1.0 - keep;
            self.value = self.value.mul_add(keep, tr * take);
        }
        Some(self.value)
    }

    fn lookback(&self) -> usize {
        self.period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(high: &[f64], low: &[f64], close: &[f64]) -> Vec<Hlc> {
        (0..close.len()).map(|i| Hlc { high: high[i], low: low[i], close: close[i] }).collect()
    }

    fn run(ind: &mut Atr, bars: &[Hlc]) -> Vec<Option<f64>> {
        bars.iter().map(|&b| ind.update(b)).collect()
    }

    #[test]
    fn true_range_takes_gaps_into_account() {
        let bar = Hlc { high: 12.0, low: 11.0, close: 11.5 };
        assert_eq!(true_range(bar, 11.5), 1.0);
        assert_eq!(true_range(bar, 9.0), 3.0); // gap up: |9 - 12|
        assert_eq!(true_range(bar, 14.5), 3.5); // gap down: |14.5 - 11|
    }

    #[test]
    fn matches_ta_lib_on_a_small_series() {
        // Values from TA-Lib: ATR(2) and ATR(1) (== TRANGE).
        let b = bars(&[10.0, 11.0, 12.0, 11.0, 13.0], &[9.0, 10.0, 10.0, 9.0, 10.0], &[9.5, 10.5, 11.0, 10.0, 12.5]);
        let mut atr2 = Atr::new(2).unwrap();
        assert_eq!(run(&mut atr2, &b), [None, None, Some(1.75), Some(1.875), Some(2.4375)]);
        assert_eq!(atr2.value(), Some(2.4375));
        let mut atr1 = Atr::new(1).unwrap();
        assert_eq!(run(&mut atr1, &b), [None, Some(1.5), Some(2.0), Some(2.0), Some(3.0)]);
    }

    #[test]
    fn uses_the_fused_two_coefficient_step() {
        // Values from TA-Lib 0.8 ATR(3); the textbook three-statement
        // `(atr * (n - 1) + tr) / n` gives 0.7000000000000002 on bar 5.
        let b = bars(
            &[10.1, 10.5, 10.4, 10.799999999999999, 10.6, 11.1, 10.700000000000001],
            &[9.8, 10.200000000000001, 9.799999999999999, 10.5, 10.1, 10.6, 10.200000000000001],
            &[10.0, 10.3, 10.1, 10.7, 10.2, 10.9, 10.4],
        );
        let mut atr = Atr::new(3).unwrap();
        let out = run(&mut atr, &b);
        assert_eq!(out[3..], [Some(0.6000000000000002), Some(0.6), Some(0.7000000000000001), Some(0.6999999999999998)]);
    }

    #[test]
    fn lookback_is_period_and_matches_warm_up() {
        for period in [1, 7, 14] {
            let mut atr = Atr::new(period).unwrap();
            assert_eq!(atr.lookback(), period);
            assert_eq!(atr.value(), None);
            let leading_none = (0..period * 3)
                .map(|i| {
                    let c = 10.0 + (i as f64 * 0.7).sin();
                    atr.update(Hlc { high: c + 0.3, low: c - 0.2, close: c })
                })
                .take_while(Option::is_none)
                .count();
            assert_eq!(leading_none, atr.lookback());
        }
    }

    #[test]
    fn rejects_out_of_range_periods() {
        assert_eq!(Atr::new(0).unwrap_err().to_string(), "atr period must be >= 1, got 0");
        assert_eq!(Atr::new(100_001).unwrap_err().to_string(), "atr period must be <= 100000, got 100001");
        assert_eq!(Atr::new(1).unwrap().period(), 1);
    }

    #[test]
    fn save_and_restore_mid_stream_continues_identically() {
        let b: Vec<Hlc> = (0..80)
            .map(|i| {
                let c = 1.1 + (i as f64 * 0.29).sin() * 0.01;
                Hlc { high: c + 0.002 * (i % 3) as f64, low: c - 0.0015, close: c }
            })
            .collect();
        let mut straight = Atr::new(14).unwrap();
        let expected = run(&mut straight, &b);
        for cut in [0, 1, 14, 15, 40] {
            let mut first = Atr::new(14).unwrap();
            let mut got = run(&mut first, &b[..cut]);
            let json = serde_json::to_string(&first).unwrap();
            let mut restored: Atr = serde_json::from_str(&json).unwrap();
            assert_eq!(restored, first);
            got.extend(run(&mut restored, &b[cut..]));
            assert_eq!(got, expected, "cut at {cut}");
        }
    }
}
