//! One deployment: a strategy, a Safe, a key and a journal. Each tick reads the market from the chain, lets the
//! strategy decide (the same `Strategy::on_step` the backtest calls), commits the decision and the new state in one
//! journal transaction, and carries out each intent with `run_flow` over the live executor. Intents left pending by
//! a crash or an outage are finished before anything new is decided.

use crate::config::DeploymentConfig;
use crate::{Error, Result};
use sextant_chain::alloy::primitives::{Address, U256};
use sextant_chain::bindings::{IERC20, INonfungiblePositionManager, ISextantVault, IUniswapV3Pool};
use sextant_chain::registry::PoolEntry;
use sextant_chain::{ChainEntry, Registry, Rpc};
use sextant_exec::journal::{IntentStatus, Journal, PortfolioAfter, TickRecord, now_ms};
use sextant_exec::{
    ExecSettings, ExecutionManager, LiveExecutor, LiveSettings, Signer, TransactionManager, TxSettings, view,
};
use sextant_market::{AssetView, Candle, MarketView};
use sextant_strategies::{BuiltIn, BuiltInState, DynamicLp, IndicatorStrategy, StrategySpec};
use sextant_strategy::{FlowOutcome, FlowStatus, LpView, PortfolioView, PositionView, RetryPolicy, Strategy, run_flow};
use sextant_types::{Amount, ChainId, Intent, LpPositionId, PoolRef, Token, VaultRef};
use std::path::PathBuf;
use std::time::Duration;

/// Where log events go: an event name and its fields.
pub type Log<'a> = Box<dyn Fn(&str, serde_json::Value) + 'a>;

/// What a deployment needs to open.
pub struct OpenOptions<'a> {
    /// The config.
    pub config: DeploymentConfig,
    /// The chain's endpoint.
    pub rpc: &'a Rpc,
    /// The Safe owner's key (signs the Safe transactions and sends them).
    pub signer: &'a dyn Signer,
    /// The Safe.
    pub safe: Address,
    /// The SQLite state file.
    pub state: PathBuf,
    /// The chain registry.
    pub registry: Registry,
    /// Log sink.
    pub log: Log<'a>,
}

/// Whether a tick asks the strategy for its next step or for its unwind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickKind {
    /// `Strategy::on_step`.
    Step,
    /// `Strategy::teardown`.
    Teardown,
}

/// What one tick did.
#[derive(Debug, Clone, PartialEq)]
pub enum TickReport {
    /// The strategy stepped.
    Stepped {
        /// The tick's record (market and portfolio seen).
        record: TickRecord,
        /// Each intent and how it ended (None: still pending, it is retried at the next tick).
        outcomes: Vec<(Intent, Option<FlowOutcome>)>,
    },
    /// Earlier intents are still pending (an outage or a transaction in flight); nothing new was decided.
    Waiting {
        /// How many.
        pending: usize,
    },
}

/// A running deployment.
pub struct Deployment<'a> {
    cfg: DeploymentConfig,
    strategy: BuiltIn,
    chain: ChainEntry,
    base: Token,
    quote: Token,
    pool: PoolEntry,
    rpc: &'a Rpc,
    tm: TransactionManager<'a>,
    journal: Journal,
    live: LiveSettings,
    exec: ExecSettings,
    retry: RetryPolicy,
    log: Log<'a>,
    /// The vault this deployment settles, and how often.
    vault: Option<VaultSettings>,
}

impl std::fmt::Debug for Deployment<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment")
            .field("chain", &self.chain.name)
            .field("safe", &self.tm.safe())
            .finish_non_exhaustive()
    }
}

fn gwei_to_wei(g: f64) -> u128 {
    (g * 1e9) as u128
}

impl<'a> Deployment<'a> {
    /// Opens a deployment: checks the RPC answers on the configured chain, the Safe exists and the key owns it,
    /// binds the journal to this chain, Safe and key, and takes the runner lock.
    ///
    /// # Errors
    /// A clear error for each: RPC down, wrong chain, unknown tokens or pool, missing Safe, not an owner, a journal
    /// of another deployment, a second runner.
    pub fn open(opts: OpenOptions<'a>) -> Result<Self> {
        let OpenOptions { config: cfg, rpc, signer, safe, state, registry, log } = opts;
        let chain_id =
            retry_transient(|| rpc.chain_id(), |e| e.rpc_failure() == Some(sextant_chain::RpcFailure::Transient))
                .map_err(|e| {
                    Error::Setup(format!("cannot reach the RPC at {} (is it up, and the URL right?): {e}", rpc.url()))
                })?;
        let chain = registry.by_name(&cfg.live.chain)?.clone();
        if chain.chain_id != chain_id {
            return Err(Error::Setup(format!(
                "live.chain is {} (chain id {}) but the RPC at {} serves chain id {chain_id}",
                chain.name,
                chain.chain_id,
                rpc.url()
            )));
        }
        let base = chain.token(&cfg.live.base)?;
        let quote = chain.token(&cfg.live.quote)?;
        let pool = chain.pool(&cfg.live.base, &cfg.live.quote, None)?.clone();
        let strategy = match &cfg.strategy {
            StrategySpec::DynamicLp { .. } => {
                let spacing = retry_transient(
                    || view(rpc, pool.address, &IUniswapV3Pool::tickSpacingCall {}),
                    sextant_exec::is_transient,
                )?;
                let pool_ref =
                    PoolRef { chain: ChainId(chain_id), address: pool.address.to_string(), fee_pips: pool.fee_pips };
                BuiltIn::DynamicLp(
                    DynamicLp::new(&cfg.strategy, pool_ref, spacing.as_i32(), pool.token0 == cfg.live.base)
                        .map_err(|e| Error::Strategy(e.to_string()))?,
                )
            }
            StrategySpec::StableRotator(_) | StrategySpec::LeverageLoop(_) | StrategySpec::FixedYield(_) => {
                return Err(Error::Strategy(format!(
                    "{} runs in backtests only for now: a live deployment reads one pool's price and the Safe's \
                     token and LP balances, not lending positions (sextant backtest runs it)",
                    cfg.strategy.kind()
                )));
            }
            _ => BuiltIn::Indicator(
                IndicatorStrategy::new(cfg.strategy.clone(), cfg.risk.clone())
                    .map_err(|e| Error::Strategy(e.to_string()))?,
            ),
        };
        let l = &cfg.live;
        let tx_settings = TxSettings {
            gas_margin_pct: l.gas_margin_pct,
            max_fee_wei: l.max_fee_gwei.map(gwei_to_wei),
            priority_fee_wei: l.priority_fee_gwei.map(gwei_to_wei),
            fee_bump_pct: 15,
        };
        let mut tm = TransactionManager::new(rpc, signer, chain_id, safe, tx_settings)?;
        let mut route = "owner".to_string();
        if let Some(m) = &cfg.permissions.module {
            let module =
                sextant_chain::parse_address(m).map_err(|e| Error::Config(format!("permissions.module: {e}")))?;
            if cfg.live.unlimited_approvals {
                return Err(Error::Config(
                    "live.unlimited_approvals cannot go through the permissions module: approvals are spent from \
                     bounded allowances (set it to false)"
                        .into(),
                ));
            }
            let derived = crate::permissions::derive_for_config(&cfg.text, "the config", &registry, &chain.name, safe)?;
            route = format!("permissions module {module}, role {:?}", derived.policy.role);
            tm = tm.with_module(module, derived.policy);
        }
        let info = retry_transient(|| tm.check_safe(), sextant_exec::is_transient)?;
        let vault = match &cfg.vault {
            None => None,
            Some(v) => {
                let aave_pool = match &v.aave_pool {
                    Some(a) => Some(check_aave_pool(rpc, a, safe, [&base, &quote])?),
                    None => None,
                };
                Some(VaultSettings {
                    address: check_vault(rpc, v, safe, &quote, cfg.permissions.module.is_some())?,
                    every: v.settle_every_secs,
                    aave_pool,
                })
            }
        };
        let mut journal = Journal::open(&state)?;
        journal.bind(&[
            ("chain_id", chain_id.to_string()),
            ("safe", safe.to_string()),
            ("sender", tm.sender().to_string()),
            ("strategy", serde_json::to_string(&cfg.strategy).unwrap_or_default()),
            ("base", cfg.live.base.clone()),
            ("quote", cfg.live.quote.clone()),
        ])?;
        let pid = std::process::id();
        let stale_ms = i64::try_from(l.track_timeout_secs.max(60) * 1000).unwrap_or(i64::MAX);
        journal.lock(&format!("sextant run (pid {pid})"), pid, stale_ms, pid_alive)?;
        log(
            "open",
            serde_json::json!({
                "chain": chain.name, "chain_id": chain_id, "safe": safe.to_string(), "safe_version": info.version,
                "safe_nonce": info.nonce, "sender": tm.sender().to_string(), "state": state.display().to_string(),
                "route": route,
            }),
        );
        let live = LiveSettings {
            default_slippage_bps: l.slippage_bps,
            unlimited_approvals: l.unlimited_approvals,
            deadline_secs: l.deadline_secs,
            quote_symbol: l.quote.clone(),
        };
        let exec = ExecSettings {
            confirmations: l.confirmations,
            poll: Duration::from_millis(l.poll_ms.max(10)),
            stuck_after: Duration::from_secs(l.stuck_after_secs),
            max_bumps: l.max_bumps,
            track_timeout: Duration::from_secs(l.track_timeout_secs),
        };
        let retry = RetryPolicy { max_attempts: l.max_attempts, base_delay_ms: l.retry_base_ms, max_delay_ms: 30_000 };
        Ok(Deployment { cfg, strategy, chain, base, quote, pool, rpc, tm, journal, live, exec, retry, log, vault })
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// RPC requests that have failed transiently so far (most were retried and succeeded).
    pub fn rpc_transient_failures(&self) -> u64 {
        self.rpc.transient_failures()
    }

    /// The config.
    pub fn config(&self) -> &DeploymentConfig {
        &self.cfg
    }

    /// Releases the runner lock (also released implicitly when the process dies: a dead holder's lock is taken over).
    ///
    /// # Errors
    /// Database errors.
    pub fn close(self) -> Result<()> {
        self.journal.unlock()?;
        Ok(())
    }

    fn state(&self, market: &MarketView) -> Result<(Option<u64>, u64, BuiltInState)> {
        match self.journal.state()? {
            Some(s) => {
                let st = serde_json::from_str(&s.state)
                    .map_err(|e| Error::Strategy(format!("stored state unreadable: {e}")))?;
                Ok((Some(s.version), s.tick, st))
            }
            None => Ok((None, 0, self.strategy.init(market))),
        }
    }

    fn balance(&self, token: &Token) -> Result<U256> {
        let a: Address =
            token.id.address.parse().map_err(|_| Error::Config(format!("{} has no address", token.symbol)))?;
        Ok(view(self.rpc, a, &IERC20::balanceOfCall { owner: self.tm.safe() })?)
    }

    /// The market and the Safe's holdings (LP positions included) as the next tick will see them.
    ///
    /// # Errors
    /// RPC failures.
    pub fn observe_now(&self) -> Result<(MarketView, PortfolioView)> {
        let next = self.journal.first_and_last_tick()?.1.map_or(0, |t| t.tick + 1);
        self.observe(next).map(|(_, view, portfolio)| (view, portfolio))
    }

    /// The vault's NAV in quote base units: the portfolio's equity (tokens at the pool price, LP positions with their
    /// fees) plus the Safe's positions in the Aave pool, if one is named (supplies less debts in the quote token,
    /// exactly; in the base token at the pool price), floored at zero.
    fn nav(
        &self,
        market: &MarketView,
        portfolio: &PortfolioView,
        settings: &VaultSettings,
        block: u64,
        now: u64,
    ) -> Result<Amount> {
        let mut value = portfolio.equity(market);
        if let Some(pool) = settings.aave_pool {
            // a base-token position cannot be valued without a price: better no settlement than a wrong NAV
            let price = market.assets[0]
                .last_close
                .filter(|p| p.is_finite() && *p > 0.0)
                .ok_or_else(|| Error::Strategy("the vault's NAV: no price for the base token".into()))?;
            for (token, price) in [(&self.quote, 1.0), (&self.base, price)] {
                let asset: Address =
                    token.id.address.parse().map_err(|_| Error::Config(format!("{} has no address", token.symbol)))?;
                // a token the pool does not list is simply not lent there
                if let Some(p) =
                    sextant_chain::lending::aave_position(self.rpc, pool, asset, self.tm.safe(), block, now)?
                {
                    value += p.net_units() / token.scale() * price;
                }
            }
        }
        Amount::from_units(value.max(0.0), &self.quote)
            .map_err(|e| Error::Strategy(format!("the NAV cannot be written in {}: {e}", self.quote.symbol)))
    }

    /// Reads the market and the Safe's holdings: (block, view, portfolio).
    fn observe(&self, tick: u64) -> Result<(u64, MarketView, PortfolioView)> {
        let block = self.rpc.block_number()?;
        let slot0 = view(self.rpc, self.pool.address, &IUniswapV3Pool::slot0Call {})?;
        let base_is_0 = self.pool.token0 == self.base.symbol;
        let (d0, d1) = if base_is_0 {
            (self.base.decimals, self.quote.decimals)
        } else {
            (self.quote.decimals, self.base.decimals)
        };
        let p01 = sextant_protocols::uniswap_v3::price_token0_in_token1(U256::from(slot0.sqrtPriceX96), d0, d1);
        let price = if base_is_0 { p01 } else { 1.0 / p01 };
        let cash = f64::from(self.balance(&self.quote)?) / self.quote.scale();
        let quantity = f64::from(self.balance(&self.base)?) / self.base.scale();
        let prev = self.journal.first_and_last_tick()?.1.map_or(price, |t| t.after.map_or(t.price, |a| a.price));
        let now = now_ms();
        let candle = Candle {
            timestamp_ms: now,
            open: prev,
            high: prev.max(price),
            low: prev.min(price),
            close: price,
            volume: 0.0,
        };
        let view = MarketView {
            step: usize::try_from(tick).unwrap_or(usize::MAX),
            timestamp_ms: now,
            assets: vec![AssetView {
                base: self.base.clone(),
                quote: self.quote.clone(),
                candle: Some(candle),
                last_close: Some(price),
            }],
            lending: Vec::new(),
        };
        let portfolio = PortfolioView {
            quote: self.quote.clone(),
            cash,
            positions: vec![PositionView {
                base: self.base.clone(),
                quantity,
                entry_price: if quantity > 0.0 { self.entry_price()? } else { None },
            }],
            lp: if matches!(self.strategy, BuiltIn::DynamicLp(_)) {
                self.lp_views(U256::from(slot0.sqrtPriceX96), slot0.tick.as_i32())?
            } else {
                Vec::new()
            },
            lending: Vec::new(),
        };
        Ok((block, view, portfolio))
    }

    /// The Safe's positions in the deployment's pool, read from the position manager (its token ids enumerated,
    /// their ranges and liquidity) and the pool (fees owed as a poke would compute them).
    fn lp_views(&self, sqrt_price: U256, tick: i32) -> Result<Vec<LpView>> {
        use sextant_protocols::uniswap_v3::liquidity::amounts_for_liquidity;
        use sextant_protocols::uniswap_v3::math::sqrt_ratio_at_tick;
        use sextant_protocols::uniswap_v3::pool::{fee_growth_inside_of, fees_earned};
        let manager = self.chain.contract("position_manager")?;
        let safe = self.tm.safe();
        let count = view(self.rpc, manager, &INonfungiblePositionManager::balanceOfCall { owner: safe })?;
        let (t0, t1) = (
            view(self.rpc, self.pool.address, &IUniswapV3Pool::token0Call {})?,
            view(self.rpc, self.pool.address, &IUniswapV3Pool::token1Call {})?,
        );
        let global0 = view(self.rpc, self.pool.address, &IUniswapV3Pool::feeGrowthGlobal0X128Call {})?;
        let global1 = view(self.rpc, self.pool.address, &IUniswapV3Pool::feeGrowthGlobal1X128Call {})?;
        let mut out = Vec::new();
        for index in 0..count.saturating_to::<u64>().min(256) {
            let call = INonfungiblePositionManager::tokenOfOwnerByIndexCall { owner: safe, index: U256::from(index) };
            let id = view(self.rpc, manager, &call)?;
            let p = view(self.rpc, manager, &INonfungiblePositionManager::positionsCall { tokenId: id })?;
            if p.token0 != t0 || p.token1 != t1 || p.fee.to::<u32>() != self.pool.fee_pips || p.liquidity == 0 {
                continue;
            }
            let (lower, upper) = (p.tickLower.as_i32(), p.tickUpper.as_i32());
            let bounds = sqrt_ratio_at_tick(lower).zip(sqrt_ratio_at_tick(upper));
            let (a0, a1) =
                bounds.and_then(|(a, b)| amounts_for_liquidity(sqrt_price, a, b, p.liquidity)).unwrap_or_default();
            // Tick.getFeeGrowthInside from the pool's ticks, then Position.update's arithmetic.
            let lo = view(self.rpc, self.pool.address, &IUniswapV3Pool::ticksCall { tick: p.tickLower })?;
            let hi = view(self.rpc, self.pool.address, &IUniswapV3Pool::ticksCall { tick: p.tickUpper })?;
            let in0 =
                fee_growth_inside_of(tick, (lower, upper), global0, lo.feeGrowthOutside0X128, hi.feeGrowthOutside0X128);
            let in1 =
                fee_growth_inside_of(tick, (lower, upper), global1, lo.feeGrowthOutside1X128, hi.feeGrowthOutside1X128);
            let owed = |inside: U256, last: U256, owed: u128| {
                fees_earned(inside, last, p.liquidity).wrapping_to::<u128>().wrapping_add(owed)
            };
            let f0 = owed(in0, p.feeGrowthInside0LastX128, p.tokensOwed0);
            let f1 = owed(in1, p.feeGrowthInside1LastX128, p.tokensOwed1);
            // Pool order to (asset, quote).
            let base_is_0 = self.pool.token0 == self.base.symbol;
            let ((a_base, a_quote), (f_base, f_quote)) =
                if base_is_0 { ((a0, a1), (f0, f1)) } else { ((a1, a0), (f1, f0)) };
            out.push(LpView {
                id: LpPositionId(id.to_string()),
                asset: 0,
                tick_lower: lower,
                tick_upper: upper,
                liquidity: p.liquidity,
                amount_base: f64::from(a_base) / self.base.scale(),
                amount_quote: f64::from(a_quote) / self.quote.scale(),
                fees_base: f_base as f64 / self.base.scale(),
                fees_quote: f_quote as f64 / self.quote.scale(),
                in_range: lower <= tick && tick < upper,
            });
        }
        Ok(out)
    }

    /// The price of the latest fill that bought the base asset, unless a later one sold it.
    fn entry_price(&self) -> Result<Option<f64>> {
        for (_, text) in self.journal.recent_outcomes(50)? {
            let Ok(outcome) = serde_json::from_str::<FlowOutcome>(&text) else { continue };
            if let Some(fill) = outcome.fill() {
                if fill.token_out.id == self.base.id {
                    return Ok(Some(fill.exec_price));
                }
                if fill.token_in.id == self.base.id {
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    /// Runs one journaled intent's flow.
    fn run_intent(&self, intent_id: i64, intent: &Intent) -> FlowOutcome {
        let log = |m: &str| (self.log)("exec", serde_json::json!({ "intent_id": intent_id, "message": m }));
        let em = ExecutionManager::new(&self.tm, &self.journal, self.exec.clone(), &log);
        let mut executor = LiveExecutor::new(&em, &self.chain, &self.journal, intent_id, &self.live);
        run_flow(&mut executor, intent, &self.retry)
    }

    /// Settles an intent unless its failure is transient (then it stays pending for the next tick). Returns whether
    /// it settled.
    fn settle(&mut self, intent_id: i64, outcome: &FlowOutcome) -> Result<bool> {
        // Never settle an intent while one of its transactions may still land, whatever the error said.
        if let FlowStatus::Failed { error } = &outcome.status
            && (error.recoverable() || self.journal.intent_in_flight(intent_id)?)
        {
            (self.log)(
                "intent_waiting",
                serde_json::json!({ "intent_id": intent_id, "error": error.message, "attempts": outcome.attempts }),
            );
            return Ok(false);
        }
        let stored = self.journal.state()?.ok_or_else(|| Error::Strategy("no stored state to settle into".into()))?;
        let mut state: BuiltInState = serde_json::from_str(&stored.state)
            .map_err(|e| Error::Strategy(format!("stored state unreadable: {e}")))?;
        self.strategy.on_outcome(&mut state, outcome);
        let status = match outcome.status {
            FlowStatus::Completed { .. } => IntentStatus::Done,
            FlowStatus::Failed { .. } => IntentStatus::Failed,
        };
        let text = serde_json::to_string(outcome).map_err(|e| Error::Strategy(e.to_string()))?;
        let state_json = serde_json::to_string(&state).map_err(|e| Error::Strategy(e.to_string()))?;
        self.journal.settle_intent(intent_id, status, &text, stored.version, stored.tick, &state_json)?;
        let summary = match &outcome.status {
            FlowStatus::Completed { fill: Some(f) } => serde_json::json!({
                "status": "completed", "sold": f.token_in.symbol, "amount_in": f.amount_in.to_units(&f.token_in),
                "bought": f.token_out.symbol, "amount_out": f.amount_out.to_units(&f.token_out), "price": f.exec_price,
                "gas_paid": f.gas_paid, "attempts": outcome.attempts,
            }),
            FlowStatus::Completed { fill: None } => {
                serde_json::json!({ "status": "completed", "attempts": outcome.attempts })
            }
            FlowStatus::Failed { error } => serde_json::json!({
                "status": "failed", "kind": error.kind.name(), "error": error.message, "attempts": outcome.attempts,
            }),
        };
        (self.log)("intent_settled", serde_json::json!({ "intent_id": intent_id, "outcome": summary }));
        Ok(true)
    }

    /// Finishes intents left pending by an earlier tick. Returns how many remain pending.
    fn finish_pending(&mut self) -> Result<usize> {
        let pending = self.journal.pending_intents()?;
        let mut left = 0;
        for rec in pending {
            let intent: Intent = serde_json::from_str(&rec.intent_text)
                .map_err(|e| Error::Strategy(format!("journaled intent {} unreadable: {e}", rec.id)))?;
            (self.log)("intent_resume", serde_json::json!({ "intent_id": rec.id, "tick": rec.tick }));
            let outcome = self.run_intent(rec.id, &intent);
            if !self.settle(rec.id, &outcome)? {
                left += 1;
                break;
            }
        }
        Ok(left)
    }

    /// One tick: finish what is pending, read the chain, let the strategy step (or unwind), commit, execute.
    ///
    /// # Errors
    /// RPC failures while reading the market (transient: the next tick tries again), journal failures, a state
    /// changed by another writer.
    pub fn tick(&mut self, kind: TickKind) -> Result<TickReport> {
        self.journal.heartbeat()?;
        let pending = self.finish_pending()?;
        if pending > 0 {
            return Ok(TickReport::Waiting { pending });
        }
        let tick = self.journal.state()?.map_or(0, |s| s.tick);
        let (block, market, portfolio) = self.observe(tick)?;
        let (version, _, mut state) = self.state(&market)?;
        let mut intents = Vec::new();
        match kind {
            TickKind::Step => self.strategy.on_step(&mut state, &market, &portfolio, &mut intents),
            TickKind::Teardown => self.strategy.teardown(&mut state, &market, &portfolio, &mut intents),
        }
        // The vault's epoch is settled first, at the NAV just observed (nothing has moved since), when it is due.
        if let (Some(settings), TickKind::Step) = (&self.vault, kind) {
            let vault = settings.address;
            let last: u64 = view(self.rpc, vault, &ISextantVault::lastFeeAccrualCall {})?.saturating_to();
            // the chain's clock, as the vault's is
            let now = self.rpc.block(block)?.map_or(0, |(_, t)| t);
            if now >= last.saturating_add(settings.every) {
                let nav = self.nav(&market, &portfolio, settings, block, now)?;
                let vault_ref =
                    VaultRef { chain: self.base.id.chain, address: vault.to_string(), asset: self.quote.clone() };
                intents.insert(0, Intent::VaultSettle { vault: vault_ref, nav });
            }
        }
        let price = market.assets[0].last_close.unwrap_or(0.0);
        let quantity = portfolio.positions[0].quantity;
        let record = TickRecord {
            tick,
            timestamp_ms: market.timestamp_ms,
            block,
            price,
            cash: portfolio.cash,
            position: quantity,
            // Cash, holdings and LP positions (principal and fees owed) at the price.
            equity: portfolio.equity(&market),
            intents: intents.len() as u32,
            after: None,
        };
        let state_json = serde_json::to_string(&state).map_err(|e| Error::Strategy(e.to_string()))?;
        let intent_json = intents
            .iter()
            .map(serde_json::to_string)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Strategy(e.to_string()))?;
        let (_, ids) = self.journal.commit_tick(version, &state_json, &record, &intent_json)?;
        (self.log)("tick", serde_json::to_value(&record).unwrap_or_default());
        let mut outcomes = Vec::new();
        for (id, intent) in ids.into_iter().zip(intents) {
            (self.log)("intent", serde_json::json!({ "intent_id": id, "intent": intent_json[outcomes.len()] }));
            let outcome = self.run_intent(id, &intent);
            let settled = self.settle(id, &outcome)?;
            outcomes.push((intent, settled.then_some(outcome)));
            if !settled {
                // Later intents of this tick wait behind it, in order.
                break;
            }
        }
        let mut record = record;
        if !outcomes.is_empty() {
            // What the trades left: the next tick's view would show it too, but status and PnL want it now.
            if let Ok((_, market, portfolio)) = self.observe(tick) {
                let price = market.assets[0].last_close.unwrap_or(0.0);
                let position = portfolio.positions[0].quantity;
                let after = PortfolioAfter { price, cash: portfolio.cash, position, equity: portfolio.equity(&market) };
                self.journal.set_tick_after(tick, &after)?;
                record.after = Some(after);
            }
        }
        Ok(TickReport::Stepped { record, outcomes })
    }
}

/// Runs `f`, retrying a few times (200 ms apart, doubling) while it fails transiently: start-up should not fail on
/// one dropped request.
fn retry_transient<T, E>(
    mut f: impl FnMut() -> std::result::Result<T, E>,
    transient: impl Fn(&E) -> bool,
) -> std::result::Result<T, E> {
    let mut delay = Duration::from_millis(200);
    for _ in 0..3 {
        match f() {
            Err(e) if transient(&e) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            other => return other,
        }
    }
    f()
}

/// Whether a process is alive on this machine.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()).is_some_and(|s| s != 'Z')
        }
        Err(_) => false,
    }
}

/// Checks that `vault.aave_pool` is an Aave v3 pool listing the deployment's base or quote token.
fn check_aave_pool(rpc: &Rpc, text: &str, safe: Address, tokens: [&Token; 2]) -> Result<Address> {
    let pool = sextant_chain::parse_address(text).map_err(|e| Error::Config(format!("vault.aave_pool: {e}")))?;
    let block = rpc.block_number()?;
    let now = rpc.block(block)?.map_or(0, |(_, t)| t);
    let mut listed = 0;
    for token in tokens {
        let asset: Address =
            token.id.address.parse().map_err(|_| Error::Config(format!("{} has no address", token.symbol)))?;
        let p = sextant_chain::lending::aave_position(rpc, pool, asset, safe, block, now)
            .map_err(|e| Error::Config(format!("vault.aave_pool {pool} is not an Aave v3 pool: {e}")))?;
        listed += usize::from(p.is_some());
    }
    if listed == 0 {
        return Err(Error::Config(format!(
            "vault.aave_pool {pool} lists neither {} nor {}: no position there could count in the NAV",
            tokens[0].symbol, tokens[1].symbol
        )));
    }
    Ok(pool)
}

/// The vault a deployment settles.
#[derive(Debug, Clone, Copy)]
struct VaultSettings {
    address: Address,
    /// Seconds between settlements.
    every: u64,
    /// An Aave v3 pool whose positions of the Safe count in the NAV.
    aave_pool: Option<Address>,
}

/// Checks that `[vault]` names a Sextant vault this deployment can settle: its Safe and curator are the deployment's
/// Safe and its asset is the quote token. Returns its address.
fn check_vault(
    rpc: &Rpc,
    v: &crate::config::VaultConfig,
    safe: Address,
    quote: &Token,
    module: bool,
) -> Result<Address> {
    let vault = sextant_chain::parse_address(&v.address).map_err(|e| Error::Config(format!("vault.address: {e}")))?;
    if module {
        return Err(Error::Config(
            "[vault] with [permissions] module: the Safe settles the vault as its curator, which the derived policy \
             does not allow yet (settle with the owner route)"
                .into(),
        ));
    }
    let not_vault =
        |e: sextant_exec::Error| Error::Config(format!("vault.address {vault} is not a Sextant vault: {e}"));
    let vault_safe = view(rpc, vault, &ISextantVault::safeCall {}).map_err(not_vault)?;
    let curator = view(rpc, vault, &ISextantVault::curatorCall {}).map_err(not_vault)?;
    let asset = view(rpc, vault, &ISextantVault::assetCall {}).map_err(not_vault)?;
    if vault_safe != safe || curator != safe {
        return Err(Error::Config(format!(
            "vault {vault} belongs to Safe {vault_safe} with curator {curator}; this deployment's Safe {safe} must be both"
        )));
    }
    if asset.to_string().to_lowercase() != quote.id.address.to_lowercase() {
        return Err(Error::Config(format!(
            "vault {vault}'s asset is {asset}, not the deployment's quote {} ({})",
            quote.symbol, quote.id.address
        )));
    }
    Ok(vault)
}
