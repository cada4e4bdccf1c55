//! A strategy config's least-privilege policy on a chain: which tokens and venues its deployment uses (from
//! `[live]`, else `[market]`, else the chain registry's defaults), turned into `sextant_policy::Needs` and derived.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_chain::alloy::primitives::{Address, B256, Bytes, U256, hex};
use sextant_chain::alloy::sol_types::{SolCall, SolValue};
use sextant_chain::bindings::{ISafe, ISextantRoles};
use sextant_chain::{Call, Registry};
use sextant_exec::{TransactionManager, view};
use sextant_policy::{Names, Needs, Policy, SwapVenue, TokenNeed, approval_key, derive};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[permissions]` of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PermissionsConfig {
    /// The permissions module the runner's calls go through (none: the key signs as a Safe owner).
    pub module: Option<String>,
    /// The role's name (default `sextant-<strategy kind>`).
    pub role: Option<String>,
    /// The period allowances refill over, seconds (default a day).
    pub period_secs: u64,
    /// What may be approved per period, in whole tokens, by symbol (defaults: 1,000,000 for dollar stablecoins,
    /// 500 WETH, 25 WBTC, 1,000,000 of anything else).
    pub approvals: BTreeMap<String, f64>,
}

impl Default for PermissionsConfig {
    fn default() -> Self {
        PermissionsConfig { module: None, role: None, period_secs: 86_400, approvals: BTreeMap::new() }
    }
}

/// The default approval bound per period for a token, in whole tokens.
pub fn default_approval(symbol: &str) -> f64 {
    match symbol {
        "WETH" | "ETH" => 500.0,
        "WBTC" | "cbBTC" => 25.0,
        _ => 1_000_000.0,
    }
}

/// A config's policy, with the notes of what was assumed and the names to describe it with.
#[derive(Debug, Clone)]
pub struct Derived {
    /// The policy.
    pub policy: Policy,
    /// What the derivation assumed (substituted tokens, default bounds).
    pub notes: Vec<String>,
    /// Names of the addresses and allowance units.
    pub names: Names,
    /// The chain's Zodiac Roles v2 mastercopy, where the registry knows one.
    pub zodiac_mastercopy: Option<Address>,
}

fn str_at<'a>(t: &'a toml::Table, table: &str, key: &str) -> Option<&'a str> {
    t.get(table)?.as_table()?.get(key)?.as_str()
}

/// The least-privilege policy for the strategy in config text `text` (any Sextant config: backtest, live or
/// both), deployed on `chain` from `safe`.
///
/// # Errors
/// A config that does not parse, an unknown chain, a `[permissions]` table with bad values.
pub fn derive_for_config(text: &str, origin: &str, registry: &Registry, chain: &str, safe: Address) -> Result<Derived> {
    let table: toml::Table = toml::from_str(text).map_err(|e| Error::Config(format!("{origin}: {e}")))?;
    let permissions: PermissionsConfig = match table.get("permissions") {
        None => PermissionsConfig::default(),
        Some(v) => v
            .clone()
            .try_into()
            .map_err(|e| Error::Config(format!("{origin}: [permissions]: {}", e.to_string().trim_end())))?,
    };
    if permissions.period_secs == 0 {
        return Err(Error::Config(format!("{origin}: permissions.period_secs must be at least 1")));
    }
    let entry = registry.by_name(chain)?;
    let kind = str_at(&table, "strategy", "kind").unwrap_or("rsi").to_string();
    let mut notes = Vec::new();

    // Symbols as the config names them: [live] (what `sextant run` trades), else [market].
    let (assets, quote): (Vec<String>, String) = if table.contains_key("live") {
        let base = str_at(&table, "live", "base").unwrap_or("WETH");
        (vec![base.to_string()], str_at(&table, "live", "quote").unwrap_or("USDC").to_string())
    } else {
        let quote = str_at(&table, "market", "quote").unwrap_or("USDC").to_string();
        let listed: Vec<String> = table
            .get("market")
            .and_then(|m| m.get("assets"))
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|x| x.get("symbol")?.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let assets = if listed.is_empty() {
            vec![str_at(&table, "market", "symbol").unwrap_or("WETH").to_string()]
        } else {
            listed
        };
        (assets, quote)
    };
    let wrapped = entry.wrapped_native.clone();
    let known = |s: &str| entry.token(s).is_ok();
    let quote = if known(&quote) {
        quote
    } else {
        notes.push(format!("{quote} is not a token on {chain}: the quote is USDC, the registry's default"));
        "USDC".to_string()
    };
    let mut pairs: Vec<String> = Vec::new();
    for a in assets {
        let symbol = if known(&a) && a != quote {
            a
        } else if pairs.contains(&wrapped) {
            notes.push(format!("{a} is not a token on {chain}: left out"));
            continue;
        } else {
            notes.push(format!("{a} is not a token on {chain}: trading {wrapped} instead, the registry's default"));
            wrapped.clone()
        };
        if entry.pool(&symbol, &quote, None).is_err() {
            notes.push(format!("{chain} has no {symbol}/{quote} pool in the registry: {symbol} is left out"));
            continue;
        }
        if !pairs.contains(&symbol) {
            pairs.push(symbol);
        }
    }
    if pairs.is_empty() {
        return Err(Error::Config(format!("{origin}: nothing this strategy trades has a pool on {chain}")));
    }

    let mut symbols = pairs.clone();
    symbols.push(quote.clone());
    let mut tokens = Vec::new();
    let mut names = Names::default();
    let role = permissions.role.clone().unwrap_or_else(|| format!("sextant-{kind}"));
    for s in &symbols {
        let t = entry.token(s)?;
        let address: Address = sextant_chain::parse_address(&t.id.address)?;
        let whole = match permissions.approvals.get(s) {
            Some(x) if x.is_finite() && *x >= 0.0 => *x,
            Some(x) => return Err(Error::Config(format!("{origin}: permissions.approvals.{s} must be >= 0, got {x}"))),
            None => {
                let d = default_approval(s);
                notes.push(format!(
                    "approvals of {s} are bounded at the default {d} per {} s; set [permissions] approvals.{s} to change it",
                    permissions.period_secs
                ));
                d
            }
        };
        let units = whole * 10f64.powi(i32::from(t.decimals));
        if units >= u128::MAX as f64 {
            return Err(Error::Config(format!("{origin}: permissions.approvals.{s} is too large")));
        }
        names.addresses.insert(address, s.clone());
        names.units.insert(approval_key(&role, s), (s.clone(), t.decimals));
        tokens.push(TokenNeed { symbol: s.clone(), address, approval_per_period: units.round() as u128 });
    }
    if permissions.approvals.keys().any(|k| !symbols.contains(k)) {
        let unknown: Vec<&String> = permissions.approvals.keys().filter(|k| !symbols.contains(k)).collect();
        return Err(Error::Config(format!(
            "{origin}: permissions.approvals names {unknown:?}, which this strategy does not trade on {chain} ({})",
            symbols.join(", ")
        )));
    }

    let venue = match entry.contract("swap_router") {
        Ok(r) => {
            names.addresses.insert(r, "SwapRouter".into());
            SwapVenue::V1(r)
        }
        Err(_) => {
            let r = entry.contract("swap_router02")?;
            names.addresses.insert(r, "SwapRouter02".into());
            SwapVenue::V02(r)
        }
    };
    let pools: Vec<(String, Address)> = pairs
        .iter()
        .filter_map(|s| entry.pool(s, &quote, None).ok().map(|p| (format!("pool {}", p.name), p.address)))
        .collect();
    let mut fees: Vec<u32> =
        pairs.iter().filter_map(|s| entry.pool(s, &quote, None).ok().map(|p| p.fee_pips)).collect();
    fees.sort_unstable();
    fees.dedup();
    let positions = if kind == "dynamic_lp" {
        let m = entry.contract("position_manager")?;
        names.addresses.insert(m, "NonfungiblePositionManager".into());
        Some(m)
    } else {
        None
    };
    let needs = Needs {
        role,
        chain: entry.name.clone(),
        chain_id: entry.chain_id,
        safe,
        tokens,
        swaps: Some((venue, fees)),
        positions,
        wrap: None,
        lending: None,
        vaults: Vec::new(),
        period_secs: permissions.period_secs,
        pools,
    };
    let policy = derive(&needs).map_err(|e| Error::Config(format!("{origin}: {e}")))?;
    Ok(Derived { policy, notes, names, zodiac_mastercopy: entry.contract("zodiac_roles_v2").ok() })
}

/// The chain a config deploys to by default (`[live] chain`), if it names one.
pub fn config_chain(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    str_at(&table, "live", "chain").map(String::from)
}

/// The compiled permissions module (`contracts/out/SextantRoles.json`), embedded.
const MODULE_ARTIFACT: &str = include_str!("../../../contracts/out/SextantRoles.json");

/// Signs and sends one Safe transaction making `call` (owner route), waits for it, and checks the Safe ran it.
fn safe_call(tm: &TransactionManager<'_>, call: &Call, log: &dyn Fn(&str)) -> Result<()> {
    let nonce = tm.rpc().nonce(tm.sender(), true)?;
    let tx = tm.build(call, nonce)?;
    let r = tm.submit(&tx, &call.label, Duration::from_secs(180))?;
    if !tm.executed_ok(&r) {
        return Err(Error::Setup(format!(
            "the Safe transaction {} failed inside the Safe (tx {})",
            call.label, tx.hash
        )));
    }
    log(&format!("{} (tx {})", call.label, tx.hash));
    Ok(())
}

/// The module's creation code for `safe` (the embedded artifact and the constructor argument).
fn creation_code(safe: Address) -> Result<Vec<u8>> {
    let artifact: serde_json::Value = serde_json::from_str(MODULE_ARTIFACT)
        .map_err(|e| Error::Setup(format!("the embedded module artifact: {e}")))?;
    let mut data = hex::decode(artifact["bytecode"].as_str().unwrap_or_default())
        .map_err(|e| Error::Setup(format!("the embedded module bytecode: {e}")))?;
    data.extend(safe.abi_encode());
    Ok(data)
}

/// Whether `address` runs exactly Sextant's permissions module for `safe` (its code equals what the embedded
/// artifact deploys for that Safe): a contract that merely answers `avatar()` must not get a module's power.
pub fn is_sextant_module(rpc: &sextant_chain::Rpc, safe: Address, address: Address) -> Result<bool> {
    let create = sextant_chain::alloy::rpc::types::TransactionRequest {
        to: Some(sextant_chain::alloy::primitives::TxKind::Create),
        input: Bytes::from(creation_code(safe)?).into(),
        ..Default::default()
    };
    let expected = rpc.call(&create)?;
    let code = rpc.request("eth_getCode", serde_json::json!([address.to_string(), "latest"]))?;
    Ok(code.as_str().is_some_and(|c| c.eq_ignore_ascii_case(&expected.to_string())))
}

/// The Safe's enabled modules that are Sextant's permissions module.
fn sextant_modules(tm: &TransactionManager<'_>) -> Result<Vec<Address>> {
    let sentinel = Address::with_last_byte(1);
    let page =
        view(tm.rpc(), tm.safe(), &ISafe::getModulesPaginatedCall { start: sentinel, pageSize: U256::from(50) })?;
    let mut ours = Vec::new();
    for m in page.array {
        if is_sextant_module(tm.rpc(), tm.safe(), m)? {
            ours.push(m);
        }
    }
    Ok(ours)
}

/// What a role holds on a module now, rebuilt from the module's configuration events: cleared targets, allowed
/// (target, selector) pairs, and the members of each role.
#[derive(Debug, Default)]
struct OnChainScope {
    targets: std::collections::BTreeSet<Address>,
    functions: std::collections::BTreeSet<(Address, [u8; 4])>,
    members: std::collections::BTreeMap<B256, std::collections::BTreeSet<Address>>,
}

fn on_chain_scope(rpc: &sextant_chain::Rpc, module: Address, role: B256) -> Result<OnChainScope> {
    use ISextantRoles as R;
    use sextant_chain::alloy::sol_types::SolEvent;
    let head = rpc.block_number()?;
    // The module's first block: a binary search on whether its code exists.
    let has_code = |n: u64| -> Result<bool> {
        let c = rpc.request("eth_getCode", serde_json::json!([module.to_string(), format!("0x{n:x}")]))?;
        Ok(c.as_str().is_some_and(|c| c.len() > 2))
    };
    let (mut lo, mut hi) = (0u64, head);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if has_code(mid)? { hi = mid } else { lo = mid + 1 }
    }
    let mut scope = OnChainScope::default();
    let mut from = lo;
    while from <= head {
        let to = (from + 9_999).min(head);
        for l in rpc.logs(module, &[], from, to)? {
            let Some(topic) = l.topics().first().copied() else { continue };
            let ours = l.topics().get(1) == Some(&role);
            let data = &l.inner;
            if topic == R::AssignRoles::SIGNATURE_HASH {
                if let Ok(e) = R::AssignRoles::decode_log(data) {
                    for (k, on) in e.roleKeys.iter().zip(&e.memberOf) {
                        let set = scope.members.entry(*k).or_default();
                        if *on {
                            set.insert(e.member)
                        } else {
                            set.remove(&e.member)
                        };
                    }
                }
            } else if !ours {
                continue;
            } else if topic == R::AllowTarget::SIGNATURE_HASH || topic == R::ScopeTarget::SIGNATURE_HASH {
                scope.targets.insert(Address::from_word(l.topics()[2]));
            } else if topic == R::RevokeTarget::SIGNATURE_HASH {
                scope.targets.remove(&Address::from_word(l.topics()[2]));
            } else if topic == R::AllowFunction::SIGNATURE_HASH
                && let Ok(e) = R::AllowFunction::decode_log(data)
            {
                scope.functions.insert((e.targetAddress, e.selector.0));
            } else if topic == R::ScopeFunction::SIGNATURE_HASH
                && let Ok(e) = R::ScopeFunction::decode_log(data)
            {
                scope.functions.insert((e.targetAddress, e.selector.0));
            } else if topic == R::RevokeFunction::SIGNATURE_HASH
                && let Ok(e) = R::RevokeFunction::decode_log(data)
            {
                scope.functions.remove(&(e.targetAddress, e.selector.0));
            }
        }
        from = to + 1;
    }
    Ok(scope)
}

/// Installs `policy` with `member` as the role's key on `tm`'s Safe, signed by `tm`'s owner key: deploys the
/// permissions module (unless `module` names this Safe's), enables it, and applies the whole configuration in one
/// Safe transaction (membership last). On a module that already holds the role, whatever the role may do that the
/// new policy does not allow is revoked in the same transaction. Returns the module's address.
///
/// # Errors
/// A `module` that is not Sextant's module for this Safe, a Safe that has one already when none is named, reverts,
/// RPC failures.
pub fn install(
    tm: &TransactionManager<'_>,
    policy: &Policy,
    member: Address,
    module: Option<Address>,
    log: &dyn Fn(&str),
) -> Result<Address> {
    let safe = tm.safe();
    let module = match module {
        Some(m) => {
            if !is_sextant_module(tm.rpc(), safe, m)? {
                return Err(Error::Setup(format!(
                    "{m} is not Sextant's permissions module for Safe {safe} (its code differs from what this version \
                     deploys for that Safe)"
                )));
            }
            m
        }
        None => {
            if let Some(existing) = sextant_modules(tm)?.first() {
                return Err(Error::Setup(format!(
                    "Safe {safe} already has Sextant's permissions module {existing} enabled: pass --module {existing} \
                     to reconfigure it (a second module would leave the first one's permissions in force)"
                )));
            }
            let tx = tm.build_direct(None, Bytes::from(creation_code(safe)?), "deploy the permissions module")?;
            let r = tm.submit(&tx, "deploy the permissions module", Duration::from_secs(180))?;
            let m = r.contract_address.ok_or_else(|| Error::Setup("the module deployment made no contract".into()))?;
            log(&format!("deployed the permissions module at {m} (tx {})", tx.hash));
            m
        }
    };
    if !view(tm.rpc(), safe, &ISafe::isModuleEnabledCall { module })? {
        let data = ISafe::enableModuleCall { module }.abi_encode();
        let call = Call { to: safe, value: U256::ZERO, data: data.into(), label: format!("enable module {module}") };
        safe_call(tm, &call, log)?;
    }
    // What the role holds now and the new policy does not allow goes first.
    let now = on_chain_scope(tm.rpc(), module, policy.role_key)?;
    let mut wanted_functions = std::collections::BTreeSet::new();
    for t in &policy.targets {
        if let sextant_policy::Clearance::Functions(fs) = &t.clearance {
            wanted_functions.extend(fs.iter().map(|f| (t.address, f.selector.0)));
        }
    }
    let mut calls: Vec<(String, Bytes)> = Vec::new();
    for (target, selector) in now.functions.difference(&wanted_functions) {
        let data = ISextantRoles::revokeFunctionCall {
            roleKey: policy.role_key,
            targetAddress: *target,
            selector: (*selector).into(),
        }
        .abi_encode();
        calls.push((format!("revoke {target}'s function {}", hex::encode_prefixed(selector)), data.into()));
    }
    for target in now.targets.iter().filter(|t| policy.target(**t).is_none()) {
        let data = ISextantRoles::revokeTargetCall { roleKey: policy.role_key, targetAddress: *target }.abi_encode();
        calls.push((format!("revoke target {target}"), data.into()));
    }
    calls.extend(sextant_policy::module_calls(policy, member).map_err(|e| Error::Config(e.to_string()))?);
    for (what, _) in &calls {
        log(&format!("  {what}"));
    }
    let data = ISextantRoles::multicallCall { calls: calls.into_iter().map(|c| c.1).collect() }.abi_encode();
    let label = format!("configure role {:?}", policy.role);
    safe_call(tm, &Call { to: module, value: U256::ZERO, data: data.into(), label }, log)?;
    let others: Vec<String> = now
        .members
        .get(&policy.role_key)
        .into_iter()
        .flatten()
        .filter(|m| **m != member)
        .map(ToString::to_string)
        .collect();
    if !others.is_empty() {
        log(&format!(
            "note: role {:?} also has the members {} (revoke them if they are not yours)",
            policy.role,
            others.join(", ")
        ));
    }
    let roles: Vec<String> = now
        .members
        .iter()
        .filter(|(k, set)| **k != policy.role_key && set.contains(&member))
        .map(|(k, _)| k.to_string())
        .collect();
    if !roles.is_empty() {
        log(&format!("note: {member} is also a member of the roles {} on this module", roles.join(", ")));
    }
    Ok(module)
}

/// Takes `member` out of role `role` on `module` (a Safe transaction signed by `tm`'s owner key). False when it
/// was not a member.
///
/// # Errors
/// RPC failures, reverts.
pub fn revoke(
    tm: &TransactionManager<'_>,
    module: Address,
    role: &str,
    member: Address,
    log: &dyn Fn(&str),
) -> Result<bool> {
    let key = sextant_policy::key(role);
    if !view(tm.rpc(), module, &ISextantRoles::isMemberCall { roleKey: key, member })? {
        return Ok(false);
    }
    let data = ISextantRoles::assignRolesCall { member, roleKeys: vec![key], memberOf: vec![false] }.abi_encode();
    let label = format!("revoke {member} from role {role:?}");
    safe_call(tm, &Call { to: module, value: U256::ZERO, data: data.into(), label }, log)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// Every shipped example derives a policy on every registry chain.
    #[test]
    fn every_example_has_a_policy_on_every_chain() {
        let registry = Registry::built_in();
        let dir = format!("{}/../../examples", env!("CARGO_MANIFEST_DIR"));
        let safe = Address::repeat_byte(0x5a);
        for f in std::fs::read_dir(dir).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for chain in ["ethereum", "base", "arbitrum", "devnet"] {
                let d = derive_for_config(&text, &path.display().to_string(), &registry, chain, safe)
                    .unwrap_or_else(|e| panic!("{} on {chain}: {e}", path.display()));
                assert!(!d.policy.targets.is_empty());
                let text = sextant_policy::describe(&d.policy, &d.names);
                assert!(text.contains("recipient is the Safe"), "{}: {text}", path.display());
            }
        }
    }

    #[test]
    fn a_config_without_on_chain_tokens_uses_the_registry_defaults_and_says_so() {
        let registry = Registry::built_in();
        let safe = Address::repeat_byte(0x5a);
        let d = derive_for_config(&example("ma-cross.toml"), "ma-cross.toml", &registry, "ethereum", safe).unwrap();
        assert!(d.notes.iter().any(|n| n.contains("GOOG is not a token on ethereum")), "{:?}", d.notes);
        let symbols: Vec<&str> = d.policy.targets.iter().map(|t| t.name.as_str()).collect();
        assert!(symbols.contains(&"WETH") && symbols.contains(&"USDC"), "{symbols:?}");
        let lp = derive_for_config(&example("lp-live-devnet.toml"), "lp", &registry, "devnet", safe).unwrap();
        assert!(lp.policy.targets.iter().any(|t| t.name == "NonfungiblePositionManager"));
    }

    #[test]
    fn approvals_are_bounded_as_configured_and_bad_bounds_are_refused() {
        let registry = Registry::built_in();
        let safe = Address::repeat_byte(0x5a);
        let text =
            format!("{}\n[permissions]\napprovals = {{ USDC = 2500.5 }}\nperiod_secs = 3600\n", example("rsi.toml"));
        let d = derive_for_config(&text, "x", &registry, "ethereum", safe).unwrap();
        let usdc = d.policy.allowances.iter().find(|a| a.name == "approvals of USDC").unwrap();
        assert_eq!((usdc.balance, usdc.period_secs), (2_500_500_000, 3600));
        let bad = format!("{}\n[permissions]\napprovals = {{ DOGE = 1 }}\n", example("rsi.toml"));
        let e = derive_for_config(&bad, "x.toml", &registry, "ethereum", safe).unwrap_err().to_string();
        assert!(e.contains("DOGE"), "{e}");
        let e = derive_for_config(&example("rsi.toml"), "x", &registry, "mars", safe).unwrap_err().to_string();
        assert!(e.contains("mars"), "{e}");
    }
}
