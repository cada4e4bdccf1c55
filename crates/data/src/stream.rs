//! A market feed that reads an OHLCV file on a background thread while the backtest consumes it, so loading and
//! running overlap and only a few blocks of bars are ever in memory.

use crate::{Error, Result, stream_ohlcv};
use sextant_market::{AssetView, Candle, MarketFeed, MarketView, TimeStyle};
use sextant_types::Token;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

/// One market streamed from a file. Implements [`MarketFeed`]: the engine pulls bars as the loader parses them.
pub struct FileFeed {
    base: Token,
    quote: Token,
    blocks: Receiver<Vec<Candle>>,
    loader: Option<JoinHandle<Result<(usize, TimeStyle)>>>,
    block: Vec<Candle>,
    pos: usize,
    step: usize,
    last_close: Option<f64>,
}

impl FileFeed {
    /// Starts reading `path` on a background thread.
    pub fn open(path: PathBuf, base: Token, quote: Token) -> Self {
        // Two blocks in flight at most: the loader runs ahead of the engine but memory stays bounded.
        let (tx, blocks) = sync_channel::<Vec<Candle>>(2);
        let loader = std::thread::spawn(move || stream_ohlcv(&path, |rows, _| tx.send(rows).is_ok()));
        FileFeed { base, quote, blocks, loader: Some(loader), block: Vec::new(), pos: 0, step: 0, last_close: None }
    }

    /// Lets the loader read the rest of the file, then returns how many bars it had and how it writes times.
    ///
    /// # Errors
    /// The file's read or parse error, if any; the feed then ended early, so results computed from it are partial.
    pub fn finish(mut self) -> Result<(usize, TimeStyle)> {
        // Take what is left, so the loader reaches the end (and any error in the rest of the file).
        while self.blocks.recv().is_ok() {}
        match self.loader.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::Invalid("the file reader thread panicked".into())),
            None => Err(Error::Invalid("the file reader was already finished".into())),
        }
    }

    fn next_candle(&mut self) -> Option<Candle> {
        while self.pos == self.block.len() {
            self.block = self.blocks.recv().ok()?;
            self.pos = 0;
        }
        self.pos += 1;
        Some(self.block[self.pos - 1])
    }
}

impl MarketFeed for FileFeed {
    fn next_into(&mut self, view: &mut MarketView) -> bool {
        let Some(c) = self.next_candle() else { return false };
        self.last_close = Some(c.close);
        view.step = self.step;
        view.timestamp_ms = c.timestamp_ms;
        view.assets[0].candle = Some(c);
        view.assets[0].last_close = self.last_close;
        self.step += 1;
        true
    }

    /// Streams only move forward: seeking skips bars.
    fn seek(&mut self, step: usize) -> bool {
        while self.step < step {
            let Some(c) = self.next_candle() else { return false };
            self.last_close = Some(c.close);
            self.step += 1;
        }
        self.step == step
    }

    fn empty_view(&self) -> MarketView {
        MarketView {
            step: 0,
            timestamp_ms: 0,
            assets: vec![AssetView {
                base: self.base.clone(),
                quote: self.quote.clone(),
                candle: None,
                last_close: None,
            }],
            lending: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SynthSpec, load_ohlcv, write_ohlcv};

    #[test]
    fn streams_the_same_bars_as_loading_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        let series = SynthSpec { bars: 150_000, ..SynthSpec::default() }.generate().unwrap();
        write_ohlcv(std::fs::File::create(&path).unwrap(), &series).unwrap();
        let (base, quote) = (Token::simulated("WETH", 18).unwrap(), Token::simulated("USDC", 6).unwrap());
        let mut feed = FileFeed::open(path.clone(), base.clone(), quote.clone());
        let mut view = feed.empty_view();
        let mut bars = Vec::new();
        while feed.next_into(&mut view) {
            assert_eq!(view.step, bars.len());
            bars.push(view.assets[0].candle.unwrap());
        }
        assert_eq!(feed.finish().unwrap(), (150_000, series.time_style));
        assert_eq!(bars, load_ohlcv(&path).unwrap().candles);

        // Seeking skips; finishing early still reads (and counts) the whole file.
        let mut feed = FileFeed::open(path.clone(), base.clone(), quote.clone());
        assert!(feed.seek(100_000));
        assert!(feed.next_into(&mut view));
        assert_eq!(view.assets[0].candle, Some(series.candles[100_000]));
        assert_eq!(feed.finish().unwrap().0, 150_000);

        // A bad row ends the feed and surfaces from finish.
        let text =
            std::fs::read_to_string(&path).unwrap().replacen("2024-01-02T03:00:00Z,", "2024-01-02T03:00:00Z,x", 1);
        std::fs::write(&path, text).unwrap();
        let mut feed = FileFeed::open(path, base, quote);
        let mut n = 0;
        while feed.next_into(&mut view) {
            n += 1;
        }
        assert!(n < 150_000);
        let err = feed.finish().unwrap_err().to_string();
        assert!(err.contains("m.csv:29: column open"), "{err}");
    }
}
