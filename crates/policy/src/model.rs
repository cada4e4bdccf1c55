//! The policy model: one role's targets, functions, conditions and allowances, serialisable as Sextant's own
//! format (JSON).

use crate::Result;
use crate::condition::{Condition, flatten};
use serde::{Deserialize, Serialize};
use sextant_chain::alloy::primitives::{Address, B256, FixedBytes, keccak256};

/// Which non-plain executions a target or function allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ExecOptions {
    /// Plain calls without native value.
    #[default]
    None = 0,
    /// Calls may carry native value (spent from the role's ether allowance).
    Send = 1,
    /// Delegatecalls are allowed.
    DelegateCall = 2,
    /// Both.
    Both = 3,
}

/// A key for a role or an allowance from its name: the name's bytes, left-aligned and zero-padded (Zodiac's
/// `encodeBytes32String`); names over 31 bytes are hashed instead.
pub fn key(name: &str) -> B256 {
    if name.len() < 32 {
        let mut k = [0u8; 32];
        k[..name.len()].copy_from_slice(name.as_bytes());
        B256::from(k)
    } else {
        keccak256(name.as_bytes())
    }
}

/// One function a role may call on a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// The 4-byte selector.
    pub selector: FixedBytes<4>,
    /// Its Solidity signature, for people.
    pub signature: String,
    /// Execution options.
    #[serde(default)]
    pub options: ExecOptions,
    /// Conditions on the parameters; none: any parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Names of the values the condition's typed nodes stand for, in depth-first order (for the description).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
    /// Why the strategy needs it.
    pub why: String,
}

/// What a role may call on a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clearance {
    /// Any function (and plain transfers of value, with Send).
    Target {
        /// Execution options.
        options: ExecOptions,
    },
    /// Only these functions.
    Functions(Vec<Function>),
}

/// A contract the role may call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Its address.
    pub address: Address,
    /// What it is, e.g. `USDC` or `SwapRouter`.
    pub name: String,
    /// What may be called.
    pub clearance: Clearance,
}

/// A refilling allowance: `balance` to start, then `refill` more every `period_secs` (from `timestamp`), up to
/// `max_refill`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    /// Its key (see [`key`]).
    pub key: B256,
    /// Its name.
    pub name: String,
    /// What it holds when set (base units; a decimal string in JSON).
    #[serde(with = "decimal")]
    pub balance: u128,
    /// The cap refills stop at.
    #[serde(with = "decimal")]
    pub max_refill: u128,
    /// What each period adds.
    #[serde(with = "decimal")]
    pub refill: u128,
    /// The period in seconds (0: never refilled).
    pub period_secs: u64,
    /// When refills count from (0: when it is set).
    #[serde(default)]
    pub timestamp: u64,
    /// What it bounds, for people.
    pub why: String,
}

/// One role's permissions on one Safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Format version of this JSON.
    pub version: u32,
    /// The role's name.
    pub role: String,
    /// Its key.
    pub role_key: B256,
    /// The chain's registry name.
    pub chain: String,
    /// The chain id.
    pub chain_id: u64,
    /// The Safe the role acts for.
    pub safe: Address,
    /// What the role may call.
    pub targets: Vec<Target>,
    /// Allowances the conditions spend from.
    pub allowances: Vec<Allowance>,
    /// The allowance native value is spent from (none: no value may be sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ether_allowance: Option<B256>,
    /// Where the allowed calls pay tokens out of the Safe: the pools its swaps and positions trade in (the router
    /// and position manager make the Safe pay them; the conditions on tokens and fee tiers fix which pools).
    #[serde(default)]
    pub counterparties: Vec<Counterparty>,
}

/// An address the allowed calls pay tokens to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterparty {
    /// Its address.
    pub address: Address,
    /// What it is, e.g. `WETH/USDC 0.05%`.
    pub name: String,
}

impl Policy {
    /// The current format version.
    pub const VERSION: u32 = 1;

    /// Checks every condition tree is one the module accepts.
    ///
    /// # Errors
    /// The first tree the module would refuse, a target listed twice or equal to the Safe, or a function listed
    /// twice on one target.
    pub fn validate(&self) -> Result<()> {
        let mut addresses = std::collections::HashSet::new();
        for t in &self.targets {
            if t.address == self.safe {
                return Err(crate::Error::Invalid(format!("{} is the Safe itself, which is never a target", t.name)));
            }
            if !addresses.insert(t.address) {
                return Err(crate::Error::Invalid(format!("target {} ({}) is listed twice", t.name, t.address)));
            }
            if let Clearance::Functions(fs) = &t.clearance {
                let mut seen = std::collections::HashSet::new();
                for f in fs {
                    if !seen.insert(f.selector) {
                        return Err(crate::Error::Invalid(format!(
                            "{} ({}) lists {} twice",
                            t.name, t.address, f.signature
                        )));
                    }
                    if let Some(c) = &f.condition {
                        flatten(c).map_err(|e| crate::Error::Invalid(format!("{} {}: {e}", t.name, f.signature)))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The target entry for `address`.
    pub fn target(&self, address: Address) -> Option<&Target> {
        self.targets.iter().find(|t| t.address == address)
    }
}

/// u128 amounts as decimal strings: JSON numbers lose precision above 2^53 in most readers.
mod decimal {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&x.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|e| serde::de::Error::custom(format!("{text:?} is not an amount: {e}")))
    }
}
