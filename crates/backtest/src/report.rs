//! Reports of a finished backtest: the JSON document and a self-contained HTML page (inline SVG, no network).

use crate::lp::{LpBacktestResult, LpMetrics, LpRecord};
use crate::{BacktestResult, Metrics, Trade};
use serde::Serialize;
use sextant_data::time::format_time;
use sextant_market::TimeStyle;
use std::fmt::Write;

/// A trade as reports show it: the trade's own fields (times in unix ms included) plus its times written out in
/// the data's style.
#[derive(Debug, Clone, Serialize)]
pub struct TradeRow<'a> {
    /// Entry time, written as the data writes times.
    pub entry_time: String,
    /// Exit time, written as the data writes times.
    pub exit_time: String,
    /// The trade.
    #[serde(flatten)]
    pub trade: &'a Trade,
}

/// A point of the equity curve as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct EquityRow {
    /// Time.
    pub timestamp: String,
    /// Equity.
    pub equity: f64,
    /// Fall from the running peak, as a positive fraction.
    pub drawdown: f64,
}

/// The JSON document of `sextant backtest --json`.
#[derive(Debug, Clone, Serialize)]
pub struct JsonReport<'a> {
    /// Strategy name.
    pub strategy: &'a str,
    /// Market sources.
    pub markets: &'a [String],
    /// Metrics.
    pub metrics: &'a Metrics,
    /// Closed trades.
    pub trades: Vec<TradeRow<'a>>,
    /// Equity after every step.
    pub equity: Vec<EquityRow>,
    /// Intent outcomes.
    pub flows: &'a crate::FlowStats,
}

fn trade_rows(result: &BacktestResult, style: TimeStyle) -> Vec<TradeRow<'_>> {
    result
        .trades
        .iter()
        .map(|trade| TradeRow {
            entry_time: format_time(trade.entry_time_ms, style),
            exit_time: format_time(trade.exit_time_ms, style),
            trade,
        })
        .collect()
}

fn drawdowns(result: &BacktestResult) -> Vec<f64> {
    let mut peak = f64::MIN;
    result
        .equity
        .iter()
        .map(|p| {
            peak = peak.max(p.equity);
            if peak > 0.0 { 1.0 - p.equity / peak } else { 0.0 }
        })
        .collect()
}

/// Builds the JSON document; times are written in `style` (the data's own).
pub fn json_report(result: &BacktestResult, style: TimeStyle) -> JsonReport<'_> {
    let dd = drawdowns(result);
    JsonReport {
        strategy: &result.strategy,
        markets: &result.markets,
        metrics: &result.metrics,
        trades: trade_rows(result, style),
        equity: result
            .equity
            .iter()
            .zip(dd)
            .map(|(p, d)| EquityRow { timestamp: format_time(p.timestamp_ms, style), equity: p.equity, drawdown: d })
            .collect(),
        flows: &result.flows,
    }
}

/// The JSON document of an LP backtest: the usual report plus the LP metrics and every position.
#[derive(Debug, Clone, Serialize)]
pub struct LpJsonReport<'a> {
    /// Equity, metrics and flows as for every backtest.
    #[serde(flatten)]
    pub report: JsonReport<'a>,
    /// LP metrics.
    pub lp: &'a LpMetrics,
    /// Every position with its range, deposits, fees and impermanent loss.
    pub positions: &'a [LpRecord],
}

/// Builds the JSON document of an LP backtest.
pub fn lp_json_report(result: &LpBacktestResult, style: TimeStyle) -> LpJsonReport<'_> {
    LpJsonReport { report: json_report(&result.result, style), lp: &result.lp, positions: &result.positions }
}

/// The LP metrics in report order, with their values.
pub fn lp_metric_rows(m: &LpMetrics) -> [(&'static str, f64); 12] {
    LpMetrics::NAMES.map(|name| (name, m.get(name).unwrap_or(f64::NAN)))
}

/// Formats an LP metric for people.
pub fn format_lp_metric(name: &str, value: f64) -> String {
    match name {
        "fee_apr" | "apr" | "time_in_range" => format!("{:.2}%", value * 100.0),
        "rebalances" | "held_by_cost" => format!("{value:.0}"),
        _ => format!("{value:.2}"),
    }
}

/// The price at each step's close with each position's range drawn as a band over the time it was held.
fn range_chart(result: &LpBacktestResult, style: TimeStyle) -> String {
    let xs: Vec<i64> = result.result.equity.iter().map(|p| p.timestamp_ms).collect();
    let points = downsample(&xs, &result.prices, 800);
    let (w, h, pad_l, pad_b) = (960.0, 300.0, 70.0, 24.0);
    let mut svg = format!(r#"<svg viewBox="0 0 {w} {h}" role="img" aria-label="price and LP ranges">"#);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        svg.push_str("</svg>");
        return svg;
    };
    let (x0, x1) = (first.0 as f64, last.0 as f64);
    let (mut y0, mut y1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    for p in &result.positions {
        y0 = y0.min(p.price_lower);
        y1 = y1.max(p.price_upper);
    }
    // Keep very wide ranges from flattening the price line: the view is at most 3x the price's own span.
    let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let span = (hi - lo).max(hi * 1e-6);
    y0 = y0.max(lo - span);
    y1 = y1.min(hi + span);
    let f = Frame { w, h, pad_l, pad_b, x: (x0, x1), y: (y0, y1) };
    f.grid(&mut svg, format_price);
    for p in &result.positions {
        let (a, b) = (f.sx(p.opened_ms as f64), f.sx(p.closed_ms.unwrap_or(last.0) as f64));
        let (top, bottom) = (f.sy(p.price_upper), f.sy(p.price_lower));
        let _ = write!(
            svg,
            r##"<rect x="{a:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#2e9d5b" fill-opacity="0.18" stroke="#2e9d5b" stroke-opacity="0.5"><title>{}: {} to {}</title></rect>"##,
            (b - a).max(0.5),
            (bottom - top).max(0.5),
            escape(&p.id.0),
            format_price(p.price_lower),
            format_price(p.price_upper)
        );
    }
    f.time_axis(&mut svg, style);
    let path = f.path(&points);
    let _ = write!(svg, r##"<path d="{path}" fill="none" stroke="#1f5fbf" stroke-width="1.5"/></svg>"##);
    svg
}

/// A price with four significant digits whatever its size.
fn format_price(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{v:.digits$}")
}

/// The HTML report of an LP backtest: LP metrics, price with the ranges held, then the usual equity, drawdown and
/// metrics.
pub fn lp_html_report(result: &LpBacktestResult, style: TimeStyle, title: &str) -> String {
    let base = html_report(&result.result, style, title);
    let mut lp = String::from("<h2>Liquidity</h2><table>");
    for (name, v) in lp_metric_rows(&result.lp) {
        let _ = write!(lp, "<tr><td>{name}</td><td>{}</td></tr>", format_lp_metric(name, v));
    }
    let _ = write!(
        lp,
        "</table><h2>Price and ranges</h2><p>{} ranges; each band spans a range's prices over the time it was held.</p>",
        result.positions.len()
    );
    lp.push_str(&range_chart(result, style));
    match base.find("<h2>Metrics</h2>") {
        Some(i) => format!("{}{lp}{}", &base[..i], &base[i..]),
        None => base + &lp,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Reduces a series to at most `2 * buckets` points, keeping each bucket's low and high so spikes stay visible.
fn downsample(xs: &[i64], ys: &[f64], buckets: usize) -> Vec<(i64, f64)> {
    if xs.len() <= 2 * buckets {
        return xs.iter().copied().zip(ys.iter().copied()).collect();
    }
    let per = xs.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(2 * buckets);
    for start in (0..xs.len()).step_by(per) {
        let end = (start + per).min(xs.len());
        let (mut lo, mut hi) = (start, start);
        for i in start..end {
            if ys[i] < ys[lo] {
                lo = i;
            }
            if ys[i] > ys[hi] {
                hi = i;
            }
        }
        let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push((xs[a], ys[a]));
        if b != a {
            out.push((xs[b], ys[b]));
        }
    }
    out
}

/// A chart's plot area and value ranges: the scales, the grid with its labels, the time axis and lines.
struct Frame {
    w: f64,
    h: f64,
    pad_l: f64,
    pad_b: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn sx(&self, x: f64) -> f64 {
        self.pad_l + (x - self.x.0) / (self.x.1 - self.x.0).max(1.0) * (self.w - self.pad_l - 10.0)
    }

    fn sy(&self, y: f64) -> f64 {
        let (y0, y1) = self.y;
        10.0 + (y1 - y.clamp(y0, y1)) / (y1 - y0).max(1e-300) * (self.h - self.pad_b - 20.0)
    }

    /// Five horizontal grid lines with their values.
    fn grid(&self, svg: &mut String, label: impl Fn(f64) -> String) {
        for k in 0..=4 {
            let v = self.y.0 + (self.y.1 - self.y.0) * f64::from(k) / 4.0;
            let _ = write!(
                svg,
                r##"<line x1="{}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}</text>"##,
                self.pad_l,
                self.w - 10.0,
                self.pad_l - 6.0,
                self.sy(v) + 4.0,
                label(v),
                y = self.sy(v)
            );
        }
    }

    /// The first and last times under the plot.
    fn time_axis(&self, svg: &mut String, style: TimeStyle) {
        for (x, anchor) in [(self.x.0, "start"), (self.x.1, "end")] {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{}" font-size="11" text-anchor="{anchor}" fill="#555">{}</text>"##,
                self.sx(x),
                self.h - 6.0,
                format_time(x as i64, style)
            );
        }
    }

    /// An SVG path through the points.
    fn path(&self, points: &[(i64, f64)]) -> String {
        let mut path = String::with_capacity(points.len() * 16);
        for (i, (x, y)) in points.iter().enumerate() {
            let _ = write!(path, "{}{:.1},{:.1}", if i == 0 { "M" } else { "L" }, self.sx(*x as f64), self.sy(*y));
        }
        path
    }
}

fn svg_chart(points: &[(i64, f64)], color: &str, fill: bool, label: &str, style: TimeStyle, pct: bool) -> String {
    let (w, h, pad_l, pad_b) = (960.0, 260.0, 70.0, 24.0);
    let mut svg = format!(r#"<svg viewBox="0 0 {w} {h}" role="img" aria-label="{label}">"#);
    if points.len() < 2 {
        svg.push_str("</svg>");
        return svg;
    }
    let (x0, x1) = (points[0].0 as f64, points[points.len() - 1].0 as f64);
    let (mut y0, mut y1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if fill {
        y0 = y0.min(0.0);
        y1 = y1.max(0.0);
    }
    if y1 - y0 < 1e-12 {
        y1 = y0 + 1.0;
    }
    let f = Frame { w, h, pad_l, pad_b, x: (x0, x1), y: (y0, y1) };
    f.grid(&mut svg, |v| if pct { format!("{:.1}%", v * 100.0) } else { format!("{v:.2}") });
    f.time_axis(&mut svg, style);
    let mut path = f.path(points);
    if fill {
        let _ = write!(path, "L{:.1},{:.1}L{:.1},{:.1}Z", f.sx(x1), f.sy(0.0), f.sx(x0), f.sy(0.0));
        let _ =
            write!(svg, r#"<path d="{path}" fill="{color}" fill-opacity="0.35" stroke="{color}" stroke-width="1"/>"#);
    } else {
        let _ = write!(svg, r#"<path d="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>"#);
    }
    svg.push_str("</svg>");
    svg
}

/// Formats a metric for people: ratios as percentages, money with two decimals.
pub fn format_metric(name: &str, value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    match name {
        "total_return" | "cagr" | "volatility" | "max_drawdown" | "win_rate" => format!("{:.2}%", value * 100.0),
        "n_trades" => format!("{value:.0}"),
        "sharpe" | "sortino" | "calmar" => format!("{value:.3}"),
        _ => format!("{value:.2}"),
    }
}

/// The start of every HTML report: the page, its one stylesheet, the title as a heading.
fn page_head(title: &str) -> String {
    let mut html = String::with_capacity(64 * 1024);
    let _ = write!(
        html,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t}</title><style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1040px}}
table{{border-collapse:collapse;font-size:13px}}td,th{{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}}
th{{background:#f5f5f5}}td:first-child,th:first-child{{text-align:left}}.neg{{color:#b00}}.pos{{color:#070}}
svg{{width:100%;height:auto;border:1px solid #eee;margin-bottom:12px}}h2{{margin-top:28px}}
</style></head><body><h1>{t}</h1>"#,
        t = escape(title)
    );
    html
}

/// Renders the HTML report: metrics, equity and drawdown charts, and the trade table. One file, no scripts, no
/// network.
pub fn html_report(result: &BacktestResult, style: TimeStyle, title: &str) -> String {
    let xs: Vec<i64> = result.equity.iter().map(|p| p.timestamp_ms).collect();
    let eq: Vec<f64> = result.equity.iter().map(|p| p.equity).collect();
    let dd: Vec<f64> = drawdowns(result).into_iter().map(|d| -d).collect();
    let mut html = page_head(title);
    let _ = write!(
        html,
        "<p>Strategy <b>{}</b> on {}.</p><h2>Metrics</h2><table>",
        escape(&result.strategy),
        escape(&result.markets.join("; "))
    );
    for name in Metrics::NAMES {
        let v = result.metrics.get(name).unwrap_or(f64::NAN);
        let _ = write!(html, "<tr><td>{name}</td><td>{}</td></tr>", format_metric(name, v));
    }
    let _ = write!(
        html,
        "</table><p>Intents: {} completed, {} retries, failed: {}, {} still queued at the end.</p>",
        result.flows.completed,
        result.flows.retries,
        if result.flows.failed.is_empty() {
            "none".to_string()
        } else {
            result.flows.failed.iter().map(|(why, n)| format!("{n} {why}")).collect::<Vec<_>>().join(", ")
        },
        result.flows.expired
    );
    html.push_str("<h2>Equity</h2>");
    html.push_str(&svg_chart(&downsample(&xs, &eq, 800), "#1f5fbf", false, "equity curve", style, false));
    html.push_str("<h2>Drawdown</h2>");
    html.push_str(&svg_chart(&downsample(&xs, &dd, 800), "#c0392b", true, "drawdown", style, true));
    let _ = write!(html, "<h2>Trades ({})</h2>", result.trades.len());
    const MAX_ROWS: usize = 5000;
    if result.trades.len() > MAX_ROWS {
        let _ = write!(html, "<p>Showing the first {MAX_ROWS}; the JSON report has them all.</p>");
    }
    html.push_str("<table><tr><th>asset</th><th>entry</th><th>exit</th><th>entry price</th><th>exit price</th><th>size</th><th>pnl</th><th>return</th></tr>");
    for row in trade_rows(result, style).iter().take(MAX_ROWS) {
        let t = row.trade;
        let class = if t.pnl < 0.0 { "neg" } else { "pos" };
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.6}</td><td>{:.6}</td><td>{:.6}</td><td class="{class}">{:.2}</td><td class="{class}">{:.2}%</td></tr>"#,
            escape(&t.asset),
            row.entry_time,
            row.exit_time,
            t.entry_price,
            t.exit_price,
            t.size,
            t.pnl,
            t.ret * 100.0
        );
    }
    html.push_str("</table></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_extremes_and_bounds_size() {
        let xs: Vec<i64> = (0..100_000).collect();
        let mut ys: Vec<f64> = xs.iter().map(|&x| (x as f64 / 1000.0).sin()).collect();
        ys[54_321] = 50.0;
        ys[77_777] = -50.0;
        let d = downsample(&xs, &ys, 500);
        assert!(d.len() <= 1000);
        assert!(d.contains(&(54_321, 50.0)) && d.contains(&(77_777, -50.0)));
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
    }
}

/// A decision of the log as reports show it: its fields plus its time written out.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRow<'a> {
    /// Time, written as the data writes times.
    pub time: String,
    /// The decision.
    #[serde(flatten)]
    pub decision: &'a sextant_strategy::Decision,
}

/// The JSON document of a lending backtest: the usual report plus the lending results and the decision log.
#[derive(Debug, Clone, Serialize)]
pub struct LendingJsonReport<'a> {
    /// Equity, metrics and flows as for every backtest.
    #[serde(flatten)]
    pub report: JsonReport<'a>,
    /// APY realised over the run.
    pub realised_apy: f64,
    /// APY of the best single market held throughout without costs.
    pub best_single_apy: f64,
    /// Rewards claimed, quote units.
    pub rewards_claimed: f64,
    /// Per-market results.
    pub lending_markets: &'a [crate::lending::MarketRecord],
    /// Every decision explained, in order.
    pub decisions: Vec<DecisionRow<'a>>,
    /// Every deposit and withdrawal carried out.
    pub movements: &'a [crate::lending::Movement],
}

/// Builds the JSON document of a lending backtest.
pub fn lending_json_report(r: &crate::lending::LendingBacktestResult, style: TimeStyle) -> LendingJsonReport<'_> {
    LendingJsonReport {
        report: json_report(&r.result, style),
        realised_apy: r.realised_apy,
        best_single_apy: r.best_single_apy,
        rewards_claimed: r.rewards_claimed,
        lending_markets: &r.markets,
        decisions: r
            .decisions
            .iter()
            .map(|d| DecisionRow { time: format_time(d.timestamp_ms, style), decision: d })
            .collect(),
        movements: &r.movements,
    }
}

/// The HTML report of a lending backtest: the markets, where the money sat over time, the decision log, then the
/// usual equity, drawdown and metrics.
pub fn lending_html_report(r: &crate::lending::LendingBacktestResult, style: TimeStyle, title: &str) -> String {
    let base = html_report(&r.result, style, title);
    let mut s = String::from("<h2>Lending</h2><table>");
    for (name, v) in [
        ("realised APY", format!("{:.3}%", r.realised_apy * 100.0)),
        ("best single market APY (no costs)", format!("{:.3}%", r.best_single_apy * 100.0)),
        ("rewards claimed", format!("{:.2}", r.rewards_claimed)),
        ("decisions", r.decisions.len().to_string()),
        ("deposits and withdrawals", r.movements.len().to_string()),
    ] {
        let _ = write!(s, "<tr><td>{name}</td><td>{v}</td></tr>");
    }
    s.push_str("</table><h2>Markets</h2><table><tr><th>market</th><th>protocol</th><th>mean APY</th><th>time held</th><th>interest</th><th>lost</th><th>held at end</th></tr>");
    for m in &r.markets {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{:.2}%</td><td>{:.1}%</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            escape(&m.market),
            m.protocol.name(),
            m.mean_supply_apy * 100.0,
            m.time_held * 100.0,
            m.interest,
            m.lost,
            m.held_at_end
        );
    }
    s.push_str("</table><h2>Where the money sat</h2>");
    s.push_str(&allocation_chart(r, style));
    let _ = write!(
        s,
        "<h2>Decision log</h2><p>{} decisions: every move, forced exit, reward claim and change of mind, with the rule that fired.</p><table><tr><th>time</th><th>action</th><th>from</th><th>to</th><th>amount</th><th>expected gain</th><th>cost</th><th>rule</th><th>why</th></tr>",
        r.decisions.len()
    );
    for d in &r.decisions {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            format_time(d.timestamp_ms, style),
            escape(&d.action),
            escape(d.from.as_deref().unwrap_or("cash")),
            escape(d.to.as_deref().unwrap_or("cash")),
            d.amount,
            d.expected_gain,
            d.cost,
            escape(&d.rule),
            escape(&d.detail)
        );
    }
    s.push_str("</table>");
    match base.find("<h2>Metrics</h2>") {
        Some(i) => format!("{}{s}{}", &base[..i], &base[i..]),
        None => base + &s,
    }
}

/// One band per market: the money held there at each step, stacked, rebuilt from the movements and the interest
/// (approximated by each step's equity share; shown to see where the money went, not to the cent).
fn allocation_chart(r: &crate::lending::LendingBacktestResult, style: TimeStyle) -> String {
    const COLORS: [&str; 8] = ["#1f5fbf", "#2e9d5b", "#c0392b", "#8e44ad", "#d68910", "#16a085", "#7f8c8d", "#2c3e50"];
    let eq = &r.result.equity;
    let (w, h, pad_l, pad_b) = (960.0, 260.0, 70.0, 24.0);
    let mut svg = format!(r#"<svg viewBox="0 0 {w} {h}" role="img" aria-label="allocation">"#);
    if eq.len() < 2 {
        svg.push_str("</svg>");
        return svg;
    }
    let ids: Vec<&str> = r.markets.iter().map(|m| m.market.as_str()).collect();
    // principal per market through time from the movements (interest is small against moves at this scale)
    let mut held = vec![0.0f64; ids.len()];
    let mut cursor = 0;
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(eq.len());
    for step in 0..eq.len() {
        while cursor < r.movements.len() && r.movements[cursor].step <= step {
            let mv = &r.movements[cursor];
            if let Some(i) = ids.iter().position(|id| *id == mv.market) {
                held[i] = (held[i] + mv.amount).max(0.0);
            }
            cursor += 1;
        }
        rows.push(held.clone());
    }
    let top = rows.iter().map(|r| r.iter().sum::<f64>()).fold(0.0, f64::max).max(1.0);
    let f = Frame {
        w,
        h,
        pad_l,
        pad_b,
        x: (eq[0].timestamp_ms as f64, eq[eq.len() - 1].timestamp_ms as f64),
        y: (0.0, top),
    };
    f.grid(&mut svg, |v| format!("{v:.0}"));
    f.time_axis(&mut svg, style);
    let stride = (eq.len() / 800).max(1);
    let mut base = vec![0.0f64; eq.len()];
    for (k, id) in ids.iter().enumerate() {
        if rows.iter().all(|r| r[k] == 0.0) {
            continue;
        }
        let mut d = String::new();
        let idx: Vec<usize> = (0..eq.len()).step_by(stride).chain(std::iter::once(eq.len() - 1)).collect();
        for (j, &i) in idx.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if j == 0 { "M" } else { "L" },
                f.sx(eq[i].timestamp_ms as f64),
                f.sy(base[i] + rows[i][k])
            );
        }
        for &i in idx.iter().rev() {
            let _ = write!(d, "L{:.1},{:.1}", f.sx(eq[i].timestamp_ms as f64), f.sy(base[i]));
        }
        let c = COLORS[k % COLORS.len()];
        let _ = write!(
            svg,
            r#"<path d="{d}Z" fill="{c}" fill-opacity="0.55" stroke="{c}" stroke-width="0.5"><title>{}</title></path>"#,
            escape(id)
        );
        for (b, row) in base.iter_mut().zip(&rows) {
            *b += row[k];
        }
    }
    let mut x = pad_l;
    for (k, id) in ids.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<rect x="{x:.0}" y="2" width="10" height="10" fill="{}"/><text x="{:.0}" y="11" font-size="11" fill="#333">{}</text>"##,
            COLORS[k % COLORS.len()],
            x + 14.0,
            escape(id)
        );
        x += 24.0 + 7.0 * id.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// The fan chart of a stress run: equity over initial cash at each curve point, the 5-95 % and 25-75 % bands, the
/// median and the worst path.
fn fan_chart(s: &crate::stress::StressSummary, times: &[i64], style: TimeStyle) -> String {
    let (w, h, pad_l, pad_b) = (960.0, 320.0, 70.0, 24.0);
    let mut svg = format!(r#"<svg viewBox="0 0 {w} {h}" role="img" aria-label="equity fan chart">"#);
    let n = s.fan.len().min(times.len());
    if n < 2 {
        svg.push_str("</svg>");
        return svg;
    }
    let mut y0 = f64::MAX;
    let mut y1 = f64::MIN;
    for v in s.fan.iter().flatten().chain(&s.worst_curve).filter(|v| v.is_finite()) {
        y0 = y0.min(*v);
        y1 = y1.max(*v);
    }
    if y1 - y0 < 1e-12 {
        y1 = y0 + 1.0;
    }
    let f = Frame { w, h, pad_l, pad_b, x: (times[0] as f64, times[n - 1] as f64), y: (y0, y1) };
    f.grid(&mut svg, |v| format!("{:+.0}%", (v - 1.0) * 100.0));
    f.time_axis(&mut svg, style);
    let band = |lo: usize, hi: usize| {
        let upper: Vec<(i64, f64)> = (0..n).map(|i| (times[i], s.fan[i][hi])).collect();
        let lower: Vec<(i64, f64)> = (0..n).rev().map(|i| (times[i], s.fan[i][lo])).collect();
        let mut d = f.path(&upper);
        d.push_str(&f.path(&lower).replacen('M', "L", 1));
        d.push('Z');
        d
    };
    let _ = write!(svg, r##"<path d="{}" fill="#1f5fbf" fill-opacity="0.15" stroke="none"/>"##, band(0, 4));
    let _ = write!(svg, r##"<path d="{}" fill="#1f5fbf" fill-opacity="0.3" stroke="none"/>"##, band(1, 3));
    let median: Vec<(i64, f64)> = (0..n).map(|i| (times[i], s.fan[i][2])).collect();
    let _ = write!(svg, r##"<path d="{}" fill="none" stroke="#1f5fbf" stroke-width="2"/>"##, f.path(&median));
    if s.worst_curve.len() >= n {
        let worst: Vec<(i64, f64)> = (0..n).map(|i| (times[i], s.worst_curve[i])).collect();
        let _ = write!(
            svg,
            r##"<path d="{}" fill="none" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="4 3"/>"##,
            f.path(&worst)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A stress run's HTML report: probabilities, the metric percentiles, the fan chart of equity with the worst path.
/// One file, no scripts, no network.
pub fn stress_html_report(s: &crate::stress::StressSummary, times: &[i64], style: TimeStyle, title: &str) -> String {
    let mut html = page_head(title);
    let _ = write!(
        html,
        "<p>{} paths{}. Probability of a loss <b>{:.1}%</b>; of ruin (a drawdown of {:.0}% or more) <b>{:.1}%</b>.</p>",
        s.paths,
        if s.failed > 0 { format!(" ({} failed to run)", s.failed) } else { String::new() },
        100.0 * s.p_loss,
        100.0 * s.ruin_drawdown,
        100.0 * s.p_ruin
    );
    if let Some((index, ret, dd)) = s.worst {
        let _ = write!(
            html,
            "<p>Worst path: #{index}, total return {}, max drawdown {} (dashed red below).</p>",
            format_metric("total_return", ret),
            format_metric("max_drawdown", dd)
        );
    }
    html.push_str("<h2>Equity across paths</h2><p>Median line; bands from the 25th to the 75th and the 5th to the 95th percentile.</p>");
    html.push_str(&fan_chart(s, times, style));
    html.push_str("<h2>Metrics</h2><table><tr><th>metric</th><th>p5</th><th>p25</th><th>median</th><th>p75</th><th>p95</th><th>mean</th></tr>");
    for (name, p, mean) in &s.metrics {
        let _ = write!(html, "<tr><td>{name}</td>");
        for v in p.iter().chain([mean]) {
            let _ = write!(html, "<td>{}</td>", format_metric(name, *v));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table></body></html>\n");
    html
}

/// What a sweep's HTML report draws, accumulated point by point (memory in the axes' sizes, not the points').
pub struct SweepReport {
    axes: Vec<crate::sweep::Axis>,
    objective: crate::sweep::Objective,
    heat: (usize, usize),
    /// Best objective per (x, y) cell of the heatmap.
    cells: Vec<Option<f64>>,
    /// Per axis and value: (best, sum, count) of the objective.
    marginals: Vec<Vec<(Option<f64>, f64, usize)>>,
    points: usize,
    ranked: usize,
}

impl SweepReport {
    /// A report over `axes` ranked by `objective`, its heatmap on axes `heat` (indexes; equal when there is one).
    pub fn new(axes: &[crate::sweep::Axis], objective: crate::sweep::Objective, heat: (usize, usize)) -> Self {
        let (nx, ny) = (axes[heat.0].values.len(), axes[heat.1].values.len());
        SweepReport {
            axes: axes.to_vec(),
            objective,
            heat,
            cells: vec![None; nx * ny],
            marginals: axes.iter().map(|a| vec![(None, 0.0, 0); a.values.len()]).collect(),
            points: 0,
            ranked: 0,
        }
    }

    fn better(&self, a: f64, b: Option<f64>) -> bool {
        b.is_none_or(|b| if self.objective.higher { a > b } else { a < b })
    }

    /// Takes point `coordinates` (its value index on each axis) with its objective value, when it ran and met the
    /// constraints.
    pub fn push(&mut self, coordinates: &[usize], value: Option<f64>) {
        self.points += 1;
        let Some(v) = value.filter(|v| v.is_finite()) else { return };
        self.ranked += 1;
        let cell = coordinates[self.heat.0] * self.axes[self.heat.1].values.len() + coordinates[self.heat.1];
        if self.better(v, self.cells[cell]) {
            self.cells[cell] = Some(v);
        }
        for (k, &c) in coordinates.iter().enumerate() {
            let best = self.marginals[k][c].0;
            let better = self.better(v, best);
            let m = &mut self.marginals[k][c];
            if better {
                m.0 = Some(v);
            }
            m.1 += v;
            m.2 += 1;
        }
    }

    /// The HTML: the heatmap of the best objective over the two axes, and for every axis the best and the mean
    /// objective at each of its values (the parameter sensitivity).
    pub fn html(&self, title: &str) -> String {
        let name = |k: usize| {
            let key = &self.axes[k].key;
            escape(key.strip_prefix("strategy.").unwrap_or(key))
        };
        let metric = &self.objective.metric;
        let mut html = page_head(title);
        let _ = write!(
            html,
            "<p>{p} points, {r} ranked (ran and met the constraints); objective <b>{metric}</b> ({dir} is better).</p>",
            p = self.points,
            r = self.ranked,
            dir = if self.objective.higher { "higher" } else { "lower" }
        );
        // heatmap
        let (hx, hy) = self.heat;
        let (nx, ny) = (self.axes[hx].values.len(), self.axes[hy].values.len());
        let known: Vec<f64> = self.cells.iter().flatten().copied().collect();
        let (lo, hi) = known.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        let _ = write!(html, "<h2>Best {metric} by {} and {}</h2>", name(hx), name(hy));
        let (cw, ch, pad_l, pad_t) =
            ((860.0 / nx as f64).clamp(8.0, 80.0), (420.0 / ny as f64).clamp(8.0, 40.0), 90.0, 10.0);
        let (w, h) = (pad_l + cw * nx as f64 + 10.0, pad_t + ch * ny as f64 + 40.0);
        let _ = write!(html, r#"<svg viewBox="0 0 {w:.0} {h:.0}" role="img" aria-label="heatmap">"#);
        for i in 0..nx {
            for j in 0..ny {
                let (x, y) = (pad_l + cw * i as f64, pad_t + ch * (ny - 1 - j) as f64);
                let (fill, text) = match self.cells[i * ny + j] {
                    Some(v) => {
                        let mut t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                        if !self.objective.higher {
                            t = 1.0 - t;
                        }
                        // red (worst) to green (best)
                        let (r, g) = ((220.0 * (1.0 - t) + 30.0) as u8, (180.0 * t + 40.0) as u8);
                        (format!("rgb({r},{g},70)"), format_metric(metric, v))
                    }
                    None => ("#eee".to_string(), "n/a".to_string()),
                };
                let _ = write!(
                    html,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{cw:.1}" height="{ch:.1}" fill="{fill}"><title>{}={} {}={}: {text}</title></rect>"#,
                    name(hx),
                    self.axes[hx].values[i],
                    name(hy),
                    self.axes[hy].values[j]
                );
            }
        }
        let every = |n: usize| n.div_ceil(12).max(1);
        for i in (0..nx).step_by(every(nx)) {
            let _ = write!(
                html,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#555">{}</text>"##,
                pad_l + cw * (i as f64 + 0.5),
                pad_t + ch * ny as f64 + 14.0,
                self.axes[hx].values[i]
            );
        }
        for j in (0..ny).step_by(every(ny)) {
            let _ = write!(
                html,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}</text>"##,
                pad_l - 6.0,
                pad_t + ch * (ny as f64 - j as f64 - 0.5) + 4.0,
                self.axes[hy].values[j]
            );
        }
        let _ = write!(
            html,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text></svg>"##,
            pad_l + cw * nx as f64 / 2.0,
            h - 6.0,
            name(hx)
        );
        let _ = write!(html, "<p>Rows: {} (bottom to top). Hover a cell for its value.</p>", name(hy));
        // sensitivity: best and mean per axis value
        html.push_str("<h2>Parameter sensitivity</h2><p>For each value of a parameter, the best (solid) and the mean (dashed) objective over every other parameter.</p>");
        for (k, axis) in self.axes.iter().enumerate() {
            let m = &self.marginals[k];
            let best: Vec<f64> = m.iter().map(|c| c.0.unwrap_or(f64::NAN)).collect();
            let mean: Vec<f64> = m.iter().map(|c| if c.2 > 0 { c.1 / c.2 as f64 } else { f64::NAN }).collect();
            let finite: Vec<f64> = best.iter().chain(&mean).copied().filter(|v| v.is_finite()).collect();
            if finite.is_empty() {
                continue;
            }
            let (y0, mut y1) = finite.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
            if y1 - y0 < 1e-12 {
                y1 = y0 + 1.0;
            }
            let (w, h, pad_l, pad_b) = (960.0, 200.0, 70.0, 30.0);
            let n = axis.values.len();
            let sx = |i: usize| pad_l + (i as f64 + 0.5) / n as f64 * (w - pad_l - 10.0);
            let sy = |v: f64| 10.0 + (y1 - v) / (y1 - y0) * (h - pad_b - 20.0);
            let _ =
                write!(html, r#"<h3>{}</h3><svg viewBox="0 0 {w} {h}" role="img" aria-label="sensitivity">"#, name(k));
            for q in 0..=2 {
                let v = y0 + (y1 - y0) * f64::from(q) / 2.0;
                let _ = write!(
                    html,
                    r##"<line x1="{pad_l}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}</text>"##,
                    w - 10.0,
                    pad_l - 6.0,
                    sy(v) + 4.0,
                    format_metric(metric, v),
                    y = sy(v)
                );
            }
            for (series, dash) in [(&best, ""), (&mean, r#" stroke-dasharray="5 4""#)] {
                let mut d = String::new();
                for (i, v) in series.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                    let _ = write!(d, "{}{:.1},{:.1}", if d.is_empty() { "M" } else { "L" }, sx(i), sy(*v));
                }
                let _ = write!(html, r##"<path d="{d}" fill="none" stroke="#1f5fbf" stroke-width="1.8"{dash}/>"##);
            }
            for i in (0..n).step_by(every(n)) {
                let _ = write!(
                    html,
                    r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#555">{}</text>"##,
                    sx(i),
                    h - 10.0,
                    axis.values[i]
                );
            }
            html.push_str("</svg>");
        }
        html.push_str("</body></html>\n");
        html
    }
}
