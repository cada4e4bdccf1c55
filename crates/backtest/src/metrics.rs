//! Performance metrics from an equity curve and its trades.

use crate::engine::{CostTotals, EquityPoint, Trade};
use serde::{Deserialize, Serialize};

const YEAR_MS: f64 = 365.25 * 86_400_000.0;

/// The metrics of a backtest. Ratios are fractions (0.12 = 12 %); money is in quote units.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// final / initial - 1.
    pub total_return: f64,
    /// Compound annual growth rate over the data's time span.
    pub cagr: f64,
    /// Annualised standard deviation of per-step returns.
    pub volatility: f64,
    /// Annualised mean / standard deviation of per-step returns (risk-free rate 0).
    pub sharpe: f64,
    /// Annualised mean / downside deviation of per-step returns.
    pub sortino: f64,
    /// Largest peak-to-trough fall of equity, as a positive fraction of the peak.
    pub max_drawdown: f64,
    /// cagr / max_drawdown.
    pub calmar: f64,
    /// Fraction of closed trades with positive pnl.
    pub win_rate: f64,
    /// Closed round trips.
    pub n_trades: usize,
    /// DEX fees paid.
    pub fees_paid: f64,
    /// Gas paid.
    pub gas_paid: f64,
    /// Price impact paid.
    pub slippage_paid: f64,
    /// Sandwich (MEV) loss.
    pub mev_paid: f64,
    /// Equity at the end.
    pub final_equity: f64,
}

impl Metrics {
    /// The names of the metrics, in report order.
    pub const NAMES: [&'static str; 14] = [
        "total_return",
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "win_rate",
        "n_trades",
        "fees_paid",
        "gas_paid",
        "slippage_paid",
        "mev_paid",
        "final_equity",
    ];

    /// A metric by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "total_return" => self.total_return,
            "cagr" => self.cagr,
            "volatility" => self.volatility,
            "sharpe" => self.sharpe,
            "sortino" => self.sortino,
            "max_drawdown" => self.max_drawdown,
            "calmar" => self.calmar,
            "win_rate" => self.win_rate,
            "n_trades" => self.n_trades as f64,
            "fees_paid" => self.fees_paid,
            "gas_paid" => self.gas_paid,
            "slippage_paid" => self.slippage_paid,
            "mev_paid" => self.mev_paid,
            "final_equity" => self.final_equity,
            _ => return None,
        })
    }

    /// Whether a larger value of the metric is better (drawdown, volatility and costs are better small).
    pub fn higher_is_better(name: &str) -> bool {
        !matches!(name, "max_drawdown" | "volatility" | "fees_paid" | "gas_paid" | "slippage_paid" | "mev_paid")
    }
}

/// Largest fall from a running peak, as a positive fraction.
pub fn max_drawdown(equity: &[EquityPoint]) -> f64 {
    let mut peak = f64::MIN;
    let mut worst = 0.0f64;
    for p in equity {
        peak = peak.max(p.equity);
        if peak > 0.0 {
            worst = worst.max(1.0 - p.equity / peak);
        }
    }
    worst
}

/// Computes every metric. Annualisation uses the steps actually observed per year of the data's span, so daily
/// equity data (about 252 bars a year) and 24/7 crypto data are both annualised by what they contain.
pub fn compute_metrics(initial: f64, equity: &[EquityPoint], trades: &[Trade], totals: &CostTotals) -> Metrics {
    let final_equity = equity.last().map_or(initial, |p| p.equity);
    let total_return = final_equity / initial - 1.0;
    let span_years = match (equity.first(), equity.last()) {
        (Some(a), Some(b)) => (b.timestamp_ms - a.timestamp_ms) as f64 / YEAR_MS,
        _ => 0.0,
    };
    let cagr = if final_equity <= 0.0 {
        -1.0
    } else if span_years > 0.0 {
        (final_equity / initial).powf(1.0 / span_years) - 1.0
    } else {
        total_return
    };
    // Per-step returns, the first against the initial cash.
    let mut prev = initial;
    let mut n = 0usize;
    let (mut sum, mut sum_sq, mut down_sq) = (0.0, 0.0, 0.0);
    for p in equity {
        let r = if prev > 0.0 { p.equity / prev - 1.0 } else { 0.0 };
        prev = p.equity;
        n += 1;
        sum += r;
        sum_sq += r * r;
        if r < 0.0 {
            down_sq += r * r;
        }
    }
    let per_year = if span_years > 0.0 && n > 1 { (n - 1) as f64 / span_years } else { 0.0 };
    let (volatility, sharpe, sortino) = if n > 1 && per_year > 0.0 {
        let mean = sum / n as f64;
        let var = ((sum_sq - n as f64 * mean * mean) / (n - 1) as f64).max(0.0);
        let sd = var.sqrt();
        let downside = (down_sq / n as f64).sqrt();
        let ann = per_year.sqrt();
        (
            sd * ann,
            if sd > 0.0 { mean / sd * ann } else { 0.0 },
            if downside > 0.0 { mean / downside * ann } else { 0.0 },
        )
    } else {
        (0.0, 0.0, 0.0)
    };
    let max_drawdown = max_drawdown(equity);
    let wins = trades.iter().filter(|t| t.pnl > 0.0).count();
    Metrics {
        total_return,
        cagr,
        volatility,
        sharpe,
        sortino,
        max_drawdown,
        calmar: if max_drawdown > 0.0 { cagr / max_drawdown } else { 0.0 },
        win_rate: if trades.is_empty() { 0.0 } else { wins as f64 / trades.len() as f64 },
        n_trades: trades.len(),
        fees_paid: totals.fees,
        gas_paid: totals.gas,
        slippage_paid: totals.slippage,
        mev_paid: totals.mev,
        final_equity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(values: &[f64], step_ms: i64) -> Vec<EquityPoint> {
        values.iter().enumerate().map(|(i, &e)| EquityPoint { timestamp_ms: i as i64 * step_ms, equity: e }).collect()
    }

    #[test]
    fn drawdown_and_returns() {
        let eq = curve(&[100.0, 120.0, 90.0, 110.0, 60.0, 130.0], 86_400_000);
        assert!((max_drawdown(&eq) - 0.5).abs() < 1e-15);
        let m = compute_metrics(100.0, &eq, &[], &CostTotals::default());
        assert!((m.total_return - 0.3).abs() < 1e-12);
        assert_eq!(m.final_equity, 130.0);
        assert!((m.calmar - m.cagr / 0.5).abs() < 1e-12);
        assert!(m.sortino > 0.0 && m.volatility > 0.0);
    }

    #[test]
    fn doubling_in_one_year_is_100_percent_cagr() {
        let step = (YEAR_MS / 4.0) as i64;
        let eq = curve(&[100.0, 120.0, 140.0, 170.0, 200.0], step);
        let m = compute_metrics(100.0, &eq, &[], &CostTotals::default());
        assert!((m.cagr - 1.0).abs() < 1e-9, "{}", m.cagr);
    }

    #[test]
    fn sharpe_matches_hand_computation() {
        // Returns relative to initial 100: +1 %, -1 %, +2 %, 0 % over 4 steps spanning 3 days.
        let eq = curve(&[101.0, 99.99, 101.9898, 101.9898], 86_400_000);
        let r = [0.01, -0.01, 0.02, 0.0];
        let mean = r.iter().sum::<f64>() / 4.0;
        let sd = (r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 3.0).sqrt();
        let per_year = 3.0 / (3.0 * 86_400_000.0 / YEAR_MS);
        let m = compute_metrics(100.0, &eq, &[], &CostTotals::default());
        assert!(
            (m.sharpe - mean / sd * per_year.sqrt()).abs() < 1e-9,
            "{} vs {}",
            m.sharpe,
            mean / sd * per_year.sqrt()
        );
    }
}
