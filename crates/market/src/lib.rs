//! Market views and events: candles, lending-rate observations, the multi-asset view a strategy sees each step, and
//! the `MarketFeed` trait that synthetic, file and RPC data all implement.

mod candle;
mod feed;
mod lending;

pub use candle::{Candle, CandleSeries, TimeStyle};
pub use feed::{AssetView, MarketFeed, MarketView, SeriesFeed};
pub use lending::{LendingProtocol, LendingView, RatePoint, RateSeries};
