//! The backtest loop: feeds bars to a strategy, queues its intents by the fill model and latency, runs each through
//! the simulated executor's flow, and records trades and equity. Its whole state is a serialisable [`Snapshot`].

use crate::config::{Costs, FillModel, Market};
use crate::metrics::{Metrics, compute_metrics};
use crate::sim::{Side, SimExecutor, swap_side};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_market::{MarketFeed, SeriesFeed};
use sextant_strategy::{
    ExecError, ExecErrorKind, FlowOutcome, FlowStatus, PortfolioView, PositionView, RetryPolicy, Strategy, run_flow,
};
use sextant_types::Intent;
use std::collections::BTreeMap;

/// Where in a bar a queued intent fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillAt {
    /// The bar's open.
    Open,
    /// The bar's close.
    Close,
}

/// An intent waiting for its fill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The asset it trades (index into the markets), when it trades one.
    pub asset: Option<usize>,
    /// Earliest point it may fill at: the asset's own bar count (`Snapshot::bars_seen`) when it trades an asset,
    /// so latency is counted in that asset's bars whatever other markets are merged in; else a step number.
    pub due: usize,
    /// Open or close of that step's bar.
    pub at: FillAt,
    /// The intent.
    pub intent: Intent,
}

/// A round trip: one entry (possibly scaled into) and its exit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// Asset symbol.
    pub asset: String,
    /// Entry fill time, unix ms.
    pub entry_time_ms: i64,
    /// Exit fill time, unix ms.
    pub exit_time_ms: i64,
    /// Average entry execution price.
    pub entry_price: f64,
    /// Exit execution price.
    pub exit_price: f64,
    /// Quantity bought, asset units.
    pub size: f64,
    /// Profit in quote units after every cost of both legs.
    pub pnl: f64,
    /// `pnl` over the cash the entry cost.
    #[serde(rename = "return")]
    pub ret: f64,
}

/// An entry not yet exited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenTrade {
    /// First entry fill time.
    pub entry_time_ms: i64,
    /// Quantity bought.
    pub size: f64,
    /// Cash spent, all costs included.
    pub cost: f64,
    /// Average entry execution price.
    pub entry_price: f64,
}

/// Costs paid so far, in quote units.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CostTotals {
    /// DEX fees.
    pub fees: f64,
    /// Gas.
    pub gas: f64,
    /// Price impact.
    pub slippage: f64,
    /// Sandwich loss.
    pub mev: f64,
}

/// How intents fared.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FlowStats {
    /// Flows that completed.
    pub completed: usize,
    /// Failed flows by reason (e.g. `slippage_exceeded`).
    pub failed: BTreeMap<String, usize>,
    /// Retries made after transient failures.
    pub retries: usize,
    /// Intents still queued when the data ran out (dropped).
    pub expired: usize,
    /// Hold intents seen.
    pub holds: usize,
}

/// One point of the equity curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EquityPoint {
    /// Step time, unix ms.
    pub timestamp_ms: i64,
    /// Cash plus holdings at the step's closes.
    pub equity: f64,
}

/// Everything needed to resume a backtest after any step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot<St> {
    /// The next step to run.
    pub next_step: usize,
    /// The strategy's own state.
    pub strategy: St,
    /// Cash and positions.
    pub portfolio: PortfolioView,
    /// Intents waiting to fill.
    pub pending: Vec<Pending>,
    /// Bars of each market seen so far.
    pub bars_seen: Vec<usize>,
    /// Time of the last step run.
    pub last_time_ms: Option<i64>,
    /// Each market's latest close and the time of its latest bar: what the end-of-run close-out prices at.
    pub last_bars: Vec<Option<(i64, f64)>>,
    /// Open round trips, per asset.
    pub open_trades: Vec<Option<OpenTrade>>,
    /// Closed round trips.
    pub trades: Vec<Trade>,
    /// Equity after each step.
    pub equity: Vec<EquityPoint>,
    /// Costs paid.
    pub totals: CostTotals,
    /// Intent outcomes.
    pub flows: FlowStats,
    /// State of the simulated transaction-failure generator.
    pub rng: u64,
}

/// What a finished backtest reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestResult {
    /// Strategy name.
    pub strategy: String,
    /// Data source of each market.
    pub markets: Vec<String>,
    /// Performance and cost metrics.
    pub metrics: Metrics,
    /// Closed round trips.
    pub trades: Vec<Trade>,
    /// Equity after each step.
    pub equity: Vec<EquityPoint>,
    /// Intent outcomes.
    pub flows: FlowStats,
}

/// A backtest of one strategy over some markets.
pub struct Engine<'a, S: Strategy> {
    strategy: &'a S,
    markets: &'a [Market],
    costs: Costs,
    initial_cash: f64,
    retry: RetryPolicy,
    /// Bars before this time only warm the strategy up: it steps, its intents are dropped, no equity is recorded.
    trade_from_ms: i64,
}

impl<'a, S: Strategy> Engine<'a, S> {
    /// An engine; `markets` are traded against shared cash of `initial_cash` quote units.
    pub fn new(strategy: &'a S, markets: &'a [Market], costs: Costs, initial_cash: f64) -> Self {
        // The simulator has no wall clock: retries happen within the same fill, without delay.
        let retry = RetryPolicy { max_attempts: costs.max_attempts, base_delay_ms: 0, max_delay_ms: 0 };
        Engine { strategy, markets, costs, initial_cash, retry, trade_from_ms: i64::MIN }
    }

    /// Bars before `time_ms` only warm the strategy up (its indicators fill, its intents are dropped, the books
    /// and the equity curve start at the first bar at or after `time_ms`): how a walk-forward's test window starts
    /// flat with indicators computed from the bars before it.
    pub fn trading_from(mut self, time_ms: i64) -> Self {
        self.trade_from_ms = time_ms;
        self
    }

    fn feed(&self) -> SeriesFeed<'a> {
        SeriesFeed::new(self.markets.iter().map(|m| (m.base.clone(), m.quote.clone(), &m.series)).collect())
    }

    /// The state before the first bar.
    pub fn start(&self) -> Snapshot<S::State> {
        let view = self.feed().empty_view();
        let quote = self.markets.first().map(|m| m.quote.clone()).unwrap_or_else(view_quote_fallback);
        Snapshot {
            next_step: 0,
            strategy: self.strategy.init(&view),
            portfolio: PortfolioView {
                quote,
                cash: self.initial_cash,
                positions: self
                    .markets
                    .iter()
                    .map(|m| PositionView { base: m.base.clone(), quantity: 0.0, entry_price: None })
                    .collect(),
                lp: Vec::new(),
                lending: Vec::new(),
            },
            pending: Vec::new(),
            bars_seen: vec![0; self.markets.len()],
            last_time_ms: None,
            last_bars: vec![None; self.markets.len()],
            open_trades: vec![None; self.markets.len()],
            trades: Vec::new(),
            equity: Vec::new(),
            totals: CostTotals::default(),
            flows: FlowStats::default(),
            rng: 0x5EED_5EED_5EED_5EED,
        }
    }

    /// Runs the whole backtest.
    pub fn run(&self) -> BacktestResult {
        let mut snap = self.start();
        self.advance(&mut snap, None, &mut |_| {});
        self.finish(snap)
    }

    /// Runs steps from `snap.next_step` up to (not including) `until`, or to the end of the data. `progress` is
    /// called with the step number every 65536 steps.
    pub fn advance(&self, snap: &mut Snapshot<S::State>, until: Option<usize>, progress: &mut dyn FnMut(usize)) {
        let mut feed = self.feed();
        if feed.seek(snap.next_step) {
            self.advance_feed(snap, &mut feed, until, progress);
        }
    }

    /// As [`Engine::advance`], pulling steps from any feed, which must be positioned at `snap.next_step` and give
    /// one asset slot per market, in market order.
    pub fn advance_feed<F: MarketFeed + ?Sized>(
        &self,
        snap: &mut Snapshot<S::State>,
        feed: &mut F,
        until: Option<usize>,
        progress: &mut dyn FnMut(usize),
    ) {
        let mut view = feed.empty_view();
        let mut intents = Vec::new();
        // The curve grows by one point a step: reserve it once rather than reallocating a million-point vector.
        let steps_left = self.markets.iter().map(|m| m.series.len()).sum::<usize>().saturating_sub(snap.next_step);
        snap.equity.reserve(steps_left.min(until.map_or(usize::MAX, |u| u.saturating_sub(snap.next_step))));
        let mut prices = vec![None; self.markets.len()];
        let delay = self.costs.latency_bars + usize::from(self.costs.fill == FillModel::NextOpen);
        let at = if self.costs.fill == FillModel::NextOpen { FillAt::Open } else { FillAt::Close };
        while until.is_none_or(|u| snap.next_step < u) && feed.next_into(&mut view) {
            let step = view.step;
            for ((seen, last), a) in snap.bars_seen.iter_mut().zip(snap.last_bars.iter_mut()).zip(&view.assets) {
                if let Some(c) = a.candle {
                    *seen += 1;
                    *last = Some((view.timestamp_ms, c.close));
                }
            }
            snap.last_time_ms = Some(view.timestamp_ms);
            if !snap.pending.is_empty() {
                for (p, a) in prices.iter_mut().zip(&view.assets) {
                    *p = a.candle.map(|c| c.open);
                }
                self.fill_due(snap, step, FillAt::Open, &prices, view.timestamp_ms);
            }
            self.strategy.on_step(&mut snap.strategy, &view, &snap.portfolio, &mut intents);
            if view.timestamp_ms < self.trade_from_ms {
                // warm-up: each intent is refused at once, so the strategy's books stay as if it had been told no
                for intent in intents.drain(..) {
                    let error = ExecError::new(ExecErrorKind::Unsupported, "warm-up: no trading before the window");
                    let outcome = FlowOutcome { intent, status: FlowStatus::Failed { error }, attempts: 0 };
                    self.strategy.on_outcome(&mut snap.strategy, &outcome);
                }
                snap.next_step = step + 1;
                continue;
            }
            for intent in intents.drain(..) {
                if matches!(intent, Intent::Hold { .. }) {
                    snap.flows.holds += 1;
                } else {
                    let asset = swap_side(&snap.portfolio, &intent).map(|(i, _)| i);
                    let due = asset.map_or(step, |i| snap.bars_seen[i] + delay);
                    snap.pending.push(Pending { asset, due, at, intent });
                }
            }
            if !snap.pending.is_empty() {
                for (p, a) in prices.iter_mut().zip(&view.assets) {
                    *p = a.candle.map(|c| c.close);
                }
                self.fill_due(snap, step, FillAt::Close, &prices, view.timestamp_ms);
            }
            snap.equity.push(EquityPoint { timestamp_ms: view.timestamp_ms, equity: snap.portfolio.equity(&view) });
            snap.next_step = step + 1;
            if step & 0xFFFF == 0 {
                progress(step);
            }
        }
    }

    fn fill_due(&self, snap: &mut Snapshot<S::State>, step: usize, at: FillAt, prices: &[Option<f64>], time: i64) {
        let mut i = 0;
        while i < snap.pending.len() {
            let p = &snap.pending[i];
            let due = match p.asset {
                Some(a) => prices[a].is_some() && snap.bars_seen[a] >= p.due,
                None => step >= p.due,
            };
            if p.at == at && due {
                let pending = snap.pending.remove(i);
                self.execute(snap, &pending.intent, prices, time);
            } else {
                i += 1;
            }
        }
    }

    fn execute(&self, snap: &mut Snapshot<S::State>, intent: &Intent, prices: &[Option<f64>], time: i64) {
        self.execute_with(false, snap, intent, prices, time);
    }

    fn execute_with(
        &self,
        forced: bool,
        snap: &mut Snapshot<S::State>,
        intent: &Intent,
        prices: &[Option<f64>],
        time: i64,
    ) {
        let cash_before = snap.portfolio.cash;
        let mut executor = SimExecutor {
            portfolio: &mut snap.portfolio,
            prices,
            costs: &self.costs,
            timestamp_ms: time,
            forced,
            rng: &mut snap.rng,
        };
        let outcome = run_flow(&mut executor, intent, &self.retry);
        let cash_delta = snap.portfolio.cash - cash_before;
        self.record(snap, &outcome, cash_delta);
        self.strategy.on_outcome(&mut snap.strategy, &outcome);
    }

    fn record(&self, snap: &mut Snapshot<S::State>, outcome: &FlowOutcome, cash_delta: f64) {
        snap.flows.retries += outcome.attempts.saturating_sub(1) as usize;
        let fill = match &outcome.status {
            FlowStatus::Failed { error } => {
                *snap.flows.failed.entry(error.kind.name().to_string()).or_default() += 1;
                return;
            }
            FlowStatus::Completed { fill } => fill,
        };
        snap.flows.completed += 1;
        let Some(fill) = fill else { return };
        let Some((asset, side)) = swap_side(&snap.portfolio, &outcome.intent) else { return };
        snap.totals.fees += fill.fee_paid;
        snap.totals.gas += fill.gas_paid;
        snap.totals.slippage += fill.slippage_paid;
        snap.totals.mev += fill.mev_paid;
        let base = &snap.portfolio.positions[asset].base;
        match side {
            Side::Buy => {
                let size = fill.amount_out.to_units(base);
                let open = snap.open_trades[asset].get_or_insert(OpenTrade {
                    entry_time_ms: fill.timestamp_ms,
                    size: 0.0,
                    cost: 0.0,
                    entry_price: fill.exec_price,
                });
                if open.size > 0.0 {
                    open.entry_price = (open.entry_price * open.size + fill.exec_price * size) / (open.size + size);
                }
                open.size += size;
                open.cost += -cash_delta;
            }
            Side::Sell => {
                // A trade closes when the position is flat; partial sells accumulate into its exit.
                if snap.portfolio.positions[asset].quantity > 0.0 {
                    if let Some(open) = snap.open_trades[asset].as_mut() {
                        open.cost -= cash_delta;
                    }
                    return;
                }
                let Some(open) = snap.open_trades[asset].take() else { return };
                let pnl = cash_delta - open.cost;
                snap.trades.push(Trade {
                    asset: base.symbol.clone(),
                    entry_time_ms: open.entry_time_ms,
                    exit_time_ms: fill.timestamp_ms,
                    entry_price: open.entry_price,
                    exit_price: fill.exec_price,
                    size: open.size,
                    pnl,
                    ret: if open.cost > 0.0 { pnl / open.cost } else { 0.0 },
                });
            }
        }
    }

    /// Ends the backtest: drops intents still queued, asks the strategy to unwind and fills that at each asset's
    /// last close, then computes metrics.
    pub fn finish(&self, mut snap: Snapshot<S::State>) -> BacktestResult {
        snap.flows.expired += snap.pending.len();
        snap.pending.clear();
        if let Some(time) = snap.last_time_ms {
            // The view of the last step, rebuilt from the snapshot: no data needs to be at hand to finish.
            let mut view = self.feed().empty_view();
            view.step = snap.next_step.saturating_sub(1);
            view.timestamp_ms = time;
            for (a, last) in view.assets.iter_mut().zip(&snap.last_bars) {
                a.last_close = last.map(|(_, close)| close);
            }
            let mut intents = Vec::new();
            self.strategy.teardown(&mut snap.strategy, &view, &snap.portfolio, &mut intents);
            let prices: Vec<Option<f64>> = view.assets.iter().map(|a| a.last_close).collect();
            // The final close-out is a market exit: it pays whatever impact the pool charges rather than being
            // refused by the tolerance, so every position ends in a recorded trade. Each asset closes at its own
            // last bar, which may be earlier than the last step.
            for intent in intents {
                let at =
                    swap_side(&snap.portfolio, &intent).and_then(|(i, _)| snap.last_bars[i]).map_or(time, |(t, _)| t);
                self.execute_with(true, &mut snap, &intent, &prices, at);
            }
            if let Some(last) = snap.equity.last_mut() {
                last.equity = snap.portfolio.equity(&view);
            }
        }
        let metrics = compute_metrics(self.initial_cash, &snap.equity, &snap.trades, &snap.totals);
        BacktestResult {
            strategy: self.strategy.name(),
            markets: self.markets.iter().map(|m| format!("{}: {}", m.base.symbol, m.source)).collect(),
            metrics,
            trades: snap.trades,
            equity: snap.equity,
            flows: snap.flows,
        }
    }

    /// Checks that a snapshot fits these markets.
    ///
    /// # Errors
    /// When its asset count differs or its step is past the data.
    pub fn check_snapshot(&self, snap: &Snapshot<S::State>) -> Result<()> {
        if snap.portfolio.positions.len() != self.markets.len() {
            return Err(Error::Snapshot(format!(
                "snapshot has {} assets, the config has {}",
                snap.portfolio.positions.len(),
                self.markets.len()
            )));
        }
        if !self.feed().seek(snap.next_step) {
            return Err(Error::Snapshot(format!("snapshot is at step {}, past the end of the data", snap.next_step)));
        }
        let n = self.markets.len();
        let pending_ok = snap.pending.iter().all(|p| p.asset.is_none_or(|a| a < n));
        if snap.open_trades.len() != n
            || snap.bars_seen.len() != n
            || snap.equity.len() != snap.next_step
            || !pending_ok
        {
            return Err(Error::Snapshot(
                "snapshot is inconsistent (per-asset lists or equity curve have the wrong length)".into(),
            ));
        }
        for (position, market) in snap.portfolio.positions.iter().zip(self.markets) {
            if position.base.id != market.base.id {
                return Err(Error::Snapshot(format!(
                    "snapshot trades {}, the config trades {}",
                    position.base.symbol, market.base.symbol
                )));
            }
        }
        // The strategy's own state is checked by building a fresh one and comparing shapes through serde.
        let fresh = serde_json::to_value(self.strategy.init(&self.feed().empty_view())).ok();
        let saved = serde_json::to_value(&snap.strategy).ok();
        if shape(fresh.as_ref()) != shape(saved.as_ref()) {
            return Err(Error::Snapshot("the strategy state does not fit this strategy and these markets".into()));
        }
        Ok(())
    }
}

/// The structure of a JSON value (object keys, array lengths, value kinds), to tell whether a saved strategy state
/// belongs to this strategy and these markets.
fn shape(v: Option<&serde_json::Value>) -> Option<String> {
    use serde_json::Value;
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                out.push('{');
                for (k, v) in m {
                    out.push_str(k);
                    out.push(':');
                    walk(v, out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push_str(&format!("[{}]", a.len()));
            }
            Value::Null => out.push('n'),
            _ => out.push('v'),
        }
    }
    v.map(|v| {
        let mut s = String::new();
        walk(v, &mut s);
        s
    })
}

/// The cash token of an engine given no markets (nothing trades; the run reports its untouched cash).
fn view_quote_fallback() -> sextant_types::Token {
    sextant_types::Token::simulated("USDC", 6).expect("6 decimals is valid")
}
