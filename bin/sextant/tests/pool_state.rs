//! `sextant pool state` against the real pool: on the devnet's WETH/USDC pool (Uniswap v3 bytecode from npm), a
//! history is driven through the periphery contracts as any user would (positions minted, decreased and collected
//! through the NonfungiblePositionManager by one account, exact-input and exact-output swaps through the
//! SwapRouter by another, the protocol fee switched on by the factory owner). The state the command rebuilds from
//! events alone must equal the pool's own slot0, liquidity and fee growth, at the head and at an earlier block.

#[path = "../../../crates/runtime/tests/common/mod.rs"]
mod common;

use common::Net;
use sextant_chain::alloy::primitives::{Address, U256, aliases::U24, aliases::U160};
use sextant_chain::alloy::sol;
use sextant_chain::alloy::sol_types::SolCall;
use sextant_chain::calls;
use sextant_protocols::uniswap_v3::liquidity::liquidity_for_amounts;
use sextant_protocols::uniswap_v3::math::sqrt_ratio_at_tick;
use std::process::Command;

/// keccak256("IncreaseLiquidity(uint256,uint128,uint256,uint256)"), the position manager's event.
const INCREASE_LIQUIDITY: &str = "0x3067048beee31b25b2f1681f88dac838c8bba36af25bfb2b7cf7473a5847e35f";

sol! {
    interface IRouterOut {
        struct ExactOutputSingleParams { address tokenIn; address tokenOut; uint24 fee; address recipient; uint256 deadline; uint256 amountOut; uint256 amountInMaximum; uint160 sqrtPriceLimitX96; }
        function exactOutputSingle(ExactOutputSingleParams calldata params) external payable returns (uint256 amountIn);
    }
    interface IPoolView {
        function slot0() external view returns (uint160 sqrtPriceX96, int24 tick, uint16, uint16, uint16, uint8, bool);
        function liquidity() external view returns (uint128);
        function feeGrowthGlobal0X128() external view returns (uint256);
        function feeGrowthGlobal1X128() external view returns (uint256);
        function setFeeProtocol(uint8 feeProtocol0, uint8 feeProtocol1) external;
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn call_at(net: &Net, to: Address, data: Vec<u8>, block: &str) -> Vec<u8> {
    let r = net
        .rpc()
        .request("eth_call", serde_json::json!([{"to": to.to_string(), "data": format!("0x{}", hex(&data))}, block]))
        .unwrap();
    let s = r.as_str().unwrap().trim_start_matches("0x").to_string();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The contract's (sqrtPriceX96, tick, liquidity, feeGrowthGlobal0X128, feeGrowthGlobal1X128) at `block`.
fn contract_state(net: &Net, pool: Address, block: &str) -> serde_json::Value {
    let s0 = IPoolView::slot0Call::abi_decode_returns(&call_at(net, pool, IPoolView::slot0Call {}.abi_encode(), block))
        .unwrap();
    let l = IPoolView::liquidityCall::abi_decode_returns(&call_at(
        net,
        pool,
        IPoolView::liquidityCall {}.abi_encode(),
        block,
    ))
    .unwrap();
    let g0 = IPoolView::feeGrowthGlobal0X128Call::abi_decode_returns(&call_at(
        net,
        pool,
        IPoolView::feeGrowthGlobal0X128Call {}.abi_encode(),
        block,
    ))
    .unwrap();
    let g1 = IPoolView::feeGrowthGlobal1X128Call::abi_decode_returns(&call_at(
        net,
        pool,
        IPoolView::feeGrowthGlobal1X128Call {}.abi_encode(),
        block,
    ))
    .unwrap();
    serde_json::json!({
        "sqrt_price_x96": s0.sqrtPriceX96.to_string(), "tick": s0.tick.as_i32(), "liquidity": l.to_string(),
        "fee_growth_global0_x128": g0.to_string(), "fee_growth_global1_x128": g1.to_string(),
    })
}

fn sextant_state(net: &Net, pool: Address, cache: &std::path::Path, to_block: Option<u64>) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sextant"));
    cmd.args(["pool", "state", "--rpc", &net.devnet.rpc_url, "--pool", &pool.to_string(), "--json", "--chunk", "7"])
        .arg("--cache-dir")
        .arg(cache);
    if let Some(b) = to_block {
        cmd.args(["--to-block", &b.to_string()]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keep = ["sqrt_price_x96", "tick", "liquidity", "fee_growth_global0_x128", "fee_growth_global1_x128"];
    v.as_object_mut().unwrap().retain(|k, _| keep.contains(&k.as_str()));
    v
}

#[test]
fn pool_state_from_events_equals_the_contract_after_a_periphery_driven_history() {
    let net = Net::up();
    net.fund_trader();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (weth, usdc) = (net.contract("WETH"), net.contract("USDC"));
    let (npm, router, pool) =
        (net.contract("NonfungiblePositionManager"), net.contract("SwapRouter"), net.contract("pool_WETH_USDC_3000"));
    let lp = net.account("deployment_key");
    let trader = net.account("trader");
    let deployer = net.account("deployer");
    // The LP account gets WETH and approves the position manager.
    net.send("wrap", &lp, &calls::wrap(weth, U256::from(2_000u128 * 10u128.pow(18))));
    for t in [weth, usdc] {
        net.send("approve", &lp, &calls::approve(t, npm, U256::MAX, "approve"));
    }
    let tick0 = -200_340; // near 2000 USDC per WETH (WETH is token0)
    let mut token_ids = Vec::new();
    let mut mid_block = 0;
    for step in 0..160 {
        match rng.below(10) {
            0 | 1 => {
                let lower = tick0 - 60 * (1 + rng.below(50) as i32);
                let upper = tick0 + 60 * (1 + rng.below(50) as i32);
                let mint = calls::lp_mint(&calls::MintParams {
                    manager: npm,
                    token0: weth,
                    token1: usdc,
                    fee_pips: 3000,
                    tick_lower: lower,
                    tick_upper: upper,
                    amount0: U256::from(1 + rng.below(20)) * U256::from(10u128.pow(18)),
                    amount1: U256::from(1 + rng.below(40_000)) * U256::from(1_000_000u64),
                    amount0_min: U256::ZERO,
                    amount1_min: U256::ZERO,
                    recipient: lp.parse().unwrap(),
                    deadline: u64::MAX / 2,
                });
                // The liquidity the position manager mints is what the periphery's LiquidityAmounts gives for the
                // amounts at the current price: Sextant's copy must say the same.
                let s0 = IPoolView::slot0Call::abi_decode_returns(&call_at(
                    &net,
                    pool,
                    IPoolView::slot0Call {}.abi_encode(),
                    "latest",
                ))
                .unwrap();
                let (sa, sb) = (sqrt_ratio_at_tick(lower).unwrap(), sqrt_ratio_at_tick(upper).unwrap());
                let (a0, a1) = (
                    U256::from_be_slice(&mint.data[4 + 5 * 32..4 + 6 * 32]),
                    U256::from_be_slice(&mint.data[4 + 6 * 32..4 + 7 * 32]),
                );
                let expected = liquidity_for_amounts(U256::from(s0.sqrtPriceX96), sa, sb, a0, a1).unwrap();
                let receipt = net.send("mint", &lp, &mint);
                let minted = receipt["logs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|l| l["topics"][0] == INCREASE_LIQUIDITY)
                    .map(|l| u128::from_str_radix(&l["data"].as_str().unwrap()[2 + 32..2 + 64], 16).unwrap())
                    .unwrap();
                assert_eq!(minted, expected, "LiquidityAmounts for a mint in [{lower}, {upper}]");
                token_ids.push(token_ids.len() as u64 + 2); // the deployer's full-range position is token 1
            }
            2 if !token_ids.is_empty() => {
                let id = U256::from(token_ids[rng.below(token_ids.len() as u64) as usize]);
                // Half of what is left, then everything owed.
                let pos = call_at(
                    &net,
                    npm,
                    sextant_chain::bindings::INonfungiblePositionManager::positionsCall { tokenId: id }.abi_encode(),
                    "latest",
                );
                let info =
                    sextant_chain::bindings::INonfungiblePositionManager::positionsCall::abi_decode_returns(&pos)
                        .unwrap();
                if info.liquidity > 1 {
                    net.send("decrease", &lp, &calls::lp_decrease(npm, id, info.liquidity / 2, u64::MAX / 2));
                }
                net.send("collect", &lp, &calls::lp_collect(npm, id, lp.parse().unwrap()));
            }
            3 => {
                let (token_in, token_out, amount_out) = if rng.below(2) == 0 {
                    (usdc, weth, U256::from(1 + rng.below(3_000)) * U256::from(10u128.pow(15)))
                } else {
                    (weth, usdc, U256::from(1 + rng.below(5_000)) * U256::from(1_000_000u64))
                };
                let data = IRouterOut::exactOutputSingleCall {
                    params: IRouterOut::ExactOutputSingleParams {
                        tokenIn: token_in,
                        tokenOut: token_out,
                        fee: U24::from(3000),
                        recipient: trader.parse().unwrap(),
                        deadline: U256::from(u64::MAX / 2),
                        amountOut: amount_out,
                        amountInMaximum: U256::MAX,
                        sqrtPriceLimitX96: U160::ZERO,
                    },
                }
                .abi_encode();
                let c = sextant_chain::Call {
                    to: router,
                    value: U256::ZERO,
                    data: data.into(),
                    label: "exact output".into(),
                };
                net.send("exact output swap", &trader, &c);
            }
            _ => {
                let down = rng.below(2) == 0;
                let amount = if down {
                    (1 + u128::from(rng.below(4_000))) * 10u128.pow(15)
                } else {
                    (1 + u128::from(rng.below(8_000))) * 1_000_000
                };
                net.push_price(down, amount);
            }
        }
        if step == 80 {
            let c = sextant_chain::Call {
                to: pool,
                value: U256::ZERO,
                data: IPoolView::setFeeProtocolCall { feeProtocol0: 5, feeProtocol1: 8 }.abi_encode().into(),
                label: "fee switch".into(),
            };
            net.send("setFeeProtocol", &deployer, &c);
            mid_block = net.rpc().block_number().unwrap();
        }
    }
    let cache = net.dir.path().join("pools");
    // At an earlier block first (fetching only up to it), then at the head (fetching only the rest, from the cache).
    let at_mid = sextant_state(&net, pool, &cache, Some(mid_block));
    assert_eq!(at_mid, contract_state(&net, pool, &format!("0x{mid_block:x}")), "state at block {mid_block}");
    let at_head = sextant_state(&net, pool, &cache, None);
    assert_eq!(at_head, contract_state(&net, pool, "latest"), "state at the head");
    assert_ne!(at_mid, at_head);
    // The text form has the same numbers.
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["pool", "state", "--rpc", &net.devnet.rpc_url, "--pool", &pool.to_string(), "--cache-dir"])
        .arg(&cache)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(at_head["sqrt_price_x96"].as_str().unwrap()) && text.contains("swap "), "{text}");
}
