//! Pendle principal and yield tokens in asset terms. A PT redeems for one unit of the underlying asset at maturity;
//! before it, the market prices it from its implied APY as Pendle's `MarketMathCore` does: the exchange rate (PT per
//! asset) is `exp(ln(1 + implied_apy) * time_to_maturity / year)`, so a PT costs `(1 + apy)^(-t)` assets. A YT is
//! the rest of the asset: `1 - PT price`, and pays the floating yield until maturity, then nothing. Trades pay
//! Pendle's fee on the rate: the exchange rate moves by `exp(ln_fee_rate_root * t)` against the trader.
//!
//! Pendle's contracts compute these in 18-decimal fixed point (`LogExpMath`); this model uses f64, which is exact to
//! far below a basis point of price for any maturity under a century.

use serde::{Deserialize, Serialize};

/// Pendle's year (365 days), in seconds.
pub const YEAR_SECS: f64 = 31_536_000.0;

/// A PT market at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PtMarket {
    /// Implied APY of the PT, a fraction (0.08 = 8 %).
    pub implied_apy: f64,
    /// Seconds to maturity (0 at or after it).
    pub secs_to_maturity: f64,
    /// `ln(1 + fee rate)` a year: Pendle's `lnFeeRateRoot` (0.001 is a typical 0.1 %).
    pub ln_fee_rate_root: f64,
}

impl PtMarket {
    fn years(&self) -> f64 {
        self.secs_to_maturity.max(0.0) / YEAR_SECS
    }

    /// PT per asset at the implied rate, before fees.
    pub fn exchange_rate(&self) -> f64 {
        (self.implied_apy.ln_1p() * self.years()).exp()
    }

    /// The price of one PT in the asset, before fees (1 at maturity).
    pub fn pt_price(&self) -> f64 {
        1.0 / self.exchange_rate()
    }

    /// The price of one YT in the asset, before fees (0 at maturity).
    pub fn yt_price(&self) -> f64 {
        1.0 - self.pt_price()
    }

    fn fee_factor(&self) -> f64 {
        (self.ln_fee_rate_root * self.years()).exp()
    }

    /// PT bought with `assets`, after the fee.
    pub fn buy_pt(&self, assets: f64) -> f64 {
        assets * self.exchange_rate() / self.fee_factor()
    }

    /// Assets from selling `pt` before maturity, after the fee; at maturity, redemption one for one.
    pub fn sell_pt(&self, pt: f64) -> f64 {
        if self.secs_to_maturity <= 0.0 {
            return pt;
        }
        pt / (self.exchange_rate() * self.fee_factor())
    }

    /// The fixed APY a buyer locks in when paying `price` assets per PT, held to maturity.
    pub fn apy_of_price(price: f64, secs_to_maturity: f64) -> f64 {
        let years = secs_to_maturity / YEAR_SECS;
        if years <= 0.0 || price <= 0.0 {
            return 0.0;
        }
        (1.0 / price).powf(1.0 / years) - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pt_accretes_to_par_and_yt_decays_to_zero() {
        let m = |secs: f64| PtMarket { implied_apy: 0.10, secs_to_maturity: secs, ln_fee_rate_root: 0.0 };
        assert!((m(YEAR_SECS).pt_price() - 1.0 / 1.1).abs() < 1e-12);
        assert!((m(YEAR_SECS / 2.0).pt_price() - 1.1f64.powf(-0.5)).abs() < 1e-12);
        assert_eq!(m(0.0).pt_price(), 1.0);
        assert_eq!(m(0.0).yt_price(), 0.0);
        let p = m(90.0 * 86_400.0).pt_price();
        assert!((PtMarket::apy_of_price(p, 90.0 * 86_400.0) - 0.10).abs() < 1e-12);
    }

    #[test]
    fn fees_cost_both_ways() {
        let m = PtMarket { implied_apy: 0.08, secs_to_maturity: YEAR_SECS, ln_fee_rate_root: 0.002 };
        let pt = m.buy_pt(1_000.0);
        let back = m.sell_pt(pt);
        assert!(back < 1_000.0 && back > 995.0, "{back}");
        // Held to maturity the buyer earns the implied rate less the fee.
        assert!(pt > 1_077.0 && pt < 1_080.0, "{pt}");
    }
}
