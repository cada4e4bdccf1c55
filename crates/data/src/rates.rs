//! Lending-rate series: the CSV format (one row per market and time) and seeded synthetic rate markets whose rates
//! come from the protocols' own kinked curves over a utilisation that mean-reverts, jumps and spikes, with TVL that
//! drifts and, optionally, one market that is drained and frozen.
//!
//! CSV columns (header required, any order, case-insensitive): `timestamp` (any format `parse_time` reads), `market`,
//! `supply_apy`, `borrow_apy`, `tvl_usd`, `utilization`, and optionally `reward_apy`, `frozen` (0/1, true/false) and
//! `bad_debt` (the fraction of supplied funds lost at that time). APYs and utilisation are fractions: 0.045 is 4.5 %.

use crate::synth::Rng;
use crate::time::{format_time, parse_time};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_market::{LendingProtocol, RatePoint, RateSeries, TimeStyle};
use std::collections::BTreeMap;
use std::path::Path;

/// Reads a lending-rate CSV.
///
/// # Errors
/// Unreadable files and malformed rows, with the line.
pub fn load_rates(path: &Path) -> Result<Vec<RateSeries>> {
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    parse_rates(&text, &path.display().to_string())
}

fn bad(path: &str, line: u64, message: String) -> Error {
    Error::Malformed { path: path.to_string(), line, message }
}

/// Parses lending-rate CSV text into one series per market (markets in order of first appearance, each in time
/// order).
///
/// # Errors
/// A missing column, a field that is not a number or out of range (APY below -100 %, TVL negative, utilisation
/// outside 0..=1, bad debt outside 0..=1), or two rows for the same market and time; each with its line.
pub fn parse_rates(text: &str, path: &str) -> Result<Vec<RateSeries>> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let Some((header_line, header)) = lines.next() else {
        return Err(bad(path, 1, "empty file: expected a header with timestamp, market, supply_apy, ...".into()));
    };
    let names: Vec<String> = header.split(',').map(|h| h.trim().trim_matches('"').to_ascii_lowercase()).collect();
    let col = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
    let required = |want: &[&str]| {
        col(want).ok_or_else(|| {
            bad(path, header_line as u64 + 1, format!("missing column {:?} (header is {header:?})", want[0]))
        })
    };
    let c_time = required(&["timestamp", "time", "date"])?;
    let c_market = required(&["market"])?;
    let c_supply = required(&["supply_apy"])?;
    let c_borrow = required(&["borrow_apy"])?;
    let c_tvl = required(&["tvl_usd", "tvl"])?;
    let c_util = required(&["utilization", "utilisation"])?;
    let c_reward = col(&["reward_apy"]);
    let c_frozen = col(&["frozen"]);
    let c_bad = col(&["bad_debt"]);
    let mut order: Vec<String> = Vec::new();
    let mut by_market: BTreeMap<String, Vec<RatePoint>> = BTreeMap::new();
    for (i, line) in lines {
        let n = i as u64 + 1;
        let fields: Vec<&str> = line.split(',').map(|f| f.trim().trim_matches('"')).collect();
        if fields.len() < names.len() {
            return Err(bad(path, n, format!("expected {} fields, found {}", names.len(), fields.len())));
        }
        let num = |c: usize, what: &str, lo: f64, hi: f64| -> Result<f64> {
            let v: f64 =
                fields[c].parse().map_err(|_| bad(path, n, format!("{what} must be a number, got {:?}", fields[c])))?;
            if !(v.is_finite() && v >= lo && v <= hi) {
                return Err(bad(path, n, format!("{what} must be between {lo} and {hi}, got {v}")));
            }
            Ok(v)
        };
        let (t, _) = parse_time(fields[c_time])
            .ok_or_else(|| bad(path, n, format!("timestamp {:?} is not a date or epoch time", fields[c_time])))?;
        let market = fields[c_market].to_string();
        if market.is_empty() {
            return Err(bad(path, n, "market is empty".into()));
        }
        let frozen = match c_frozen.map(|c| fields[c].to_ascii_lowercase()) {
            None => false,
            Some(f) => match f.as_str() {
                "" | "0" | "false" | "no" => false,
                "1" | "true" | "yes" => true,
                other => return Err(bad(path, n, format!("frozen must be 0/1 or true/false, got {other:?}"))),
            },
        };
        let point = RatePoint {
            timestamp_ms: t,
            supply_apy: num(c_supply, "supply_apy", -1.0, 1e3)?,
            borrow_apy: num(c_borrow, "borrow_apy", -1.0, 1e3)?,
            tvl_usd: num(c_tvl, "tvl_usd", 0.0, 1e15)?,
            utilization: num(c_util, "utilization", 0.0, 1.0)?,
            reward_apy: match c_reward {
                Some(c) if !fields[c].is_empty() => num(c, "reward_apy", 0.0, 1e3)?,
                _ => 0.0,
            },
            frozen,
            bad_debt: match c_bad {
                Some(c) if !fields[c].is_empty() => num(c, "bad_debt", 0.0, 1.0)?,
                _ => 0.0,
            },
        };
        if !by_market.contains_key(&market) {
            order.push(market.clone());
        }
        let points = by_market.entry(market.clone()).or_default();
        if points.iter().any(|p| p.timestamp_ms == t) {
            return Err(bad(path, n, format!("a second row for market {market} at {}", fields[c_time])));
        }
        points.push(point);
    }
    if order.is_empty() {
        return Err(bad(path, header_line as u64 + 2, "no rows after the header".into()));
    }
    Ok(order
        .into_iter()
        .map(|market| {
            let mut points = by_market.remove(&market).unwrap_or_default();
            points.sort_by_key(|p| p.timestamp_ms);
            RateSeries { market, points }
        })
        .collect())
}

/// Writes series as lending-rate CSV (rows in time order, markets interleaved), every optional column included.
pub fn write_rates(series: &[RateSeries]) -> String {
    let mut rows: Vec<(i64, usize, &RatePoint)> =
        series.iter().enumerate().flat_map(|(i, s)| s.points.iter().map(move |p| (p.timestamp_ms, i, p))).collect();
    rows.sort_by_key(|&(t, i, _)| (t, i));
    let mut out =
        String::from("timestamp,market,supply_apy,borrow_apy,tvl_usd,utilization,reward_apy,frozen,bad_debt\n");
    for (t, i, p) in rows {
        out.push_str(&format!(
            "{},{},{:.8},{:.8},{:.2},{:.6},{:.8},{},{:.6}\n",
            format_time(t, TimeStyle::Rfc3339),
            series[i].market,
            p.supply_apy,
            p.borrow_apy,
            p.tvl_usd,
            p.utilization,
            p.reward_apy,
            u8::from(p.frozen),
            p.bad_debt
        ));
    }
    out
}

/// A kinked borrow-rate curve, as fractions a year: `base + slope1 * u / optimal` up to the kink, then
/// `base + slope1 + slope2 * (u - optimal) / (1 - optimal)`. Suppliers get `borrow * u * (1 - reserve_factor)`,
/// the shape of Aave's and Compound's curves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateCurve {
    /// Utilisation at the kink.
    pub optimal: f64,
    /// Borrow rate at zero utilisation.
    pub base: f64,
    /// Rate added up to the kink.
    pub slope1: f64,
    /// Rate added from the kink to full utilisation.
    pub slope2: f64,
    /// Share of interest kept by the protocol.
    pub reserve_factor: f64,
}

impl RateCurve {
    /// Borrow APR at utilisation `u`.
    pub fn borrow_apr(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        if u <= self.optimal {
            self.base + self.slope1 * u / self.optimal.max(1e-12)
        } else {
            self.base + self.slope1 + self.slope2 * (u - self.optimal) / (1.0 - self.optimal).max(1e-12)
        }
    }

    /// Supply APR at utilisation `u`.
    pub fn supply_apr(&self, u: f64) -> f64 {
        self.borrow_apr(u) * u.clamp(0.0, 1.0) * (1.0 - self.reserve_factor)
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// Out-of-range values, named.
    pub fn validate(&self, what: &str) -> Result<()> {
        let ok = (0.0..1.0).contains(&self.optimal)
            && self.optimal > 0.0
            && [self.base, self.slope1, self.slope2].iter().all(|x| x.is_finite() && *x >= 0.0)
            && (0.0..=1.0).contains(&self.reserve_factor);
        if ok {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "{what}: curve needs 0 < optimal < 1, base/slope1/slope2 >= 0 and 0 <= reserve_factor <= 1, got {self:?}"
            )))
        }
    }
}

/// APY from an APR compounded every second (the protocols' convention, kept in one place).
pub use sextant_protocols::aave_v3::apy_of_apr;

/// One synthetic lending market.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthRateMarket {
    /// Market id.
    pub id: String,
    /// Contract family.
    pub protocol: LendingProtocol,
    /// Its rate curve.
    pub curve: RateCurve,
    /// Starting TVL, USD.
    pub tvl_usd: f64,
    /// Utilisation it reverts to.
    pub utilization: f64,
    /// Volatility of utilisation (on the logit scale, a year).
    pub utilization_vol: f64,
    /// Borrow-demand shocks a year (utilisation jumps toward full, then decays).
    pub spikes_per_year: f64,
    /// Incentive APY paid on top, on average.
    pub reward_apy: f64,
    /// When set, the market is drained from this fraction of the run: TVL leaves over a few days while utilisation
    /// climbs to full, then it is frozen and suppliers lose `exploit_loss` of what is left.
    pub exploit_at: Option<f64>,
    /// Fraction of supplied funds lost when the market is exploited.
    pub exploit_loss: f64,
}

/// Everything that defines a synthetic rate market set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthRates {
    /// Random seed.
    pub seed: u64,
    /// Observations per market.
    pub steps: usize,
    /// Time between observations, ms.
    pub interval_ms: i64,
    /// Time of the first, unix ms.
    pub start_ms: i64,
    /// The markets.
    pub markets: Vec<SynthRateMarket>,
}

impl SynthRates {
    /// Six USDC markets of the kinds a stable rotator chooses between, one hour apart for `steps` hours: Aave v3,
    /// Compound v3 and four ERC-4626 vaults (Morpho, Euler v2, Fluid, Yearn v3) with their own curves, sizes and
    /// incentives; the Euler-style vault is drained and frozen 70 % of the way through.
    pub fn usdc_defaults(seed: u64, steps: usize) -> Self {
        let m = |id: &str,
                 protocol,
                 optimal,
                 slope1,
                 slope2,
                 rf,
                 tvl: f64,
                 u,
                 vol,
                 spikes,
                 reward,
                 exploit: Option<f64>| SynthRateMarket {
            id: id.into(),
            protocol,
            curve: RateCurve { optimal, base: 0.0, slope1, slope2, reserve_factor: rf },
            tvl_usd: tvl,
            utilization: u,
            utilization_vol: vol,
            spikes_per_year: spikes,
            reward_apy: reward,
            exploit_at: exploit,
            exploit_loss: if exploit.is_some() { 0.3 } else { 0.0 },
        };
        use LendingProtocol::{AaveV3, CompoundV3, Erc4626};
        SynthRates {
            seed,
            steps,
            interval_ms: 3_600_000,
            start_ms: 1_704_067_200_000,
            markets: vec![
                m("aave-v3-usdc", AaveV3, 0.92, 0.065, 0.60, 0.10, 2.5e9, 0.82, 1.2, 6.0, 0.0, None),
                m("compound-v3-usdc", CompoundV3, 0.90, 0.07, 1.20, 0.15, 8e8, 0.80, 1.4, 6.0, 0.004, None),
                m("morpho-usdc", Erc4626, 0.90, 0.075, 0.80, 0.0, 3e8, 0.86, 1.8, 10.0, 0.008, None),
                m("euler-v2-usdc", Erc4626, 0.88, 0.08, 1.00, 0.10, 1.2e8, 0.84, 2.0, 10.0, 0.015, Some(0.7)),
                m("fluid-usdc", Erc4626, 0.90, 0.07, 0.90, 0.10, 2e8, 0.80, 1.6, 8.0, 0.006, None),
                m("yearn-v3-usdc", Erc4626, 0.90, 0.06, 0.60, 0.10, 6e7, 0.78, 1.0, 4.0, 0.0, None),
            ],
        }
    }

    /// Generates the series.
    ///
    /// # Errors
    /// Out-of-range parameters, named.
    pub fn generate(&self) -> Result<Vec<RateSeries>> {
        if self.steps == 0 || self.steps > 10_000_000 {
            return Err(Error::Invalid(format!("steps must be between 1 and 10000000, got {}", self.steps)));
        }
        if self.interval_ms <= 0 {
            return Err(Error::Invalid(format!("interval must be positive, got {} ms", self.interval_ms)));
        }
        let dt = self.interval_ms as f64 / (365.0 * 86_400_000.0);
        let mut out = Vec::with_capacity(self.markets.len());
        for (k, m) in self.markets.iter().enumerate() {
            m.curve.validate(&m.id)?;
            if !(m.utilization > 0.0 && m.utilization < 1.0) || m.tvl_usd <= 0.0 || m.utilization_vol < 0.0 {
                return Err(Error::Invalid(format!(
                    "{}: utilization must be in (0, 1), tvl_usd > 0 and utilization_vol >= 0",
                    m.id
                )));
            }
            if !(0.0..=1.0).contains(&m.exploit_loss) || m.exploit_at.is_some_and(|f| !(0.0..=1.0).contains(&f)) {
                return Err(Error::Invalid(format!("{}: exploit_at and exploit_loss must be in [0, 1]", m.id)));
            }
            // Each market has its own stream, so adding a market leaves the others unchanged.
            let mut rng = Rng::new(self.seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(k as u64 + 1)));
            let logit = |u: f64| (u / (1.0 - u)).ln();
            let mean = logit(m.utilization);
            let mut x = mean;
            let mut spike = 0.0f64; // extra logit from a borrow-demand shock, decaying
            let mut tvl = m.tvl_usd;
            let mut reward = m.reward_apy;
            let exploit_step = m.exploit_at.map(|f| (f * self.steps as f64).round() as usize);
            let drain_steps = (3.0 * 86_400_000.0 / self.interval_ms as f64).ceil().max(1.0) as usize;
            let mut points = Vec::with_capacity(self.steps);
            for i in 0..self.steps {
                // Mean reversion with a half-life of about five days; spikes decay with a half-life of a day.
                let theta = 50.0;
                x += theta * (mean - x) * dt + m.utilization_vol * dt.sqrt() * rng.normal();
                spike *= (-(365.0 * std::f64::consts::LN_2) * dt).exp();
                if rng.uniform() < m.spikes_per_year * dt {
                    spike += 1.5 + 1.5 * rng.uniform();
                }
                tvl *= (0.1 * dt.sqrt() * rng.normal() - 0.005 * dt).exp();
                reward = (reward + 0.5 * (m.reward_apy - reward) * dt + 0.002 * dt.sqrt() * rng.normal()).max(0.0);
                let mut u = 1.0 / (1.0 + (-(x + spike)).exp());
                let (mut frozen, mut bad_debt, mut shown_tvl) = (false, 0.0, tvl);
                if let Some(e) = exploit_step {
                    if i + drain_steps >= e && i < e {
                        // draining: depositors rush out, borrowers keep what they took
                        let left = (e - i) as f64 / drain_steps as f64;
                        shown_tvl = tvl * (0.1 + 0.9 * left);
                        u = u + (0.995 - u) * (1.0 - left);
                    } else if i >= e {
                        shown_tvl = tvl * 0.1 * (1.0 - m.exploit_loss);
                        u = 0.999;
                        frozen = true;
                        bad_debt = if i == e { m.exploit_loss } else { 0.0 };
                        reward = 0.0;
                    }
                }
                let u = round(u, 1e6);
                let borrow = apy_of_apr(m.curve.borrow_apr(u));
                let supply = apy_of_apr(m.curve.supply_apr(u));
                points.push(RatePoint {
                    timestamp_ms: self.start_ms + i as i64 * self.interval_ms,
                    supply_apy: round(supply, 1e8),
                    borrow_apy: round(borrow, 1e8),
                    tvl_usd: round(shown_tvl, 1e2),
                    utilization: u,
                    reward_apy: round(reward, 1e8),
                    frozen,
                    bad_debt,
                });
            }
            out.push(RateSeries { market: m.id.clone(), points });
        }
        Ok(out)
    }
}

fn round(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_and_errors_name_the_line() {
        let series = SynthRates::usdc_defaults(3, 48).generate().unwrap();
        let text = write_rates(&series);
        let back = parse_rates(&text, "x.csv").unwrap();
        assert_eq!(back.len(), 6);
        for (a, b) in series.iter().zip(&back) {
            assert_eq!(a.market, b.market);
            assert_eq!(a.points.len(), b.points.len());
            for (p, q) in a.points.iter().zip(&b.points) {
                assert_eq!(p.timestamp_ms, q.timestamp_ms);
                assert!((p.supply_apy - q.supply_apy).abs() < 1e-8);
                assert!((p.tvl_usd - q.tvl_usd).abs() < 0.01);
            }
        }
        let e = parse_rates(
            "timestamp,market,supply_apy,borrow_apy,tvl_usd,utilization\n2024-01-01,a,0.05,0.07,1e6,1.5\n",
            "r.csv",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "r.csv:2: utilization must be between 0 and 1, got 1.5");
        let e = parse_rates("timestamp,market,supply_apy\n", "r.csv").unwrap_err().to_string();
        assert!(e.starts_with("r.csv:1: missing column \"borrow_apy\""), "{e}");
        let dup = "timestamp,market,supply_apy,borrow_apy,tvl_usd,utilization\n2024-01-01,a,0.05,0.07,1e6,0.5\n2024-01-01,a,0.05,0.07,1e6,0.5\n";
        assert!(parse_rates(dup, "r.csv").unwrap_err().to_string().starts_with("r.csv:3: a second row"));
    }

    #[test]
    fn synthetic_rates_follow_the_curves_and_one_market_is_drained() {
        let spec = SynthRates::usdc_defaults(11, 24 * 365);
        let series = spec.generate().unwrap();
        assert_eq!(series, spec.generate().unwrap(), "same seed, same market");
        for (s, m) in series.iter().zip(&spec.markets) {
            for p in &s.points {
                assert!(p.supply_apy <= p.borrow_apy + 1e-9);
                let expect = apy_of_apr(m.curve.supply_apr(p.utilization));
                assert!((p.supply_apy - expect).abs() < 1e-8, "{}: {p:?}", s.market);
            }
            let max_u = s.points.iter().map(|p| p.utilization).fold(0.0, f64::max);
            assert!(max_u > m.curve.optimal, "{}: utilisation spikes past the kink ({max_u})", s.market);
        }
        let euler = &series[3];
        let frozen_at = euler.points.iter().position(|p| p.frozen).unwrap();
        assert_eq!(frozen_at, (0.7f64 * 24.0 * 365.0).round() as usize);
        assert_eq!(euler.points[frozen_at].bad_debt, 0.3);
        assert!(euler.points[frozen_at].tvl_usd < 0.2 * euler.points[frozen_at - 80].tvl_usd);
        assert!(series.iter().enumerate().all(|(i, s)| i == 3 || s.points.iter().all(|p| !p.frozen)));
    }
}

/// A synthetic Pendle PT market beside the floating market it tokenises: the floating supply rate comes from a
/// [`SynthRateMarket`]; the PT's implied APY follows the floating rate's 30-day average plus a spread that
/// mean-reverts (half-life about ten days) around `spread_mean`, with the market's moods (demand for fixed yield
/// pushes the spread up, a rush for floating exposure below zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthPt {
    /// Random seed.
    pub seed: u64,
    /// Observations.
    pub steps: usize,
    /// Time between observations, ms.
    pub interval_ms: i64,
    /// First observation, unix ms.
    pub start_ms: i64,
    /// The floating market.
    pub floating: SynthRateMarket,
    /// The PT market's id.
    pub pt_id: String,
    /// Mean of implied minus floating APY.
    pub spread_mean: f64,
    /// Volatility of the spread, a year.
    pub spread_vol: f64,
}

impl SynthPt {
    /// A USDC PT over the built-in Aave-style market, hourly: spread 0.3 % on average, volatile enough to cross
    /// zero.
    pub fn usdc_defaults(seed: u64, steps: usize) -> Self {
        let base = SynthRates::usdc_defaults(seed, steps);
        SynthPt {
            seed,
            steps,
            interval_ms: base.interval_ms,
            start_ms: base.start_ms,
            floating: base.markets[0].clone(),
            pt_id: "pendle-pt-usdc".into(),
            spread_mean: 0.003,
            spread_vol: 0.04,
        }
    }

    /// The floating market's series and the PT's (its `supply_apy` is the implied APY; TVL and utilisation are
    /// the floating market's).
    ///
    /// # Errors
    /// Out-of-range parameters.
    pub fn generate(&self) -> Result<(RateSeries, RateSeries)> {
        if !(self.spread_vol.is_finite() && self.spread_vol >= 0.0 && self.spread_mean.is_finite()) {
            return Err(Error::Invalid("spread_mean must be finite and spread_vol >= 0".into()));
        }
        let rates = SynthRates {
            seed: self.seed,
            steps: self.steps,
            interval_ms: self.interval_ms,
            start_ms: self.start_ms,
            markets: vec![self.floating.clone()],
        };
        let floating = rates.generate()?.remove(0);
        let dt = self.interval_ms as f64 / (365.0 * 86_400_000.0);
        let mut rng = Rng::new(self.seed ^ 0x5EED_F1CE_D00D_1234);
        let alpha = (dt / (30.0 / 365.0)).min(1.0);
        let theta = 365.0 * std::f64::consts::LN_2 / 10.0;
        let mut avg = floating.points.first().map_or(0.0, |p| p.supply_apy);
        let mut spread = self.spread_mean;
        let points = floating
            .points
            .iter()
            .map(|p| {
                avg += alpha * (p.supply_apy - avg);
                spread += theta * (self.spread_mean - spread) * dt + self.spread_vol * dt.sqrt() * rng.normal();
                RatePoint {
                    supply_apy: round((avg + spread).max(0.0), 1e8),
                    borrow_apy: 0.0,
                    reward_apy: 0.0,
                    frozen: false,
                    bad_debt: 0.0,
                    ..*p
                }
            })
            .collect();
        Ok((floating, RateSeries { market: self.pt_id.clone(), points }))
    }
}
