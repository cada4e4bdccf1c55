//! OHLCV CSV: files with a header (columns matched case-insensitively, in any order, the time column named
//! timestamp/date/time/datetime/open_time or left unnamed as pandas writes its index) and headerless Binance klines.

use crate::time::{parse_time, write_time};
use crate::{Error, Result};
use rayon::prelude::*;
use sextant_market::{Candle, CandleSeries, TimeStyle};
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

impl Layout {
    /// Columns a row must have at least.
    fn width(&self) -> usize {
        [self.time, self.open, self.high, self.low, self.close].into_iter().chain(self.volume).max().unwrap_or(0) + 1
    }

    /// One data row to a candle and the style its time was written in; the error is the message without the line.
    fn parse_row(&self, fields: &[&str]) -> std::result::Result<(Candle, TimeStyle), String> {
        let width = self.width();
        if fields.len() < width {
            return Err(format!("expected at least {width} columns, found {}", fields.len()));
        }
        let raw_time = fields[self.time];
        let (timestamp_ms, style) = parse_time(raw_time).ok_or_else(|| {
            let hint = if raw_time.trim().parse::<f64>().is_ok() {
                " (a number this small is a row index, not a unix time)"
            } else {
                ""
            };
            format!("column time: expected an ISO-8601 date/datetime or unix epoch, got {raw_time:?}{hint}")
        })?;
        let number = |i: usize, name: &str| {
            let raw = fields[i];
            match parse_f64(raw) {
                Some(v) if v.is_finite() => Ok(v),
                _ => Err(format!("column {name}: expected a number, got {:?}", raw.trim())),
            }
        };
        let price = |i: usize, name: &str| {
            let v = number(i, name)?;
            if v > 0.0 { Ok(v) } else { Err(format!("column {name}: expected a positive price, got {v}")) }
        };
        let volume = match self.volume {
            Some(i) => {
                let v = number(i, "volume")?;
                if v < 0.0 {
                    return Err(format!("column volume: expected >= 0, got {v}"));
                }
                v
            }
            None => 0.0,
        };
        let candle = Candle {
            timestamp_ms,
            open: price(self.open, "open")?,
            high: price(self.high, "high")?,
            low: price(self.low, "low")?,
            close: price(self.close, "close")?,
            volume,
        };
        Ok((candle, style))
    }
}

/// The last date seen, so rows of the same day skip the calendar arithmetic.
#[derive(Default)]
struct DateCache {
    date: [u8; 10],
    day_ms: i64,
}

impl DateCache {
    /// Unix ms of midnight of a `YYYY-MM-DD` prefix.
    fn day_ms(&mut self, date: &[u8]) -> Option<i64> {
        if date != self.date {
            let (ms, _) = parse_time(std::str::from_utf8(date).ok()?)?;
            self.date.copy_from_slice(date);
            self.day_ms = ms;
        }
        Some(self.day_ms)
    }
}

/// Two ASCII digits.
fn two_digits(b: &[u8]) -> Option<i64> {
    let (h, l) = (b[0].wrapping_sub(b'0'), b[1].wrapping_sub(b'0'));
    (h <= 9 && l <= 9).then_some(i64::from(h * 10 + l))
}

/// The common time shapes, `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` and `YYYY-MM-DDTHH:MM:SS[Z]`, without fractions or
/// offsets; None for anything else (which [`parse_time`] then handles).
fn parse_time_fast(b: &[u8], dates: &mut DateCache) -> Option<(i64, TimeStyle)> {
    if b.len() < 10 || b[4] != b'-' {
        return None;
    }
    let day = dates.day_ms(&b[..10])?;
    let style = match b.len() {
        10 => return Some((day, TimeStyle::Date)),
        19 if b[10] == b' ' => TimeStyle::DateTimeSpace,
        19 | 20 if b[10] == b'T' && (b.len() == 19 || b[19] == b'Z') => TimeStyle::Rfc3339,
        _ => return None,
    };
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, sec) = (two_digits(&b[11..13])?, two_digits(&b[14..16])?, two_digits(&b[17..19])?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some((day + h * 3_600_000 + m * 60_000 + sec * 1000, style))
}

/// A plain decimal (`-12.345`) at the start of `b`, ending at a comma or the end; returns it and the index after
/// it. Clinger's exact fast path: the digits as an integer up to 2^53 divided by an exactly representable power of
/// ten is one correctly rounded operation, so the result equals `str::parse`. None for anything else (more digits,
/// exponents, spaces), which the general parser then decides.
fn parse_f64_fast(b: &[u8]) -> Option<(f64, usize)> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];
    let negative = b.first() == Some(&b'-');
    let mut i = usize::from(negative);
    let start = i;
    let mut mantissa: u64 = 0;
    let mut frac_digits = 0;
    let mut seen_dot = false;
    while i < b.len() {
        let c = b[i];
        let d = c.wrapping_sub(b'0');
        if d <= 9 {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
            frac_digits += usize::from(seen_dot);
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else if c == b',' {
            break;
        } else {
            return None;
        }
        i += 1;
    }
    let digits = i - start - usize::from(seen_dot);
    if digits == 0 || digits > 19 || mantissa > (1 << 53) || frac_digits > 22 {
        return None;
    }
    let v = mantissa as f64 / POW10[frac_digits];
    Some((if negative { -v } else { v }, i))
}

impl Layout {
    /// The whole row in one pass over its bytes, for well-formed rows of plain decimals and common time shapes.
    /// None sends the row to [`Layout::parse_row`], which also writes the error messages.
    fn parse_row_fast(&self, b: &[u8], dates: &mut DateCache) -> Option<(Candle, TimeStyle)> {
        let width = self.width();
        let mut values = [0.0f64; 16];
        if width > values.len() {
            return None;
        }
        let mut time = None;
        let mut pos = 0;
        for (col, value) in values.iter_mut().enumerate().take(width) {
            if pos > b.len() {
                return None;
            }
            let rest = &b[pos..];
            let end = if col == self.time {
                let len = rest.iter().position(|&c| c == b',').unwrap_or(rest.len());
                time = Some(parse_time_fast(&rest[..len], dates)?);
                len
            } else {
                let (v, len) = parse_f64_fast(rest)?;
                *value = v;
                len
            };
            pos += end + 1;
        }
        let (timestamp_ms, style) = time?;
        let candle = Candle {
            timestamp_ms,
            open: values[self.open],
            high: values[self.high],
            low: values[self.low],
            close: values[self.close],
            volume: self.volume.map_or(0.0, |i| values[i]),
        };
        let ok =
            candle.open > 0.0 && candle.high > 0.0 && candle.low > 0.0 && candle.close > 0.0 && candle.volume >= 0.0;
        ok.then_some((candle, style))
    }
}

fn out_of_order(raw_time: &str) -> String {
    format!("column time: {raw_time:?} is not after the previous row; rows must be in increasing time order")
}

/// Bytes read per block when loading a file: big enough to parse on all cores, small enough to stay in cache-warm,
/// already-mapped memory that is reused for the whole file.
const BLOCK: usize = 4 << 20;

/// Reads an OHLCV file. See [`parse_ohlcv_bytes`] for the accepted layouts.
///
/// The file is streamed in 4 MiB blocks through two reused buffers (one read while the other is parsed), each
/// block's lines parsed on all cores straight
/// into the result, so a large file costs one pass and no second copy of itself in memory.
///
/// # Errors
/// When the file cannot be read, or as [`parse_ohlcv_bytes`].
pub fn load_ohlcv(path: &Path) -> Result<CandleSeries> {
    load_in_blocks(path, BLOCK, &mut |_, _| true)
}

/// Streams an OHLCV file: each block's rows, in order, go to `on_rows` with the time style seen so far, as soon as
/// they are parsed; `on_rows` returns false to stop early. Returns how many rows there were and the file's time
/// style. Memory stays at a few blocks whatever the file's size.
///
/// # Errors
/// As [`load_ohlcv`]; rows handed on before an error stay handed on.
pub fn stream_ohlcv(
    path: &Path,
    mut on_rows: impl FnMut(Vec<Candle>, TimeStyle) -> bool,
) -> Result<(usize, TimeStyle)> {
    let mut rows_seen = 0;
    let series = load_in_blocks(path, BLOCK, &mut |candles, style| {
        rows_seen += candles.len();
        on_rows(std::mem::take(candles), style)
    })?;
    // A quoted file is read whole by the csv crate and arrives here in one piece.
    let total = rows_seen + series.candles.len();
    let style = series.time_style;
    if !series.candles.is_empty() {
        on_rows(series.candles, style);
    }
    Ok((total, style))
}

fn load_in_blocks(
    path: &Path,
    block: usize,
    on_block: &mut dyn FnMut(&mut Vec<Candle>, TimeStyle) -> bool,
) -> Result<CandleSeries> {
    let name = path.display().to_string();
    let io = |source| Error::Io { path: name.clone(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len() as usize;
    // One buffer for the whole file: `buf[..valid]` holds bytes read and not yet parsed.
    // Pipes report no size: give them whole blocks.
    let mut buf = vec![0u8; if size == 0 { block } else { block.min(size) + 1 }];
    let mut valid = 0;
    let mut eof = false;
    // The header (or first row) must be whole before the layout is known.
    while !eof && !buf[..valid].contains(&b'\n') {
        if valid == buf.len() {
            buf.resize(2 * buf.len(), 0);
        }
        (valid, eof) = fill(&mut file, &mut buf, valid).map_err(io)?;
    }
    let Some((mut rows, header_end)) = Rows::start(&buf[..valid], &name)? else {
        return parse_quoted(&std::fs::read(path).map_err(io)?, &name);
    };
    let newlines = buf[header_end..valid].iter().filter(|&&b| b == b'\n').count().max(1);
    rows.candles.reserve(size / ((valid - header_end) / newlines).max(1) + 16);
    buf.copy_within(header_end..valid, 0);
    valid -= header_end;
    let mut first_line = if rows.headerless { 1 } else { 2 };
    // Two buffers: one block is parsed while the next is read into the other.
    let mut next = vec![0u8; buf.len()];
    if !eof {
        (valid, eof) = fill(&mut file, &mut buf, valid).map_err(io)?;
    }
    loop {
        if eof && valid == 0 {
            return rows.finish();
        }
        let end = if eof { valid } else { buf[..valid].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) };
        if end == 0 {
            // A line longer than the buffer: make room.
            buf.resize(2 * buf.len(), 0);
            next.resize(buf.len(), 0);
            (valid, eof) = fill(&mut file, &mut buf, valid).map_err(io)?;
            continue;
        }
        let (done, rest) = buf[..valid].split_at(end);
        let (parsed, read) = rayon::join(
            || rows.push_block(done, first_line),
            || {
                next[..rest.len()].copy_from_slice(rest);
                if eof { Ok((rest.len(), true)) } else { fill(&mut file, &mut next, rest.len()) }
            },
        );
        match parsed {
            Ok(lines) => {
                first_line += lines;
                if !on_block(&mut rows.candles, rows.style.unwrap_or_default()) {
                    return rows.finish();
                }
            }
            Err(BlockError::Quoted) => return parse_quoted(&std::fs::read(path).map_err(io)?, &name),
            Err(BlockError::Malformed(e)) => return Err(e),
        }
        (valid, eof) = read.map_err(io)?;
        std::mem::swap(&mut buf, &mut next);
    }
}

/// Reads from `file` into `buf[valid..]` until it is full or the file ends; returns the new valid length and whether
/// the file ended.
fn fill(file: &mut std::fs::File, buf: &mut [u8], mut valid: usize) -> std::io::Result<(usize, bool)> {
    while valid < buf.len() {
        match file.read(&mut buf[valid..]) {
            Ok(0) => return Ok((valid, true)),
            Ok(n) => valid += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((valid, false))
}

/// Parses OHLCV CSV from a reader; `path` names the source in errors. See [`parse_ohlcv_bytes`].
///
/// # Errors
/// When the reader fails, or as [`parse_ohlcv_bytes`].
pub fn parse_ohlcv<R: Read>(mut reader: R, path: &str) -> Result<CandleSeries> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|source| Error::Io { path: path.to_string(), source })?;
    parse_ohlcv_bytes(&bytes, path)
}

/// Parses OHLCV CSV held in memory; `path` names the source in errors.
///
/// A first row whose first field is a time and whose second is a number is data, not a header: the file is then read
/// as `time,open,high,low,close,volume,...` (Binance kline layout, extra columns ignored). Otherwise the first row is a
/// header. Times may be ISO-8601 / RFC 3339 dates or datetimes, or unix seconds / milliseconds / microseconds.
///
/// Files without quoted fields (the usual case) are split into chunks at line boundaries and parsed on all cores;
/// files with quotes go through the `csv` crate's full reader.
///
/// # Errors
/// A malformed row names its line and column; rows must be in strictly increasing time order; prices must be finite
/// and positive, volumes finite and non-negative; at least one bar is required.
pub fn parse_ohlcv_bytes(bytes: &[u8], path: &str) -> Result<CandleSeries> {
    let Some((mut rows, header_end)) = Rows::start(bytes, path)? else { return parse_quoted(bytes, path) };
    let first_line = if rows.headerless { 1 } else { 2 };
    match rows.push_block(&bytes[header_end..], first_line) {
        Ok(_) => rows.finish(),
        Err(BlockError::Quoted) => parse_quoted(bytes, path),
        Err(BlockError::Malformed(e)) => Err(e),
    }
}

/// Why a block could not be parsed by the fast path.
enum BlockError {
    /// It has quotes: the whole file goes to the `csv` crate instead.
    Quoted,
    /// A bad row.
    Malformed(Error),
}

/// The rows parsed so far, and what checking the next block against them needs.
struct Rows<'p> {
    path: &'p str,
    layout: Layout,
    /// The first line is data (line 1), not a header.
    headerless: bool,
    /// Time of the last row parsed, kept apart from `candles`, which a stream empties after each block.
    last_ts: Option<i64>,
    /// Rows parsed in all.
    rows: usize,
    candles: Vec<Candle>,
    style: Option<TimeStyle>,
}

impl<'p> Rows<'p> {
    /// Reads the first line of `bytes` (a header or, for headerless files, the first row). Returns the parser and
    /// where data starts, or None when the header has quotes.
    fn start(bytes: &[u8], path: &'p str) -> Result<Option<(Rows<'p>, usize)>> {
        let malformed = |line: u64, message: String| Error::Malformed { path: path.to_string(), line, message };
        let bom = if bytes.starts_with("\u{feff}".as_bytes()) { 3 } else { 0 };
        let header_end = bytes.iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| i + 1);
        if bytes[..header_end].contains(&b'"') {
            return Ok(None);
        }
        let first = line_str(&bytes[bom..header_end]).map_err(|m| malformed(1, m))?;
        if first.trim().is_empty() {
            return Err(malformed(1, "file is empty; expected a header and OHLCV rows".into()));
        }
        let first_fields: Vec<&str> = first.split(',').collect();
        let headerless = is_data_row(&first_fields);
        let layout = if headerless {
            Layout::HEADERLESS
        } else {
            Layout::from_header(&csv::StringRecord::from(first_fields), path)?
        };
        let rows = Rows { path, layout, headerless, last_ts: None, rows: 0, candles: Vec::new(), style: None };
        Ok(Some((rows, if headerless { bom } else { header_end })))
    }

    /// Parses `block` (whole lines, the first of them line `first_line` of the file) on all cores and appends its
    /// rows. Returns the number of lines the block held.
    fn push_block(&mut self, block: &[u8], first_line: u64) -> std::result::Result<u64, BlockError> {
        let malformed = |line: u64, message: String| {
            BlockError::Malformed(Error::Malformed { path: self.path.to_string(), line, message })
        };
        // Chunks of at least 1 MiB, cut after a newline. A first pass counts each chunk's lines (an upper bound on its
        // rows) and looks for quotes.
        let n_chunks = (block.len() >> 20).clamp(1, 4 * rayon::current_num_threads());
        let mut bounds = vec![0];
        for k in 1..n_chunks {
            let target = (block.len() * k / n_chunks).max(*bounds.last().unwrap_or(&0));
            let cut = block[target..].iter().position(|&b| b == b'\n').map_or(block.len(), |i| target + i + 1);
            if cut > *bounds.last().unwrap_or(&0) && cut < block.len() {
                bounds.push(cut);
            }
        }
        bounds.push(block.len());
        let chunks: Vec<&[u8]> = bounds.windows(2).map(|w| &block[w[0]..w[1]]).collect();
        let scans: Vec<(usize, bool)> = chunks
            .par_iter()
            .map(|c| {
                let lines = memchr::memchr_iter(b'\n', c).count();
                (lines + usize::from(c.last().is_some_and(|&b| b != b'\n')), memchr::memchr(b'"', c).is_some())
            })
            .collect();
        // Quoted fields may hide commas: such files belong to the full CSV reader.
        if scans.iter().any(|&(_, quoted)| quoted) {
            return Err(BlockError::Quoted);
        }
        let total: usize = scans.iter().map(|s| s.0).sum();
        let start = self.candles.len();
        // Filled on all cores, so the page faults of fresh memory are shared out too.
        self.candles.par_extend((0..total).into_par_iter().map(|_| Candle::default()));
        let mut slots: Vec<&mut [Candle]> = Vec::with_capacity(chunks.len());
        let mut rest = &mut self.candles[start..];
        for &(lines, _) in &scans {
            let (slot, tail) = rest.split_at_mut(lines);
            slots.push(slot);
            rest = tail;
        }
        let layout = &self.layout;
        let parts: Vec<Chunk> = chunks
            .par_iter()
            .zip(slots)
            .zip(bounds.par_windows(2))
            .map(|((chunk, slot), w)| parse_chunk(chunk, w[0], layout, slot))
            .collect();

        let line_of = |offset: usize| first_line + memchr::memchr_iter(b'\n', &block[..offset]).count() as u64;
        // Rows are compacted in place where a chunk had blank lines; in the usual file nothing moves.
        let mut filled = start;
        let mut slot_start = start;
        for (part, &(lines, _)) in parts.iter().zip(&scans) {
            // The last row before this chunk: in this block, or the previous block's last (which may have been handed
            // on already when streaming).
            let prev = if filled > start { Some(self.candles[filled - 1].timestamp_ms) } else { self.last_ts };
            if part.rows > 0 && prev.is_some_and(|p| self.candles[slot_start].timestamp_ms <= p) {
                return Err(malformed(line_of(part.first_offset), out_of_order(&part.first_time)));
            }
            if let Some((offset, message)) = &part.error {
                return Err(malformed(line_of(*offset), message.clone()));
            }
            if let Some(style) = part.style {
                self.style = Some(finer(self.style, style));
            }
            if slot_start != filled {
                self.candles.copy_within(slot_start..slot_start + part.rows, filled);
            }
            filled += part.rows;
            slot_start += lines;
        }
        self.candles.truncate(filled);
        if filled > start {
            self.last_ts = Some(self.candles[filled - 1].timestamp_ms);
            self.rows += filled - start;
        }
        // Lines counted by the scan, less the one added for a block that does not end in a newline.
        Ok((total - usize::from(block.last().is_some_and(|&b| b != b'\n'))) as u64)
    }

    fn finish(self) -> Result<CandleSeries> {
        if self.rows == 0 {
            return Err(Error::Malformed {
                path: self.path.to_string(),
                line: 2,
                message: "no data rows after the header".into(),
            });
        }
        Ok(CandleSeries { candles: self.candles, time_style: self.style.unwrap_or_default() })
    }
}

/// True when a first row is data (a time, then a number) rather than a header.
fn is_data_row(fields: &[&str]) -> bool {
    parse_time(fields.first().copied().unwrap_or("")).is_some()
        && fields.get(1).is_some_and(|f| f.trim().parse::<f64>().is_ok())
}

fn line_str(line: &[u8]) -> std::result::Result<&str, String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    std::str::from_utf8(line).map_err(|e| format!("not valid UTF-8: {e}"))
}

/// What one chunk of rows parsed to: how many rows it wrote (up to the first error), the style of its first time, and
/// where its first row starts.
struct Chunk {
    rows: usize,
    style: Option<TimeStyle>,
    first_offset: usize,
    first_time: String,
    error: Option<(usize, String)>,
}

/// Parses the rows of `chunk` (starting at byte `base` of the file) into `out`, which has a slot per line.
fn parse_chunk(chunk: &[u8], base: usize, layout: &Layout, out: &mut [Candle]) -> Chunk {
    let mut result = Chunk { rows: 0, style: None, first_offset: base, first_time: String::new(), error: None };
    let mut fields: Vec<&str> = Vec::with_capacity(16);
    let mut dates = DateCache::default();
    let mut start = 0;
    let ends =
        memchr::memchr_iter(b'\n', chunk).map(|i| i + 1).chain((chunk.last() != Some(&b'\n')).then_some(chunk.len()));
    for end in ends {
        let line_offset = base + start;
        let raw = &chunk[start..end];
        start = end;
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let time_field = |line: &[u8]| {
            let field = line.split(|&b| b == b',').nth(layout.time).unwrap_or_default();
            String::from_utf8_lossy(field).into_owned()
        };
        // The fast path reads bytes and accepts only ASCII digits, signs, dots, dashes and colons, so a row it takes
        // is valid UTF-8 without checking.
        let parsed = match layout.parse_row_fast(raw, &mut dates) {
            Some(row) => row,
            None => {
                let line = match std::str::from_utf8(raw) {
                    Ok(l) => l,
                    Err(e) => {
                        result.error = Some((line_offset, format!("not valid UTF-8: {e}")));
                        return result;
                    }
                };
                // Blank lines, and rows of nothing but separators, hold no bar.
                if line.split(',').all(|f| f.trim().is_empty()) {
                    continue;
                }
                fields.clear();
                fields.extend(line.split(','));
                match layout.parse_row(&fields) {
                    Ok(row) => row,
                    Err(m) => {
                        result.error = Some((line_offset, m));
                        return result;
                    }
                }
            }
        };
        let (candle, style) = parsed;
        if result.rows == 0 {
            result.style = Some(style);
            result.first_offset = line_offset;
            result.first_time = time_field(raw);
        } else if candle.timestamp_ms <= out[result.rows - 1].timestamp_ms {
            result.error = Some((line_offset, out_of_order(&time_field(raw))));
            return result;
        }
        if result.style != Some(style) {
            result.style = Some(finer(result.style, style));
        }
        out[result.rows] = candle;
        result.rows += 1;
    }
    result
}

/// Of two time styles, the one that keeps the time of day, so a file mixing dates and datetimes is written back
/// without losing its hours.
fn finer(a: Option<TimeStyle>, b: TimeStyle) -> TimeStyle {
    match a {
        Some(TimeStyle::Date | TimeStyle::CompactDate) | None => b,
        Some(a) => a,
    }
}

/// Parses a decimal number: plain decimals through [`parse_f64_fast`] (exact, equal to `str::parse`), anything
/// else (exponents, long mantissas, spaces, inf/nan) through `str::parse`.
fn parse_f64(s: &str) -> Option<f64> {
    match parse_f64_fast(s.as_bytes()) {
        Some((v, len)) if len == s.len() => Some(v),
        _ => s.trim().parse().ok(),
    }
}

/// Files with quoted fields: the `csv` crate's reader, row by row.
fn parse_quoted(bytes: &[u8], path: &str) -> Result<CandleSeries> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut record = csv::StringRecord::new();
    let malformed = |line: u64, message: String| Error::Malformed { path: path.to_string(), line, message };
    // The csv crate's line count drifts over CRLF and blank lines, and its byte offset can sit on the terminator of
    // the line before: skip line ends from there to the record's first byte, then count the newlines before it.
    let line_at = |p: Option<&csv::Position>| {
        p.map_or(0, |p| {
            let mut at = (p.byte() as usize).min(bytes.len());
            while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
                at += 1;
            }
            1 + memchr::memchr_iter(b'\n', &bytes[..at]).count() as u64
        })
    };
    let csv_err = |e: csv::Error| malformed(line_at(e.position()), e.to_string());
    if !rdr.read_record(&mut record).map_err(csv_err)? {
        return Err(malformed(1, "file is empty; expected a header and OHLCV rows".into()));
    }
    let headerless = is_data_row(&record.iter().collect::<Vec<_>>());
    let layout = if headerless { Layout::HEADERLESS } else { Layout::from_header(&record, path)? };
    let mut series = CandleSeries::default();
    let mut pending_first = headerless;
    loop {
        if !pending_first && !rdr.read_record(&mut record).map_err(csv_err)? {
            break;
        }
        pending_first = false;
        let line = line_at(record.position());
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let fields: Vec<&str> = record.iter().collect();
        let (candle, style) = layout.parse_row(&fields).map_err(|m| malformed(line, m))?;
        series.time_style = finer(series.candles.last().map(|_| series.time_style), style);
        match series.candles.last() {
            None => {}
            Some(prev) if candle.timestamp_ms <= prev.timestamp_ms => {
                return Err(malformed(line, out_of_order(fields[layout.time])));
            }
            Some(_) => {}
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
        let err = parse_ohlcv_bytes(b"date,open,high,low,close\n2024-01-01,1,2,1,1\n2024-01-02,1,\xff,1,1\n", "t.csv")
            .unwrap_err();
        assert!(err.to_string().starts_with("t.csv:3: not valid UTF-8"), "{err}");
        let err = parse("timestamp,open,high,low,close\n").unwrap_err();
        assert!(err.to_string().contains("no data rows"), "{err}");
        let err = parse(",open,high,low,close\n0,1,2,1,1\n").unwrap_err();
        assert!(err.to_string().ends_with("got \"0\" (a number this small is a row index, not a unix time)"), "{err}");
        let s = parse(",open,high,low,close\n20040819,1,2,1,1\n20040820,1,2,1,1\n").unwrap();
        assert_eq!((s.candles[1].timestamp_ms, s.time_style), (1_092_960_000_000, TimeStyle::CompactDate));
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

    /// A file big enough to be split into several chunks parsed in parallel.
    fn big_file(rows: usize) -> String {
        let mut s = String::from("timestamp,open,high,low,close,volume\n");
        for i in 0..rows {
            s.push_str(&format!("{},100.5,101.25,99.75,100.125,12.5\n", 1_600_000_000 + 60 * i as i64));
        }
        s
    }

    #[test]
    fn parallel_chunks_keep_order_and_line_numbers() {
        let rows = 60_000; // about 3 MiB: several chunks
        let text = big_file(rows);
        assert!(text.len() > 2 << 20);
        let s = parse(&text).unwrap();
        assert_eq!(s.len(), rows);
        assert!(s.candles.windows(2).all(|w| w[1].timestamp_ms - w[0].timestamp_ms == 60_000));
        assert_eq!(s.time_style, TimeStyle::UnixSeconds);

        // A bad value deep in the file is reported at its own line.
        let bad_row = 51_234;
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[bad_row] = lines[bad_row].replace("99.75", "oops");
        let err = parse(&(lines.join("\n") + "\n")).unwrap_err();
        assert_eq!(err.to_string(), format!("t.csv:{}: column low: expected a number, got \"oops\"", bad_row + 1));

        // Time going backwards is found wherever it is, including across chunk boundaries.
        for row in [2, 20_001, 29_999, 30_000, 30_001, 45_000, rows] {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            lines[row] = lines[row].replacen(&(1_600_000_000 + 60 * (row as i64 - 1)).to_string(), "1500000000", 1);
            let err = parse(&(lines.join("\n") + "\n")).unwrap_err().to_string();
            assert!(err.starts_with(&format!("t.csv:{}: column time:", row + 1)), "row {row}: {err}");
        }
    }

    #[test]
    fn a_file_mixing_dates_and_datetimes_keeps_its_hours() {
        let s = parse("date,open,high,low,close\n2024-01-01,1,2,1,1\n2024-01-01T12:00:00Z,1,2,1,1\n").unwrap();
        assert_eq!(s.time_style, TimeStyle::Rfc3339);
    }

    #[test]
    fn headerless_with_a_bom_counts_lines_from_one() {
        let err = parse("\u{feff}1704067200000,1,2,0.5,1.5,9\n1704070800000,1,2,x,1.5,9\n").unwrap_err();
        assert!(err.to_string().starts_with("t.csv:2: column low"), "{err}");
    }

    #[test]
    fn quoted_files_and_crlf_and_bom() {
        let s = parse(
            "\u{feff}\"Date\",\"Open\",\"High\",\"Low\",\"Close\"\r\n\"2024-01-01\",\"1\",\"2\",\"0.5\",\"1.5\"\r\n",
        )
        .unwrap();
        assert_eq!(s.candles[0].close, 1.5);
        let s = parse("date,open,high,low,close\r\n2024-01-01,1,2,0.5,1.5\r\n\r\n2024-01-02,1,2,0.5,1.25\r\n").unwrap();
        assert_eq!((s.len(), s.candles[1].close), (2, 1.25));
        let err = parse("\"date\",open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1,2,bad,1.5\n").unwrap_err();
        assert_eq!(err.to_string(), "t.csv:3: column low: expected a number, got \"bad\"");
        let err = parse("\"date\",open,high,low,close\r\n2024-01-01,1,2,0.5,1.5\r\n\r\n\r\n2024-01-02,1,2,bad,1.5\r\n")
            .unwrap_err();
        assert_eq!(err.to_string(), "t.csv:5: column low: expected a number, got \"bad\"");
    }

    #[test]
    fn fast_float_parsing_equals_std() {
        let cases = [
            "0",
            "1",
            "-1",
            "+2.5",
            "2001.37",
            "0.1",
            "0.3",
            "1.07219",
            "42283.58",
            "22351900",
            "0.00000123",
            "123456789012345",
            "1234567890123456",
            "12345678901234567890",
            "1e5",
            "1.5E-3",
            " 7.25",
            "7.25 ",
            "0.000000000000000123",
            "9007199254740993",
            "3.141592653589793",
            ".5",
            "5.",
            "-0.0",
        ];
        for c in cases {
            let want: Option<f64> = c.trim().parse().ok();
            assert_eq!(parse_f64(c).map(f64::to_bits), want.map(f64::to_bits), "{c:?}");
        }
        for bad in ["", "-", ".", "1.2.3", "abc", "1,5", "--1"] {
            assert_eq!(parse_f64(bad), None, "{bad:?}");
        }
        // Every price with up to 15 digits round-trips exactly through its shortest representation.
        let mut x = 0.37f64;
        for _ in 0..20_000 {
            x = (x * 1.000_37 + 0.011).rem_euclid(100_000.0);
            let text = format!("{:.5}", x);
            assert_eq!(parse_f64(&text), text.parse().ok(), "{text}");
        }
    }

    #[test]
    fn streaming_in_small_blocks_equals_parsing_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        let text = big_file(3_000);
        std::fs::write(&path, &text).unwrap();
        let whole = parse(&text).unwrap();
        for block in [64, 1000, 4096, 1 << 20] {
            assert_eq!(load_in_blocks(&path, block, &mut |_, _| true).unwrap(), whole, "block {block}");
        }
        // No trailing newline, blank lines, CRLF.
        let messy = text.replace("\n", "\r\n").replacen("\r\n1600000060", "\r\n\r\n1600000060", 1);
        std::fs::write(&path, messy.trim_end()).unwrap();
        assert_eq!(load_in_blocks(&path, 777, &mut |_, _| true).unwrap(), whole);
        // Errors name the right line whichever block they fall in.
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[2_345] = lines[2_345].replace("100.125", "-3");
        std::fs::write(&path, lines.join("\n")).unwrap();
        let err = load_in_blocks(&path, 1000, &mut |_, _| true).unwrap_err().to_string();
        assert!(err.ends_with("m.csv:2346: column close: expected a positive price, got -3"), "{err}");
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[1_500] = lines[1_499].clone();
        std::fs::write(&path, lines.join("\n")).unwrap();
        let err = load_in_blocks(&path, 999, &mut |_, _| true).unwrap_err().to_string();
        assert!(err.contains("m.csv:1501: column time:"), "{err}");
        // Streaming hands on every row once, in order, a block at a time, and keeps checking order across blocks.
        std::fs::write(&path, &text).unwrap();
        let mut streamed = Vec::new();
        let mut blocks = 0;
        let kept = load_in_blocks(&path, 1000, &mut |rows, _| {
            blocks += 1;
            streamed.append(rows);
            true
        })
        .unwrap();
        assert!(kept.candles.is_empty() && blocks > 10);
        assert_eq!(streamed, whole.candles);
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[2_400] = lines[1_000].clone();
        std::fs::write(&path, lines.join("\n")).unwrap();
        let err = load_in_blocks(&path, 1000, &mut |rows, _| {
            rows.clear();
            true
        })
        .unwrap_err();
        assert!(err.to_string().contains("m.csv:2401: column time:"), "{err}");
        std::fs::write(&path, &text).unwrap();
        // Quotes anywhere send the file to the full CSV reader.
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[2_000] = lines[2_000].replacen("100.5", "\"100.5\"", 1);
        std::fs::write(&path, lines.join("\n")).unwrap();
        assert_eq!(load_in_blocks(&path, 1000, &mut |_, _| true).unwrap(), whole);
    }

    #[test]
    fn fast_row_path_agrees_with_the_general_one() {
        let layout = Layout::HEADERLESS;
        let rows = [
            "2024-01-01T00:00:00Z,2000,2012.87,1968.75,1973.47,77229.35",
            "2024-01-01T23:59:59,1.5,2,1,1.25,0",
            "2024-02-29 12:30:00,0.00012,0.00013,0.00011,0.000125,123456789",
            "2004-08-19,100,104.06,95.96,100.34,22351900",
            "2024-01-01T00:00:00.500Z,1,1,1,1,1",
            "2024-01-01T01:00:00+01:00,1,1,1,1,1",
            "1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68108,1704070799999,53957248.97",
            "2024-01-01,1e3,2e3,5e2,1.5e3,7",
            "2024-01-01, 1,2,0.5,1.5,9",
            "2023-02-29,1,2,0.5,1.5,9",
            "2024-01-01T24:00:00Z,1,2,0.5,1.5,9",
            "2024-01-01,-1,2,0.5,1.5,9",
            "2024-01-01,1,2,0.5,1.5,-9",
            "2024-01-01,1,2,0.5",
            "2024-01-01,1,2,0.5,1.5,",
            "2024-01-01,12345678901234567890,2,0.5,1.5,9",
            "2024-01-01,9007199254740993,2,0.5,1.5,9",
        ];
        for row in rows {
            let fields: Vec<&str> = row.split(',').collect();
            let slow = layout.parse_row(&fields).ok();
            let fast = layout.parse_row_fast(row.as_bytes(), &mut DateCache::default());
            if let Some(f) = fast {
                assert_eq!(Some(f), slow, "{row}");
            }
        }
        // The common shapes do take the fast path.
        for row in &rows[..4] {
            assert!(layout.parse_row_fast(row.as_bytes(), &mut DateCache::default()).is_some(), "{row}");
        }
    }

    proptest::proptest! {
        /// The exact fast path never disagrees with `str::parse`, whatever digits it is given.
        #[test]
        fn decimal_fast_path_equals_std(int in "[0-9]{0,20}", frac in proptest::option::of("[0-9]{0,25}"), neg: bool) {
            let text = format!("{}{}{}", if neg { "-" } else { "" }, int, frac.map(|f| format!(".{f}")).unwrap_or_default());
            let want: Option<f64> = text.parse().ok();
            proptest::prop_assert_eq!(parse_f64(&text).map(f64::to_bits), want.map(f64::to_bits), "{}", text);
        }

        /// Any row the fast path takes parses to the same candle as the general path.
        #[test]
        fn fast_row_equals_general_row(
            day in 0i64..40_000, secs in 0i64..86_400, t_style in 0u8..3,
            prices in proptest::array::uniform5(1u64..100_000_000u64), decimals in 0u32..9,
        ) {
            let ms = day * 86_400_000 + secs * 1000;
            let style = [TimeStyle::Date, TimeStyle::DateTimeSpace, TimeStyle::Rfc3339][usize::from(t_style)];
            let time = crate::time::format_time(ms, style);
            let scale = 10u64.pow(decimals);
            let nums: Vec<String> = prices.iter().map(|p| format!("{}.{:0width$}", p / scale, p % scale, width = decimals as usize)).collect();
            let row = format!("{time},{}", nums.join(","));
            let fields: Vec<&str> = row.split(',').collect();
            let slow = Layout::HEADERLESS.parse_row(&fields).ok();
            let fast = Layout::HEADERLESS.parse_row_fast(row.as_bytes(), &mut DateCache::default());
            proptest::prop_assert!(fast.is_some(), "{}", row);
            proptest::prop_assert_eq!(fast, slow, "{}", row);
        }
    }
}
