use crate::{Candle, CandleSeries, LendingView};
use sextant_types::Token;

/// One asset as a strategy sees it at a step.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetView {
    /// Asset traded (e.g. WETH).
    pub base: Token,
    /// Asset it is priced in (e.g. USDC).
    pub quote: Token,
    /// The bar that closed at this step, or None when this market has no bar at this time.
    pub candle: Option<Candle>,
    /// The most recent close seen for this asset, for valuing holdings between bars.
    pub last_close: Option<f64>,
}

/// Everything a strategy may look at in one step: the step's time and each configured asset, in config order.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketView {
    /// Step number, from 0.
    pub step: usize,
    /// Time of the step, unix milliseconds UTC.
    pub timestamp_ms: i64,
    /// One entry per configured asset.
    pub assets: Vec<AssetView>,
    /// One entry per configured lending market or vault (empty for strategies that trade only candles).
    pub lending: Vec<LendingView>,
}

/// A source of market steps. Synthetic, file and RPC data implement it; the engine pulls from it.
pub trait MarketFeed {
    /// Fills `view` with the next step and returns true, or returns false when the feed is exhausted.
    /// Reusing one view keeps the per-bar loop free of allocation.
    fn next_into(&mut self, view: &mut MarketView) -> bool;

    /// Positions the feed so the next step returned is `step` (used to resume a saved run). Returns false if the
    /// feed cannot reach that step.
    fn seek(&mut self, step: usize) -> bool;

    /// An empty view with one asset slot per market, to be filled by [`MarketFeed::next_into`].
    fn empty_view(&self) -> MarketView;
}

/// In-memory feed over one or more candle series, merged on time: each step is one distinct timestamp, and an asset
/// whose series has no bar at that time shows `candle: None`.
#[derive(Debug, Clone)]
pub struct SeriesFeed<'a> {
    markets: Vec<(Token, Token, &'a CandleSeries)>,
    cursors: Vec<usize>,
    last_close: Vec<Option<f64>>,
    step: usize,
}

impl<'a> SeriesFeed<'a> {
    /// A feed over `(base, quote, series)` markets.
    pub fn new(markets: Vec<(Token, Token, &'a CandleSeries)>) -> Self {
        let n = markets.len();
        SeriesFeed { markets, cursors: vec![0; n], last_close: vec![None; n], step: 0 }
    }

    fn next_time(&self) -> Option<i64> {
        self.markets
            .iter()
            .zip(&self.cursors)
            .filter_map(|((_, _, s), &c)| s.candles.get(c).map(|k| k.timestamp_ms))
            .min()
    }

    fn advance(&mut self, mut view: Option<&mut MarketView>) -> bool {
        // One market: every bar is a step; no merging needed.
        if let [(_, _, series)] = self.markets.as_slice() {
            let Some(k) = series.candles.get(self.cursors[0]) else { return false };
            self.cursors[0] += 1;
            self.last_close[0] = Some(k.close);
            if let Some(v) = view {
                v.step = self.step;
                v.timestamp_ms = k.timestamp_ms;
                v.assets[0].candle = Some(*k);
                v.assets[0].last_close = Some(k.close);
            }
            self.step += 1;
            return true;
        }
        let Some(t) = self.next_time() else { return false };
        if let Some(v) = view.as_deref_mut() {
            v.step = self.step;
            v.timestamp_ms = t;
        }
        for (i, (_, _, series)) in self.markets.iter().enumerate() {
            let candle = match series.candles.get(self.cursors[i]) {
                Some(k) if k.timestamp_ms == t => {
                    self.cursors[i] += 1;
                    self.last_close[i] = Some(k.close);
                    Some(*k)
                }
                _ => None,
            };
            if let Some(v) = view.as_deref_mut() {
                v.assets[i].candle = candle;
                v.assets[i].last_close = self.last_close[i];
            }
        }
        self.step += 1;
        true
    }
}

impl MarketFeed for SeriesFeed<'_> {
    fn next_into(&mut self, view: &mut MarketView) -> bool {
        self.advance(Some(view))
    }

    fn seek(&mut self, step: usize) -> bool {
        if step < self.step {
            self.cursors.iter_mut().for_each(|c| *c = 0);
            self.last_close.iter_mut().for_each(|c| *c = None);
            self.step = 0;
        }
        if let [(_, _, series)] = self.markets.as_slice() {
            // One market: step i is bar i.
            if step > series.candles.len() {
                return false;
            }
            self.cursors[0] = step;
            self.last_close[0] = step.checked_sub(1).map(|i| series.candles[i].close);
            self.step = step;
            return true;
        }
        while self.step < step {
            if !self.advance(None) {
                return false;
            }
        }
        true
    }

    fn empty_view(&self) -> MarketView {
        MarketView {
            step: 0,
            timestamp_ms: 0,
            assets: self
                .markets
                .iter()
                .map(|(b, q, _)| AssetView { base: b.clone(), quote: q.clone(), candle: None, last_close: None })
                .collect(),
            lending: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(times: &[i64]) -> CandleSeries {
        CandleSeries {
            candles: times
                .iter()
                .map(|&t| Candle {
                    timestamp_ms: t,
                    open: t as f64,
                    high: t as f64,
                    low: t as f64,
                    close: t as f64,
                    volume: 1.0,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn merges_markets_on_time_and_seeks() {
        let (a, b) = (series(&[1, 2, 4]), series(&[2, 3]));
        let usd = Token::simulated("USD", 6).unwrap();
        let x = Token::simulated("X", 18).unwrap();
        let y = Token::simulated("Y", 18).unwrap();
        let mut feed = SeriesFeed::new(vec![(x.clone(), usd.clone(), &a), (y, usd, &b)]);
        let mut view = feed.empty_view();
        let mut seen = vec![];
        while feed.next_into(&mut view) {
            seen.push((view.timestamp_ms, view.assets[0].candle.is_some(), view.assets[1].candle.is_some()));
        }
        assert_eq!(seen, [(1, true, false), (2, true, true), (3, false, true), (4, true, false)]);
        assert!(feed.seek(2));
        assert!(feed.next_into(&mut view));
        assert_eq!((view.step, view.timestamp_ms, view.assets[0].last_close), (2, 3, Some(2.0)));
        assert!(!feed.seek(9));
    }

    #[test]
    fn one_market_steps_and_seeks_by_index() {
        let a = series(&[10, 20, 30]);
        let usd = Token::simulated("USD", 6).unwrap();
        let x = Token::simulated("X", 18).unwrap();
        let mut feed = SeriesFeed::new(vec![(x, usd, &a)]);
        let mut view = feed.empty_view();
        assert!(feed.seek(2));
        assert!(feed.next_into(&mut view));
        assert_eq!((view.step, view.timestamp_ms, view.assets[0].last_close), (2, 30, Some(30.0)));
        assert!(!feed.next_into(&mut view));
        assert!(feed.seek(1));
        assert!(feed.next_into(&mut view));
        assert_eq!((view.step, view.timestamp_ms), (1, 20));
        assert!(feed.seek(3) && !feed.next_into(&mut view));
        assert!(!feed.seek(4));
        assert!(feed.seek(0) && feed.next_into(&mut view) && view.assets[0].last_close == Some(10.0));
    }
}
