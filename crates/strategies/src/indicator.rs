//! The indicator strategies: one signal machine per asset, long-only, sharing cash.

use crate::{BandExit, Error, MaKind, Result, RiskSettings, StrategySpec};
use serde::{Deserialize, Serialize};
use sextant_indicators::{Bbands, Ema, Indicator, Rsi, Sma};
use sextant_market::{AssetView, MarketView};
use sextant_strategy::{FlowOutcome, PortfolioView, PositionView, Strategy};
use sextant_types::{Amount, AmountSpec, Intent, TokenId};

/// A built-in indicator strategy: its rule and the shared risk settings.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorStrategy {
    spec: StrategySpec,
    risk: RiskSettings,
    /// Exit when close <= entry * this (from `stop_loss_pct`), computed once.
    stop_factor: Option<f64>,
    /// Exit when close >= entry * this (from `take_profit_pct`), computed once.
    take_factor: Option<f64>,
}

/// A moving average of either flavour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovingAverage {
    /// Simple.
    Sma(Sma),
    /// Exponential.
    Ema(Ema),
}

impl MovingAverage {
    fn new(kind: MaKind, period: usize) -> Self {
        // Periods are validated by StrategySpec::validate before a strategy is built.
        match kind {
            MaKind::Sma => MovingAverage::Sma(Sma::new(period).expect("validated period")),
            MaKind::Ema => MovingAverage::Ema(Ema::new(period).expect("validated period")),
        }
    }

    fn update(&mut self, x: f64) -> Option<f64> {
        match self {
            MovingAverage::Sma(m) => m.update(x),
            MovingAverage::Ema(m) => m.update(x),
        }
    }
}

/// The indicator state of one asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum SignalState {
    /// RSI.
    Rsi {
        /// The indicator.
        rsi: Rsi,
    },
    /// Two moving averages and their previous values (for the cross test).
    MaCross {
        /// Fast average.
        fast: MovingAverage,
        /// Slow average.
        slow: MovingAverage,
        /// (fast, slow) at the previous bar, once both exist.
        prev: Option<(f64, f64)>,
    },
    /// Bollinger bands.
    Bollinger {
        /// The bands.
        bands: Bbands,
    },
}

/// What a rule says about one bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Buy,
    Sell,
    None,
}

impl SignalState {
    fn new(spec: &StrategySpec) -> Self {
        match *spec {
            StrategySpec::Rsi { period, .. } => SignalState::Rsi { rsi: Rsi::new(period).expect("validated period") },
            StrategySpec::MaCross { fast, slow, ma } => SignalState::MaCross {
                fast: MovingAverage::new(ma, fast),
                slow: MovingAverage::new(ma, slow),
                prev: None,
            },
            StrategySpec::Bollinger { period, nbdev, .. } => {
                SignalState::Bollinger { bands: Bbands::new(period, nbdev).expect("validated period") }
            }
            StrategySpec::DynamicLp { .. }
            | StrategySpec::StableRotator(_)
            | StrategySpec::LeverageLoop(_)
            | StrategySpec::FixedYield(_) => {
                unreachable!("IndicatorStrategy::new refuses non-indicator kinds")
            }
        }
    }

    fn update(&mut self, spec: &StrategySpec, close: f64) -> Signal {
        match (self, spec) {
            (SignalState::Rsi { rsi }, StrategySpec::Rsi { oversold, overbought, .. }) => match rsi.update(close) {
                Some(v) if v < *oversold => Signal::Buy,
                Some(v) if v > *overbought => Signal::Sell,
                _ => Signal::None,
            },
            (SignalState::MaCross { fast, slow, prev }, StrategySpec::MaCross { .. }) => {
                let (f, s) = (fast.update(close), slow.update(close));
                let (Some(f), Some(s)) = (f, s) else { return Signal::None };
                let signal = match *prev {
                    Some((pf, ps)) if pf < ps && f > s => Signal::Buy,
                    Some((pf, ps)) if pf > ps && f < s => Signal::Sell,
                    _ => Signal::None,
                };
                *prev = Some((f, s));
                signal
            }
            (SignalState::Bollinger { bands }, StrategySpec::Bollinger { exit, .. }) => match bands.update(close) {
                Some(b) if close < b.lower => Signal::Buy,
                Some(b) if close > b.middle && *exit == BandExit::Middle => Signal::Sell,
                Some(b) if close > b.upper => Signal::Sell,
                _ => Signal::None,
            },
            // The state is always built from the same spec.
            _ => Signal::None,
        }
    }
}

/// Per-asset state of an indicator strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetState {
    /// The asset this state follows.
    pub base: TokenId,
    /// The rule's indicators.
    pub signal: SignalState,
    /// Bars of this asset left before signals count again.
    pub cooldown_left: usize,
    /// An intent for this asset is in flight (emitted, not yet completed or failed): emit nothing more.
    pub in_flight: bool,
    /// Cash an in-flight buy will spend, so other assets do not count it as free.
    pub reserved_cash: f64,
}

/// The persisted state of an indicator strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorState {
    /// One entry per asset, in market order.
    pub assets: Vec<AssetState>,
}

impl IndicatorStrategy {
    /// Builds a strategy from validated settings.
    ///
    /// # Errors
    /// When the spec or risk settings are out of range (naming the key).
    pub fn new(spec: StrategySpec, risk: RiskSettings) -> Result<Self> {
        if matches!(spec, StrategySpec::DynamicLp { .. }) {
            return Err(Error::new(
                "strategy.kind",
                "dynamic_lp provides liquidity to a pool: it backtests on a [pool], not on candles alone",
            ));
        }
        if matches!(spec, StrategySpec::StableRotator(_) | StrategySpec::LeverageLoop(_) | StrategySpec::FixedYield(_))
        {
            return Err(Error::new(
                "strategy.kind",
                "lending strategies (stable_rotator, leverage_loop, fixed_yield) backtest on lending markets, not on candles alone",
            ));
        }
        spec.validate()?;
        risk.validate()?;
        let stop_factor = risk.stop_loss_pct.map(|pct| 1.0 - pct / 100.0);
        let take_factor = risk.take_profit_pct.map(|pct| 1.0 + pct / 100.0);
        Ok(IndicatorStrategy { spec, risk, stop_factor, take_factor })
    }

    /// The rule.
    pub fn spec(&self) -> &StrategySpec {
        &self.spec
    }

    fn tolerance_bps(&self) -> u32 {
        self.risk.max_slippage_bps.unwrap_or(u32::MAX)
    }

    fn protective_exit(&self, position: &PositionView, close: f64) -> bool {
        let Some(entry) = position.entry_price else { return false };
        let stop = self.stop_factor.is_some_and(|f| close <= entry * f);
        let take = self.take_factor.is_some_and(|f| close >= entry * f);
        stop || take
    }

    fn sell_all(&self, asset: &AssetView) -> Intent {
        Intent::Swap {
            sell: asset.base.clone(),
            buy: asset.quote.clone(),
            amount: AmountSpec::All,
            max_slippage_bps: self.tolerance_bps(),
        }
    }

    /// A buy sized by `position_size`, and the cash it reserves.
    fn buy(&self, asset: &AssetView, equity: f64, cash: f64) -> Option<(Intent, f64)> {
        let target = equity * self.risk.position_size;
        // Within 1 % of the cash, spend it all: the executor then leaves exactly enough for gas instead of failing
        // an exact amount that the gas no longer fits beside.
        let amount = if target >= cash * 0.99 {
            AmountSpec::All
        } else {
            AmountSpec::Exact(Amount::from_units(target, &asset.quote).ok().filter(|a| !a.is_zero())?)
        };
        let reserved = if amount == AmountSpec::All { cash } else { target };
        let intent = Intent::Swap {
            sell: asset.quote.clone(),
            buy: asset.base.clone(),
            amount,
            max_slippage_bps: self.tolerance_bps(),
        };
        (cash > 0.0).then_some((intent, reserved))
    }
}

impl Strategy for IndicatorStrategy {
    type State = IndicatorState;

    fn name(&self) -> String {
        self.spec.kind().to_string()
    }

    fn init(&self, market: &MarketView) -> IndicatorState {
        let asset = |a: &AssetView| AssetState {
            base: a.base.id.clone(),
            signal: SignalState::new(&self.spec),
            cooldown_left: 0,
            in_flight: false,
            reserved_cash: 0.0,
        };
        IndicatorState { assets: market.assets.iter().map(asset).collect() }
    }

    fn on_step(
        &self,
        state: &mut IndicatorState,
        market: &MarketView,
        portfolio: &PortfolioView,
        out: &mut Vec<Intent>,
    ) {
        let mut equity = None;
        for (i, asset) in market.assets.iter().enumerate() {
            let Some(candle) = asset.candle else { continue };
            let st = &mut state.assets[i];
            // Indicators see every bar, even ones the strategy will not trade on.
            let signal = st.signal.update(&self.spec, candle.close);
            let cooling = st.cooldown_left > 0;
            st.cooldown_left = st.cooldown_left.saturating_sub(1);
            if st.in_flight {
                continue;
            }
            let position = &portfolio.positions[i];
            let thin = self.risk.min_volume.is_some_and(|min| candle.volume < min);
            let holding = position.quantity > 0.0;
            // The intent and the cash it reserves until its outcome is known.
            let order = if holding && self.protective_exit(position, candle.close) {
                Some((self.sell_all(asset), 0.0))
            } else if cooling || thin {
                None
            } else if holding && signal == Signal::Sell {
                Some((self.sell_all(asset), 0.0))
            } else if !holding && signal == Signal::Buy {
                let equity = *equity.get_or_insert_with(|| portfolio.equity(market));
                // Cash promised to buys still in flight is not free.
                let reserved: f64 = state.assets.iter().map(|a| a.reserved_cash).sum();
                self.buy(asset, equity, portfolio.cash - reserved)
            } else {
                None
            };
            if let Some((intent, reserve)) = order {
                let st = &mut state.assets[i];
                st.in_flight = true;
                st.cooldown_left = self.risk.cooldown_bars;
                st.reserved_cash = reserve;
                out.push(intent);
            }
        }
    }

    fn on_outcome(&self, state: &mut IndicatorState, outcome: &FlowOutcome) {
        if let Intent::Swap { sell, buy, .. } = &outcome.intent {
            // The asset is whichever side of the swap is not cash; its intent is no longer in flight.
            for st in state.assets.iter_mut().filter(|s| s.base == sell.id || s.base == buy.id) {
                st.in_flight = false;
                st.reserved_cash = 0.0;
            }
        }
    }
}
