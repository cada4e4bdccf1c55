//! The indicator strategies: one signal machine per asset, long-only, sharing cash.

use crate::{BandExit, Error, MaKind, Result, RiskSettings, StrategySpec};
use serde::{Deserialize, Serialize};
use sextant_indicators::{Bbands, Ema, Indicator, Rsi, Sma};
use sextant_market::{AssetView, MarketView};
use sextant_strategy::{FlowOutcome, PortfolioView, PositionView, Strategy};
use sextant_types::{Amount, AmountSpec, Intent, TokenId};
use std::sync::Arc;

/// A built-in indicator strategy: its rule and the shared risk settings.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorStrategy {
    spec: StrategySpec,
    risk: RiskSettings,
    /// Indicator series computed once for many strategies over the same markets (a sweep's points).
    shared: Option<Arc<IndicatorCache>>,
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
    /// Read from a series computed once for many strategies ([`IndicatorCache`]); never saved.
    #[serde(skip)]
    Shared(SharedSeries),
}

/// An indicator's values over one asset's bars, computed once ([`IndicatorCache`]) and read bar by bar: the value
/// the indicator itself would give at each update (NaN where it gives none yet).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharedSeries {
    values: Arc<[f64]>,
    next: usize,
}

impl SharedSeries {
    fn update(&mut self) -> Option<f64> {
        let v = self.values.get(self.next).copied().filter(|v| !v.is_nan());
        self.next += 1;
        v
    }
}

/// What an [`IndicatorCache`] holds: one indicator of one asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CacheKey {
    Sma(usize, usize),
    Ema(usize, usize),
    Rsi(usize, usize),
    /// (asset, period, nbdev bits, band: 0 lower, 1 middle, 2 upper)
    Bands(usize, usize, u64, u8),
}

impl CacheKey {
    fn asset(&self) -> usize {
        match *self {
            CacheKey::Sma(a, _) | CacheKey::Ema(a, _) | CacheKey::Rsi(a, _) | CacheKey::Bands(a, ..) => a,
        }
    }
}

/// Indicator series over a set of markets' closes, each computed once, on first use, by the indicator itself, and
/// shared by every strategy built with it: a sweep's points share their indicators (a 100 x 100 MA grid computes
/// 200 averages, not 20,000). The values are exactly those the strategies' own indicators would produce, as long
/// as each strategy steps through every bar of each asset in order (the backtest engine does).
pub struct IndicatorCache {
    closes: Vec<Vec<f64>>,
    /// The series, and the bytes they take.
    series: std::sync::Mutex<(SeriesMap, usize)>,
    /// The most bytes of series kept; past it, strategies compute their own indicators (the same values).
    budget: usize,
}

type SeriesMap = std::collections::HashMap<CacheKey, Arc<[f64]>>;

/// The bytes of indicator series a cache keeps by default.
pub const INDICATOR_CACHE_BUDGET: usize = 1 << 30;

impl std::fmt::Debug for IndicatorCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IndicatorCache({} assets)", self.closes.len())
    }
}

impl PartialEq for IndicatorCache {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl IndicatorCache {
    /// A cache over each asset's closes, in bar order.
    pub fn new(closes: Vec<Vec<f64>>) -> Self {
        Self::with_budget(closes, INDICATOR_CACHE_BUDGET)
    }

    /// A cache keeping at most `budget` bytes of series: a strategy asking for one more computes its own.
    pub fn with_budget(closes: Vec<Vec<f64>>, budget: usize) -> Self {
        IndicatorCache { closes, series: std::sync::Mutex::new((std::collections::HashMap::new(), 0)), budget }
    }

    fn get(&self, key: CacheKey) -> Option<Arc<[f64]>> {
        {
            let guard = self.series.lock().ok()?;
            if let Some(s) = guard.0.get(&key) {
                return Some(Arc::clone(s));
            }
            let bars = self.closes.get(key.asset())?.len();
            let series = if matches!(key, CacheKey::Bands(..)) { 3 } else { 1 };
            if guard.1 + series * bars * std::mem::size_of::<f64>() > self.budget {
                return None;
            }
        }
        let run = |asset: usize, mut f: Box<dyn FnMut(f64) -> Option<f64>>| -> Option<Arc<[f64]>> {
            let closes = self.closes.get(asset)?;
            Some(closes.iter().map(|&c| f(c).unwrap_or(f64::NAN)).collect())
        };
        let computed = match key {
            CacheKey::Sma(asset, period) => {
                let mut m = Sma::new(period).ok()?;
                vec![(key, run(asset, Box::new(move |x| m.update(x)))?)]
            }
            CacheKey::Ema(asset, period) => {
                let mut m = Ema::new(period).ok()?;
                vec![(key, run(asset, Box::new(move |x| m.update(x)))?)]
            }
            CacheKey::Rsi(asset, period) => {
                let mut m = Rsi::new(period).ok()?;
                vec![(key, run(asset, Box::new(move |x| m.update(x)))?)]
            }
            CacheKey::Bands(asset, period, bits, _) => {
                let mut b = Bbands::new(period, f64::from_bits(bits)).ok()?;
                let values: Vec<Option<sextant_indicators::BbandsValue>> =
                    self.closes.get(asset)?.iter().map(|&c| b.update(c)).collect();
                (0..3u8)
                    .map(|band| {
                        let s: Arc<[f64]> = values
                            .iter()
                            .map(|v| {
                                v.map_or(f64::NAN, |v| match band {
                                    0 => v.lower,
                                    1 => v.middle,
                                    _ => v.upper,
                                })
                            })
                            .collect();
                        (CacheKey::Bands(asset, period, bits, band), s)
                    })
                    .collect()
            }
        };
        let mut guard = self.series.lock().ok()?;
        let (map, used) = &mut *guard;
        for (k, s) in computed {
            if let std::collections::hash_map::Entry::Vacant(slot) = map.entry(k) {
                *used += s.len() * std::mem::size_of::<f64>();
                slot.insert(s);
            }
        }
        map.get(&key).cloned()
    }

    fn shared(&self, key: CacheKey) -> Option<SharedSeries> {
        self.get(key).map(|values| SharedSeries { values, next: 0 })
    }
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
            MovingAverage::Shared(s) => s.update(),
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
        /// Its values, computed once for many strategies (then `rsi` stays unused); never saved.
        #[serde(skip)]
        shared: Option<SharedSeries>,
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
        /// Their lower, middle and upper values, computed once for many strategies; never saved.
        #[serde(skip)]
        shared: Option<[SharedSeries; 3]>,
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
            StrategySpec::Rsi { period, .. } => {
                SignalState::Rsi { rsi: Rsi::new(period).expect("validated period"), shared: None }
            }
            StrategySpec::MaCross { fast, slow, ma } => SignalState::MaCross {
                fast: MovingAverage::new(ma, fast),
                slow: MovingAverage::new(ma, slow),
                prev: None,
            },
            StrategySpec::Bollinger { period, nbdev, .. } => {
                SignalState::Bollinger { bands: Bbands::new(period, nbdev).expect("validated period"), shared: None }
            }
            StrategySpec::DynamicLp { .. }
            | StrategySpec::StableRotator(_)
            | StrategySpec::LeverageLoop(_)
            | StrategySpec::FixedYield(_) => {
                unreachable!("IndicatorStrategy::new refuses non-indicator kinds")
            }
        }
    }

    /// The state reading `asset`'s indicators from `cache`; the state of its own indicators when the cache cannot
    /// give them.
    fn shared(spec: &StrategySpec, cache: &IndicatorCache, asset: usize) -> Self {
        let own = SignalState::new(spec);
        let ma = |kind: MaKind, period: usize| {
            let key = match kind {
                MaKind::Sma => CacheKey::Sma(asset, period),
                MaKind::Ema => CacheKey::Ema(asset, period),
            };
            cache.shared(key).map(MovingAverage::Shared)
        };
        match (own, spec) {
            (SignalState::Rsi { rsi, .. }, StrategySpec::Rsi { period, .. }) => {
                SignalState::Rsi { rsi, shared: cache.shared(CacheKey::Rsi(asset, *period)) }
            }
            (own @ SignalState::MaCross { .. }, StrategySpec::MaCross { fast, slow, ma: kind }) => {
                match (ma(*kind, *fast), ma(*kind, *slow)) {
                    (Some(fast), Some(slow)) => SignalState::MaCross { fast, slow, prev: None },
                    _ => own,
                }
            }
            (SignalState::Bollinger { bands, .. }, StrategySpec::Bollinger { period, nbdev, .. }) => {
                let band = |b: u8| cache.shared(CacheKey::Bands(asset, *period, nbdev.to_bits(), b));
                let shared = match (band(0), band(1), band(2)) {
                    (Some(l), Some(m), Some(u)) => Some([l, m, u]),
                    _ => None,
                };
                SignalState::Bollinger { bands, shared }
            }
            (own, _) => own,
        }
    }

    fn update(&mut self, spec: &StrategySpec, close: f64) -> Signal {
        match (self, spec) {
            (SignalState::Rsi { rsi, shared }, StrategySpec::Rsi { oversold, overbought, .. }) => {
                let value = match shared {
                    Some(s) => s.update(),
                    None => rsi.update(close),
                };
                match value {
                    Some(v) if v < *oversold => Signal::Buy,
                    Some(v) if v > *overbought => Signal::Sell,
                    _ => Signal::None,
                }
            }
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
            (SignalState::Bollinger { bands, shared }, StrategySpec::Bollinger { exit, .. }) => {
                let value = match shared {
                    Some([l, m, u]) => match (l.update(), m.update(), u.update()) {
                        (Some(lower), Some(middle), Some(upper)) => {
                            Some(sextant_indicators::BbandsValue { lower, middle, upper })
                        }
                        _ => None,
                    },
                    None => bands.update(close),
                };
                match value {
                    Some(b) if close < b.lower => Signal::Buy,
                    Some(b) if close > b.middle && *exit == BandExit::Middle => Signal::Sell,
                    Some(b) if close > b.upper => Signal::Sell,
                    _ => Signal::None,
                }
            }
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
        Ok(IndicatorStrategy { spec, risk, shared: None, stop_factor, take_factor })
    }

    /// The same strategy reading its indicators from `cache` (built over the markets it will run on, asset `i`
    /// from market `i`'s closes) instead of computing its own: identical decisions, computed once for many
    /// strategies.
    pub fn with_shared(mut self, cache: Arc<IndicatorCache>) -> Self {
        self.shared = Some(cache);
        self
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
        let asset = |(i, a): (usize, &AssetView)| AssetState {
            base: a.base.id.clone(),
            signal: match &self.shared {
                Some(cache) => SignalState::shared(&self.spec, cache, i),
                None => SignalState::new(&self.spec),
            },
            cooldown_left: 0,
            in_flight: false,
            reserved_cash: 0.0,
        };
        IndicatorState { assets: market.assets.iter().enumerate().map(asset).collect() }
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
                // A cooldown follows a trade: an intent that did not fill (refused, failed, or a walk-forward's
                // warm-up) starts none.
                if outcome.fill().is_none() {
                    st.cooldown_left = 0;
                }
            }
        }
    }
}
