//! A policy in words: what the deployment key may make the Safe do, target by target, with every condition and
//! allowance, and what it may not.

use crate::condition::{Condition, Operator, ParamType};
use crate::model::{Clearance, ExecOptions, Policy};
use sextant_chain::alloy::primitives::{Address, B256, U256};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;

/// Names for addresses (tokens, contracts) and amounts: how the description refers to them.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Address -> name.
    pub addresses: HashMap<Address, String>,
    /// Allowance key -> (unit symbol, decimals) its amounts are counted in.
    pub units: HashMap<B256, (String, u8)>,
}

impl Names {
    fn address(&self, a: Address, safe: Address) -> String {
        if a == safe {
            return "the Safe".into();
        }
        match self.addresses.get(&a) {
            Some(n) => format!("{n} ({a})"),
            None => a.to_string(),
        }
    }

    fn word(&self, w: &[u8], safe: Address) -> String {
        let x = U256::from_be_slice(w);
        if w[..12].iter().all(|b| *b == 0) && x > U256::from(u64::MAX) {
            return self.address(Address::from_slice(&w[12..]), safe);
        }
        x.to_string()
    }
}

/// A whole-token amount from base units.
pub fn amount(units: u128, decimals: u8) -> String {
    let scale = 10u128.pow(u32::from(decimals));
    let (whole, frac) = (units / scale, units % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0>width$}", width = decimals as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// The policy in words.
pub fn describe(policy: &Policy, names: &Names) -> String {
    let mut s = String::new();
    let safe = policy.safe;
    let _ = writeln!(
        s,
        "Role {:?} ({}) on {} (chain {}), acting for Safe {}.",
        policy.role, policy.role_key, policy.chain, policy.chain_id, safe
    );
    let _ = writeln!(s, "Through the permissions module, its members may make the Safe call:");
    for t in &policy.targets {
        let _ = writeln!(s, "\n  {}:", names.address(t.address, safe));
        match &t.clearance {
            Clearance::Target { options } => {
                let _ = writeln!(s, "    any function{}", options_words(*options));
            }
            Clearance::Functions(fs) => {
                for f in fs {
                    let _ = writeln!(s, "    {}{}  ({})", f.signature, options_words(f.options), f.why);
                    match &f.condition {
                        None => {
                            let _ = writeln!(s, "      with any parameters");
                        }
                        Some(c) => {
                            let mut lines = Vec::new();
                            let mut queue: VecDeque<String> = f.params.iter().cloned().collect();
                            for child in &c.children {
                                slot(child, &mut queue, "", names, policy, &mut lines);
                            }
                            for l in lines {
                                let _ = writeln!(s, "      {l}");
                            }
                        }
                    }
                }
            }
        }
    }
    if !policy.allowances.is_empty() {
        let _ = writeln!(s, "\nAllowances (spent by the calls above, refilled on a schedule):");
        for a in &policy.allowances {
            let (unit, decimals) = names.units.get(&a.key).cloned().unwrap_or(("base units".into(), 0));
            let refill = if a.period_secs == 0 {
                "never refilled".to_string()
            } else {
                format!(
                    "refilled by {} every {} s, up to {}",
                    amount(a.refill, decimals),
                    a.period_secs,
                    amount(a.max_refill, decimals)
                )
            };
            let _ = writeln!(s, "  {}: {} {unit} to start, {refill}  ({})", a.name, amount(a.balance, decimals), a.why);
        }
    }
    if !policy.counterparties.is_empty() {
        let pools: Vec<String> = policy.counterparties.iter().map(|c| format!("{} ({})", c.name, c.address)).collect();
        let _ =
            writeln!(s, "\nTokens leave the Safe only to {}, paid by the swaps and positions above.", pools.join(", "));
    }
    let _ = writeln!(
        s,
        "\nNothing else: no other contract or function, no token transfer out of the Safe, no delegatecall{}.",
        if policy.ether_allowance.is_some() { "" } else { ", no native value" }
    );
    s
}

fn options_words(o: ExecOptions) -> &'static str {
    match o {
        ExecOptions::None => "",
        ExecOptions::Send => ", may send native value (within the ether allowance)",
        ExecOptions::DelegateCall => ", may be delegatecalled",
        ExecOptions::Both => ", may send native value and be delegatecalled",
    }
}

/// Describes the node standing for one value (or a container of values), consuming its name.
fn slot(c: &Condition, names: &mut VecDeque<String>, prefix: &str, n: &Names, p: &Policy, out: &mut Vec<String>) {
    let key = |c: &Condition| B256::from_slice(&c.comp_value);
    if c.param_type == ParamType::None && c.operator == Operator::CallWithinAllowance {
        out.push(format!("each call spends 1 from allowance {}", allowance_name(p, key(c))));
        return;
    }
    if c.param_type == ParamType::None && c.operator == Operator::EtherWithinAllowance {
        out.push(format!("its native value is spent from allowance {}", allowance_name(p, key(c))));
        return;
    }
    let own = names.pop_front().unwrap_or_else(|| "a parameter".into());
    let name = match (prefix, own.as_str()) {
        (_, "params" | "each call") => prefix.to_string(),
        ("", _) => own.clone(),
        _ => format!("{prefix}.{own}"),
    };
    let shown = if name.is_empty() { own.clone() } else { name.clone() };
    let word = |c: &Condition| n.word(&c.comp_value, p.safe);
    match c.operator {
        Operator::Pass => {}
        Operator::EqualToAvatar => out.push(format!("{shown} is the Safe")),
        Operator::EqualTo if c.param_type == ParamType::Static => out.push(format!("{shown} = {}", word(c))),
        Operator::EqualTo => out.push(format!("{shown} equals the given bytes")),
        Operator::GreaterThan | Operator::SignedIntGreaterThan => out.push(format!("{shown} > {}", word(c))),
        Operator::LessThan | Operator::SignedIntLessThan => out.push(format!("{shown} < {}", word(c))),
        Operator::WithinAllowance => {
            out.push(format!("{shown} is spent from allowance {}", allowance_name(p, key(c))));
        }
        Operator::Or if c.children.iter().all(|k| k.operator == Operator::EqualTo) => {
            let values: Vec<String> = c.children.iter().map(word).collect();
            out.push(format!("{shown} is one of {}", values.join(", ")));
        }
        Operator::And | Operator::Or | Operator::Nor => {
            let joiner = match c.operator {
                Operator::And => "all of",
                Operator::Or => "any of",
                _ => "none of",
            };
            out.push(format!("{shown}: {joiner} {} alternatives", c.children.len()));
        }
        Operator::Matches => {
            if c.param_type == ParamType::Calldata && c.comp_value.len() == 4 {
                out.push(format!(
                    "{shown} is a call to selector {}",
                    sextant_chain::alloy::primitives::Bytes::from(c.comp_value.to_vec())
                ));
            }
            for k in &c.children {
                slot(k, names, &name, n, p, out);
            }
        }
        Operator::ArrayEvery | Operator::ArraySome => {
            let which = if c.operator == Operator::ArrayEvery { "every" } else { "some" };
            out.push(format!("{which} element of {shown}:"));
            for k in &c.children {
                slot(k, names, &format!("{shown}[]"), n, p, out);
            }
        }
        _ => out.push(format!("{shown}: {:?}", c.operator)),
    }
}

fn allowance_name(p: &Policy, key: B256) -> String {
    p.allowances.iter().find(|a| a.key == key).map_or_else(|| key.to_string(), |a| format!("{:?}", a.name))
}
