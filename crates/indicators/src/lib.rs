//! Streaming technical indicators (SMA, EMA, RSI, BBANDS, MACD, ATR) whose values equal TA-Lib's bit for bit.

mod atr;
mod bbands;
mod ema;
mod error;
mod macd;
mod rsi;
mod sma;

pub use atr::{Atr, Hlc};
pub use bbands::{Bbands, BbandsValue};
pub use ema::Ema;
pub use error::{Error, Result};
pub use macd::{Macd, MacdValue};
pub use rsi::Rsi;
pub use sma::Sma;

/// A streaming indicator: feed one bar at a time, get a value once warmed up.
///
/// Every indicator is a small state machine: O(1) time per bar (BBANDS
/// amortised, see [`Bbands`]), no history beyond what the definition needs
/// ([`Sma`] and [`Bbands`] keep the last `period - 1` inputs), and
/// `Serialize`/`Deserialize`, so a strategy can checkpoint its indicators
/// mid-stream and resume bit-identically.
///
/// # Equal to TA-Lib
///
/// Values, and the bar of the first value ([`lookback`](Indicator::lookback)),
/// match the TA-Lib C library 0.8.1 (as bundled by the PyPI `ta-lib` 0.8.2
/// wheel) in its default configuration (default compatibility, unstable
/// period 0). The arithmetic mirrors that build operation for operation,
/// including its fused multiply-adds (EMA, MACD, ATR), its reciprocal-multiply
/// RSI and its cancellation-free BBANDS variance, so outputs are bit-identical,
/// not merely close: the `talib_fixtures` integration test checks this against
/// TA-Lib output recorded by `scripts/make_indicator_fixtures.py`.
///
/// Parameter ranges are TA-Lib's, except that [`Sma`] and [`Ema`] keep the
/// classic minimum period of 2 (TA-Lib 0.8 also accepts 1, an identity) and
/// [`Bbands`] accepts any finite `nbdev` (TA-Lib caps it at `3e37`).
///
/// # Saving state
///
/// Serialized state restores exactly with any format that round-trips `f64`
/// (e.g. `serde_json` with its `float_roundtrip` feature, as the workspace
/// enables it). JSON cannot represent NaN or infinities, so an indicator that
/// has been fed a non-finite value serializes to JSON as `null` fields that do
/// not deserialize; use a binary format if that can happen. Deserialized state
/// is not validated: restore only what this crate serialized.
///
/// ```
/// use sextant_indicators::{Indicator, Sma};
///
/// let mut sma = Sma::new(3)?;
/// assert_eq!(sma.lookback(), 2);
/// let out: Vec<Option<f64>> = [1.0, 2.0, 3.0, 4.0].into_iter().map(|x| sma.update(x)).collect();
/// assert_eq!(out, [None, None, Some(2.0), Some(3.0)]);
///
/// let saved = serde_json::to_string(&sma).unwrap();
/// let mut restored: Sma = serde_json::from_str(&saved).unwrap();
/// assert_eq!(restored.update(8.0), sma.update(8.0));
/// # Ok::<(), sextant_indicators::Error>(())
/// ```
pub trait Indicator {
    /// What one bar contributes (a close price, or a [`Hlc`] bar).
    type Input;
    /// What the indicator produces per bar once warmed up.
    type Output;

    /// Consume the next bar. Returns `None` while warming up, i.e. for exactly
    /// the first [`lookback`](Indicator::lookback) bars, and `Some` for every
    /// bar after that.
    fn update(&mut self, input: Self::Input) -> Option<Self::Output>;

    /// TA-Lib's lookback: the number of leading bars that produce no output.
    fn lookback(&self) -> usize;
}
