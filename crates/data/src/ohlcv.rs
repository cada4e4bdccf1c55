//! OHLCV CSV: files with a header (columns matched case-insensitively, in any order, the time column named
//! timestamp/date/time/datetime/open_time or left unnamed as pandas writes its index) and headerless Binance klines.

use crate::time::{parse_time, write_time};
use crate::{Error, Result};
use sextant_market::{Candle, CandleSeries};
use std::io::{Read, Write};
use std::path::Path;

const TIME_NAMES: [&str; 6] = ["timestamp", "date", "time", "datetime", "open_time", "opentime"];

/// Column positions of one layout.
struct Layout {
    time: usize,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    volume: Option<usize>,
}

impl Layout {
    /// Binance kline files (and any headerless file) start `open_time,open,high,low,close,volume`.
    const HEADERLESS: Layout = Layout { time: 0, open: 1, high: 2, low: 3, close: 4, volume: Some(5) };

    fn from_header(header: &csv::StringRecord, path: &str) -> Result<Layout> {
        let names: Vec<String> =
            header.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase()).collect();
        let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
        let time = find(&TIME_NAMES).or_else(|| names.first().filter(|n| n.is_empty()).map(|_| 0));
        let need = |col: Option<usize>, what: &str| {
            col.ok_or_else(|| Error::Malformed {
                path: path.to_string(),
                line: 1,
                message: format!("header has no {what} (found: {})", header.iter().collect::<Vec<_>>().join(",")),
            })
        };
        Ok(Layout {
            time: need(time, "time column (named timestamp/date/time/datetime/open_time, or unnamed and first)")?,
            open: need(find(&["open", "o"]), "open column")?,
            high: need(find(&["high", "h"]), "high column")?,
            low: need(find(&["low", "l"]), "low column")?,
            close: need(find(&["close"]).or_else(|| find(&["c", "adj close", "adj_close"])), "close column")?,
            volume: find(&["volume", "vol", "v"]),
        })
    }
}

/// Reads an OHLCV file. See [`parse_ohlcv`] for the accepted layouts.
///
/// # Errors
/// When the file cannot be read, or as [`parse_ohlcv`].
pub fn load_ohlcv(path: &Path) -> Result<CandleSeries> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: name.clone(), source })?;
    parse_ohlcv(std::io::BufReader::with_capacity(1 << 20, file), &name)
}

/// Parses OHLCV CSV from a reader; `path` names the source in errors.
///
/// A first row whose first field is a time and whose second is a number is data, not a header: the file is then read
/// as `time,open,high,low,close,volume,...` (Binance kline layout, extra columns ignored). Otherwise the first row is a
/// header. Times may be ISO-8601 / RFC 3339 dates or datetimes, or unix seconds / milliseconds / microseconds.
///
/// # Errors
/// A malformed row names its line and column; rows must be in strictly increasing time order; prices must be finite
/// and positive, volumes finite and non-negative; at least one bar is required.
pub fn parse_ohlcv<R: Read>(reader: R, path: &str) -> Result<CandleSeries> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut record = csv::StringRecord::new();
    let malformed = |line: u64, message: String| Error::Malformed { path: path.to_string(), line, message };
    let csv_err = |e: csv::Error| {
        let line = e.position().map_or(0, |p| p.line());
        malformed(line, e.to_string())
    };
    if !rdr.read_record(&mut record).map_err(csv_err)? {
        return Err(malformed(1, "file is empty; expected a header and OHLCV rows".into()));
    }
    let headerless = parse_time(record.get(0).unwrap_or("")).is_some()
        && record.get(1).is_some_and(|f| f.trim().parse::<f64>().is_ok());
    let layout = if headerless { Layout::HEADERLESS } else { Layout::from_header(&record, path)? };
    let width = [layout.time, layout.open, layout.high, layout.low, layout.close]
        .into_iter()
        .chain(layout.volume)
        .max()
        .unwrap_or(0)
        + 1;

    let mut series = CandleSeries::default();
    let mut first = true;
    let mut pending_first = headerless;
    loop {
        if !pending_first && !rdr.read_record(&mut record).map_err(csv_err)? {
            break;
        }
        pending_first = false;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim().is_empty()) {
            continue; // blank line
        }
        if record.len() < width {
            return Err(malformed(line, format!("expected at least {width} columns, found {}", record.len())));
        }
        let field = |i: usize| record.get(i).unwrap_or("");
        let raw_time = field(layout.time);
        let (timestamp_ms, style) = parse_time(raw_time).ok_or_else(|| {
            malformed(line, format!("column time: expected an ISO-8601 date/datetime or unix epoch, got {raw_time:?}"))
        })?;
        let number = |i: usize, name: &str| -> Result<f64> {
            let raw = field(i).trim();
            match raw.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(malformed(line, format!("column {name}: expected a number, got {raw:?}"))),
            }
        };
        let price = |i: usize, name: &str| -> Result<f64> {
            let v = number(i, name)?;
            if v > 0.0 {
                Ok(v)
            } else {
                Err(malformed(line, format!("column {name}: expected a positive price, got {v}")))
            }
        };
        let candle = Candle {
            timestamp_ms,
            open: price(layout.open, "open")?,
            high: price(layout.high, "high")?,
            low: price(layout.low, "low")?,
            close: price(layout.close, "close")?,
            volume: match layout.volume {
                Some(i) => {
                    let v = number(i, "volume")?;
                    if v < 0.0 {
                        return Err(malformed(line, format!("column volume: expected >= 0, got {v}")));
                    }
                    v
                }
                None => 0.0,
            },
        };
        if first {
            series.time_style = style;
            first = false;
        } else if let Some(prev) = series.candles.last()
            && candle.timestamp_ms <= prev.timestamp_ms
        {
            return Err(malformed(
                line,
                format!(
                    "column time: {raw_time:?} is not after the previous row; rows must be in increasing time order"
                ),
            ));
        }
        series.candles.push(candle);
    }
    if series.candles.is_empty() {
        return Err(malformed(2, "no data rows after the header".into()));
    }
    Ok(series)
}

/// Writes a series as `timestamp,open,high,low,close,volume` CSV, times in the series' style.
///
/// # Errors
/// When the writer fails.
pub fn write_ohlcv<W: Write>(mut out: W, series: &CandleSeries) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let mut buf = String::with_capacity(1 << 16);
    buf.push_str("timestamp,open,high,low,close,volume\n");
    for c in &series.candles {
        write_time(&mut buf, c.timestamp_ms, series.time_style);
        let _ = writeln!(buf, ",{},{},{},{},{}", c.open, c.high, c.low, c.close, c.volume);
        if buf.len() > (1 << 16) - 256 {
            out.write_all(buf.as_bytes())?;
            buf.clear();
        }
    }
    out.write_all(buf.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_market::TimeStyle;

    fn parse(s: &str) -> Result<CandleSeries> {
        parse_ohlcv(s.as_bytes(), "t.csv")
    }

    #[test]
    fn pandas_layout_with_unnamed_index() {
        let s = parse(",Open,High,Low,Close,Volume\n2004-08-19,100,104.06,95.96,100.34,22351900\n2004-08-20,101.01,109.08,100.5,108.31,11428600\n").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.time_style, TimeStyle::Date);
        assert_eq!(s.candles[1].close, 108.31);
        assert_eq!(s.candles[0].volume, 22351900.0);
    }

    #[test]
    fn columns_in_any_order_and_case() {
        let s = parse("Close,VOLUME,Datetime,low,HIGH,open\n2,5,2024-01-01T00:00:00Z,1,3,1.5\n").unwrap();
        let c = s.candles[0];
        assert_eq!((c.open, c.high, c.low, c.close, c.volume), (1.5, 3.0, 1.0, 2.0, 5.0));
        assert_eq!(s.time_style, TimeStyle::Rfc3339);
    }

    #[test]
    fn binance_klines_without_header() {
        let s = parse("1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68108,1704070799999,53957248.97,47134,682.57581,28957416.82,0\n1704070800000,42475.23,42775.0,42431.65,42613.56,1196.37856,1704074399999,50886339.14,44996,603.14928,25664127.06,0\n").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.candles[0].timestamp_ms, 1_704_067_200_000);
        assert_eq!(s.candles[1].close, 42613.56);
        assert_eq!(s.time_style, TimeStyle::UnixMillis);
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = parse("timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n2024-01-02,1,2,abc,1.5,10\n")
            .unwrap_err();
        assert_eq!(err.to_string(), "t.csv:3: column low: expected a number, got \"abc\"");
        let err = parse("timestamp,open,high,low,close\n2024-01-02,1,2,1,1\n2024-01-01,1,2,1,1\n").unwrap_err();
        assert!(err.to_string().starts_with("t.csv:3: column time:"), "{err}");
        let err = parse("when,open,high,low,close\n2024-01-02,1,2,1,1\n").unwrap_err();
        assert!(err.to_string().contains("header has no time column"), "{err}");
        let err = parse("timestamp,open,high,low,close\n2024-01-02,1,2,1\n").unwrap_err();
        assert_eq!(err.to_string(), "t.csv:2: expected at least 5 columns, found 4");
        let err = parse("timestamp,open,high,low,close\n").unwrap_err();
        assert!(err.to_string().contains("no data rows"), "{err}");
        let err = parse("timestamp,open,high,low,close\nlater,1,2,1,1\n").unwrap_err();
        assert!(err.to_string().contains("column time: expected an ISO-8601"), "{err}");
    }

    #[test]
    fn write_then_read_is_identity() {
        let s = parse("timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1.1,2.25,0.5,1.5,10\n2024-01-01T01:00:00Z,0.1,0.3,0.05,0.2,0.125\n").unwrap();
        let mut out = Vec::new();
        write_ohlcv(&mut out, &s).unwrap();
        assert_eq!(parse_ohlcv(out.as_slice(), "w").unwrap(), s);
    }
}
