//! A policy as configuration calls: for Sextant's module (applied in one Safe transaction through its
//! `multicall`), and for Zodiac Roles v2 (its calls, and its `Target[]` permissions JSON).

use crate::Result;
use crate::condition::{Condition, FlatCondition, Operator, ParamType, flatten, flatten_unchecked};
use crate::model::{Clearance, Policy};
use serde_json::{Value, json};
use sextant_chain::alloy::primitives::{Address, Bytes};
use sextant_chain::alloy::sol_types::SolCall;

pub use sextant_chain::bindings::ISextantRoles as RolesAbi;
use sextant_chain::bindings::{ConditionFlat, ISextantRoles as IRoles};

fn flat_abi(flat: &[FlatCondition]) -> Vec<ConditionFlat> {
    flat.iter()
        .map(|f| ConditionFlat {
            parent: f.parent,
            paramType: f.param_type as u8,
            operator: f.operator as u8,
            compValue: f.comp_value.clone(),
        })
        .collect()
}

/// Which module the calls are for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Sextant,
    Zodiac,
}

/// The configuration calls that install `policy` for `member`, in order (targets, functions, allowances, then
/// membership last, so the key can do nothing before its scope is complete).
fn calls(policy: &Policy, member: Address, flavour: Flavour) -> Result<Vec<(String, Bytes)>> {
    policy.validate()?;
    let role = policy.role_key;
    let mut out: Vec<(String, Bytes)> = Vec::new();
    let mut push = |what: String, data: Vec<u8>| out.push((what, Bytes::from(data)));
    for t in &policy.targets {
        match &t.clearance {
            Clearance::Target { options } => push(
                format!("allow any call to {} ({})", t.name, t.address),
                IRoles::allowTargetCall { roleKey: role, targetAddress: t.address, options: *options as u8 }
                    .abi_encode(),
            ),
            Clearance::Functions(fs) => {
                push(
                    format!("scope {} ({}) to functions", t.name, t.address),
                    IRoles::scopeTargetCall { roleKey: role, targetAddress: t.address }.abi_encode(),
                );
                for f in fs {
                    let condition = match (flavour, &f.condition) {
                        (Flavour::Zodiac, Some(c)) => Some(zodiac_condition(c, f.options as u8 & 1 == 1, policy)),
                        (Flavour::Zodiac, None) if f.options as u8 & 1 == 1 => {
                            policy.ether_allowance.map(|_| zodiac_condition(&Condition::calldata(vec![]), true, policy))
                        }
                        (_, c) => c.clone(),
                    };
                    match condition {
                        None => push(
                            format!("allow {}.{}", t.name, f.signature),
                            IRoles::allowFunctionCall {
                                roleKey: role,
                                targetAddress: t.address,
                                selector: f.selector,
                                options: f.options as u8,
                            }
                            .abi_encode(),
                        ),
                        Some(c) => push(
                            format!("allow {}.{} with conditions", t.name, f.signature),
                            IRoles::scopeFunctionCall {
                                roleKey: role,
                                targetAddress: t.address,
                                selector: f.selector,
                                conditions: flat_abi(&match flavour {
                                    Flavour::Sextant => flatten(&c)?,
                                    Flavour::Zodiac => flatten_unchecked(&c)?,
                                }),
                                options: f.options as u8,
                            }
                            .abi_encode(),
                        ),
                    }
                }
            }
        }
    }
    for a in &policy.allowances {
        push(
            format!("set allowance {}", a.name),
            IRoles::setAllowanceCall {
                key: a.key,
                balance: a.balance,
                maxRefill: a.max_refill,
                refill: a.refill,
                period: a.period_secs,
                timestamp: a.timestamp,
            }
            .abi_encode(),
        );
    }
    if let (Flavour::Sextant, Some(k)) = (flavour, policy.ether_allowance) {
        push(
            "spend native value from the ether allowance".into(),
            IRoles::setEtherAllowanceCall { roleKey: role, allowanceKey: k }.abi_encode(),
        );
    }
    push(
        format!("make {member} a member of role {}", policy.role),
        IRoles::assignRolesCall { member, roleKeys: vec![role], memberOf: vec![true] }.abi_encode(),
    );
    Ok(out)
}

/// Sextant's module configuration for `policy` with `member` as the role's key: each call with what it does, in
/// the order to apply them (the Safe sends them all at once through the module's `multicall`).
///
/// # Errors
/// A condition tree the module would refuse.
pub fn module_calls(policy: &Policy, member: Address) -> Result<Vec<(String, Bytes)>> {
    calls(policy, member, Flavour::Sextant)
}

/// The Zodiac Roles v2 version of a condition: a nested call's selector check becomes an And with a Bitmask on the
/// `bytes` (Zodiac's Matches takes no selector), and value-sending functions spend the ether allowance in-tree.
fn zodiac_condition(c: &Condition, sends: bool, policy: &Policy) -> Condition {
    fn convert(c: &Condition) -> Condition {
        let children: Vec<Condition> = c.children.iter().map(convert).collect();
        if c.param_type == ParamType::Calldata && c.operator == Operator::Matches && c.comp_value.len() == 4 {
            let mut mask = vec![0u8; 32];
            mask[2..6].copy_from_slice(&[0xff; 4]);
            mask[17..21].copy_from_slice(&c.comp_value);
            let bitmask = Condition {
                param_type: ParamType::Dynamic,
                operator: Operator::Bitmask,
                comp_value: Bytes::from(mask),
                children: vec![],
            };
            let matches = Condition { comp_value: Bytes::new(), children, ..c.clone() };
            return Condition::and(vec![matches, bitmask]);
        }
        Condition { children, ..c.clone() }
    }
    let mut root = convert(c);
    if let (true, Some(k), ParamType::Calldata) = (sends, policy.ether_allowance, root.param_type) {
        root.children.push(Condition {
            param_type: ParamType::None,
            operator: Operator::EtherWithinAllowance,
            comp_value: Bytes::from(k.to_vec()),
            children: vec![],
        });
    }
    root
}

/// Zodiac Roles v2: the configuration calls (to the Roles modifier of the Safe, `to` left for the user's
/// deployment) and the permissions as the Roles app's `Target[]`.
///
/// # Errors
/// A condition tree the module would refuse.
pub fn zodiac_export(policy: &Policy, member: Address) -> Result<Value> {
    let calls = calls(policy, member, Flavour::Zodiac)?;
    let calls: Vec<Value> =
        calls.into_iter().map(|(what, data)| json!({"description": what, "data": data.to_string()})).collect();
    let targets: Vec<Value> = policy
        .targets
        .iter()
        .map(|t| match &t.clearance {
            Clearance::Target { options } => json!({
                "address": t.address.to_string(), "clearance": 1, "executionOptions": *options as u8, "functions": [],
            }),
            Clearance::Functions(fs) => json!({
                "address": t.address.to_string(), "clearance": 2, "executionOptions": 0,
                "functions": fs.iter().map(|f| json!({
                    "selector": f.selector.to_string(),
                    "signature": f.signature,
                    "executionOptions": f.options as u8,
                    "wildcarded": f.condition.is_none(),
                    "condition": f.condition.as_ref().map(|c| zodiac_json(&zodiac_condition(c, f.options as u8 & 1 == 1, policy))),
                })).collect::<Vec<_>>(),
            }),
        })
        .collect();
    Ok(json!({
        "format": "zodiac-roles-v2",
        "chainId": policy.chain_id,
        "avatar": policy.safe.to_string(),
        "roleKey": policy.role_key.to_string(),
        "members": [member.to_string()],
        "targets": targets,
        "calls": calls,
    }))
}

fn zodiac_json(c: &Condition) -> Value {
    let mut v = json!({"paramType": c.param_type as u8, "operator": c.operator as u8});
    if !c.comp_value.is_empty() {
        v["compValue"] = json!(c.comp_value.to_string());
    }
    if !c.children.is_empty() {
        v["children"] = Value::Array(c.children.iter().map(zodiac_json).collect());
    }
    v
}
