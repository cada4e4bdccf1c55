//! Uniswap v3 pool minutes as the demeter backtester's fetch tool writes them: one CSV row per minute with the
//! columns `timestamp, netAmount0, netAmount1, closeTick, openTick, lowestTick, highestTick, inAmount0, inAmount1,
//! currentLiquidity` (amounts in base units, net amounts signed: what the pool received). Columns may come in any
//! order; a leading pandas index column is ignored. Integers written as floats (`1.5e+21`, `12.0`) are accepted
//! when exact.

use crate::synth_pool::PoolStep;
use crate::time::parse_time;
use crate::{Error, Result};
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};
use sextant_protocols::uniswap_v3::Pool;
use sextant_protocols::uniswap_v3::math::sqrt_ratio_at_tick;
use std::path::Path;

/// One minute of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolMinute {
    /// Start of the minute, unix milliseconds UTC.
    pub timestamp_ms: i64,
    /// token0 the pool received in the minute, net of what it paid (base units, signed).
    pub net_amount0: i128,
    /// Same for token1.
    pub net_amount1: i128,
    /// Tick at the minute's close.
    pub close_tick: i32,
    /// Tick at its open.
    pub open_tick: i32,
    /// Lowest tick reached.
    pub lowest_tick: i32,
    /// Highest tick reached.
    pub highest_tick: i32,
    /// token0 paid into the pool by swaps (volume in, base units).
    pub in_amount0: u128,
    /// Same for token1.
    pub in_amount1: u128,
    /// In-range liquidity at the close.
    pub current_liquidity: u128,
}

const COLUMNS: [&str; 10] = [
    "timestamp",
    "netAmount0",
    "netAmount1",
    "closeTick",
    "openTick",
    "lowestTick",
    "highestTick",
    "inAmount0",
    "inAmount1",
    "currentLiquidity",
];

/// An integer field, written as an integer or in decimal or scientific notation (`12.0`, `2.5e+22`), converted
/// exactly in decimal (a float would round 2.5e22); None when the value is not an integer.
fn int(field: &str) -> Option<i128> {
    if let Ok(v) = field.parse::<i128>() {
        return Some(v);
    }
    let f = field.trim();
    if let Ok(v) = f.parse::<i128>() {
        return Some(v);
    }
    let (negative, f) = match f.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, f.strip_prefix('+').unwrap_or(f)),
    };
    let (mantissa, exponent) = match f.find(['e', 'E']) {
        Some(i) => (&f[..i], f[i + 1..].parse::<i32>().ok().filter(|e| e.abs() <= 80)?),
        None => (f, 0),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && frac.is_empty() || !whole.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits = format!("{whole}{frac}");
    let mut scale = exponent - frac.len() as i32;
    while scale < 0 {
        // Only zeros may be dropped: anything else is a fraction.
        if !digits.ends_with('0') {
            return if digits.trim_start_matches('0').is_empty() { Some(0) } else { None };
        }
        digits.pop();
        scale += 1;
    }
    let mut v: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    for _ in 0..scale {
        v = v.checked_mul(10)?;
    }
    Some(if negative { -v } else { v })
}

/// The columns' positions in a header row, in `COLUMNS` order.
fn columns(headers: &[&str], bad: &dyn Fn(u64, String) -> Error) -> Result<[usize; 10]> {
    let index = |name: &str| headers.iter().position(|h| h.trim() == name);
    let mut positions = [0; 10];
    for (p, c) in positions.iter_mut().zip(COLUMNS) {
        *p = index(c).ok_or_else(|| {
            let missing: Vec<&str> = COLUMNS.iter().filter(|c| index(c).is_none()).copied().collect();
            bad(
                1,
                format!("missing column(s) {} (a demeter minute file has {})", missing.join(", "), COLUMNS.join(", ")),
            )
        })?;
    }
    Ok(positions)
}

/// Minutes parsed from a run of lines, with the line the run starts on.
type Chunk = (Vec<PoolMinute>, u64);

/// Unquoted rows (what pandas and demeter write), the first on line `first_line`: split into chunks of whole lines
/// parsed on all cores when there are enough of them. The chunks' minutes, in order, each with the line it starts
/// on (each chunk is in order within itself; the caller checks across them), and the lines read.
fn parse_plain_parallel(
    body: &str,
    threads: usize,
    first_line: u64,
    width: usize,
    positions: [usize; 10],
    bad: &(dyn Fn(u64, String) -> Error + Sync),
) -> Result<(Vec<Chunk>, u64)> {
    let parts = if body.len() < (4 << 20) { 1 } else { threads.clamp(1, 8) };
    if parts == 1 {
        let (minutes, lines) = parse_plain(body, first_line, width, positions, bad)?;
        return Ok((vec![(minutes, first_line)], lines));
    }
    let mut chunks = Vec::with_capacity(parts);
    let mut rest = body;
    for k in (1..=parts).rev() {
        let cut = if k == 1 {
            rest.len()
        } else {
            // Bytes, not chars: a cut just after a newline is always a char boundary.
            let at = rest.len() / k;
            rest.as_bytes()[at..].iter().position(|&b| b == b'\n').map_or(rest.len(), |i| at + i + 1)
        };
        let (chunk, tail) = rest.split_at(cut);
        chunks.push(chunk);
        rest = tail;
    }
    // Each chunk counts its lines from 0; its errors move to the file's line numbers once the chunks before it
    // have said how many lines they held.
    let parsed: Vec<Result<(Vec<PoolMinute>, u64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            chunks.iter().map(|&chunk| scope.spawn(move || parse_plain(chunk, 0, width, positions, bad))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(bad(0, "parser panicked".into())))).collect()
    });
    let mut out = Vec::with_capacity(parsed.len());
    let mut line = first_line;
    for part in parsed {
        match part {
            Ok((minutes, lines)) => {
                out.push((minutes, line));
                line += lines;
            }
            Err(Error::Malformed { path, line: at, message }) => {
                return Err(Error::Malformed { path, line: line + at, message });
            }
            Err(e) => return Err(e),
        }
    }
    Ok((out, line - first_line))
}

/// Appends parsed chunks, refusing a chunk whose first minute does not come after the last one kept.
fn append_in_order(out: &mut Vec<PoolMinute>, parts: Vec<Chunk>, bad: &dyn Fn(u64, String) -> Error) -> Result<()> {
    for (part, line) in parts {
        if let (Some(prev), Some(next)) = (out.last(), part.first())
            && next.timestamp_ms <= prev.timestamp_ms
        {
            return Err(bad(line, "minutes are not in increasing time order".into()));
        }
        out.extend(part);
    }
    Ok(())
}

/// Parses a demeter minute file's text; `origin` names it in errors.
///
/// # Errors
/// A missing column (all are named), a malformed value (line and column named), or minutes out of order.
pub fn parse_pool_minutes(text: &str, origin: &str) -> Result<Vec<PoolMinute>> {
    let bad = |line: u64, message: String| Error::Malformed { path: origin.to_string(), line, message };
    if !text.contains('"') {
        let (head, body) = text.split_once('\n').unwrap_or((text, ""));
        let headers: Vec<&str> = head.trim_end_matches('\r').split(',').collect();
        let positions = columns(&headers, &bad)?;
        let mut out: Vec<PoolMinute> = Vec::with_capacity(text.len() / 128);
        append_in_order(&mut out, parse_plain_parallel(body, cores(), 2, headers.len(), positions, &bad)?.0, &bad)?;
        return Ok(out);
    }
    let mut out: Vec<PoolMinute> = Vec::new();
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let positions = columns(&headers.iter().collect::<Vec<_>>(), &bad)?;
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = record.map_err(|e| bad(line, e.to_string()))?;
        let minute = parse_row(line, &positions.map(|p| record.get(p).unwrap_or("")), &bad)?;
        push_in_order(&mut out, minute, line, &bad)?;
    }
    Ok(out)
}

/// Appends a minute, refusing one that does not come after the last.
fn push_in_order(
    out: &mut Vec<PoolMinute>,
    minute: PoolMinute,
    line: u64,
    bad: &dyn Fn(u64, String) -> Error,
) -> Result<()> {
    if let Some(prev) = out.last()
        && minute.timestamp_ms <= prev.timestamp_ms
    {
        return Err(bad(line, "minutes are not in increasing time order".into()));
    }
    out.push(minute);
    Ok(())
}

/// Unquoted rows, the first on line `first_line`.
fn parse_plain(
    text: &str,
    first_line: u64,
    width: usize,
    positions: [usize; 10],
    bad: &(dyn Fn(u64, String) -> Error + Sync),
) -> Result<(Vec<PoolMinute>, u64)> {
    let mut out = Vec::with_capacity(text.len() / 128);
    let mut fields: Vec<&str> = Vec::with_capacity(width);
    let mut lines = 0;
    for (i, row) in text.lines().enumerate() {
        let line = first_line + i as u64;
        lines = i as u64 + 1;
        if row.trim().is_empty() {
            continue;
        }
        if let Some(minute) = plain_row(row.as_bytes(), width, &positions) {
            push_in_order(&mut out, minute, line, bad)?;
            continue;
        }
        // Anything unusual (spaces, decimals, exponents, a wrong field count, a bad value) takes the general path,
        // which also words the errors.
        fields.clear();
        fields.extend(row.split(','));
        if fields.len() != width {
            return Err(bad(line, format!("{} fields, the header has {width}", fields.len())));
        }
        let minute = parse_row(line, &positions.map(|p| fields[p]), bad)?;
        push_in_order(&mut out, minute, line, bad)?;
    }
    Ok((out, lines))
}

/// The common row in one pass over its bytes: plain integers (an optional `-`, then at most 38 digits) and a
/// timestamp, as many fields as the header. None for anything else, which [`parse_row`] then reads or refuses.
fn plain_row(row: &[u8], width: usize, positions: &[usize; 10]) -> Option<PoolMinute> {
    // What each field of the row is: a column's index in `COLUMNS`, or none (a pandas index, an extra column).
    const MAX_FIELDS: usize = 32;
    if width > MAX_FIELDS {
        return None;
    }
    let mut role = [usize::MAX; MAX_FIELDS];
    for (c, &p) in positions.iter().enumerate() {
        role[p] = c;
    }
    let mut values = [0i128; 10];
    let mut time = &row[..0];
    let mut i = 0;
    for (k, &c) in role.iter().enumerate().take(width) {
        if k > 0 {
            // The previous field ended at a comma.
            if row.get(i) != Some(&b',') {
                return None;
            }
            i += 1;
        }
        let start = i;
        if c == 0 || c == usize::MAX {
            while i < row.len() && row[i] != b',' {
                i += 1;
            }
            if c == 0 {
                time = &row[start..i];
            }
            continue;
        }
        let negative = row.get(i) == Some(&b'-');
        i += usize::from(negative);
        let digits = i;
        // Up to 19 digits in 64 bits, the rest in 128 (38 digits always fit).
        let mut v64 = 0u64;
        while i < row.len() && i - digits < 19 {
            let d = row[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v64 = v64 * 10 + u64::from(d);
            i += 1;
        }
        let mut v = u128::from(v64);
        while i < row.len() && i - digits < 38 {
            let d = row[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v * 10 + u128::from(d);
            i += 1;
        }
        if i == digits || (i < row.len() && row[i] != b',') {
            return None;
        }
        let v = i128::try_from(v).ok()?;
        values[c] = if negative { -v } else { v };
    }
    if i != row.len() {
        return None;
    }
    let tick = |c: usize| i32::try_from(values[c]).ok();
    let unsigned = |c: usize| u128::try_from(values[c]).ok();
    let (timestamp_ms, _) = parse_time(std::str::from_utf8(time).ok()?)?;
    let minute = PoolMinute {
        timestamp_ms,
        net_amount0: values[1],
        net_amount1: values[2],
        close_tick: tick(3)?,
        open_tick: tick(4)?,
        lowest_tick: tick(5)?,
        highest_tick: tick(6)?,
        in_amount0: unsigned(7)?,
        in_amount1: unsigned(8)?,
        current_liquidity: unsigned(9)?,
    };
    (minute.lowest_tick <= minute.highest_tick).then_some(minute)
}

/// One row, its fields given in `COLUMNS` order.
fn parse_row(line: u64, row: &[&str; 10], bad: &dyn Fn(u64, String) -> Error) -> Result<PoolMinute> {
    let field = |k: usize| row[k];
    let number =
        |k: usize| int(field(k)).ok_or_else(|| bad(line, format!("{}: {:?} is not an integer", COLUMNS[k], field(k))));
    let tick = |k: usize| -> Result<i32> {
        let v = number(k)?;
        i32::try_from(v).map_err(|_| bad(line, format!("{}: {v} is not a tick", COLUMNS[k])))
    };
    let unsigned = |k: usize| -> Result<u128> {
        let v = number(k)?;
        u128::try_from(v).map_err(|_| bad(line, format!("{}: {v} is negative", COLUMNS[k])))
    };
    let (timestamp_ms, _) =
        parse_time(field(0).trim()).ok_or_else(|| bad(line, format!("timestamp: {:?} is not a time", field(0))))?;
    let minute = PoolMinute {
        timestamp_ms,
        net_amount0: number(1)?,
        net_amount1: number(2)?,
        close_tick: tick(3)?,
        open_tick: tick(4)?,
        lowest_tick: tick(5)?,
        highest_tick: tick(6)?,
        in_amount0: unsigned(7)?,
        in_amount1: unsigned(8)?,
        current_liquidity: unsigned(9)?,
    };
    if minute.lowest_tick > minute.highest_tick {
        return Err(bad(
            line,
            format!("lowestTick {} is above highestTick {}", minute.lowest_tick, minute.highest_tick),
        ));
    }
    Ok(minute)
}

/// Bytes read at a time by the minute-file reader.
const BLOCK: usize = 8 << 20;

/// The cores this machine offers.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Reads a minute file a block at a time, parsing each on up to `threads` threads, and hands its minutes to `add`,
/// in order, block by block: the whole text is never in memory, only a block and its minutes. A file with quotes is
/// read whole by the general reader instead (into a fresh `new()`).
fn read_minutes<A>(
    path: &Path,
    block: usize,
    threads: usize,
    new: impl Fn() -> A,
    mut add: impl FnMut(&mut A, &[PoolMinute]) -> Result<()>,
) -> Result<A> {
    use std::io::Read;
    let origin = path.display().to_string();
    let io = |source| Error::Io { path: origin.clone(), source };
    let bad = |line: u64, message: String| Error::Malformed { path: origin.clone(), line, message };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut acc = new();
    let mut buf: Vec<u8> = Vec::with_capacity(block + 4096);
    let mut header: Option<(usize, [usize; 10])> = None;
    let (mut line, mut last_ms) = (2u64, None::<i64>);
    // The first block is an eighth of the others: whoever waits for the first minutes gets them sooner.
    let mut size = (block / 8).max(1);
    loop {
        // Top up the block (what is left of the last one is a partial line at its start).
        let kept = buf.len();
        buf.resize(kept + size, 0);
        let mut filled = kept;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        buf.truncate(filled);
        let eof = filled < kept + size;
        size = block;
        if buf.contains(&b'"') {
            // Quoted fields: the general reader, on the whole file.
            let text = std::fs::read_to_string(path).map_err(io)?;
            let mut acc = new();
            add(&mut acc, &parse_pool_minutes(&text, &origin)?)?;
            return Ok(acc);
        }
        // Whole lines only, unless the file ends here.
        let end = if eof { buf.len() } else { buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) };
        let text = std::str::from_utf8(&buf[..end])
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let mut body = text;
        if header.is_none() {
            let Some((head, rest)) = text.split_once('\n').or(eof.then_some((text, ""))) else {
                if buf.len() > (512 << 20) {
                    return Err(bad(1, "no line break in the first 512 MiB".into()));
                }
                continue;
            };
            let headers: Vec<&str> = head.trim_end_matches('\r').split(',').collect();
            header = Some((headers.len(), columns(&headers, &bad)?));
            body = rest;
        }
        let (width, positions) = header.unwrap_or_default();
        let (parts, lines) = parse_plain_parallel(body, threads, line, width, positions, &bad)?;
        line += lines;
        for (part, part_line) in &parts {
            if let (Some(prev), Some(next)) = (last_ms, part.first())
                && next.timestamp_ms <= prev
            {
                return Err(bad(*part_line, "minutes are not in increasing time order".into()));
            }
            if let Some(m) = part.last() {
                last_ms = Some(m.timestamp_ms);
            }
            add(&mut acc, part)?;
        }
        if eof {
            return Ok(acc);
        }
        buf.drain(..end);
    }
}

/// Reads a demeter minute file.
///
/// # Errors
/// As [`parse_pool_minutes`], or an unreadable file.
pub fn load_pool_minutes(path: &Path) -> Result<Vec<PoolMinute>> {
    read_minutes(path, BLOCK, cores(), Vec::new, |out, part| {
        out.extend_from_slice(part);
        Ok(())
    })
}

/// A minute file read straight into its order flow ([`minutes_flow`] of [`load_pool_minutes`], without holding the
/// minutes).
///
/// # Errors
/// As [`load_pool_minutes`] and [`minutes_flow`].
pub fn load_pool_flow(path: &Path, fee: u32, tick_spacing: i32) -> Result<(Pool, Vec<PoolStep>)> {
    let flow = read_minutes(
        path,
        BLOCK,
        cores(),
        || FlowBuilder::new(fee, tick_spacing),
        |flow, part| part.iter().try_for_each(|m| flow.push(m)),
    )?;
    flow.finish()
}

/// [`load_pool_flow`] a block at a time, for a backtest that runs while the file is read: `block` gets the pool
/// as it starts (the first minute's open) and the next steps of the flow, in order, about 60,000 at a time. It
/// parses on one thread, leaving the other cores to whoever consumes the blocks. An error from `block` stops the
/// reading and is returned.
///
/// # Errors
/// As [`load_pool_flow`].
pub fn stream_pool_flow(
    path: &Path,
    fee: u32,
    tick_spacing: i32,
    block: impl FnMut(&Pool, Vec<PoolStep>) -> Result<()>,
) -> Result<()> {
    stream_in_blocks(path, BLOCK, fee, tick_spacing, block)
}

/// [`stream_pool_flow`] reading `bytes` at a time.
fn stream_in_blocks(
    path: &Path,
    bytes: usize,
    fee: u32,
    tick_spacing: i32,
    mut block: impl FnMut(&Pool, Vec<PoolStep>) -> Result<()>,
) -> Result<()> {
    // A quote found after some blocks went out restarts the reading from the top (with a fresh builder): the
    // steps already handed over are not handed over again.
    let mut delivered = 0usize;
    let mut hand_over = |flow: &mut FlowBuilder| {
        let Some(pool) = &flow.pool else { return Ok(()) };
        let before = flow.pushed - flow.steps.len();
        let mut steps = std::mem::take(&mut flow.steps);
        steps.drain(..delivered.saturating_sub(before).min(steps.len()));
        if steps.is_empty() {
            return Ok(());
        }
        delivered += steps.len();
        block(pool, steps)
    };
    let flow = read_minutes(
        path,
        bytes,
        1,
        || FlowBuilder::new(fee, tick_spacing),
        |flow, part| {
            part.iter().try_for_each(|m| flow.push(m))?;
            hand_over(flow)
        },
    )?;
    // Every step has gone out with its block; an empty file is an error, as when loaded.
    flow.finish().map(|_| ())
}

/// Replays `steps` on `pool` and writes one row per step in demeter's minute format (the `timestamp` column as
/// `YYYY-MM-DD HH:MM:SS` UTC): what a pool's history looks like to demeter, for side-by-side runs on the same
/// data. Returns the rows written.
///
/// # Errors
/// When writing fails.
pub fn write_pool_minutes(pool: &mut Pool, steps: &[PoolStep], out: &mut dyn std::io::Write) -> std::io::Result<usize> {
    use crate::synth_pool::replay_step;
    use sextant_protocols::uniswap_v3::math::tick_at_sqrt_ratio;
    writeln!(
        out,
        "timestamp,netAmount0,netAmount1,closeTick,openTick,lowestTick,highestTick,inAmount0,inAmount1,currentLiquidity"
    )?;
    let signed = |a: U256, b: U256| if a >= b { format!("{}", a - b) } else { format!("-{}", b - a) };
    for step in steps {
        let open = pool.tick;
        let t = replay_step(pool, step);
        let tick = |x: U256| tick_at_sqrt_ratio(x).unwrap_or(pool.tick);
        let time = crate::time::format_time(step.timestamp_ms, sextant_market::TimeStyle::DateTimeSpace);
        writeln!(
            out,
            "{time},{},{},{},{open},{},{},{},{},{}",
            signed(t.in0, t.out0),
            signed(t.in1, t.out1),
            pool.tick,
            tick(t.low_sqrt_price_x96).min(open).min(pool.tick),
            tick(t.high_sqrt_price_x96).max(open).max(pool.tick),
            t.in0,
            t.in1,
            pool.liquidity
        )?;
    }
    Ok(steps.len())
}

/// The middle of a tick's price interval, so a pool moved there reports that tick.
fn tick_middle(tick: i32) -> Option<U256> {
    let (a, b) = (sqrt_ratio_at_tick(tick)?, sqrt_ratio_at_tick(tick + 1)?);
    Some(a + ((b - a) >> 1))
}

/// Order flow that reproduces a minute file on a pool of `fee` and `tick_spacing`: the pool starts at the first
/// minute's open tick; each minute brings the background's in-range liquidity to the previous minute's
/// `currentLiquidity` (the file records nothing finer), sells `inAmount0` of token0 and `inAmount1` of token1 around
/// the move to the middle of `closeTick` (see [`PoolStep::volume_in`]); a last swap reaches the close when the
/// recorded volume was not enough to get there through this pool. Everything beyond one liquidity figure per minute (where
/// the other LPs' ranges start and end, the order of swaps inside the minute) is not in the file and so is not
/// reproduced.
///
/// # Errors
/// An empty file, ticks out of range, or a pool configuration the factory would refuse.
pub fn minutes_flow(minutes: &[PoolMinute], fee: u32, tick_spacing: i32) -> Result<(Pool, Vec<PoolStep>)> {
    let mut flow = FlowBuilder::new(fee, tick_spacing);
    minutes.iter().try_for_each(|m| flow.push(m))?;
    flow.finish()
}

/// [`minutes_flow`] a minute at a time.
struct FlowBuilder {
    fee: u32,
    tick_spacing: i32,
    pool: Option<Pool>,
    steps: Vec<PoolStep>,
    /// Steps pushed since the builder was made (handed over or not).
    pushed: usize,
    liquidity: u128,
}

impl FlowBuilder {
    fn new(fee: u32, tick_spacing: i32) -> Self {
        FlowBuilder { fee, tick_spacing, pool: None, steps: Vec::new(), pushed: 0, liquidity: 0 }
    }

    fn push(&mut self, m: &PoolMinute) -> Result<()> {
        if self.pool.is_none() {
            let start = tick_middle(m.open_tick)
                .ok_or_else(|| Error::Invalid(format!("openTick {} is out of range", m.open_tick)))?;
            let pool =
                Pool::new(self.fee, self.tick_spacing, start).map_err(|e| Error::Invalid(format!("pool: {e}")))?;
            self.pool = Some(pool);
            self.liquidity = m.current_liquidity;
        }
        let close = tick_middle(m.close_tick)
            .ok_or_else(|| Error::Invalid(format!("closeTick {} is out of range", m.close_tick)))?;
        self.steps.push(PoolStep {
            timestamp_ms: m.timestamp_ms,
            background_liquidity: Some(self.liquidity),
            recentre: false,
            swaps: Vec::new(),
            volume_in: Some((U256::from(m.in_amount0), U256::from(m.in_amount1))),
            close_sqrt_price_x96: Some(close),
        });
        self.pushed += 1;
        self.liquidity = m.current_liquidity;
        Ok(())
    }

    fn finish(self) -> Result<(Pool, Vec<PoolStep>)> {
        let pool = self.pool.ok_or_else(|| Error::Invalid("the minute file has no rows".into()))?;
        Ok((pool, self.steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
,timestamp,netAmount0,netAmount1,closeTick,openTick,lowestTick,highestTick,inAmount0,inAmount1,currentLiquidity
0,2023-08-13 00:00:00,-1502345,825432109876543210,200130,200128,200125,200131,0,825432109876543210,2.5e+22
1,2023-08-13 00:01:00,0,0,200130,200130,200130,200130,0,0,25000000000000000000000
";

    #[test]
    fn reads_demeter_minutes_with_an_index_column_and_float_integers() {
        let m = parse_pool_minutes(FILE, "usdc-weth.minute.csv").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].timestamp_ms, 1_691_884_800_000);
        assert_eq!(m[0].net_amount0, -1_502_345);
        assert_eq!(
            (m[0].close_tick, m[0].open_tick, m[0].lowest_tick, m[0].highest_tick),
            (200_130, 200_128, 200_125, 200_131)
        );
        assert_eq!(m[0].in_amount1, 825_432_109_876_543_210);
        assert_eq!(m[0].current_liquidity, 25_000_000_000_000_000_000_000);
        assert_eq!(m[1].timestamp_ms - m[0].timestamp_ms, 60_000);
    }

    #[test]
    fn a_minute_file_becomes_flow_that_ends_each_minute_at_its_close_tick() {
        let m = parse_pool_minutes(FILE, "f").unwrap();
        let (mut pool, steps) = minutes_flow(&m, 500, 10).unwrap();
        assert_eq!(pool.tick, 200_128);
        for (step, minute) in steps.iter().zip(&m) {
            let t = crate::synth_pool::replay_step(&mut pool, step);
            assert_eq!(t.failed, 0);
            assert_eq!(pool.tick, minute.close_tick);
            assert!(t.in1 >= U256::from(minute.in_amount1) && t.in0 >= U256::from(minute.in_amount0));
        }
        // The second minute starts from the first one's recorded liquidity.
        assert_eq!(steps[1].background_liquidity, Some(m[0].current_liquidity));
        assert_eq!(pool.liquidity, m[0].current_liquidity);
    }

    #[test]
    fn a_written_minute_file_reads_back_and_replays_to_the_same_closes() {
        let spec = crate::synth_pool::PoolSynthSpec {
            market: crate::SynthSpec { bars: 300, interval: crate::Interval::M1, ..crate::SynthSpec::default() },
            ..crate::synth_pool::PoolSynthSpec::default()
        };
        let (pool, steps) = spec.generate().unwrap();
        let mut text = Vec::new();
        let rows = write_pool_minutes(&mut pool.clone(), &steps, &mut text).unwrap();
        let minutes = parse_pool_minutes(std::str::from_utf8(&text).unwrap(), "w").unwrap();
        assert_eq!((rows, minutes.len()), (300, 300));
        assert_eq!(minutes[0].timestamp_ms, steps[0].timestamp_ms);
        let (mut replayed, flow) = minutes_flow(&minutes, 500, 10).unwrap();
        for (step, m) in flow.iter().zip(&minutes) {
            crate::synth_pool::replay_step(&mut replayed, step);
            assert_eq!(replayed.tick, m.close_tick);
            assert!(m.lowest_tick <= m.close_tick && m.close_tick <= m.highest_tick);
        }
        // Swaps both ways: money flows in and out, so net amounts differ from what came in.
        assert!(minutes.iter().any(|m| m.net_amount0 < 0) && minutes.iter().any(|m| m.net_amount1 < 0));
        assert!(minutes.iter().all(|m| m.net_amount0 <= m.in_amount0 as i128));
    }

    #[test]
    fn integers_in_scientific_notation_convert_exactly() {
        assert_eq!(int("2.5e+22"), Some(25_000_000_000_000_000_000_000));
        assert_eq!(int("12.0"), Some(12));
        assert_eq!(int("-1.5E3"), Some(-1_500));
        assert_eq!(int("1.25"), None);
        assert_eq!(int("abc"), None);
        assert_eq!(int("0.0"), Some(0));
    }

    #[test]
    fn big_files_parse_in_chunks_like_the_general_reader() {
        let mut text = String::from(FILE.lines().next().unwrap());
        text.push('\n');
        for i in 0..40_000i64 {
            let t = crate::time::format_time(1_691_884_800_000 + i * 60_000, sextant_market::TimeStyle::DateTimeSpace);
            text.push_str(&format!(
                "{i},{t},-1502345,825432109876543210,{},200128,200125,200131,{i},825432109876543210,25000000000000000000000\n",
                200_125 + i % 6
            ));
        }
        assert!(text.len() > 4 << 20);
        let plain = parse_pool_minutes(&text, "big").unwrap();
        let quoted = parse_pool_minutes(&text.replacen(",-1502345,", ",\"-1502345\",", 1), "big").unwrap();
        assert_eq!(plain.len(), 40_000);
        assert_eq!(plain, quoted);
        // An error deep in a later chunk names its own line.
        let broken = text.replace("\n30000,", "\n30000,x");
        let e = parse_pool_minutes(&broken, "big.csv").unwrap_err().to_string();
        assert!(e.starts_with("big.csv:30002:"), "{e}");
    }

    #[test]
    fn files_read_in_blocks_equal_the_whole_text() {
        let dir = std::env::temp_dir().join(format!("sextant-minutes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = String::from(FILE.lines().next().unwrap());
        text.push_str("\r\n");
        for i in 0..3_000i64 {
            let t = crate::time::format_time(1_691_884_800_000 + i * 60_000, sextant_market::TimeStyle::DateTimeSpace);
            let liquidity = if i % 7 == 0 { "2.5e+22".to_string() } else { format!("{}", 10u128.pow(22) + i as u128) };
            text.push_str(&format!(
                "{i},{t},-1502345,825432109876543210,{},200128,200125,200131,{i},8254321098765,{liquidity}\r\n",
                200_125 + i % 6
            ));
        }
        let whole = parse_pool_minutes(&text, "m").unwrap();
        let (pool, steps) = minutes_flow(&whole, 500, 10).unwrap();
        // The last line without its line break, and blocks smaller than a line, a header, or the whole file.
        let file = dir.join("m.csv");
        std::fs::write(&file, text.trim_end()).unwrap();
        for block in [13, 150, 4096, 1 << 20] {
            let got = read_minutes(&file, block, 2, Vec::new, |out, part| {
                out.extend_from_slice(part);
                Ok(())
            })
            .unwrap();
            assert_eq!(got, whole, "block {block}");
        }
        assert_eq!(load_pool_minutes(&file).unwrap(), whole);
        let (p2, s2) = load_pool_flow(&file, 500, 10).unwrap();
        assert_eq!((&p2, s2.len()), (&pool, steps.len()));
        assert_eq!(s2, steps);
        // Errors name the file's own line whatever the block; minutes out of order across blocks are refused.
        let broken = text.replace("\n2000,", "\n2000,x");
        std::fs::write(&file, &broken).unwrap();
        for block in [64, 1000, 1 << 20] {
            let e = read_minutes(&file, block, 2, || (), |_, _| Ok(())).unwrap_err().to_string();
            assert!(e.contains("m.csv:2002:"), "block {block}: {e}");
        }
        let back = text.replace("\n2500,2023-08-14 17:40:00", "\n2500,2023-08-13 00:00:00");
        assert!(back != text, "the test rewrote no timestamp");
        std::fs::write(&file, &back).unwrap();
        for block in [64, 1000, 1 << 20] {
            let e = read_minutes(&file, block, 2, || (), |_, _| Ok(())).unwrap_err().to_string();
            assert!(e.contains("order"), "block {block}: {e}");
        }
        // A quote anywhere sends the file to the general reader.
        std::fs::write(&file, text.replacen(",-1502345,", ",\"-1502345\",", 2)).unwrap();
        assert_eq!(load_pool_minutes(&file).unwrap(), whole);
        // Streamed in blocks, the flow is the loaded one, once, even when a late quote restarts the reading.
        let at = text.rfind(",-1502345,").unwrap();
        let late_quote = format!("{},\"-1502345\",{}", &text[..at], &text[at + 10..]);
        for (content, name) in [(&text, "plain"), (&late_quote, "late quote")] {
            std::fs::write(&file, content).unwrap();
            for block in [150, 4096, 1 << 20] {
                let mut got = Vec::new();
                let mut blocks = 0;
                stream_in_blocks(&file, block, 500, 10, |p, s| {
                    assert_eq!(*p, pool);
                    blocks += 1;
                    got.extend(s);
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{name}, block {block}: {e}"));
                assert_eq!(got, steps, "{name}, block {block}");
                assert!(block > 4096 || blocks > 1, "{name}, block {block}: {blocks} blocks");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn quoted_files_read_as_unquoted_ones() {
        let quoted = FILE.replace("2023-08-13 00:00:00", "\"2023-08-13 00:00:00\"");
        assert_eq!(parse_pool_minutes(&quoted, "q").unwrap(), parse_pool_minutes(FILE, "f").unwrap());
        let short = FILE.replace(",0,825432109876543210,2.5e+22", ",825432109876543210,2.5e+22");
        let e = parse_pool_minutes(&short, "f.csv").unwrap_err().to_string();
        assert!(e.starts_with("f.csv:2:") && e.contains("fields"), "{e}");
    }

    #[test]
    fn the_one_pass_row_reader_agrees_with_the_general_one() {
        fn rand(x: &mut u64) -> u64 {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            *x
        }
        fn int(x: &mut u64, signed: bool) -> String {
            let v = u128::from(rand(x)) * u128::from(rand(x) % (1 << (rand(x) % 60))) + u128::from(rand(x) % 1000);
            let mut s = v.to_string();
            if signed && rand(x).is_multiple_of(2) {
                s.insert(0, '-');
            }
            match rand(x) % 40 {
                0 => s.insert(0, '+'),
                1 => s.push_str(".0"),
                2 => s.insert(0, ' '),
                3 => s = "1.5e+21".into(),
                4 => s = "x".into(),
                5 => s = "9".repeat(39),
                _ => {}
            }
            s
        }
        fn tick(x: &mut u64) -> String {
            ((rand(x) % 1_800_000) as i64 - 900_000).to_string()
        }
        let x = &mut 0x1234_5678_9abc_def1u64;
        let bad = |line: u64, message: String| Error::Malformed { path: "t".into(), line, message };
        let positions = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        let (mut fast, mut total) = (0, 0);
        for _ in 0..20_000 {
            let fields = [
                format!("2024-01-{:02} 00:{:02}:00", 1 + rand(x) % 28, rand(x) % 60),
                int(x, true),
                int(x, true),
                tick(x),
                tick(x),
                tick(x),
                tick(x),
                {
                    let signed = rand(x).is_multiple_of(30);
                    int(x, signed)
                },
                int(x, false),
                int(x, false),
            ];
            let row = fields.join(",");
            let general = parse_row(1, &fields.each_ref().map(String::as_str), &bad).ok();
            let one_pass = plain_row(row.as_bytes(), 10, &positions);
            if one_pass.is_some() {
                fast += 1;
                assert_eq!(one_pass, general, "{row}");
            }
            total += 1;
            // Wrong field counts are left to the general path.
            assert_eq!(plain_row(format!("{row},1").as_bytes(), 10, &positions), None);
            assert_eq!(plain_row(row.rsplit_once(',').unwrap().0.as_bytes(), 10, &positions), None);
        }
        assert!(fast > total / 5 && fast < total, "{fast} of {total} rows took the one-pass reader");
    }

    #[test]
    fn errors_name_the_column_and_line() {
        let e = parse_pool_minutes("timestamp,netAmount0\n", "f.csv").unwrap_err().to_string();
        assert!(e.starts_with("f.csv:1:") && e.contains("netAmount1") && e.contains("currentLiquidity"), "{e}");
        let broken = FILE.replace("200125", "low");
        let e = parse_pool_minutes(&broken, "f.csv").unwrap_err().to_string();
        assert!(e.starts_with("f.csv:2:") && e.contains("lowestTick"), "{e}");
        let back = FILE.replace("2023-08-13 00:01:00", "2023-08-12 23:59:00");
        assert!(parse_pool_minutes(&back, "f.csv").unwrap_err().to_string().contains("order"));
        let neg = FILE.replace(",0,825432109876543210,2.5e+22", ",-5,825432109876543210,2.5e+22");
        assert!(parse_pool_minutes(&neg, "f.csv").unwrap_err().to_string().contains("inAmount0"));
    }
}
