//! The simulated executor: swaps against the bar price with DEX fee, gas, price impact and MEV, on the portfolio.

use crate::config::{Costs, SlippageKind};
use sextant_protocols::constant_product;
use sextant_strategy::{ExecError, ExecErrorKind, Executor, PortfolioView};
use sextant_types::{Amount, AmountSpec, Fill, Intent};

/// Which way a swap goes relative to cash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Quote -> asset.
    Buy,
    /// Asset -> quote.
    Sell,
}

/// A priced swap, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// Asset index.
    pub asset: usize,
    /// Direction.
    pub side: Side,
    /// Quote units in (buy) or asset units in (sell).
    pub amount_in: f64,
    /// Asset units out (buy) or quote units out after fee and gas (sell).
    pub amount_out: f64,
    /// Mid price at fill time.
    pub mid: f64,
    /// Price after impact and MEV, before fee.
    pub exec_price: f64,
    /// DEX fee, quote units.
    pub fee: f64,
    /// Gas, quote units.
    pub gas: f64,
    /// Price impact, quote units.
    pub slippage: f64,
    /// Sandwich loss, quote units.
    pub mev: f64,
    /// Cash change this swap causes (negative for buys).
    pub cash_delta: f64,
    /// Spends the whole balance (so rounding leaves nothing behind).
    pub all: bool,
}

/// Executes intents against bar prices on a simulated portfolio. Built for one moment (one fill price per asset).
pub struct SimExecutor<'a> {
    /// The portfolio fills apply to.
    pub portfolio: &'a mut PortfolioView,
    /// Fill price of each asset now, or None when it has no bar.
    pub prices: &'a [Option<f64>],
    /// Cost model.
    pub costs: &'a Costs,
    /// Time of the fill.
    pub timestamp_ms: i64,
    /// A forced exit (the end-of-run close-out): swaps are not refused for impact above the tolerance, though MEV
    /// stays capped by it.
    pub forced: bool,
    /// State of the generator that drops transactions at `Costs::failure_rate` (kept in the snapshot, so a resumed
    /// run drops the same ones).
    pub rng: &'a mut u64,
}

/// splitmix64: the next uniform number in [0, 1) from `state`.
fn next_uniform(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Which asset an intent trades, and in which direction, given the portfolio's quote token and positions.
pub fn swap_side(portfolio: &PortfolioView, intent: &Intent) -> Option<(usize, Side)> {
    let Intent::Swap { sell, buy, .. } = intent else { return None };
    let index = |id| portfolio.positions.iter().position(|p| &p.base.id == id);
    if sell.id == portfolio.quote.id {
        index(&buy.id).map(|i| (i, Side::Buy))
    } else if buy.id == portfolio.quote.id {
        index(&sell.id).map(|i| (i, Side::Sell))
    } else {
        None
    }
}

fn err(kind: ExecErrorKind, message: String) -> ExecError {
    ExecError::new(kind, message)
}

impl SimExecutor<'_> {
    /// Fraction of the notional lost to price impact for a swap worth `notional` quote units at `mid`.
    fn impact(&self, notional: f64) -> f64 {
        match self.costs.slippage {
            SlippageKind::None => 0.0,
            SlippageKind::Fixed => self.costs.slippage_bps / 1e4,
            // Half of the depth sits on each side; the input side's reserve is depth / 2 in quote terms.
            SlippageKind::ConstantProduct => constant_product::price_impact(notional, self.costs.pool_depth_usd / 2.0),
        }
    }

    /// Price impact and sandwich loss, as fractions of `notional`: a swap whose impact exceeds the tolerance is
    /// refused (it would revert on chain) unless this is a forced exit; MEV takes at most what the tolerance leaves.
    fn impact_and_mev(&self, notional: f64, tolerance: f64) -> Result<(f64, f64), ExecError> {
        let s = self.impact(notional);
        if s > tolerance && !self.forced {
            return Err(err(
                ExecErrorKind::SlippageExceeded,
                format!("impact {:.1} bps > tolerance {:.1} bps", s * 1e4, tolerance * 1e4),
            ));
        }
        Ok((s, (self.costs.mev_bps / 1e4).min(tolerance - s).max(0.0)))
    }

    fn quote(&self, intent: &Intent) -> Result<Quote, ExecError> {
        let Intent::Swap { amount, max_slippage_bps, .. } = intent else {
            return Err(err(
                ExecErrorKind::Unsupported,
                format!("the spot backtest cannot execute {:?} intents", intent.kind()),
            ));
        };
        let (asset, side) = swap_side(self.portfolio, intent).ok_or_else(|| {
            err(ExecErrorKind::Unsupported, "swap is not between the quote token and a configured asset".into())
        })?;
        let mid = self.prices[asset]
            .ok_or_else(|| err(ExecErrorKind::Transient, format!("no price for asset {asset} at this time")))?;
        let gas = self.costs.gas_usd();
        let position = &self.portfolio.positions[asset];
        let (amount_in, all) = match (side, amount) {
            (Side::Buy, AmountSpec::All) => (self.portfolio.cash - gas, true),
            (Side::Buy, AmountSpec::Exact(a)) => (a.to_units(&self.portfolio.quote), false),
            (Side::Sell, AmountSpec::All) => (position.quantity, true),
            (Side::Sell, AmountSpec::Exact(a)) => (a.to_units(&position.base), false),
        };
        let available = match side {
            Side::Buy => self.portfolio.cash - gas,
            Side::Sell => position.quantity,
        };
        // An exact buy that the cash covers but not beside its gas spends what is left after the gas: a strategy
        // sizing by equity cannot know the gas, and failing the entry over a few dollars of it helps nobody.
        let amount_in = match (side, amount) {
            (Side::Buy, AmountSpec::Exact(_)) if amount_in > available && amount_in <= self.portfolio.cash => available,
            _ => amount_in,
        };
        if amount_in <= 0.0 || amount_in > available * (1.0 + 1e-12) {
            return Err(err(
                ExecErrorKind::InsufficientBalance,
                format!("{side:?} needs {amount_in} (plus {gas} gas), {available} available"),
            ));
        }
        let fee_rate = self.costs.fee_bps / 1e4;
        let tolerance = f64::from((*max_slippage_bps).min(self.costs.slippage_tolerance_bps)) / 1e4;
        let q = match side {
            Side::Buy => {
                let fee = amount_in * fee_rate;
                let notional = amount_in - fee;
                let (s, m) = self.impact_and_mev(notional, tolerance)?;
                let qty = notional * (1.0 - s - m) / mid;
                Quote {
                    asset,
                    side,
                    amount_in,
                    amount_out: qty,
                    mid,
                    exec_price: mid / (1.0 - s - m),
                    fee,
                    gas,
                    slippage: notional * s,
                    mev: notional * m,
                    cash_delta: -(amount_in + gas),
                    all,
                }
            }
            Side::Sell => {
                let value = amount_in * mid;
                let (s, m) = self.impact_and_mev(value, tolerance)?;
                let gross = value * (1.0 - s - m);
                let fee = gross * fee_rate;
                if self.portfolio.cash + gross - fee - gas < 0.0 {
                    return Err(err(
                        ExecErrorKind::InsufficientBalance,
                        format!(
                            "selling brings {} after fee, cash {} cannot pay {gas} gas",
                            gross - fee,
                            self.portfolio.cash
                        ),
                    ));
                }
                Quote {
                    asset,
                    side,
                    amount_in,
                    amount_out: gross - fee - gas,
                    mid,
                    exec_price: mid * (1.0 - s - m),
                    fee,
                    gas,
                    slippage: value * s,
                    mev: value * m,
                    cash_delta: gross - fee - gas,
                    all,
                }
            }
        };
        Ok(q)
    }
}

impl Executor for SimExecutor<'_> {
    type Prepared = Option<Quote>;
    type Receipt = Option<Fill>;

    fn prepare(&mut self, intent: &Intent) -> Result<Option<Quote>, ExecError> {
        match intent {
            Intent::Hold { .. } => Ok(None),
            _ => self.quote(intent).map(Some),
        }
    }

    fn execute(&mut self, prepared: &Option<Quote>) -> Result<Option<Fill>, ExecError> {
        let Some(q) = prepared else { return Ok(None) };
        // The end-of-run close-out is a bookkeeping exit, not a transaction that can be dropped.
        if self.costs.failure_rate > 0.0 && !self.forced && next_uniform(self.rng) < self.costs.failure_rate {
            return Err(err(ExecErrorKind::Transient, "transaction dropped (simulated failure_rate)".into()));
        }
        let quote_token = self.portfolio.quote.clone();
        let pos = &mut self.portfolio.positions[q.asset];
        let base_token = pos.base.clone();
        let to_amount = |units: f64, token| Amount::from_units(units.max(0.0), token).unwrap_or(Amount::ZERO);
        let (token_in, amount_in, token_out, amount_out) = match q.side {
            Side::Buy => {
                let held = pos.quantity;
                let entry = pos.entry_price.unwrap_or(0.0);
                pos.quantity += q.amount_out;
                // Average in only when scaling into a position, so a single fill keeps its exact price.
                pos.entry_price = Some(if held > 0.0 {
                    (held * entry + q.amount_out * q.exec_price) / pos.quantity
                } else {
                    q.exec_price
                });
                if q.all {
                    self.portfolio.cash = 0.0;
                } else {
                    self.portfolio.cash += q.cash_delta;
                }
                (
                    quote_token.clone(),
                    to_amount(q.amount_in, &quote_token),
                    base_token.clone(),
                    to_amount(q.amount_out, &base_token),
                )
            }
            Side::Sell => {
                pos.quantity = if q.all { 0.0 } else { pos.quantity - q.amount_in };
                if pos.quantity <= 0.0 {
                    pos.quantity = 0.0;
                    pos.entry_price = None;
                }
                self.portfolio.cash += q.cash_delta;
                (
                    base_token.clone(),
                    to_amount(q.amount_in, &base_token),
                    quote_token.clone(),
                    to_amount(q.amount_out, &quote_token),
                )
            }
        };
        Ok(Some(Fill {
            timestamp_ms: self.timestamp_ms,
            token_in,
            amount_in,
            token_out,
            amount_out,
            mid_price: q.mid,
            exec_price: q.exec_price,
            fee_paid: q.fee,
            gas_paid: q.gas,
            slippage_paid: q.slippage,
            mev_paid: q.mev,
            lp_position: None,
        }))
    }

    fn validate(&mut self, prepared: &Option<Quote>, receipt: Option<Fill>) -> Result<Option<Fill>, ExecError> {
        if let Some(q) = prepared
            && self.portfolio.positions[q.asset].quantity < 0.0
        {
            return Err(err(ExecErrorKind::Invalid, "position went negative".into()));
        }
        Ok(receipt)
    }
}
