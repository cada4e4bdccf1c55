//! The Stable Rotator: keeps a stablecoin in the best lending markets and vaults the user's risk limits allow, and
//! moves only when the extra yield expected over a horizon beats the gas and slippage of moving plus a margin.
//! Markets that freeze, lose their TVL, or run too hot are left whatever it costs. Rewards are claimed when they are
//! worth several times the claim's gas, and the proceeds are put back to work. Every decision is explained.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_market::{LendingProtocol, LendingView, MarketView};
use sextant_strategy::{Decision, FlowOutcome, PortfolioView, Strategy};
use sextant_types::{Amount, AmountSpec, Intent, LendingMarket, Token, VaultRef};
use std::collections::BTreeMap;

/// Gas of supplying to a lending market (approval included, as the executor approves exactly what it supplies).
pub const GAS_SUPPLY: u64 = 230_000;
/// Gas of withdrawing from a lending market.
pub const GAS_WITHDRAW: u64 = 200_000;
/// Gas of an ERC-4626 deposit (approval included); vaults over many markets cost more than a pool.
pub const GAS_VAULT_DEPOSIT: u64 = 300_000;
/// Gas of an ERC-4626 redemption.
pub const GAS_VAULT_REDEEM: u64 = 280_000;
/// Gas of claiming rewards and swapping them into the asset.
pub const GAS_CLAIM: u64 = 250_000;

/// Gas units of putting money into (`deposit`) or taking it out of a market of `protocol`.
pub fn gas_units(protocol: LendingProtocol, deposit: bool) -> u64 {
    match (protocol, deposit) {
        (LendingProtocol::Erc4626, true) => GAS_VAULT_DEPOSIT,
        (LendingProtocol::Erc4626, false) => GAS_VAULT_REDEEM,
        (_, true) => GAS_SUPPLY,
        (_, false) => GAS_WITHDRAW,
    }
}

/// `stable_rotator` parameters (`[strategy]` with `kind = "stable_rotator"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotatorParams {
    /// Market ids it may use; empty for every configured market.
    pub allow: Vec<String>,
    /// Largest share of the portfolio in one market (0..=1).
    pub max_share: f64,
    /// Largest share of one market's TVL it may own (0..=1).
    pub max_pool_share: f64,
    /// Markets with less TVL are not entered, and are left (USD).
    pub min_tvl_usd: f64,
    /// Markets lent out beyond this utilisation are not entered, and are left: withdrawals could be blocked.
    pub max_utilization: f64,
    /// Most markets held at once.
    pub max_markets: usize,
    /// A market whose TVL falls by this percentage within `tvl_drop_window_hours` is left (a run on it).
    pub tvl_drop_pct: f64,
    /// The window of the TVL-drop rule, hours.
    pub tvl_drop_window_hours: f64,
    /// How far ahead the extra yield of a move is weighed against its cost, days.
    pub horizon_days: f64,
    /// Extra gain a move must show beyond its cost, basis points of the amount moved.
    pub margin_bps: f64,
    /// Claim rewards and put them back to work.
    pub compound_rewards: bool,
    /// Claim when rewards are worth this many times the claim's gas.
    pub claim_multiple: f64,
    /// Rebalances that would move less than this share of the portfolio are skipped (exits are not).
    pub min_move_fraction: f64,
}

impl Default for RotatorParams {
    fn default() -> Self {
        RotatorParams {
            allow: Vec::new(),
            max_share: 1.0,
            max_pool_share: 0.05,
            min_tvl_usd: 20e6,
            max_utilization: 0.97,
            max_markets: 2,
            tvl_drop_pct: 30.0,
            tvl_drop_window_hours: 24.0,
            horizon_days: 14.0,
            margin_bps: 2.0,
            compound_rewards: true,
            claim_multiple: 10.0,
            min_move_fraction: 0.001,
        }
    }
}

impl RotatorParams {
    /// Checks ranges.
    ///
    /// # Errors
    /// Names the key and what was expected.
    pub fn validate(&self) -> Result<()> {
        let frac = |key: &str, v: f64, zero_ok: bool| {
            if v.is_finite() && v <= 1.0 && (v > 0.0 || (zero_ok && v == 0.0)) {
                Ok(())
            } else {
                Err(Error::new(format!("strategy.{key}"), format!("must be in (0, 1], got {v}")))
            }
        };
        frac("max_share", self.max_share, false)?;
        frac("max_pool_share", self.max_pool_share, false)?;
        frac("max_utilization", self.max_utilization, false)?;
        frac("min_move_fraction", self.min_move_fraction, true)?;
        let nonneg = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::new(format!("strategy.{key}"), format!("must be a non-negative number, got {v}")))
            }
        };
        nonneg("min_tvl_usd", self.min_tvl_usd)?;
        nonneg("margin_bps", self.margin_bps)?;
        nonneg("claim_multiple", self.claim_multiple)?;
        nonneg("tvl_drop_window_hours", self.tvl_drop_window_hours)?;
        if !(self.tvl_drop_pct.is_finite() && self.tvl_drop_pct > 0.0 && self.tvl_drop_pct <= 100.0) {
            return Err(Error::new("strategy.tvl_drop_pct", format!("must be in (0, 100], got {}", self.tvl_drop_pct)));
        }
        if !(self.horizon_days.is_finite() && self.horizon_days > 0.0) {
            return Err(Error::new("strategy.horizon_days", format!("must be positive, got {}", self.horizon_days)));
        }
        if self.max_markets == 0 {
            return Err(Error::new("strategy.max_markets", "must be at least 1"));
        }
        Ok(())
    }
}

/// What moving money costs, as the rotator estimates it (the backtest charges the same). Gas is paid by the
/// deployment key in the native token, so it is weighed against gains but never taken from the asset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MoveCosts {
    /// USD per gas unit (gas price × native token price).
    pub usd_per_gas: f64,
    /// Entry or exit cost of an ERC-4626 vault, basis points of the amount (rounding, fees, the spread of a
    /// non-native asset).
    pub vault_bps: f64,
    /// The DEX fee paid selling claimed rewards for the asset, basis points.
    pub swap_fee_bps: f64,
}

impl MoveCosts {
    fn of(&self, protocol: LendingProtocol, deposit: bool, amount: f64) -> f64 {
        gas_units(protocol, deposit) as f64 * self.usd_per_gas + self.slippage(protocol, amount)
    }

    /// The entry or exit cost of moving `amount` through a market (vaults only).
    fn slippage(&self, protocol: LendingProtocol, amount: f64) -> f64 {
        if protocol == LendingProtocol::Erc4626 { amount * self.vault_bps / 10_000.0 } else { 0.0 }
    }
}

/// New money stays this far under a size cap, so interest accruing on a full position does not trip it at once.
const HEADROOM: f64 = 0.005;

/// The rotator.
#[derive(Debug, Clone, PartialEq)]
pub struct StableRotator {
    params: RotatorParams,
    costs: MoveCosts,
}

/// The rotator's persisted state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RotatorState {
    /// Whether the first allocation has been made.
    pub allocated: bool,
    /// Recent TVL observations per market, `(time ms, tvl)`, for the TVL-drop rule.
    pub tvl_history: BTreeMap<String, Vec<(i64, f64)>>,
    /// The last hold explained (a hold is logged once until something changes).
    pub last_hold: Option<String>,
    /// Decisions not yet taken by the engine.
    pub decisions: Vec<Decision>,
    /// Moves made (each withdrawal or deposit between markets).
    pub moves: usize,
}

/// One market's standing at a step.
struct Standing<'a> {
    view: &'a LendingView,
    /// What the portfolio holds there, quote units.
    held: f64,
    /// Why it may not be held (None: eligible).
    refused: Option<(&'static str, String)>,
}

impl StableRotator {
    /// A rotator with these parameters and cost estimates.
    ///
    /// # Errors
    /// Out-of-range parameters.
    pub fn new(params: RotatorParams, costs: MoveCosts) -> Result<Self> {
        params.validate()?;
        Ok(StableRotator { params, costs })
    }

    /// The parameters.
    pub fn params(&self) -> &RotatorParams {
        &self.params
    }

    fn refusal(&self, state: &RotatorState, v: &LendingView, now: i64) -> Option<(&'static str, String)> {
        let p = &self.params;
        if !p.allow.is_empty() && !p.allow.contains(&v.market) {
            return Some(("not_allowed", format!("{} is not in strategy.allow", v.market)));
        }
        let Some(r) = v.rate else { return Some(("no_data", format!("no observation of {} yet", v.market))) };
        if r.frozen {
            return Some(("market_frozen", format!("{} is frozen", v.market)));
        }
        if r.tvl_usd < p.min_tvl_usd {
            return Some(("tvl_below_min", format!("TVL {:.0} below the minimum {:.0}", r.tvl_usd, p.min_tvl_usd)));
        }
        if r.utilization > p.max_utilization {
            return Some((
                "utilization_above_max",
                format!(
                    "utilisation {:.2} % above the maximum {:.2} %",
                    r.utilization * 100.0,
                    p.max_utilization * 100.0
                ),
            ));
        }
        let window_ms = (p.tvl_drop_window_hours * 3_600_000.0) as i64;
        if let Some(peak) = state
            .tvl_history
            .get(&v.market)
            .and_then(|h| h.iter().filter(|(t, _)| now - t <= window_ms).map(|&(_, x)| x).reduce(f64::max))
            && r.tvl_usd < peak * (1.0 - p.tvl_drop_pct / 100.0)
        {
            return Some((
                "tvl_collapse",
                format!(
                    "TVL fell {:.1} % within {} h (from {peak:.0} to {:.0})",
                    (1.0 - r.tvl_usd / peak) * 100.0,
                    p.tvl_drop_window_hours,
                    r.tvl_usd
                ),
            ));
        }
        None
    }

    fn intent(&self, portfolio: &PortfolioView, v: &LendingView, deposit: bool, amount: f64, all: bool) -> Intent {
        let asset: &Token = &portfolio.quote;
        let chain = asset.id.chain;
        let exact = |x: f64, t: &Token| AmountSpec::Exact(Amount::from_units(x, t).unwrap_or(Amount(0)));
        match v.protocol {
            LendingProtocol::Erc4626 => {
                let vault = VaultRef { chain, address: v.address.clone(), asset: asset.clone() };
                if deposit {
                    Intent::VaultDeposit { vault, amount: if all { AmountSpec::All } else { exact(amount, asset) } }
                } else {
                    let pos = portfolio.lending.iter().find(|l| l.market == v.market);
                    let shares =
                        pos.map_or(0.0, |l| if l.supplied > 0.0 { l.shares * amount / l.supplied } else { 0.0 });
                    Intent::VaultRedeem { vault, shares: if all { AmountSpec::All } else { exact(shares, asset) } }
                }
            }
            protocol => {
                let m = LendingMarket { chain, protocol: protocol.name().into(), address: v.address.clone() };
                let amount = if all { AmountSpec::All } else { exact(amount, asset) };
                if deposit {
                    Intent::Supply { market: m, token: asset.clone(), amount }
                } else {
                    Intent::Withdraw { market: m, token: asset.clone(), amount }
                }
            }
        }
    }
}

fn decision(market: &MarketView, action: &str, from: Option<&str>, to: Option<&str>) -> Decision {
    Decision {
        step: market.step,
        timestamp_ms: market.timestamp_ms,
        action: action.into(),
        from: from.map(str::to_string),
        to: to.map(str::to_string),
        amount: 0.0,
        expected_gain: 0.0,
        cost: 0.0,
        rule: String::new(),
        detail: String::new(),
    }
}

impl Strategy for StableRotator {
    type State = RotatorState;

    fn name(&self) -> String {
        format!(
            "stable_rotator(max_markets={}, max_share={}, horizon={}d)",
            self.params.max_markets, self.params.max_share, self.params.horizon_days
        )
    }

    fn init(&self, _market: &MarketView) -> RotatorState {
        RotatorState::default()
    }

    fn on_step(&self, state: &mut RotatorState, market: &MarketView, portfolio: &PortfolioView, out: &mut Vec<Intent>) {
        let p = &self.params;
        let now = market.timestamp_ms;
        let held_in = |id: &str| portfolio.lending.iter().find(|l| l.market == id);
        let mut standings: Vec<Standing> = market
            .lending
            .iter()
            .map(|v| Standing {
                view: v,
                held: held_in(&v.market).map_or(0.0, |l| l.supplied),
                refused: self.refusal(state, v, now),
            })
            .collect();
        // Remember TVL for the drop rule (after judging, so a drop is measured against the past).
        let window_ms = (p.tvl_drop_window_hours * 3_600_000.0) as i64;
        for v in &market.lending {
            if let Some(r) = v.rate {
                let h = state.tvl_history.entry(v.market.clone()).or_default();
                h.push((now, r.tvl_usd));
                h.retain(|(t, _)| now - t <= window_ms);
            }
        }
        let horizon_years = p.horizon_days / 365.0;
        let mut cash = portfolio.cash;

        // 1. Rewards: claimed when worth several times the claim's gas; the proceeds join the cash below.
        if p.compound_rewards {
            for l in &portfolio.lending {
                let claim_gas = GAS_CLAIM as f64 * self.costs.usd_per_gas;
                if l.rewards > 0.0 && l.rewards >= p.claim_multiple * claim_gas {
                    let Some(v) = market.lending.iter().find(|v| v.market == l.market) else { continue };
                    let chain = portfolio.quote.id.chain;
                    out.push(Intent::ClaimRewards {
                        market: LendingMarket { chain, protocol: v.protocol.name().into(), address: v.address.clone() },
                    });
                    let mut d = decision(market, "claim", Some(&l.market), None);
                    d.amount = l.rewards;
                    d.cost = claim_gas;
                    d.rule = "compound_rewards".into();
                    d.detail = format!(
                        "rewards {:.2} are at least {} x the claim's gas {:.2}",
                        l.rewards, p.claim_multiple, claim_gas
                    );
                    state.decisions.push(d);
                    cash += l.rewards * (1.0 - self.costs.swap_fee_bps / 10_000.0);
                }
            }
        }

        // 2. Forced exits: whatever a market that breaks a limit holds leaves it now, cost aside.
        let mut intents_out: Vec<Intent> = Vec::new();
        let mut intents_in: Vec<Intent> = Vec::new();
        for s in &standings {
            let Some((rule, why)) = &s.refused else { continue };
            if s.held <= 0.0 {
                continue;
            }
            let available = s.view.available_usd();
            let take = s.held.min(available);
            if take <= 0.0 {
                let key = format!("stuck:{}", s.view.market);
                if state.last_hold.as_deref() != Some(&key) {
                    let mut d = decision(market, "hold", Some(&s.view.market), None);
                    d.amount = s.held;
                    d.rule = "no_liquidity".into();
                    d.detail = format!("{why}; nothing can be withdrawn: the market's liquidity is all lent out");
                    state.decisions.push(d);
                    state.last_hold = Some(key);
                }
                continue;
            }
            let all = take >= s.held;
            intents_out.push(self.intent(portfolio, s.view, false, take, all));
            let cost = self.costs.of(s.view.protocol, false, take);
            let mut d = decision(market, "withdraw", Some(&s.view.market), None);
            d.amount = take;
            d.cost = cost;
            d.rule = (*rule).into();
            d.detail =
                if all { why.clone() } else { format!("{why}; only {take:.2} of {:.2} is withdrawable", s.held) };
            state.decisions.push(d);
            cash += take - self.costs.slippage(s.view.protocol, take);
            state.moves += 1;
        }

        // 3. Limits on size: a market held above its cap (interest accrued, the portfolio or the market shrank) is
        // trimmed now, cost aside, to a little under the cap so accrual does not trip it again at once.
        let investable = cash + standings.iter().filter(|s| s.refused.is_none()).map(|s| s.held).sum::<f64>();
        let cap_of = |s: &Standing| {
            let tvl = s.view.rate.map_or(0.0, |r| r.tvl_usd);
            let by_share = p.max_share * investable;
            let by_pool = p.max_pool_share * tvl;
            if by_share <= by_pool { (by_share, "over_max_share") } else { (by_pool, "over_max_pool_share") }
        };
        for s in standings.iter_mut().filter(|s| s.refused.is_none()) {
            let (cap, rule) = cap_of(s);
            if s.held <= cap * (1.0 + 1e-9) {
                continue;
            }
            let take = (s.held - cap * (1.0 - HEADROOM)).min(s.view.available_usd());
            if take <= 0.0 {
                continue;
            }
            intents_out.push(self.intent(portfolio, s.view, false, take, false));
            let mut d = decision(market, "withdraw", Some(&s.view.market), None);
            d.amount = take;
            d.cost = self.costs.of(s.view.protocol, false, take);
            d.rule = rule.into();
            d.detail = format!("holding {:.2} is above the cap {cap:.2}", s.held);
            state.decisions.push(d);
            cash += take - self.costs.slippage(s.view.protocol, take);
            s.held -= take;
            state.moves += 1;
        }

        // 4. Target: the best eligible markets by supply plus reward APY, each a little under its caps.
        let mut eligible: Vec<&Standing> = standings.iter().filter(|s| s.refused.is_none()).collect();
        // Ties keep the market already held (then config order), so equal yields never cause a move.
        eligible.sort_by(|a, b| {
            b.view.total_apy().total_cmp(&a.view.total_apy()).then((b.held > 0.0).cmp(&(a.held > 0.0)))
        });
        let mut target: BTreeMap<&str, f64> = BTreeMap::new();
        let mut left = investable.max(0.0);
        for s in eligible.iter().take(p.max_markets) {
            // a market already held within its cap keeps what it has; new money stays under the cap's headroom
            let (cap, _) = cap_of(s);
            let x = left.min(s.held.min(cap).max(cap * (1.0 - HEADROOM)));
            if x > 0.0 {
                target.insert(&s.view.market, x);
                left -= x;
            }
        }

        // 5. Compare with what is held: gain over the horizon against the cost of getting there.
        let apy_of = |id: &str| standings.iter().find(|s| s.view.market == id).map_or(0.0, |s| s.view.total_apy());
        let mut outs: Vec<(&Standing, f64)> = Vec::new();
        let mut ins: Vec<(&Standing, f64)> = Vec::new();
        let min_move = p.min_move_fraction * investable;
        for s in standings.iter().filter(|s| s.refused.is_none()) {
            let want = target.get(s.view.market.as_str()).copied().unwrap_or(0.0);
            let delta = want - s.held;
            let leaving = want == 0.0 && s.held > 0.0;
            if delta < 0.0 && (leaving || -delta >= min_move) {
                outs.push((s, -delta));
            } else if delta > 0.0 && (delta >= min_move || delta >= cash) {
                // small deposits only when they put the last of the idle cash to work
                ins.push((s, delta));
            }
        }
        // Money only goes in if it is there: cash now plus what leaves this step, net of the vaults' exit cost.
        let mut fundable = cash + outs.iter().map(|(s, x)| x - self.costs.slippage(s.view.protocol, *x)).sum::<f64>();
        ins.retain_mut(|(_, x)| {
            *x = x.min(fundable.max(0.0));
            fundable -= *x;
            *x > 0.0
        });
        // The last deposit takes whatever cash there is when it runs, so rounding in the withdrawals before it
        // cannot leave it a few base units short.
        let spend_all = ins.last().is_some() && fundable <= 1e-6 * investable.max(1.0);
        if !outs.is_empty() || !ins.is_empty() {
            let gain_per_year: f64 = ins.iter().map(|(s, x)| x * apy_of(&s.view.market)).sum::<f64>()
                - outs.iter().map(|(s, x)| x * apy_of(&s.view.market)).sum::<f64>();
            let gain = gain_per_year * horizon_years;
            let cost: f64 = outs.iter().map(|(s, x)| self.costs.of(s.view.protocol, false, *x)).sum::<f64>()
                + ins.iter().map(|(s, x)| self.costs.of(s.view.protocol, true, *x)).sum::<f64>();
            let moved: f64 = ins.iter().map(|(_, x)| x).sum::<f64>().max(outs.iter().map(|(_, x)| x).sum());
            let margin = moved * p.margin_bps / 10_000.0;
            let first = !state.allocated;
            if first || gain > cost + margin {
                let rule = if first { "initial_allocation" } else { "better_yield" };
                let detail =
                    format!("gain {gain:.2} over {} days against cost {cost:.2} + margin {margin:.2}", p.horizon_days);
                // Pair what leaves with what arrives, so each decision says from where to where.
                let mut queue: Vec<(&str, f64)> = outs.iter().map(|(s, x)| (s.view.market.as_str(), *x)).collect();
                for (s, x) in &ins {
                    let mut need = *x;
                    while need > 1e-9 {
                        let (from, amount) = match queue.first_mut() {
                            Some((from, avail)) => {
                                let take = avail.min(need);
                                *avail -= take;
                                (Some(*from), take)
                            }
                            None => (None, need),
                        };
                        if queue.first().is_some_and(|(_, a)| *a <= 1e-9) {
                            queue.remove(0);
                        }
                        let action = if from.is_some() { "move" } else { "deposit" };
                        let mut d = decision(market, action, from, Some(&s.view.market));
                        d.amount = amount;
                        d.expected_gain = gain * amount / moved.max(f64::MIN_POSITIVE);
                        d.cost = cost * amount / moved.max(f64::MIN_POSITIVE);
                        d.rule = rule.into();
                        d.detail = detail.clone();
                        state.decisions.push(d);
                        need -= amount;
                    }
                }
                for (from, rest) in queue {
                    let mut d = decision(market, "withdraw", Some(from), None);
                    d.amount = rest;
                    d.rule = rule.into();
                    d.cost = cost * rest / moved.max(f64::MIN_POSITIVE);
                    d.detail = format!("{detail}; kept as cash: no eligible market has room");
                    state.decisions.push(d);
                }
                for (s, x) in &outs {
                    intents_out.push(self.intent(portfolio, s.view, false, *x, *x >= s.held));
                    state.moves += 1;
                }
                for (k, (s, x)) in ins.iter().enumerate() {
                    let all = spend_all && k + 1 == ins.len();
                    intents_in.push(self.intent(portfolio, s.view, true, *x, all));
                    state.moves += 1;
                }
                state.allocated = true;
                state.last_hold = None;
            } else {
                let key =
                    format!("hold:{}", ins.iter().map(|(s, _)| s.view.market.as_str()).collect::<Vec<_>>().join("+"));
                if gain > 0.0 && state.last_hold.as_deref() != Some(&key) {
                    let from = outs.first().map(|(s, _)| s.view.market.as_str());
                    let to = ins.first().map(|(s, _)| s.view.market.as_str());
                    let mut d = decision(market, "hold", from, to);
                    d.amount = moved;
                    d.expected_gain = gain;
                    d.cost = cost;
                    d.rule = "gain_below_cost".into();
                    d.detail = format!(
                        "gain {gain:.2} over {} days does not beat cost {cost:.2} + margin {margin:.2}",
                        p.horizon_days
                    );
                    state.decisions.push(d);
                    state.last_hold = Some(key);
                }
            }
        } else if !state.allocated && investable > 0.0 && target.is_empty() {
            let key = "hold:nothing_eligible".to_string();
            if state.last_hold.as_deref() != Some(&key) {
                let mut d = decision(market, "hold", None, None);
                d.amount = investable;
                d.rule = "nothing_eligible".into();
                d.detail = "no market passes the risk limits".into();
                state.decisions.push(d);
                state.last_hold = Some(key);
            }
        }
        out.extend(intents_out);
        out.extend(intents_in);
    }

    fn on_outcome(&self, _state: &mut RotatorState, _outcome: &FlowOutcome) {}

    fn take_decisions(&self, state: &mut RotatorState) -> Vec<Decision> {
        std::mem::take(&mut state.decisions)
    }

    fn teardown(
        &self,
        _state: &mut RotatorState,
        market: &MarketView,
        portfolio: &PortfolioView,
        out: &mut Vec<Intent>,
    ) {
        for l in &portfolio.lending {
            if let Some(v) = market.lending.iter().find(|v| v.market == l.market)
                && l.supplied > 0.0
            {
                out.push(self.intent(portfolio, v, false, l.supplied, true));
            }
        }
        Intent::sort_for_unwind(out);
    }
}
