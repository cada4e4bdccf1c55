use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use sextant_data::{load_ohlcv, time::write_time};
use sextant_indicators::{Atr, Bbands, Ema, Hlc, Indicator, Macd, Rsi, Sma};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

/// Compute an indicator over an OHLCV file and print it as CSV
///
/// Prints `timestamp,<columns>`, then one row per input bar; value fields are empty while the indicator warms up.
/// Values equal TA-Lib's, including the bar where the first value appears.
///
/// Columns: sma/ema/rsi/atr `value`; bbands `upper,middle,lower`; macd `macd,signal,hist`.
///
/// Defaults: rsi/atr period 14; sma/ema period 20; bbands period 20, nbdev 2.0; macd fast 12, slow 26, signal 9.
#[derive(clap::Args)]
pub struct Args {
    /// The indicator.
    #[arg(value_enum)]
    kind: Kind,
    /// OHLCV CSV file (header with timestamp/date/... and open,high,low,close[,volume], or Binance klines).
    #[arg(long)]
    data: PathBuf,
    /// Period [defaults: sma/ema 20, rsi/atr 14, bbands 20].
    #[arg(long)]
    period: Option<usize>,
    /// Bollinger band width in standard deviations [default: 2.0].
    #[arg(long)]
    nbdev: Option<f64>,
    /// MACD fast EMA period [default: 12].
    #[arg(long)]
    fast: Option<usize>,
    /// MACD slow EMA period [default: 26].
    #[arg(long)]
    slow: Option<usize>,
    /// MACD signal EMA period [default: 9].
    #[arg(long)]
    signal: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Simple moving average of the close.
    Sma,
    /// Exponential moving average of the close (SMA-seeded).
    Ema,
    /// Wilder's relative strength index of the close.
    Rsi,
    /// Bollinger bands (SMA middle) of the close.
    Bbands,
    /// MACD of the close.
    Macd,
    /// Average true range (Wilder).
    Atr,
}

/// Maps one bar to the indicator's output fields (None while warming up).
type BarFn = dyn FnMut(&sextant_market::Candle) -> Option<Vec<f64>>;

fn reject(name: &str, given: bool, kind: &str) -> Result<()> {
    if given {
        bail!("--{name} does not apply to {kind}");
    }
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    let kind_name = a.kind.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
    let is_macd = a.kind == Kind::Macd;
    reject("nbdev", a.nbdev.is_some() && a.kind != Kind::Bbands, &kind_name)?;
    for (name, v) in [("fast", a.fast), ("slow", a.slow), ("signal", a.signal)] {
        reject(name, v.is_some() && !is_macd, &kind_name)?;
    }
    reject("period", a.period.is_some() && is_macd, &kind_name)?;

    let series = load_ohlcv(&a.data)?;
    let ctx = |e: sextant_indicators::Error| anyhow::anyhow!("{e}");
    let mut compute: Box<BarFn> = match a.kind {
        Kind::Sma => {
            let mut i = Sma::new(a.period.unwrap_or(20)).map_err(ctx)?;
            Box::new(move |c| i.update(c.close).map(|v| vec![v]))
        }
        Kind::Ema => {
            let mut i = Ema::new(a.period.unwrap_or(20)).map_err(ctx)?;
            Box::new(move |c| i.update(c.close).map(|v| vec![v]))
        }
        Kind::Rsi => {
            let mut i = Rsi::new(a.period.unwrap_or(14)).map_err(ctx)?;
            Box::new(move |c| i.update(c.close).map(|v| vec![v]))
        }
        Kind::Atr => {
            let mut i = Atr::new(a.period.unwrap_or(14)).map_err(ctx)?;
            Box::new(move |c| i.update(Hlc { high: c.high, low: c.low, close: c.close }).map(|v| vec![v]))
        }
        Kind::Bbands => {
            let mut i = Bbands::new(a.period.unwrap_or(20), a.nbdev.unwrap_or(2.0)).map_err(ctx)?;
            Box::new(move |c| i.update(c.close).map(|b| vec![b.upper, b.middle, b.lower]))
        }
        Kind::Macd => {
            let mut i = Macd::new(a.fast.unwrap_or(12), a.slow.unwrap_or(26), a.signal.unwrap_or(9)).map_err(ctx)?;
            Box::new(move |c| i.update(c.close).map(|m| vec![m.macd, m.signal, m.hist]))
        }
    };
    let header = match a.kind {
        Kind::Bbands => "upper,middle,lower",
        Kind::Macd => "macd,signal,hist",
        _ => "value",
    };
    let empty = ",".repeat(header.matches(',').count() + 1);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut line = String::with_capacity(128);
    writeln!(out, "timestamp,{header}").context("writing to stdout")?;
    for c in &series.candles {
        line.clear();
        write_time(&mut line, c.timestamp_ms, series.time_style);
        match compute(c) {
            Some(values) => values.iter().for_each(|v| {
                let _ = write!(line, ",{v}");
            }),
            None => line.push_str(&empty),
        }
        line.push('\n');
        out.write_all(line.as_bytes()).context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}
