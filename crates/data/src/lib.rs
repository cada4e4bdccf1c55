//! Market data in and out: OHLCV CSV (any common header layout) and Binance klines, lending-rate series, and seeded
//! synthetic markets (prices, pools and lending rates).

mod error;
mod ohlcv;
pub mod pool_minutes;
pub mod rates;
mod stream;
pub mod synth;
pub mod synth_pool;
pub mod time;

pub use error::{Error, Result};
pub use ohlcv::{load_ohlcv, parse_ohlcv, parse_ohlcv_bytes, stream_ohlcv, write_ohlcv};
pub use pool_minutes::{PoolMinute, load_pool_minutes, parse_pool_minutes};
pub use rates::{SynthRates, load_rates, parse_rates, write_rates};
pub use stream::FileFeed;
pub use synth::{Interval, Profile, SynthSpec};
