//! Least-privilege derivation: from what a strategy needs on a chain (tokens, venues) to the narrowest policy that
//! lets its executor work. Every call the LiveExecutor plans for those needs passes; tokens can only go to the
//! protocol contracts named here, and every output, position and loan stays with the Safe.

use crate::Result;
use crate::condition::{Condition, ParamType};
use crate::model::{Allowance, Clearance, ExecOptions, Function, Policy, Target, key};
use sextant_chain::alloy::primitives::{Address, B256, FixedBytes, U256};
use sextant_chain::alloy::sol_types::SolCall;
use sextant_chain::bindings::{
    IAaveV3Pool, IERC20, IERC4626, INonfungiblePositionManager, ISwapRouter, ISwapRouter02, IWETH9,
};

/// The Uniswap v3 router a chain has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapVenue {
    /// SwapRouter (deadline in the parameters).
    V1(Address),
    /// SwapRouter02 (called through `multicall(deadline, data)`).
    V02(Address),
}

/// A token the strategy holds, with the bound on what may be approved of it per period (base units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenNeed {
    /// Symbol.
    pub symbol: String,
    /// Address.
    pub address: Address,
    /// Approvals of it are spent from an allowance of this much per period.
    pub approval_per_period: u128,
}

/// What a strategy needs on one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// The role's name.
    pub role: String,
    /// Chain name and id.
    pub chain: String,
    /// Chain id.
    pub chain_id: u64,
    /// The Safe.
    pub safe: Address,
    /// Tokens it trades.
    pub tokens: Vec<TokenNeed>,
    /// Swaps between those tokens, in these fee tiers.
    pub swaps: Option<(SwapVenue, Vec<u32>)>,
    /// Concentrated-liquidity positions through this position manager, in the pool of the first two tokens.
    pub positions: Option<Address>,
    /// Wrapping native currency into this token (WETH9), up to this much per period (wei).
    pub wrap: Option<(Address, u128)>,
    /// Supplying, withdrawing, borrowing and repaying the tokens on this Aave v3 pool.
    pub lending: Option<Address>,
    /// ERC-4626 vaults it deposits into.
    pub vaults: Vec<(String, Address)>,
    /// The period allowances refill over (seconds).
    pub period_secs: u64,
    /// The pools the swaps and positions trade in (where tokens leave the Safe to).
    pub pools: Vec<(String, Address)>,
}

fn function<C: SolCall>(condition: Option<Condition>, why: &str) -> Function {
    Function {
        selector: FixedBytes(C::SELECTOR),
        signature: C::SIGNATURE.to_string(),
        options: ExecOptions::None,
        condition,
        params: Vec::new(),
        why: why.to_string(),
    }
}

/// The same with the names of its condition's values (depth first).
fn named<C: SolCall>(condition: Condition, params: &[&str], why: &str) -> Function {
    Function { params: params.iter().map(|p| p.to_string()).collect(), ..function::<C>(Some(condition), why) }
}

/// The least-privilege policy for `needs`.
///
/// # Errors
/// Needs that name no token, or positions without two tokens.
pub fn derive(needs: &Needs) -> Result<Policy> {
    use Condition as C;
    if needs.tokens.is_empty() {
        return Err(crate::Error::Invalid("a policy needs at least one token".into()));
    }
    let tokens: Vec<Address> = needs.tokens.iter().map(|t| t.address).collect();
    let mut spenders: Vec<(String, Address)> = Vec::new();
    let mut targets: Vec<Target> = Vec::new();
    let mut allowances: Vec<Allowance> = Vec::new();

    // Fee tiers: the strategy's pools'. A swap or a mint in another tier of the pair could trade against a thin
    // pool at a bad price.
    let fees: Vec<u32> = needs.swaps.as_ref().map(|(_, f)| f.clone()).unwrap_or_default();
    let fee =
        if fees.is_empty() { C::any() } else { C::or(fees.iter().map(|f| C::eq(U256::from(*f))).collect()).single() };
    if let Some((venue, _)) = &needs.swaps {
        let pair = C::one_of_addresses(&tokens);
        match venue {
            SwapVenue::V1(router) => {
                spenders.push(("SwapRouter".into(), *router));
                let params = C::tuple(vec![pair.clone(), pair, fee.clone(), C::avatar()]);
                targets.push(Target {
                    address: *router,
                    name: "SwapRouter".into(),
                    clearance: Clearance::Functions(vec![named::<ISwapRouter::exactInputSingleCall>(
                        C::calldata(vec![params]),
                        &["params", "tokenIn", "tokenOut", "fee", "recipient"],
                        "swap between the strategy's tokens, output to the Safe",
                    )]),
                });
            }
            SwapVenue::V02(router) => {
                spenders.push(("SwapRouter02".into(), *router));
                let params = C::tuple(vec![pair.clone(), pair, fee.clone(), C::avatar()]);
                let inner = C::inner_call(ISwapRouter02::exactInputSingleCall::SELECTOR, vec![params]);
                let multicall = C::calldata(vec![C::any(), C::every(inner)]);
                targets.push(Target {
                    address: *router,
                    name: "SwapRouter02".into(),
                    clearance: Clearance::Functions(vec![named::<ISwapRouter02::multicallCall>(
                        multicall,
                        &["deadline", "data", "each call", "params", "tokenIn", "tokenOut", "fee", "recipient"],
                        "swaps (each an exactInputSingle between the strategy's tokens, output to the Safe) with a deadline",
                    )]),
                });
            }
        }
    }

    if let Some(manager) = needs.positions {
        if tokens.len() < 2 {
            return Err(crate::Error::Invalid("liquidity positions need the pool's two tokens".into()));
        }
        spenders.push(("NonfungiblePositionManager".into(), manager));
        let (t0, t1) = if tokens[0] < tokens[1] { (tokens[0], tokens[1]) } else { (tokens[1], tokens[0]) };
        let mint = C::tuple(vec![
            C::eq_address(t0),
            C::eq_address(t1),
            fee.clone(),
            C::any(),
            C::any(),
            C::any(),
            C::any(),
            C::any(),
            C::any(),
            C::avatar(),
        ]);
        let collect = C::tuple(vec![C::any(), C::avatar()]);
        targets.push(Target {
            address: manager,
            name: "NonfungiblePositionManager".into(),
            clearance: Clearance::Functions(vec![
                named::<INonfungiblePositionManager::mintCall>(
                    C::calldata(vec![mint]),
                    &[
                        "params",
                        "token0",
                        "token1",
                        "fee",
                        "tickLower",
                        "tickUpper",
                        "amount0Desired",
                        "amount1Desired",
                        "amount0Min",
                        "amount1Min",
                        "recipient",
                    ],
                    "open positions in the strategy's pool, owned by the Safe",
                ),
                function::<INonfungiblePositionManager::decreaseLiquidityCall>(
                    None,
                    "remove liquidity (what it frees is owed to the position, collectable only to the Safe)",
                ),
                named::<INonfungiblePositionManager::collectCall>(
                    C::calldata(vec![collect]),
                    &["params", "tokenId", "recipient"],
                    "collect a position's tokens and fees to the Safe",
                ),
                function::<INonfungiblePositionManager::burnCall>(None, "burn an emptied position"),
            ]),
        });
    }

    if let Some(pool) = needs.lending {
        spenders.push(("Aave v3 Pool".into(), pool));
        let asset = C::one_of_addresses(&tokens);
        let any = C::any;
        targets.push(Target {
            address: pool,
            name: "Aave v3 Pool".into(),
            clearance: Clearance::Functions(vec![
                named::<IAaveV3Pool::supplyCall>(
                    C::calldata(vec![asset.clone(), any(), C::avatar()]),
                    &["asset", "amount", "onBehalfOf"],
                    "supply the strategy's tokens on behalf of the Safe",
                ),
                named::<IAaveV3Pool::withdrawCall>(
                    C::calldata(vec![asset.clone(), any(), C::avatar()]),
                    &["asset", "amount", "to"],
                    "withdraw to the Safe",
                ),
                named::<IAaveV3Pool::borrowCall>(
                    C::calldata(vec![asset.clone(), any(), any(), any(), C::avatar()]),
                    &["asset", "amount", "interestRateMode", "referralCode", "onBehalfOf"],
                    "borrow on behalf of the Safe",
                ),
                named::<IAaveV3Pool::repayCall>(
                    C::calldata(vec![asset, any(), any(), C::avatar()]),
                    &["asset", "amount", "interestRateMode", "onBehalfOf"],
                    "repay the Safe's debt",
                ),
            ]),
        });
    }

    for (name, vault) in &needs.vaults {
        spenders.push((name.clone(), *vault));
        targets.push(Target {
            address: *vault,
            name: name.clone(),
            clearance: Clearance::Functions(vec![
                named::<IERC4626::depositCall>(
                    C::calldata(vec![C::any(), C::avatar()]),
                    &["assets", "receiver"],
                    "deposit, shares to the Safe",
                ),
                named::<IERC4626::withdrawCall>(
                    C::calldata(vec![C::any(), C::avatar(), C::avatar()]),
                    &["assets", "receiver", "owner"],
                    "withdraw the Safe's assets to the Safe",
                ),
                named::<IERC4626::redeemCall>(
                    C::calldata(vec![C::any(), C::avatar(), C::avatar()]),
                    &["shares", "receiver", "owner"],
                    "redeem the Safe's shares to the Safe",
                ),
            ]),
        });
    }

    let mut ether_allowance = None;
    if let Some((weth, per_period)) = needs.wrap {
        let k = key(&format!("{}-native", needs.role));
        allowances.push(Allowance {
            key: k,
            name: "native value".into(),
            balance: per_period,
            max_refill: per_period,
            refill: per_period,
            period_secs: needs.period_secs,
            timestamp: 0,
            why: "native currency wrapped per period".into(),
        });
        ether_allowance = Some(k);
        let mut deposit = function::<IWETH9::depositCall>(None, "wrap native currency");
        deposit.options = ExecOptions::Send;
        if let Some(existing) = targets.iter_mut().find(|t| t.address == weth) {
            if let Clearance::Functions(fs) = &mut existing.clearance {
                fs.push(deposit);
            }
        } else {
            targets.push(Target {
                address: weth,
                name: "wrapped native".into(),
                clearance: Clearance::Functions(vec![deposit]),
            });
        }
    }

    if !spenders.is_empty() {
        let spender_addresses: Vec<Address> = spenders.iter().map(|s| s.1).collect();
        let names: Vec<&str> = spenders.iter().map(|s| s.0.as_str()).collect();
        for t in &needs.tokens {
            let k = approval_key(&needs.role, &t.symbol);
            allowances.push(Allowance {
                key: k,
                name: format!("approvals of {}", t.symbol),
                balance: t.approval_per_period,
                max_refill: t.approval_per_period,
                refill: t.approval_per_period,
                period_secs: needs.period_secs,
                timestamp: 0,
                why: format!("{} approved to {} per period", t.symbol, names.join(", ")),
            });
            let approve = named::<IERC20::approveCall>(
                C::calldata(vec![C::one_of_addresses(&spender_addresses), C::within_allowance(k)]),
                &["spender", "amount"],
                &format!("approve {} to {} only, within the allowance", t.symbol, names.join(", ")),
            );
            match targets.iter_mut().find(|x| x.address == t.address) {
                Some(existing) => {
                    if let Clearance::Functions(fs) = &mut existing.clearance {
                        fs.insert(0, approve);
                    }
                }
                None => targets.push(Target {
                    address: t.address,
                    name: t.symbol.clone(),
                    clearance: Clearance::Functions(vec![approve]),
                }),
            }
        }
    }

    let policy = Policy {
        version: Policy::VERSION,
        role: needs.role.clone(),
        role_key: key(&needs.role),
        chain: needs.chain.clone(),
        chain_id: needs.chain_id,
        safe: needs.safe,
        targets,
        allowances,
        ether_allowance,
        counterparties: needs
            .pools
            .iter()
            .map(|(name, address)| crate::model::Counterparty { address: *address, name: name.clone() })
            .collect(),
    };
    policy.validate()?;
    Ok(policy)
}

/// The allowance key for approvals of `symbol` by `role`.
pub fn approval_key(role: &str, symbol: &str) -> B256 {
    key(&format!("{role}-approve-{symbol}"))
}

impl Condition {
    /// An Or of one child is the child.
    fn single(self) -> Condition {
        if self.param_type == ParamType::None && self.children.len() == 1 {
            self.children.into_iter().next().unwrap_or_else(Condition::any)
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Checker, Status};
    use sextant_chain::calls::{self, MintParams, RouterKind, SwapParams};

    fn addr(b: u8) -> Address {
        Address::repeat_byte(b)
    }

    fn needs(venue: SwapVenue) -> Needs {
        Needs {
            role: "rsi".into(),
            chain: "test".into(),
            chain_id: 1,
            safe: addr(0x5a),
            tokens: vec![
                TokenNeed { symbol: "WETH".into(), address: addr(0x01), approval_per_period: 10u128.pow(18) },
                TokenNeed { symbol: "USDC".into(), address: addr(0x02), approval_per_period: 5_000_000_000 },
            ],
            swaps: Some((venue, vec![500])),
            positions: Some(addr(0x4e)),
            wrap: None,
            lending: None,
            vaults: vec![],
            period_secs: 86_400,
            pools: vec![],
        }
    }

    fn swap(venue: SwapVenue, recipient: Address) -> sextant_chain::Call {
        let (router, kind) = match venue {
            SwapVenue::V1(r) => (r, RouterKind::V1),
            SwapVenue::V02(r) => (r, RouterKind::V02),
        };
        calls::swap_exact_in(
            &SwapParams {
                router,
                kind,
                token_in: addr(0x01),
                token_out: addr(0x02),
                fee_pips: 500,
                recipient,
                amount_in: U256::from(10u64.pow(17)),
                min_out: U256::from(1),
                deadline: 1_900_000_000,
            },
            "swap",
        )
    }

    /// The calls the LiveExecutor plans pass the derived policy; the same calls aimed at an attacker do not.
    #[test]
    fn the_executors_calls_pass_and_a_stolen_keys_do_not() {
        for venue in [SwapVenue::V1(addr(0x70)), SwapVenue::V02(addr(0x72))] {
            let policy = derive(&needs(venue)).unwrap();
            let checker = Checker::new(&policy, 1_000).unwrap();
            let judge = |c: &sextant_chain::Call, op: u8| checker.check(c.to, c.value, &c.data, op, 2_000).status;
            let spender = match venue {
                SwapVenue::V1(r) | SwapVenue::V02(r) => r,
            };
            let safe = policy.safe;
            assert_eq!(judge(&swap(venue, safe), 0), Status::Ok, "{venue:?}");
            assert_eq!(judge(&calls::approve(addr(0x01), spender, U256::from(10u64.pow(17)), "a"), 0), Status::Ok);
            let mint = MintParams {
                manager: addr(0x4e),
                token0: addr(0x01),
                token1: addr(0x02),
                fee_pips: 500,
                tick_lower: -600,
                tick_upper: 600,
                amount0: U256::from(1),
                amount1: U256::from(1),
                amount0_min: U256::ZERO,
                amount1_min: U256::ZERO,
                recipient: safe,
                deadline: 1,
            };
            assert_eq!(judge(&calls::lp_mint(&mint), 0), Status::Ok);
            assert_eq!(judge(&calls::lp_collect(addr(0x4e), U256::from(7), safe), 0), Status::Ok);
            assert_eq!(judge(&calls::lp_decrease(addr(0x4e), U256::from(7), 5, 1), 0), Status::Ok);
            assert_eq!(judge(&calls::lp_burn(addr(0x4e), U256::from(7)), 0), Status::Ok);

            // A stolen key: output to itself, approval to itself, a transfer out, a delegatecall, too much.
            let thief = addr(0xee);
            let refused = [
                (judge(&swap(venue, thief), 0), "swap to the thief"),
                (judge(&calls::approve(addr(0x01), thief, U256::from(1), "a"), 0), "approve the thief"),
                (
                    judge(&calls::approve(addr(0x01), spender, U256::from(2 * 10u128.pow(18)), "a"), 0),
                    "approve too much",
                ),
                (judge(&calls::lp_collect(addr(0x4e), U256::from(7), thief), 0), "collect to the thief"),
                (judge(&calls::lp_mint(&MintParams { recipient: thief, ..mint }), 0), "mint for the thief"),
                (judge(&swap(venue, safe), 1), "delegatecall the router"),
            ];
            for (status, what) in refused {
                assert_ne!(status, Status::Ok, "{venue:?}: {what}");
            }
            let transfer =
                sextant_chain::bindings::IERC20::transferCall { to: thief, amount: U256::from(1) }.abi_encode();
            assert_eq!(checker.check(addr(0x01), U256::ZERO, &transfer, 0, 2_000).status, Status::FunctionNotAllowed);
        }
    }

    /// The module speaks Zodiac Roles v2's ABI: the selectors of its shared functions and of its refusal are
    /// Roles v2.1.0's (as read from that contract's deployed dispatcher).
    #[test]
    fn the_shared_abi_has_zodiac_roles_v2_selectors() {
        use sextant_chain::alloy::sol_types::SolError;
        use sextant_chain::bindings::ISextantRoles as R;
        let hex = |s: [u8; 4]| format!("0x{}", s.iter().map(|b| format!("{b:02x}")).collect::<String>());
        for (got, want) in [
            (R::execTransactionWithRoleCall::SELECTOR, "0xc6fe8747"),
            (R::assignRolesCall::SELECTOR, "0x957ed2b3"),
            (R::allowTargetCall::SELECTOR, "0x7b0da5b2"),
            (R::scopeTargetCall::SELECTOR, "0x0c6c76b8"),
            (R::revokeTargetCall::SELECTOR, "0x0172a43a"),
            (R::allowFunctionCall::SELECTOR, "0xb3dd25c7"),
            (R::revokeFunctionCall::SELECTOR, "0x66523f7d"),
            (R::scopeFunctionCall::SELECTOR, "0x7508dd98"),
            (R::setAllowanceCall::SELECTOR, "0xa8ec43ee"),
            (R::ConditionViolation::SELECTOR, "0xd0a9bf58"),
        ] {
            assert_eq!(hex(got), want);
        }
    }

    /// The module and Zodiac calls encode, the Zodiac export turns a nested selector check into And + Bitmask.
    #[test]
    fn encodings_cover_every_target() {
        let policy = derive(&needs(SwapVenue::V02(addr(0x72)))).unwrap();
        let calls = crate::module_calls(&policy, addr(0x33)).unwrap();
        assert!(calls.last().unwrap().0.contains("member"), "membership comes last");
        let scoped = calls.iter().filter(|c| c.0.starts_with("scope ")).count();
        assert_eq!(scoped, policy.targets.len());
        let z = crate::zodiac_export(&policy, addr(0x33)).unwrap();
        let text = z.to_string();
        assert!(text.contains("\"operator\":21"), "Bitmask for the multicall's inner selector");
        assert_eq!(z["targets"].as_array().unwrap().len(), policy.targets.len());
    }
}
