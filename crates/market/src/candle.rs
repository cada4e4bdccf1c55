use serde::{Deserialize, Serialize};

/// One OHLCV bar. Times are unix milliseconds, UTC, at the bar's open.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Candle {
    /// Bar open time, unix milliseconds UTC.
    pub timestamp_ms: i64,
    /// First price of the bar.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price.
    pub close: f64,
    /// Traded volume (base units, or quote units where the source says so).
    pub volume: f64,
}

/// How a source wrote its timestamps, so output can write them back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeStyle {
    /// `2024-01-31`
    Date,
    /// `20240131`
    CompactDate,
    /// `2024-01-31 09:00:00`, as pandas writes naive datetimes.
    DateTimeSpace,
    /// `2024-01-31T09:00:00Z`, RFC 3339 in UTC.
    #[default]
    Rfc3339,
    /// Unix seconds.
    UnixSeconds,
    /// Unix milliseconds.
    UnixMillis,
}

/// A time-ordered series of bars for one market.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CandleSeries {
    /// Bars, strictly increasing in time.
    pub candles: Vec<Candle>,
    /// How the source wrote times.
    pub time_style: TimeStyle,
}

impl CandleSeries {
    /// Number of bars.
    pub fn len(&self) -> usize {
        self.candles.len()
    }

    /// True when there are no bars.
    pub fn is_empty(&self) -> bool {
        self.candles.is_empty()
    }

    /// The median spacing between bars in milliseconds (robust to gaps such as weekends), or None below two bars.
    pub fn median_interval_ms(&self) -> Option<i64> {
        if self.candles.len() < 2 {
            return None;
        }
        let mut gaps: Vec<i64> = self.candles.windows(2).map(|w| w[1].timestamp_ms - w[0].timestamp_ms).collect();
        let mid = gaps.len() / 2;
        let (_, median, _) = gaps.select_nth_unstable(mid);
        Some(*median)
    }
}
