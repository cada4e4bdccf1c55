//! `sextant pool state`: a Uniswap v3 pool's state rebuilt from its events only.

use anyhow::{Context, Result};
use clap::Subcommand;
use sextant_chain::pool_history::{LogCache, fetch_logs, pool_config, replay};
use sextant_chain::{Rpc, parse_address};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Blocks below the head that the log cache does not keep (a reorg may still replace them).
const REORG_DEPTH: u64 = 64;

/// Uniswap v3 pools: state rebuilt from events.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: PoolCommand,
}

#[derive(Subcommand)]
enum PoolCommand {
    /// Rebuild a pool's state (price, tick, liquidity, global fee growth) from its events alone, replayed through
    /// Sextant's pool maths; only the tokens, fee and tick spacing are read by call. Logs are cached on disk, so a
    /// second run fetches only new blocks.
    State {
        /// JSON-RPC endpoint.
        #[arg(long)]
        rpc: String,
        /// The pool's address.
        #[arg(long)]
        pool: String,
        /// Replay up to this block [default: the latest].
        #[arg(long)]
        to_block: Option<u64>,
        /// Start searching for events here (the pool's creation block saves many requests on a long chain).
        #[arg(long, default_value_t = 0)]
        from_block: u64,
        /// Blocks per eth_getLogs request (halved automatically when a node refuses a range).
        #[arg(long, default_value_t = 10_000)]
        chunk: u64,
        /// Where fetched logs are cached.
        #[arg(long, default_value = ".sextant/pools")]
        cache_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> Result<()> {
    let PoolCommand::State { rpc, pool, to_block, from_block, chunk, cache_dir, json } = args.command;
    let address = parse_address(&pool).context("--pool")?;
    let rpc = Rpc::new(&rpc, Duration::from_secs(30))?.with_retries(4);
    let chain_id = rpc.chain_id().with_context(|| format!("cannot reach {}", rpc.url()))?;
    let head = rpc.block_number()?;
    let to = to_block.unwrap_or(head);
    if to > head {
        anyhow::bail!("--to-block {to} is beyond the chain's head ({head})");
    }
    let config = pool_config(&rpc, address)?;
    let mut cache = LogCache::load(&cache_dir, chain_id, address);
    let cached_to = cache.to_block;
    if cache.from_block != from_block || cached_to.is_none_or(|c| c < to) {
        let mut last_report = std::time::Instant::now();
        let mut progress = |reached: u64, target: u64| {
            if last_report.elapsed() >= Duration::from_secs(2) || reached == target {
                eprintln!("fetched logs through block {reached} of {target}");
                last_report = std::time::Instant::now();
            }
        };
        fetch_logs(&rpc, address, &mut cache, from_block, to, chunk, &mut progress)?;
        // Blocks near the head may still be reorganised: only older ones are kept for the next run.
        cache.settled(head.saturating_sub(REORG_DEPTH)).save(&cache_dir, chain_id, address)?;
    }
    let r = replay(&config, &cache.logs, to)?;
    let p = &r.pool;
    let events: usize = r.counts.iter().sum();
    let mut o = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "pool": format!("{address:#x}"),
            "chain_id": chain_id,
            "block": to,
            "token0": format!("{:#x}", config.token0),
            "token1": format!("{:#x}", config.token1),
            "fee": config.fee,
            "tick_spacing": config.tick_spacing,
            "events": events,
            "sqrt_price_x96": p.sqrt_price_x96.to_string(),
            "tick": p.tick,
            "liquidity": p.liquidity.to_string(),
            "fee_growth_global0_x128": p.fee_growth_global0_x128.to_string(),
            "fee_growth_global1_x128": p.fee_growth_global1_x128.to_string(),
            "protocol_fees0": p.protocol_fees0.to_string(),
            "protocol_fees1": p.protocol_fees1.to_string(),
            "initialized_ticks": p.ticks.len(),
        });
        writeln!(o, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(
        o,
        "pool {address:#x} on chain {chain_id} at block {to}: token0 {:#x}, token1 {:#x}, fee {}, tick spacing {}",
        config.token0, config.token1, config.fee, config.tick_spacing
    )?;
    let [init, mints, burns, swaps, collects, switches, protocol, flashes] = r.counts;
    writeln!(
        o,
        "rebuilt from {events} events: initialize {init}, mint {mints}, burn {burns}, swap {swaps}, collect {collects}, flash {flashes}, fee switch {switches}, protocol collect {protocol}"
    )?;
    writeln!(o, "sqrt_price_x96            {}", p.sqrt_price_x96)?;
    writeln!(o, "tick                      {}", p.tick)?;
    writeln!(o, "liquidity                 {}", p.liquidity)?;
    writeln!(o, "fee_growth_global0_x128   {}", p.fee_growth_global0_x128)?;
    writeln!(o, "fee_growth_global1_x128   {}", p.fee_growth_global1_x128)?;
    writeln!(o, "initialized ticks         {}", p.ticks.len())?;
    Ok(())
}
