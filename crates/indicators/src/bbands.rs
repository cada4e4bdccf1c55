//! Bollinger bands over a simple moving average (TA-Lib `TA_BBANDS`, `matype` SMA).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::Indicator;
use crate::error::{Result, check_finite, check_period};

/// One bar of Bollinger bands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BbandsValue {
    /// `middle + nbdev * stddev`.
    pub upper: f64,
    /// The simple moving average.
    pub middle: f64,
    /// `middle - nbdev * stddev`.
    pub lower: f64,
}

/// Bollinger bands: SMA middle band, bands `nbdev` population standard
/// deviations above and below it.
///
/// Mirrors the SMA path of `TA_BBANDS` in TA-Lib 0.8 with the same `nbdev` up
/// and down. The middle band is [`Sma`](crate::Sma)'s running sum. The
/// variance is TA-Lib 0.8's cancellation-free one: running sums of `x - shift`
/// and `(x - shift)^2`, where `shift` starts as the first input and is reset
/// to the window mean ("re-seed", recomputing both sums from the window)
/// every `32 * period` bars, and also whenever the variance has lost most of
/// its significant digits to cancellation or the value leaving the window
/// dominates the sum of squares. A re-seeded variance below `1e-12` of the
/// mean square is clamped to 0. Lookback `period - 1`.
///
/// Keeps the last `period - 1` inputs. An update is O(1) except on a re-seed,
/// which is O(`period`): amortised O(1) on market data (one re-seed per
/// `32 * period` bars), but every bar of a perfectly flat stretch re-seeds,
/// as TA-Lib does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bbands {
    period: usize,
    nbdev: f64,
    /// The last `period - 1` inputs, oldest first.
    window: VecDeque<f64>,
    /// Running sum of the window (the SMA).
    ma_total: f64,
    /// Offset subtracted from every input before the variance sums.
    shift: f64,
    /// Running sum of `x - shift` over the window.
    var_total1: f64,
    /// Running sum of `(x - shift)^2` over the window.
    var_total2: f64,
    /// Bars left before the next periodic re-seed.
    bars_to_reseed: usize,
}

/// Relative variance below which the running sums are re-seeded.
const CANCELLATION_RESEED: f64 = 0.000001;
/// Ratio of the departing squared deviation to the remaining sum above which
/// the running sums are re-seeded.
const OUTLIER_RESEED: f64 = 1000000.0;
/// Relative variance below which a freshly re-seeded variance is taken as 0.
const VARIANCE_FLOOR: f64 = 0.000000000001;

impl Bbands {
    /// New Bollinger bands. `period` must be in `2..=100000` and `nbdev`
    /// finite (TA-Lib also rejects `|nbdev| > 3e37`; this crate does not). A
    /// negative `nbdev` swaps the bands, 0 collapses them onto the middle.
    pub fn new(period: usize, nbdev: f64) -> Result<Self> {
        let period = check_period("bbands", "period", period, 2)?;
        let nbdev = check_finite("bbands", "nbdev", nbdev)?;
        Ok(Self {
            period,
            nbdev,
            window: VecDeque::with_capacity(period),
            ma_total: 0.0,
            shift: 0.0,
            var_total1: 0.0,
            var_total2: 0.0,
            bars_to_reseed: 32 * period,
        })
    }

    /// The period of the moving average and of the standard deviation.
    pub fn period(&self) -> usize {
        self.period
    }

    /// The number of standard deviations between the middle and each band.
    pub fn nbdev(&self) -> f64 {
        self.nbdev
    }

    /// Recompute `shift` and both variance sums from the full window (which
    /// holds `period` values here, the departing one first); return the
    /// window's variance and leave the sums covering all but the departing value.
    fn reseed(&mut self, inv_period: f64) -> f64 {
        self.bars_to_reseed = 32 * self.period;
        let mut total = 0.0;
        for &x in &self.window {
            total += x;
        }
        self.shift = total * inv_period;
        self.var_total1 = 0.0;
        self.var_total2 = 0.0;
        for &x in &self.window {
            let dev = x - self.shift;
            self.var_total1 += dev;
            self.var_total2 += dev * dev;
        }
        let mean1 = self.var_total1 * inv_period;
        let mut variance = self.var_total2 * inv_period - mean1 * mean1;
        if variance < VARIANCE_FLOOR * (self.var_total2 * inv_period) {
            variance = 0.0;
        }
        if let Some(&oldest) = self.window.front() {
            let dev = oldest - self.shift;
            self.var_total1 -= dev;
            self.var_total2 -= dev * dev;
        }
        variance
    }
}

impl Indicator for Bbands {
    type Input = f64;
    type Output = BbandsValue;

    fn update(&mut self, input: f64) -> Option<BbandsValue> {
        if self.window.is_empty() {
            self.shift = input;
        }
        self.ma_total += input;
        let dev = input - self.shift;
        self.var_total1 += dev;
        self.var_total2 += dev * dev;
        self.window.push_back(input);
        if self.window.len() < self.period {
            return None;
        }

        let inv_period = 1.0 / self.period as f64;
        let mean1 = self.var_total1 * inv_period;
        let mut variance = self.var_total2 * inv_period - mean1 * mean1;
        let middle = self.ma_total / self.period as f64;

        // The window holds `period` values here, so it has a front.
        let oldest = self.window.front().copied().unwrap_or(input);
        self.ma_total -= oldest;
        let dev = oldest - self.shift;
        self.var_total1 -= dev;
        let dev2 = dev * dev;
        self.var_total2 -= dev2;
        self.bars_to_reseed = self.bars_to_reseed.saturating_sub(1);
        if variance < CANCELLATION_RESEED * (self.var_total2 * inv_period)
            || dev2 > OUTLIER_RESEED * self.var_total2
            || self.bars_to_reseed == 0
        {
            variance = self.reseed(inv_period);
        }
        self.window.pop_front();

        let stddev = if variance != 0.0 { variance.sqrt() } else { 0.0 };
        let width = stddev * self.nbdev;
        Some(BbandsValue { upper: middle + width, middle, lower: middle - width })
    }

    fn lookback(&self) -> usize {
        self.period - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ind: &mut Bbands, xs: &[f64]) -> Vec<Option<BbandsValue>> {
        xs.iter().map(|&x| ind.update(x)).collect()
    }

    /// Population standard deviation, two-pass, for reference.
    fn two_pass_stddev(xs: &[f64]) -> f64 {
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64).sqrt()
    }

    #[test]
    fn matches_ta_lib_on_a_small_series() {
        // Values from TA-Lib: BBANDS(3, 2, 2, SMA) of 1, 2, 4, 8, 16, 15, 14.
        let mut bb = Bbands::new(3, 2.0).unwrap();
        let out = run(&mut bb, &[1.0, 2.0, 4.0, 8.0, 16.0, 15.0, 14.0]);
        let expected = [
            (4.8277715911826276, 2.3333333333333335, -0.1611049245159606),
            (9.655543182365255, 4.666666666666667, -0.3222098490319212),
            (19.311086364730514, 9.333333333333334, -0.6444196980638459),
            (20.11805216802087, 13.0, 5.8819478319791285),
            (16.632993161855442, 15.0, 13.36700683814456),
        ];
        assert_eq!(out[..2], [None, None]);
        let got: Vec<_> = out[2..].iter().map(|v| v.map(|v| (v.upper, v.middle, v.lower)).unwrap()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn flat_input_collapses_the_bands() {
        let mut bb = Bbands::new(2, 2.0).unwrap();
        let flat = BbandsValue { upper: 3.0, middle: 3.0, lower: 3.0 };
        assert_eq!(run(&mut bb, &[3.0; 4]), [None, Some(flat), Some(flat), Some(flat)]);
        // A flat run at a value with no exact binary form leaves rounding
        // residue in the sums; the re-seed floor still reports exactly zero width.
        let mut bb = Bbands::new(3, 2.0).unwrap();
        let xs: Vec<f64> = [5.0, 9.0, 1.0].into_iter().chain([0.1; 10]).collect();
        let last = run(&mut bb, &xs).pop().flatten().unwrap();
        assert_eq!(last.upper, last.middle);
        assert_eq!(last.lower, last.middle);
    }

    #[test]
    fn nbdev_scales_and_signs_the_width() {
        let xs = [1.0, 4.0, 2.0, 8.0, 5.0, 7.0];
        let mut one = Bbands::new(4, 1.0).unwrap();
        let mut neg = Bbands::new(4, -2.5).unwrap();
        let mut zero = Bbands::new(4, 0.0).unwrap();
        for &x in &xs {
            match (one.update(x), neg.update(x), zero.update(x)) {
                (Some(a), Some(b), Some(c)) => {
                    let sd = a.upper - a.middle;
                    assert!(sd > 0.0);
                    assert!((a.middle - a.lower - sd).abs() <= 1e-12 * sd);
                    assert_eq!(b.middle, a.middle);
                    // Negative nbdev: the "upper" band is below the middle.
                    assert!((b.middle - b.upper - 2.5 * sd).abs() <= 1e-12 * sd);
                    assert!((b.lower - b.middle - 2.5 * sd).abs() <= 1e-12 * sd);
                    assert_eq!((c.upper, c.middle, c.lower), (a.middle, a.middle, a.middle));
                }
                (None, None, None) => {}
                other => panic!("warm-up mismatch: {other:?}"),
            }
        }
    }

    #[test]
    fn stays_accurate_on_a_large_level_with_fine_ticks() {
        // A naive sum-of-squares variance loses every digit here: the ticks are
        // 1e-3 on a level of 1e6 (x^2 ~ 1e12, variance ~ 1e-7).
        let mut xs = vec![1.0, 2.0, 3.0];
        xs.extend((0..200).map(|i| 1.0e6 + 1e-3 * (i as f64).sin()));
        let period = 10;
        let mut bb = Bbands::new(period, 1.0).unwrap();
        for (i, out) in run(&mut bb, &xs).into_iter().enumerate().skip(20) {
            let v = out.unwrap();
            let want = two_pass_stddev(&xs[i + 1 - period..=i]);
            let got = v.upper - v.middle;
            assert!((got - want).abs() <= 1e-6 * want, "bar {i}: {got} vs {want}");
        }
    }

    #[test]
    fn lookback_matches_warm_up() {
        for period in [2, 10, 20] {
            let mut bb = Bbands::new(period, 2.0).unwrap();
            assert_eq!(bb.lookback(), period - 1);
            let leading_none = (0..period * 2).map(|i| bb.update(i as f64)).take_while(Option::is_none).count();
            assert_eq!(leading_none, bb.lookback());
        }
    }

    #[test]
    fn rejects_invalid_parameters() {
        assert_eq!(Bbands::new(1, 2.0).unwrap_err().to_string(), "bbands period must be >= 2, got 1");
        assert_eq!(Bbands::new(100_001, 2.0).unwrap_err().to_string(), "bbands period must be <= 100000, got 100001");
        assert_eq!(Bbands::new(20, f64::INFINITY).unwrap_err().to_string(), "bbands nbdev must be finite, got inf");
        assert_eq!(Bbands::new(20, f64::NAN).unwrap_err().to_string(), "bbands nbdev must be finite, got NaN");
        let bb = Bbands::new(20, -3e37).unwrap();
        assert_eq!((bb.period(), bb.nbdev()), (20, -3e37));
    }

    #[test]
    fn save_and_restore_mid_stream_continues_identically() {
        // 150 bars with period 4 spans the periodic re-seed at bar 3 + 128.
        let xs: Vec<f64> = (0..150).map(|i| 1.1 + (i as f64 * 0.41).sin() * 0.003).collect();
        let mut straight = Bbands::new(4, 2.0).unwrap();
        let expected = run(&mut straight, &xs);
        for cut in [0, 2, 3, 4, 130, 131, 132] {
            let mut first = Bbands::new(4, 2.0).unwrap();
            let mut got = run(&mut first, &xs[..cut]);
            let json = serde_json::to_string(&first).unwrap();
            let mut restored: Bbands = serde_json::from_str(&json).unwrap();
            assert_eq!(restored, first);
            got.extend(run(&mut restored, &xs[cut..]));
            assert_eq!(got, expected, "cut at {cut}");
        }
    }
}
