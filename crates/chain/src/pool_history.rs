//! A Uniswap v3 pool's state rebuilt from its events alone: `Initialize`, `Mint`, `Burn`, `Swap`, `Collect`,
//! `SetFeeProtocol` and `CollectProtocol` logs fetched with `eth_getLogs` (in block ranges that shrink when a node
//! refuses a range, each request retried on transient failures), cached on disk, and replayed through the same pool
//! maths as the backtest (`sextant_protocols::uniswap_v3::Pool`). Only the pool's immutable configuration (tokens,
//! fee, tick spacing) is read by call.

use crate::bindings::IUniswapV3Pool;
use crate::{Error, Result, Rpc};
use alloy::primitives::{Address, I256, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;
use serde::{Deserialize, Serialize};
use sextant_protocols::uniswap_v3::Pool;
use sextant_protocols::uniswap_v3::math::{MAX_SQRT_RATIO, MIN_SQRT_RATIO};
use std::path::{Path, PathBuf};

/// A pool's immutable configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolConfig {
    /// The pool.
    pub address: Address,
    /// token0.
    pub token0: Address,
    /// token1.
    pub token1: Address,
    /// Fee (pips).
    pub fee: u32,
    /// Tick spacing.
    pub tick_spacing: i32,
}

/// Reads a pool's immutable configuration.
///
/// # Errors
/// RPC failures, or no pool at the address.
pub fn pool_config(rpc: &Rpc, pool: Address) -> Result<PoolConfig> {
    let get = |data: Vec<u8>| {
        let req = alloy::rpc::types::TransactionRequest::default()
            .to(pool)
            .input(alloy::primitives::Bytes::from(data).into());
        rpc.call(&req)
    };
    use alloy::sol_types::SolCall;
    let bad =
        |e: alloy::sol_types::Error| Error::Registry(format!("{pool} does not answer like a Uniswap v3 pool: {e}"));
    let token0 = IUniswapV3Pool::token0Call::abi_decode_returns(&get(IUniswapV3Pool::token0Call {}.abi_encode())?)
        .map_err(bad)?;
    let token1 = IUniswapV3Pool::token1Call::abi_decode_returns(&get(IUniswapV3Pool::token1Call {}.abi_encode())?)
        .map_err(bad)?;
    let fee =
        IUniswapV3Pool::feeCall::abi_decode_returns(&get(IUniswapV3Pool::feeCall {}.abi_encode())?).map_err(bad)?;
    let spacing =
        IUniswapV3Pool::tickSpacingCall::abi_decode_returns(&get(IUniswapV3Pool::tickSpacingCall {}.abi_encode())?)
            .map_err(bad)?;
    Ok(PoolConfig { address: pool, token0, token1, fee: fee.to::<u32>(), tick_spacing: spacing.as_i32() })
}

/// The logs fetched so far for one pool, as cached on disk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogCache {
    /// Logs are complete from `from_block` through this block.
    pub to_block: Option<u64>,
    /// First block searched.
    pub from_block: u64,
    /// The pool's logs, in chain order.
    pub logs: Vec<Log>,
}

impl LogCache {
    fn path(dir: &Path, chain_id: u64, pool: Address) -> PathBuf {
        dir.join(format!("{chain_id}-{pool:#x}.json"))
    }

    /// The cache for a pool, or an empty one.
    pub fn load(dir: &Path, chain_id: u64, pool: Address) -> Self {
        std::fs::read_to_string(LogCache::path(dir, chain_id, pool))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Writes the cache (atomically: a crash leaves the old one).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, dir: &Path, chain_id: u64, pool: Address) -> Result<()> {
        let io = |e: std::io::Error| Error::Registry(format!("cache {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = LogCache::path(dir, chain_id, pool);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(self).map_err(|e| Error::Registry(e.to_string()))?).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

impl LogCache {
    /// The part of the cache that is safe to keep across runs: logs at most `safe_block` (older than a reorg can
    /// reach), so a later run fetches the recent blocks again.
    pub fn settled(&self, safe_block: u64) -> LogCache {
        match self.to_block {
            Some(to) if to > safe_block => LogCache {
                to_block: (safe_block >= self.from_block).then_some(safe_block),
                from_block: self.from_block,
                logs: self.logs.iter().filter(|l| l.block_number.is_some_and(|b| b <= safe_block)).cloned().collect(),
            },
            _ => self.clone(),
        }
    }
}

/// Fetches `pool`'s logs from `cache.to_block + 1` (or `from`) through `to`, in ranges of at most `chunk` blocks,
/// halving a range a node refuses, reporting progress as (block reached, target).
///
/// # Errors
/// RPC failures that persist after retries and halving down to single blocks.
pub fn fetch_logs(
    rpc: &Rpc,
    pool: Address,
    cache: &mut LogCache,
    from: u64,
    to: u64,
    chunk: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    if cache.to_block.is_none() || cache.from_block != from {
        *cache = LogCache { to_block: None, from_block: from, logs: Vec::new() };
    }
    let mut start = cache.to_block.map_or(from, |b| b + 1);
    let mut size = chunk.max(1);
    while start <= to {
        let end = (start + size - 1).min(to);
        match rpc.logs(pool, &[], start, end) {
            Ok(mut logs) => {
                cache.logs.append(&mut logs);
                cache.to_block = Some(end);
                start = end + 1;
                size = (size * 2).min(chunk.max(1));
                progress(end, to);
            }
            Err(e) if size > 1 => {
                // Too many results, or a range limit: ask for less.
                let _ = e;
                size /= 2;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What replaying a pool's events found.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The pool after the last event.
    pub pool: Pool,
    /// Events replayed, by kind: initialize, mint, burn, swap, collect, fee switch, protocol collect, flash.
    pub counts: [usize; 8],
    /// Block of the last event replayed.
    pub last_event_block: Option<u64>,
}

fn replay_err(log: &Log, what: String) -> Error {
    Error::Registry(format!(
        "replaying block {} log {}: {what}",
        log.block_number.unwrap_or(0),
        log.log_index.unwrap_or(0)
    ))
}

/// Replays `logs` (up to block `to_block`) through the pool maths, checking each event's amounts and each swap's
/// resulting price, liquidity and tick against what the event says.
///
/// # Errors
/// A log that does not decode, an event before `Initialize`, or any disagreement (which would mean the maths is
/// not the contract's).
pub fn replay(config: &PoolConfig, logs: &[Log], to_block: u64) -> Result<Replay> {
    let mut pool: Option<Pool> = None;
    let mut counts = [0usize; 8];
    let mut last_event_block = None;
    for log in logs.iter().filter(|l| l.block_number.is_none_or(|b| b <= to_block) && !l.removed) {
        let Some(topic) = log.topics().first() else { continue };
        let data = log.data();
        let need = |p: &mut Option<Pool>| -> Result<()> {
            if p.is_none() { Err(replay_err(log, "event before Initialize".into())) } else { Ok(()) }
        };
        let dec = |e: alloy::sol_types::Error| replay_err(log, format!("undecodable event: {e}"));
        last_event_block = log.block_number;
        if *topic == IUniswapV3Pool::Initialize::SIGNATURE_HASH {
            let e = IUniswapV3Pool::Initialize::decode_log_data(data).map_err(dec)?;
            pool = Some(
                Pool::new(config.fee, config.tick_spacing, U256::from(e.sqrtPriceX96))
                    .map_err(|err| replay_err(log, err.to_string()))?,
            );
            counts[0] += 1;
        } else if *topic == IUniswapV3Pool::Mint::SIGNATURE_HASH {
            need(&mut pool)?;
            let e = IUniswapV3Pool::Mint::decode_log_data(data).map_err(dec)?;
            let p = pool.as_mut().expect("checked");
            let (l, u) = (e.tickLower.as_i32(), e.tickUpper.as_i32());
            let got = p.mint(e.owner, l, u, e.amount).map_err(|err| replay_err(log, err.to_string()))?;
            if got != (e.amount0, e.amount1) {
                return Err(replay_err(
                    log,
                    format!("mint amounts {got:?}, event says ({}, {})", e.amount0, e.amount1),
                ));
            }
            counts[1] += 1;
        } else if *topic == IUniswapV3Pool::Burn::SIGNATURE_HASH {
            need(&mut pool)?;
            let e = IUniswapV3Pool::Burn::decode_log_data(data).map_err(dec)?;
            let p = pool.as_mut().expect("checked");
            let got = p
                .burn(e.owner, e.tickLower.as_i32(), e.tickUpper.as_i32(), e.amount)
                .map_err(|err| replay_err(log, err.to_string()))?;
            if got != (e.amount0, e.amount1) {
                return Err(replay_err(
                    log,
                    format!("burn amounts {got:?}, event says ({}, {})", e.amount0, e.amount1),
                ));
            }
            counts[2] += 1;
        } else if *topic == IUniswapV3Pool::Swap::SIGNATURE_HASH {
            need(&mut pool)?;
            let e = IUniswapV3Pool::Swap::decode_log_data(data).map_err(dec)?;
            let p = pool.as_mut().expect("checked");
            if !replay_swap(p, &e) {
                return Err(replay_err(
                    log,
                    format!("no swap reproduces amounts ({}, {}) ending at {}", e.amount0, e.amount1, e.sqrtPriceX96),
                ));
            }
            counts[3] += 1;
        } else if *topic == IUniswapV3Pool::Collect::SIGNATURE_HASH {
            need(&mut pool)?;
            let e = IUniswapV3Pool::Collect::decode_log_data(data).map_err(dec)?;
            let p = pool.as_mut().expect("checked");
            let got = p.collect(e.owner, e.tickLower.as_i32(), e.tickUpper.as_i32(), e.amount0, e.amount1);
            if got != (e.amount0, e.amount1) {
                return Err(replay_err(
                    log,
                    format!("collect paid {got:?}, event says ({}, {})", e.amount0, e.amount1),
                ));
            }
            counts[4] += 1;
        } else if *topic == IUniswapV3Pool::SetFeeProtocol::SIGNATURE_HASH {
            need(&mut pool)?;
            let e = IUniswapV3Pool::SetFeeProtocol::decode_log_data(data).map_err(dec)?;
            let p = pool.as_mut().expect("checked");
            p.set_fee_protocol(e.feeProtocol0New, e.feeProtocol1New).map_err(|err| replay_err(log, err.to_string()))?;
            counts[5] += 1;
        } else if *topic == IUniswapV3Pool::Flash::SIGNATURE_HASH {
            need(&mut pool)?;
            let e = IUniswapV3Pool::Flash::decode_log_data(data).map_err(dec)?;
            let p = pool.as_mut().expect("checked");
            p.flash_paid(e.paid0, e.paid1).map_err(|err| replay_err(log, err.to_string()))?;
            counts[7] += 1;
        } else if *topic == IUniswapV3Pool::CollectProtocol::SIGNATURE_HASH {
            need(&mut pool)?;
            let e = IUniswapV3Pool::CollectProtocol::decode_log_data(data).map_err(dec)?;
            let p = pool.as_mut().expect("checked");
            p.protocol_fees0 = p
                .protocol_fees0
                .checked_sub(e.amount0)
                .ok_or_else(|| replay_err(log, "protocol fee0 underflow".into()))?;
            p.protocol_fees1 = p
                .protocol_fees1
                .checked_sub(e.amount1)
                .ok_or_else(|| replay_err(log, "protocol fee1 underflow".into()))?;
            counts[6] += 1;
        }
    }
    let pool = pool
        .ok_or_else(|| Error::Registry(format!("no Initialize event for {} in the blocks fetched", config.address)))?;
    Ok(Replay { pool, counts, last_event_block })
}

/// A swap event says what moved and where the price ended, not how the swap was asked for. Exactly one of these
/// requests reproduces it bit for bit: the input (or the output) as an exact amount, with the price limit either
/// not reached (the range's end) or reached (the event's final price).
fn replay_swap(pool: &mut Pool, e: &IUniswapV3Pool::Swap) -> bool {
    let end = U256::from(e.sqrtPriceX96);
    // A swap through a price range without liquidity moves the price and pays nothing: (0, 0). Its direction is
    // where the price went, and any input with the final price as the limit reproduces it.
    let zero_for_one =
        if e.amount0.is_zero() && e.amount1.is_zero() { end < pool.sqrt_price_x96 } else { e.amount0 > I256::ZERO };
    let (input, output) = if zero_for_one { (e.amount0, e.amount1) } else { (e.amount1, e.amount0) };
    let input = if input.is_zero() && output.is_zero() { I256::ONE } else { input };
    let far = if zero_for_one { MIN_SQRT_RATIO + U256::from(1u8) } else { MAX_SQRT_RATIO - U256::from(1u8) };
    for (amount, limit) in [(input, far), (output, far), (input, end), (output, end)] {
        if amount.is_zero() {
            continue;
        }
        // Each try costs only the ticks it crosses; a wrong one is undone.
        if let Ok((r, undo)) = pool.swap_with_undo(zero_for_one, amount, limit) {
            if r.amount0 == e.amount0
                && r.amount1 == e.amount1
                && pool.sqrt_price_x96 == end
                && pool.liquidity == e.liquidity
                && pool.tick == e.tick.as_i32()
            {
                return true;
            }
            pool.undo_swap(undo);
        }
    }
    false
}

/// A live pool's state read by call for quoting: slot0, liquidity, fee growth and every initialized tick in the
/// bitmap words within `radius` words of the current one. Returns the pool and the range of ticks it covers; a
/// quote whose swap ends outside that range must load a wider window.
///
/// # Errors
/// RPC failures.
pub fn load_pool_window(rpc: &Rpc, config: &PoolConfig, radius: i16) -> Result<(Pool, (i32, i32))> {
    use alloy::sol_types::SolCall;
    // Every read at one block: a snapshot whose liquidity and ticks belong together.
    let block = rpc.block_number()?;
    let get = |data: Vec<u8>| {
        let req = alloy::rpc::types::TransactionRequest::default()
            .to(config.address)
            .input(alloy::primitives::Bytes::from(data).into());
        rpc.call_at(&req, block)
    };
    let bad = |e: alloy::sol_types::Error| Error::Registry(format!("pool {}: {e}", config.address));
    let slot0 =
        IUniswapV3Pool::slot0Call::abi_decode_returns(&get(IUniswapV3Pool::slot0Call {}.abi_encode())?).map_err(bad)?;
    let mut pool = Pool::new(config.fee, config.tick_spacing, U256::from(slot0.sqrtPriceX96))
        .map_err(|e| Error::Registry(format!("pool {}: {e}", config.address)))?;
    // slot0's tick is the pool's own (it may sit one below the price's tick right after a swap ended on a boundary).
    pool.tick = slot0.tick.as_i32();
    pool.fee_protocol = slot0.feeProtocol;
    pool.liquidity =
        IUniswapV3Pool::liquidityCall::abi_decode_returns(&get(IUniswapV3Pool::liquidityCall {}.abi_encode())?)
            .map_err(bad)?;
    pool.fee_growth_global0_x128 = IUniswapV3Pool::feeGrowthGlobal0X128Call::abi_decode_returns(&get(
        IUniswapV3Pool::feeGrowthGlobal0X128Call {}.abi_encode(),
    )?)
    .map_err(bad)?;
    pool.fee_growth_global1_x128 = IUniswapV3Pool::feeGrowthGlobal1X128Call::abi_decode_returns(&get(
        IUniswapV3Pool::feeGrowthGlobal1X128Call {}.abi_encode(),
    )?)
    .map_err(bad)?;
    let centre = pool.word_of(pool.tick);
    let (lo_word, hi_word) = (centre.saturating_sub(radius), centre.saturating_add(radius));
    for word in lo_word..=hi_word {
        let bits = IUniswapV3Pool::tickBitmapCall::abi_decode_returns(&get(IUniswapV3Pool::tickBitmapCall {
            wordPosition: word,
        }
        .abi_encode())?)
        .map_err(bad)?;
        for bit in 0..256usize {
            if !bits.bit(bit) {
                continue;
            }
            let tick = (i32::from(word) * 256 + bit as i32) * config.tick_spacing;
            let i24 = alloy::primitives::aliases::I24::try_from(tick).map_err(|e| Error::Registry(e.to_string()))?;
            let t = IUniswapV3Pool::ticksCall::abi_decode_returns(&get(
                IUniswapV3Pool::ticksCall { tick: i24 }.abi_encode()
            )?)
            .map_err(bad)?;
            pool.load_tick(
                tick,
                sextant_protocols::uniswap_v3::TickInfo {
                    liquidity_gross: t.liquidityGross,
                    liquidity_net: t.liquidityNet,
                    fee_growth_outside0_x128: t.feeGrowthOutside0X128,
                    fee_growth_outside1_x128: t.feeGrowthOutside1X128,
                },
            )
            .map_err(|e| Error::Registry(e.to_string()))?;
        }
    }
    let span =
        (i32::from(lo_word) * 256 * config.tick_spacing, (i32::from(hi_word) + 1) * 256 * config.tick_spacing - 1);
    Ok((pool, span))
}

/// Quotes an exact-input swap on a live pool with the full pool maths (any number of initialized ticks), loading
/// a wider window of ticks until the swap stays inside it. Returns the output, or None when the pool cannot fill
/// the whole input.
///
/// # Errors
/// RPC failures, or the pool maths refusing the swap on the state read (said, never turned into a quote).
pub fn quote_exact_input(rpc: &Rpc, config: &PoolConfig, zero_for_one: bool, amount_in: U256) -> Result<Option<U256>> {
    let amount = I256::try_from(amount_in).map_err(|e| Error::Registry(format!("amount {amount_in}: {e}")))?;
    let far = if zero_for_one { MIN_SQRT_RATIO + U256::from(1u8) } else { MAX_SQRT_RATIO - U256::from(1u8) };
    let mut radius = 2i16;
    loop {
        let (mut pool, (lo, hi)) = load_pool_window(rpc, config, radius)?;
        let r = pool
            .swap(zero_for_one, amount, far)
            .map_err(|e| Error::Registry(format!("quoting on pool {}: {e}", config.address)))?;
        let inside = pool.tick >= lo && pool.tick <= hi;
        if inside || radius >= 64 {
            let (used, out) = if zero_for_one { (r.amount0, r.amount1) } else { (r.amount1, r.amount0) };
            if used != amount || !inside {
                return Ok(None);
            }
            return Ok(Some((-out).into_raw()));
        }
        radius *= 4;
    }
}
