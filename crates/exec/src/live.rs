//! The live executor: the same `Executor` role the backtest's simulator fills, carried out on chain from the Safe.
//! `prepare` plans an intent (amounts resolved from balances, a quote from the protocol maths, the slippage cap,
//! exact approvals) and journals the plan; `execute` drives each step through the ExecutionManager; `validate`
//! measures the fill from the receipts' Transfer logs.

use crate::journal::Journal;
use crate::{Error, ExecutionManager, is_transient, view};
use serde::{Deserialize, Serialize};
use sextant_chain::alloy::primitives::{Address, U256};
use sextant_chain::alloy::rpc::types::TransactionReceipt;
use sextant_chain::alloy::sol_types::SolEvent;
use sextant_chain::bindings::{IERC20, IERC4626, INonfungiblePositionManager, ISextantVault, IUniswapV3Pool};
use sextant_chain::calls::{self, RouterKind, SwapParams};
use sextant_chain::{Call, ChainEntry, pool_history};
use sextant_protocols::uniswap_v3;
use sextant_strategy::{ExecError, ExecErrorKind, Executor};
use sextant_types::{AmountSpec, Fill, Intent, Token};

/// How intents become transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSettings {
    /// How far below the quote the minimum output is set (basis points); an intent's tighter cap wins.
    pub default_slippage_bps: u32,
    /// Approve unlimited amounts instead of exactly what each step spends (off by default).
    pub unlimited_approvals: bool,
    /// Swap and mint deadlines, seconds after planning.
    pub deadline_secs: u64,
    /// The quote token of the deployment (prices and PnL are in it).
    pub quote_symbol: String,
}

/// The swap a plan makes, for measuring its fill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwapPlan {
    /// Token given.
    pub sell: Token,
    /// Token received.
    pub buy: Token,
    /// Exact input (base units).
    pub amount_in: U256,
    /// Quoted output.
    pub quote_out: U256,
    /// Minimum output accepted.
    pub min_out: U256,
    /// Mid price of the non-quote side, in quote units, when planned.
    pub mid_price: f64,
    /// Pool fee (pips).
    pub fee_pips: u32,
}

/// An intent's plan: the calls the Safe makes, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The calls.
    pub steps: Vec<Call>,
    /// The swap, for swaps.
    pub swap: Option<SwapPlan>,
    /// When it was made (unix ms): a plan nothing was signed for is remade once it is half its deadline old.
    pub planned_at_ms: i64,
}

/// Carries out one journaled intent on chain.
pub struct LiveExecutor<'a> {
    em: &'a ExecutionManager<'a>,
    chain: &'a ChainEntry,
    journal: &'a Journal,
    intent_id: i64,
    settings: &'a LiveSettings,
}

impl std::fmt::Debug for LiveExecutor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveExecutor").field("intent_id", &self.intent_id).finish_non_exhaustive()
    }
}

fn exec_err(e: Error) -> ExecError {
    let kind = match &e {
        _ if is_transient(&e) => ExecErrorKind::Transient,
        Error::Reverted(_) | Error::RevertedOnChain(_) => ExecErrorKind::Reverted,
        _ => ExecErrorKind::Invalid,
    };
    ExecError::new(kind, e.to_string())
}

fn unsupported(intent: &Intent, why: impl Into<String>) -> ExecError {
    ExecError::new(ExecErrorKind::Unsupported, format!("{:?}: {}", intent.kind(), why.into()))
}

fn addr(token: &Token) -> Result<Address, ExecError> {
    token.id.address.parse().map_err(|_| {
        ExecError::new(
            ExecErrorKind::Unsupported,
            format!("{} has no on-chain address ({})", token.symbol, token.id.address),
        )
    })
}

/// Sets an allowance back to zero after a call that may have spent less than was approved.
fn revoke(token: Address, spender: Address, what: &str) -> Call {
    calls::approve(token, spender, U256::ZERO, &format!("revoke the leftover {what} allowance"))
}

fn human(amount: U256, decimals: u8) -> f64 {
    f64::from(amount) / 10f64.powi(i32::from(decimals))
}

fn deadline(secs: u64) -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) + secs
}

impl<'a> LiveExecutor<'a> {
    /// An executor for the journaled intent `intent_id`.
    pub fn new(
        em: &'a ExecutionManager<'a>,
        chain: &'a ChainEntry,
        journal: &'a Journal,
        intent_id: i64,
        settings: &'a LiveSettings,
    ) -> Self {
        LiveExecutor { em, chain, journal, intent_id, settings }
    }

    fn rpc(&self) -> &sextant_chain::Rpc {
        self.em.tm().rpc()
    }

    fn safe(&self) -> Address {
        self.em.tm().safe()
    }

    fn balance(&self, token: Address) -> Result<U256, ExecError> {
        view(self.rpc(), token, &IERC20::balanceOfCall { owner: self.safe() }).map_err(exec_err)
    }

    fn resolve(&self, token: Address, amount: &AmountSpec, symbol: &str) -> Result<U256, ExecError> {
        let balance = self.balance(token)?;
        let amount = match amount {
            AmountSpec::All => balance,
            AmountSpec::Exact(a) => {
                let a = U256::from(a.0);
                // The strategy sized "all the cash" from a slightly older view: within 1 %, take what is there.
                if a > balance && balance >= a * U256::from(99u8) / U256::from(100u8) { balance } else { a }
            }
        };
        if amount.is_zero() || amount > balance {
            return Err(ExecError::new(
                ExecErrorKind::InsufficientBalance,
                format!("the Safe holds {balance} base units of {symbol}, the intent needs {amount}"),
            ));
        }
        Ok(amount)
    }

    /// Approval of exactly `amount` (or unlimited when configured) unless the allowance already covers it.
    fn approval(&self, token: Address, spender: Address, amount: U256, what: &str) -> Result<Option<Call>, ExecError> {
        let allowance =
            view(self.rpc(), token, &IERC20::allowanceCall { owner: self.safe(), spender }).map_err(exec_err)?;
        if allowance >= amount {
            return Ok(None);
        }
        let value = if self.settings.unlimited_approvals { U256::MAX } else { amount };
        Ok(Some(calls::approve(token, spender, value, &format!("approve {what}"))))
    }

    fn contract(&self, role: &str, intent: &Intent) -> Result<Address, ExecError> {
        self.chain.contract(role).map_err(|e| unsupported(intent, e.to_string()))
    }

    fn plan_swap(
        &self,
        intent: &Intent,
        sell: &Token,
        buy: &Token,
        amount: &AmountSpec,
        max_bps: u32,
    ) -> Result<Plan, ExecError> {
        let (sell_a, buy_a) = (addr(sell)?, addr(buy)?);
        let pool = self.chain.pool(&sell.symbol, &buy.symbol, None).map_err(|e| unsupported(intent, e.to_string()))?;
        let (router, kind) = match self.chain.contract("swap_router") {
            Ok(r) => (r, RouterKind::V1),
            Err(_) => (self.contract("swap_router02", intent)?, RouterKind::V02),
        };
        let amount_in = self.resolve(sell_a, amount, &sell.symbol)?;
        let slot0 = view(self.rpc(), pool.address, &IUniswapV3Pool::slot0Call {}).map_err(exec_err)?;
        let sqrt_p = U256::from(slot0.sqrtPriceX96);
        let zero_for_one = pool.token0 == sell.symbol;
        // The quote runs the swap through the pool maths over the pool's initialized ticks, read from the chain:
        // exact across tick crossings, as the contract will compute it.
        let config = pool_history::pool_config(self.rpc(), pool.address).map_err(|e| exec_err(e.into()))?;
        let quote_out = pool_history::quote_exact_input(self.rpc(), &config, zero_for_one, amount_in)
            .map_err(|e| exec_err(e.into()))?
            .ok_or_else(|| {
                ExecError::new(
                    ExecErrorKind::SlippageExceeded,
                    format!("pool {} cannot fill {amount_in} base units of {}", pool.address, sell.symbol),
                )
            })?;
        let (d0, d1) = if zero_for_one { (sell.decimals, buy.decimals) } else { (buy.decimals, sell.decimals) };
        let p01 = uniswap_v3::price_token0_in_token1(sqrt_p, d0, d1);
        let sell_price_in_buy = if zero_for_one { p01 } else { 1.0 / p01 };
        let fee = f64::from(pool.fee_pips) / 1e6;
        let fair_out = human(amount_in, sell.decimals) * sell_price_in_buy * (1.0 - fee);
        let impact_bps = (1.0 - human(quote_out, buy.decimals) / fair_out) * 1e4;
        // The intent's own cap bounds the price impact, as in the backtest (u32::MAX: no cap, e.g. an unwind).
        if max_bps != u32::MAX && impact_bps > f64::from(max_bps) {
            return Err(ExecError::new(
                ExecErrorKind::SlippageExceeded,
                format!("price impact {impact_bps:.1} bps exceeds the {max_bps} bps tolerance"),
            ));
        }
        // The minimum output guards the quote itself (a price moved, a sandwich) with the tighter of the two caps.
        let tolerance = max_bps.min(self.settings.default_slippage_bps);
        let min_out = quote_out * U256::from(10_000 - tolerance.min(10_000)) / U256::from(10_000u32);
        let mid_price =
            if buy.symbol == self.settings.quote_symbol { sell_price_in_buy } else { 1.0 / sell_price_in_buy };
        let mut steps = Vec::new();
        steps.extend(self.approval(
            sell_a,
            router,
            amount_in,
            &format!("{} {} to the router", human(amount_in, sell.decimals), sell.symbol),
        )?);
        let label = format!(
            "swap {} {} for >= {} {}",
            human(amount_in, sell.decimals),
            sell.symbol,
            human(min_out, buy.decimals),
            buy.symbol
        );
        steps.push(calls::swap_exact_in(
            &SwapParams {
                router,
                kind,
                token_in: sell_a,
                token_out: buy_a,
                fee_pips: pool.fee_pips,
                recipient: self.safe(),
                amount_in,
                min_out,
                deadline: deadline(self.settings.deadline_secs),
            },
            &label,
        ));
        let swap = SwapPlan {
            sell: sell.clone(),
            buy: buy.clone(),
            amount_in,
            quote_out,
            min_out,
            mid_price,
            fee_pips: pool.fee_pips,
        };
        Ok(Plan { steps, swap: Some(swap), planned_at_ms: crate::journal::now_ms() })
    }

    /// Plans an intent against the chain as it is now.
    ///
    /// # Errors
    /// Unsupported intents, missing registry entries, insufficient balances, a slippage cap the quote breaks.
    pub fn plan(&self, intent: &Intent) -> Result<Plan, ExecError> {
        let safe = self.safe();
        let plain = |steps: Vec<Call>| Ok(Plan { steps, swap: None, planned_at_ms: crate::journal::now_ms() });
        match intent {
            Intent::Hold { .. } => plain(Vec::new()),
            Intent::Swap { sell, buy, amount, max_slippage_bps } => {
                self.plan_swap(intent, sell, buy, amount, *max_slippage_bps)
            }
            Intent::Wrap { amount, .. } => {
                let weth = addr(
                    &self.chain.token(&self.chain.wrapped_native).map_err(|e| unsupported(intent, e.to_string()))?,
                )?;
                let native = self.rpc().balance(safe).map_err(|e| exec_err(e.into()))?;
                if native < U256::from(amount.0) {
                    return Err(ExecError::new(
                        ExecErrorKind::InsufficientBalance,
                        format!("the Safe holds {native} wei"),
                    ));
                }
                plain(vec![calls::wrap(weth, U256::from(amount.0))])
            }
            // WETH9's `withdraw` pays out with `transfer`, whose 2300 gas a Safe proxy's fallback (a storage read
            // and a delegatecall) cannot run on: the call always reverts from a Safe. Said plainly, not signed.
            Intent::Unwrap { .. } => Err(unsupported(
                intent,
                "WETH9 withdraw pays out with a 2300-gas transfer, which a Safe cannot accept; hold the wrapped \
                 token (unwrapping through a router in a MultiSend batch is not wired yet)",
            )),
            // Each incentive programme (Merkl, Aave's RewardsController, Morpho's URD) claims differently, with proofs
            // from an off-chain distributor: not wired yet, so said plainly rather than guessed.
            Intent::ClaimRewards { market } => Err(unsupported(
                intent,
                format!("claiming rewards on {} is not wired for live execution yet", market.protocol),
            )),
            Intent::VaultSettle { vault, nav } => {
                let v: Address = vault.address.parse().map_err(|_| unsupported(intent, "bad vault address"))?;
                let asset = addr(&vault.asset)?;
                let curator = view(self.rpc(), v, &ISextantVault::curatorCall {}).map_err(exec_err)?;
                if curator != safe {
                    return Err(unsupported(intent, format!("the vault's curator is {curator}, not the Safe {safe}")));
                }
                // Redemptions beyond the epoch's deposits come from the Safe: approve at most what they can cost.
                // Fees (minted first) only lower the price, so pricing without them is an upper bound.
                let nav = U256::from(nav.0);
                let shares = view(self.rpc(), v, &ISextantVault::pendingRedeemSharesCall {}).map_err(exec_err)?;
                let supply = view(self.rpc(), v, &ISextantVault::totalSupplyCall {}).map_err(exec_err)?;
                let deposits = view(self.rpc(), v, &ISextantVault::pendingDepositAssetsCall {}).map_err(exec_err)?;
                let most = shares * (nav + U256::from(1u8)) / (supply + U256::from(1_000_000u64));
                let mut steps: Vec<Call> = Vec::new();
                if most > deposits {
                    steps.extend(self.approval(
                        asset,
                        v,
                        most - deposits,
                        &format!("{} to the vault", vault.asset.symbol),
                    )?);
                }
                steps.push(calls::vault_settle(v, nav));
                plain(steps)
            }
            Intent::VaultDeposit { vault, amount } => {
                let v: Address = vault.address.parse().map_err(|_| unsupported(intent, "bad vault address"))?;
                let asset = addr(&vault.asset)?;
                let assets = self.resolve(asset, amount, &vault.asset.symbol)?;
                let mut steps: Vec<Call> = self
                    .approval(asset, v, assets, &format!("{} to the vault", vault.asset.symbol))?
                    .into_iter()
                    .collect();
                steps.push(calls::vault_deposit(v, assets, safe));
                plain(steps)
            }
            Intent::VaultRedeem { vault, shares } => {
                let v: Address = vault.address.parse().map_err(|_| unsupported(intent, "bad vault address"))?;
                let shares = self.resolve(v, shares, "vault shares")?;
                // Simulated in `build`; the asset check keeps a non-4626 address from getting this far silently.
                view(self.rpc(), v, &IERC4626::assetCall {}).map_err(exec_err)?;
                plain(vec![calls::vault_redeem(v, shares, safe, safe)])
            }
            Intent::Supply { market, token, amount }
            | Intent::Withdraw { market, token, amount }
            | Intent::Repay { market, token, amount } => {
                if market.protocol != "aave-v3" {
                    return Err(unsupported(intent, format!("lending protocol {} is not wired yet", market.protocol)));
                }
                let pool: Address = market.address.parse().map_err(|_| unsupported(intent, "bad market address"))?;
                let asset = addr(token)?;
                match intent {
                    Intent::Withdraw { .. } => {
                        let amount = match amount {
                            AmountSpec::All => U256::MAX,
                            AmountSpec::Exact(a) => U256::from(a.0),
                        };
                        plain(vec![calls::aave_withdraw(pool, asset, amount, safe)])
                    }
                    _ => {
                        // Repaying "all" offers the whole balance; Aave takes no more than the debt.
                        let amount = self.resolve(asset, amount, &token.symbol)?;
                        let approval = self.approval(asset, pool, amount, &format!("{} to Aave", token.symbol))?;
                        let approved = approval.is_some();
                        let mut steps: Vec<Call> = approval.into_iter().collect();
                        if matches!(intent, Intent::Supply { .. }) {
                            steps.push(calls::aave_supply(pool, asset, amount, safe));
                        } else {
                            steps.push(calls::aave_repay(pool, asset, amount, safe));
                            // A repay may take less than offered: leave nothing approved behind.
                            if approved && !self.settings.unlimited_approvals {
                                steps.push(revoke(asset, pool, &token.symbol));
                            }
                        }
                        plain(steps)
                    }
                }
            }
            Intent::Borrow { market, token, amount } => {
                let pool: Address = market.address.parse().map_err(|_| unsupported(intent, "bad market address"))?;
                plain(vec![calls::aave_borrow(pool, addr(token)?, U256::from(amount.0), safe)])
            }
            Intent::LpOpen { pool, tick_lower, tick_upper, amount0, amount1 } => {
                let manager = self.contract("position_manager", intent)?;
                let p: Address = pool.address.parse().map_err(|_| unsupported(intent, "bad pool address"))?;
                let t0 = view(self.rpc(), p, &IUniswapV3Pool::token0Call {}).map_err(exec_err)?;
                let t1 = view(self.rpc(), p, &IUniswapV3Pool::token1Call {}).map_err(exec_err)?;
                // The amounts are maxima: never more than the Safe holds (a strategy sizing from its portfolio's
                // decimal balances can overshoot by a rounding unit, and the mint's transferFrom would fail).
                let held = |t: Address| view(self.rpc(), t, &IERC20::balanceOfCall { owner: safe }).map_err(exec_err);
                let (a0, a1) = (U256::from(amount0.0).min(held(t0)?), U256::from(amount1.0).min(held(t1)?));
                let mut steps = Vec::new();
                let approve0 = self.approval(t0, manager, a0, "token0 to the position manager")?;
                let approve1 = self.approval(t1, manager, a1, "token1 to the position manager")?;
                let revokes: Vec<Call> = [(approve0.is_some(), t0, "token0"), (approve1.is_some(), t1, "token1")]
                    .into_iter()
                    .filter(|(approved, _, _)| *approved && !self.settings.unlimited_approvals)
                    .map(|(_, t, name)| revoke(t, manager, name))
                    .collect();
                steps.extend(approve0);
                steps.extend(approve1);
                steps.push(calls::lp_mint(&calls::MintParams {
                    manager,
                    token0: t0,
                    token1: t1,
                    fee_pips: pool.fee_pips,
                    tick_lower: *tick_lower,
                    tick_upper: *tick_upper,
                    amount0: a0,
                    amount1: a1,
                    amount0_min: U256::ZERO,
                    amount1_min: U256::ZERO,
                    recipient: safe,
                    deadline: deadline(self.settings.deadline_secs),
                }));
                // The mint takes only what the range needs at the current price: revoke what is left approved.
                steps.extend(revokes);
                plain(steps)
            }
            Intent::LpClose { position } | Intent::LpCollectFees { position } => {
                let manager = self.contract("position_manager", intent)?;
                let id: U256 = position.0.parse().map_err(|_| unsupported(intent, "position id is not a token id"))?;
                let mut steps = Vec::new();
                if matches!(intent, Intent::LpClose { .. }) {
                    let pos = view(self.rpc(), manager, &INonfungiblePositionManager::positionsCall { tokenId: id })
                        .map_err(exec_err)?;
                    if pos.liquidity > 0 {
                        steps.push(calls::lp_decrease(
                            manager,
                            id,
                            pos.liquidity,
                            deadline(self.settings.deadline_secs),
                        ));
                    }
                    steps.push(calls::lp_collect(manager, id, safe));
                    steps.push(calls::lp_burn(manager, id));
                } else {
                    steps.push(calls::lp_collect(manager, id, safe));
                }
                plain(steps)
            }
        }
    }

    fn transfers(&self, receipt: &TransactionReceipt, token: Address, to_safe: bool) -> U256 {
        receipt
            .inner
            .logs()
            .iter()
            .filter(|l| l.address() == token)
            .filter_map(|l| IERC20::Transfer::decode_log_data(l.data()).ok())
            .filter(|t| if to_safe { t.to == self.safe() } else { t.from == self.safe() })
            .fold(U256::ZERO, |acc, t| acc + t.value)
    }
}

impl Executor for LiveExecutor<'_> {
    type Prepared = Plan;
    type Receipt = Vec<TransactionReceipt>;

    fn prepare(&mut self, intent: &Intent) -> Result<Plan, ExecError> {
        // A plan journaled before a restart is carried on as it was: its steps may already be on chain. Only a
        // plan nothing was signed for, and whose quote and deadline have aged, is made again.
        if let Some(text) = self.journal.plan(self.intent_id).map_err(exec_err)? {
            let plan: Plan = serde_json::from_str(&text)
                .map_err(|e| ExecError::new(ExecErrorKind::Invalid, format!("journaled plan unreadable: {e}")))?;
            let age_ms = crate::journal::now_ms() - plan.planned_at_ms;
            let stale = age_ms > i64::try_from(self.settings.deadline_secs * 500).unwrap_or(i64::MAX);
            if !stale || self.journal.intent_has_txs(self.intent_id).map_err(exec_err)? {
                return Ok(plan);
            }
        }
        let plan = self.plan(intent)?;
        let json = serde_json::to_value(&plan).map_err(|e| ExecError::new(ExecErrorKind::Invalid, e.to_string()))?;
        self.journal.set_plan(self.intent_id, &json).map_err(exec_err)?;
        Ok(plan)
    }

    fn execute(&mut self, plan: &Plan) -> Result<Vec<TransactionReceipt>, ExecError> {
        let mut receipts = Vec::with_capacity(plan.steps.len());
        for (i, call) in plan.steps.iter().enumerate() {
            match self.em.run_step(self.intent_id, i as u32, call) {
                Ok(r) => receipts.push(r),
                // A later step that reverts in simulation right after an earlier one landed may have met a node a
                // block behind: plan again (the mined approval shows in the allowance and is not repeated).
                Err(e @ Error::Reverted(_)) if i > 0 => {
                    self.journal.clear_plan(self.intent_id).map_err(exec_err)?;
                    return Err(ExecError::new(ExecErrorKind::Transient, format!("{e}; planning again")));
                }
                Err(e) => {
                    // A revert leaves nothing in flight: any next attempt plans afresh.
                    if matches!(e, Error::Reverted(_) | Error::RevertedOnChain(_)) {
                        self.journal.clear_plan(self.intent_id).map_err(exec_err)?;
                    }
                    return Err(exec_err(e));
                }
            }
        }
        Ok(receipts)
    }

    fn validate(&mut self, plan: &Plan, receipts: Vec<TransactionReceipt>) -> Result<Option<Fill>, ExecError> {
        let Some(swap) = &plan.swap else { return Ok(None) };
        let last = receipts.last().ok_or_else(|| ExecError::new(ExecErrorKind::Invalid, "no receipt for the swap"))?;
        let (sell_a, buy_a) = (addr(&swap.sell)?, addr(&swap.buy)?);
        let paid = self.transfers(last, sell_a, false);
        let got = self.transfers(last, buy_a, true);
        if paid != swap.amount_in || got < swap.min_out {
            return Err(ExecError::new(
                ExecErrorKind::Invalid,
                format!(
                    "swap moved {paid} in / {got} out; planned {} in, at least {} out",
                    swap.amount_in, swap.min_out
                ),
            ));
        }
        let (amount_in, amount_out) = (human(paid, swap.sell.decimals), human(got, swap.buy.decimals));
        let selling_quote = swap.sell.symbol == self.settings.quote_symbol;
        let (base_qty, quote_qty) = if selling_quote { (amount_out, amount_in) } else { (amount_in, amount_out) };
        let fee = f64::from(swap.fee_pips) / 1e6;
        let native_price =
            if swap.sell.symbol == self.chain.wrapped_native || swap.buy.symbol == self.chain.wrapped_native {
                swap.mid_price
            } else {
                0.0
            };
        let gas_wei: f64 = receipts.iter().map(|r| r.gas_used as f64 * r.effective_gas_price as f64).sum();
        let fee_paid = if selling_quote { quote_qty * fee } else { base_qty * swap.mid_price * fee };
        let exec_price = if base_qty > 0.0 { quote_qty / base_qty } else { 0.0 };
        let slippage =
            (if selling_quote { quote_qty - base_qty * swap.mid_price } else { base_qty * swap.mid_price - quote_qty })
                - fee_paid;
        Ok(Some(Fill {
            timestamp_ms: crate::journal::now_ms(),
            token_in: swap.sell.clone(),
            amount_in: sextant_types::Amount(paid.saturating_to::<u128>()),
            token_out: swap.buy.clone(),
            amount_out: sextant_types::Amount(got.saturating_to::<u128>()),
            mid_price: swap.mid_price,
            exec_price,
            fee_paid,
            gas_paid: gas_wei / 1e18 * native_price,
            slippage_paid: slippage.max(0.0),
            mev_paid: 0.0,
            lp_position: None,
        }))
    }

    fn backoff(&mut self, delay_ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    }
}
