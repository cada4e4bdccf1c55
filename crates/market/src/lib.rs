//! Market views and events: candles, the multi-asset view a strategy sees each step, and the `MarketFeed` trait that
//! synthetic, file and RPC data all implement.

mod candle;
mod feed;

pub use candle::{Candle, CandleSeries, TimeStyle};
pub use feed::{AssetView, MarketFeed, MarketView, SeriesFeed};
