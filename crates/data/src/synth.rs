//! Seeded synthetic markets: geometric Brownian motion with jumps and two volatility regimes, or a stablecoin-like
//! mean-reverting peg. The same seed gives the same market on every machine and every version of Sextant: the random
//! generator (xoshiro256**) and the normal sampler are written here, not borrowed from a crate whose streams may change.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_market::{Candle, CandleSeries, TimeStyle};
use std::str::FromStr;

/// Bar spacing of a synthetic market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interval {
    /// One minute.
    #[serde(rename = "1m")]
    M1,
    /// Five minutes.
    #[serde(rename = "5m")]
    M5,
    /// Fifteen minutes.
    #[serde(rename = "15m")]
    M15,
    /// One hour.
    #[serde(rename = "1h")]
    H1,
    /// Four hours.
    #[serde(rename = "4h")]
    H4,
    /// One day.
    #[serde(rename = "1d")]
    D1,
}

impl Interval {
    /// Length of one bar in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Interval::M1 => 60_000,
            Interval::M5 => 300_000,
            Interval::M15 => 900_000,
            Interval::H1 => 3_600_000,
            Interval::H4 => 14_400_000,
            Interval::D1 => 86_400_000,
        }
    }

    /// Fraction of a 365-day year one bar spans (crypto trades around the clock).
    pub fn years(self) -> f64 {
        self.millis() as f64 / (365.0 * 86_400_000.0)
    }
}

impl FromStr for Interval {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "1m" => Interval::M1,
            "5m" => Interval::M5,
            "15m" => Interval::M15,
            "1h" => Interval::H1,
            "4h" => Interval::H4,
            "1d" => Interval::D1,
            _ => return Err(Error::Invalid(format!("interval must be one of 1m, 5m, 15m, 1h, 4h, 1d, got {s:?}"))),
        })
    }
}

/// The character of a synthetic market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// A volatile asset: GBM, 60 % annual volatility in calm regimes and three times that in stressed ones, with
    /// jumps about twelve times a year.
    #[default]
    Volatile,
    /// A stablecoin: log price mean-reverts to the peg (the start price) with a half-life of about a day, 2 % annual
    /// volatility, rare small depeg jumps.
    Stable,
}

impl FromStr for Profile {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "volatile" => Ok(Profile::Volatile),
            "stable" => Ok(Profile::Stable),
            _ => Err(Error::Invalid(format!("profile must be volatile or stable, got {s:?}"))),
        }
    }
}

/// The most bars one synthetic market may have (190 years of minutes; about 5 GB in memory).
pub const MAX_BARS: usize = 100_000_000;

/// Everything that defines a synthetic market.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSpec {
    /// Random seed: the same seed gives the same bars.
    pub seed: u64,
    /// Number of bars.
    pub bars: usize,
    /// Bar spacing.
    pub interval: Interval,
    /// First open price.
    pub start_price: f64,
    /// Time of the first bar, unix milliseconds UTC.
    pub start_ms: i64,
    /// Character of the market.
    pub profile: Profile,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            seed: 42,
            bars: 5000,
            interval: Interval::H1,
            start_price: 2000.0,
            start_ms: 1_704_067_200_000, // 2024-01-01T00:00:00Z
            profile: Profile::Volatile,
        }
    }
}

/// xoshiro256** seeded through splitmix64 (Blackman & Vigna), the generator behind every synthetic market.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()], spare_normal: None }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal, by the Marsaglia polar method.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let k = (-2.0 * s.ln() / s).sqrt();
                self.spare_normal = Some(v * k);
                return u * k;
            }
        }
    }
}

struct Params {
    drift: f64,
    calm_vol: f64,
    stress_vol_mult: f64,
    // Mean time spent in each regime, in years.
    calm_years: f64,
    stress_years: f64,
    jumps_per_year: f64,
    jump_mean: f64,
    jump_sd: f64,
    // Ornstein-Uhlenbeck speed per year toward the log peg; 0 for none.
    reversion: f64,
    volume_per_day: f64,
}

impl Params {
    fn of(profile: Profile) -> Params {
        match profile {
            Profile::Volatile => Params {
                drift: 0.05,
                calm_vol: 0.6,
                stress_vol_mult: 3.0,
                calm_years: 0.25,
                stress_years: 0.04,
                jumps_per_year: 12.0,
                jump_mean: -0.01,
                jump_sd: 0.05,
                reversion: 0.0,
                volume_per_day: 50_000.0,
            },
            Profile::Stable => Params {
                drift: 0.0,
                calm_vol: 0.02,
                stress_vol_mult: 4.0,
                calm_years: 0.5,
                stress_years: 0.02,
                jumps_per_year: 2.0,
                jump_mean: -0.003,
                jump_sd: 0.004,
                reversion: 365.0 * std::f64::consts::LN_2, // half-life one day
                volume_per_day: 5_000_000.0,
            },
        }
    }
}

/// Prices are rounded to about six significant figures of the start price (0.01 at 2000), as exchanges quote them.
fn price_rounder(start_price: f64) -> impl Fn(f64) -> f64 {
    let inv_tick = 10f64.powi(5 - start_price.log10().floor() as i32);
    move |p: f64| ((p * inv_tick).round() / inv_tick).max(1.0 / inv_tick)
}

impl SynthSpec {
    /// Checks the spec.
    ///
    /// # Errors
    /// When bars is 0 or the start price is not a positive finite number.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_BARS).contains(&self.bars) {
            return Err(Error::Invalid(format!("bars must be between 1 and {MAX_BARS}, got {}", self.bars)));
        }
        if !(self.start_price.is_finite() && (1e-6..=1e12).contains(&self.start_price)) {
            return Err(Error::Invalid(format!("start_price must be between 1e-6 and 1e12, got {}", self.start_price)));
        }
        Ok(())
    }

    /// Generates the market.
    ///
    /// # Errors
    /// As [`SynthSpec::validate`].
    pub fn generate(&self) -> Result<CandleSeries> {
        self.validate()?;
        let p = Params::of(self.profile);
        let dt = self.interval.years();
        let mut rng = Rng::new(self.seed);
        let round = price_rounder(self.start_price);
        let peg = self.start_price.ln();
        let p_leave_calm = (dt / p.calm_years).min(1.0);
        let p_leave_stress = (dt / p.stress_years).min(1.0);
        let p_jump = (p.jumps_per_year * dt).min(1.0);
        let sub_steps = 4;
        let sub_dt = dt / f64::from(sub_steps);
        let volume_per_bar = p.volume_per_day * self.interval.millis() as f64 / 86_400_000.0;

        let mut stressed = false;
        let mut log_p = peg;
        let mut candles = Vec::with_capacity(self.bars);
        for i in 0..self.bars {
            if rng.uniform() < if stressed { p_leave_stress } else { p_leave_calm } {
                stressed = !stressed;
            }
            let vol = p.calm_vol * if stressed { p.stress_vol_mult } else { 1.0 };
            let open = round(log_p.exp());
            let (mut hi, mut lo) = (open, open);
            // A few sub-steps per bar give highs and lows that the path actually visited.
            for _ in 0..sub_steps {
                let pull = p.reversion * (peg - log_p) * sub_dt;
                log_p += (p.drift - 0.5 * vol * vol) * sub_dt + pull + vol * sub_dt.sqrt() * rng.normal();
                let px = log_p.exp();
                hi = hi.max(px);
                lo = lo.min(px);
            }
            if rng.uniform() < p_jump {
                log_p += p.jump_mean + p.jump_sd * rng.normal();
            }
            let close = round(log_p.exp());
            let wick = vol * dt.sqrt() * 0.25 * rng.normal().abs();
            let high = round(hi.max(close) * (1.0 + wick));
            let low = round(lo.min(close) * (1.0 - wick));
            let bar_return = (close / open).ln().abs() / (vol * dt.sqrt()).max(1e-12);
            let volume = volume_per_bar * (0.5 + bar_return.min(8.0)) * (0.3 * rng.normal()).exp();
            candles.push(Candle {
                timestamp_ms: self.start_ms + i as i64 * self.interval.millis(),
                open,
                high: high.max(open).max(close),
                low: low.min(open).min(close),
                close,
                volume: (volume * 100.0).round() / 100.0,
            });
        }
        Ok(CandleSeries { candles, time_style: TimeStyle::Rfc3339 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_market_other_seed_other_market() {
        let spec = SynthSpec { bars: 500, ..Default::default() };
        let a = spec.generate().unwrap();
        assert_eq!(a, spec.generate().unwrap());
        let b = SynthSpec { seed: 43, ..spec }.generate().unwrap();
        assert_ne!(a.candles[499].close, b.candles[499].close);
    }

    #[test]
    fn bars_are_consistent_ohlc() {
        for profile in [Profile::Volatile, Profile::Stable] {
            let s = SynthSpec { bars: 5000, interval: Interval::M5, profile, start_price: 1.0, ..Default::default() };
            let series = s.generate().unwrap();
            for w in series.candles.windows(2) {
                assert_eq!(w[1].timestamp_ms - w[0].timestamp_ms, 300_000);
            }
            for c in &series.candles {
                assert!(c.low <= c.open.min(c.close) && c.high >= c.open.max(c.close) && c.low > 0.0, "{c:?}");
                assert!(c.volume > 0.0);
            }
        }
    }

    #[test]
    fn stable_profile_stays_near_the_peg_and_volatile_does_not() {
        let stable = SynthSpec { bars: 20_000, profile: Profile::Stable, start_price: 1.0, ..Default::default() };
        let closes: Vec<f64> = stable.generate().unwrap().candles.iter().map(|c| c.close).collect();
        let worst = closes.iter().map(|c| (c - 1.0).abs()).fold(0.0, f64::max);
        assert!(worst < 0.05, "stablecoin strayed {worst}");
        let volatile = SynthSpec { bars: 20_000, ..Default::default() }.generate().unwrap();
        let (min, max) =
            volatile.candles.iter().fold((f64::MAX, 0.0f64), |(lo, hi), c| (lo.min(c.low), hi.max(c.high)));
        assert!(max / min > 1.5, "a volatile market should range widely, got {min}..{max}");
    }

    #[test]
    fn rng_is_uniform_and_normal_enough() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let (mut sum, mut sum2) = (0.0, 0.0);
        for _ in 0..n {
            let z = rng.normal();
            sum += z;
            sum2 += z * z;
        }
        let mean = sum / n as f64;
        let var = sum2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.02, "mean {mean} var {var}");
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(SynthSpec { bars: 0, ..Default::default() }.generate().is_err());
        assert!(SynthSpec { start_price: -1.0, ..Default::default() }.generate().is_err());
        assert!("2h".parse::<Interval>().is_err());
    }
}
