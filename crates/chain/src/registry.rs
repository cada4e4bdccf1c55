//! The chain registry: per-chain tokens, protocol contracts and pools, from TOML. The built-in registry
//! (`chains.toml`, compiled in) holds Ethereum, Base and Arbitrum (public addresses, each with its source) and the
//! devnet (the addresses `sextant devnet up` deploys to, which are deterministic); a user file can add chains or
//! override entries.

use crate::{Error, Result};
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use sextant_types::{ChainId, Token};
use std::collections::BTreeMap;
use std::path::Path;

const BUILT_IN: &str = include_str!("../chains.toml");

/// A token of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Contract address.
    pub address: Address,
    /// ERC-20 decimals.
    pub decimals: u8,
    /// Where the address comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A contract of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractEntry {
    /// Contract address.
    pub address: Address,
    /// Where the address comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A Uniswap v3 pool of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolEntry {
    /// A human name, e.g. `WETH/USDC 0.05%`.
    pub name: String,
    /// Pool address.
    pub address: Address,
    /// Symbol of token0 (the lower address).
    pub token0: String,
    /// Symbol of token1.
    pub token1: String,
    /// Fee in hundredths of a basis point.
    pub fee_pips: u32,
    /// Where the address comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Everything Sextant knows about one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainEntry {
    /// Short name used on the command line (`ethereum`, `base`, `arbitrum`, `devnet`).
    pub name: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The native coin's symbol.
    pub native_symbol: String,
    /// Symbol of the token (in `tokens`) that wraps the native coin.
    pub wrapped_native: String,
    /// Block explorer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explorer: Option<String>,
    /// Tokens by symbol.
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenEntry>,
    /// Contracts by role: `uniswap_v3_factory`, `swap_router`, `swap_router02`, `position_manager`, `quoter_v2`,
    /// `aave_v3_pool`, `safe_singleton`, `safe_proxy_factory`, `multi_send_call_only`, `zodiac_roles_v2` (the Roles
    /// Modifier v2 mastercopy).
    #[serde(default)]
    pub contracts: BTreeMap<String, ContractEntry>,
    /// Uniswap v3 pools.
    #[serde(default)]
    pub pools: Vec<PoolEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    chain: Vec<ChainEntry>,
}

/// Chains by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    chains: BTreeMap<u64, ChainEntry>,
}

impl Registry {
    /// The built-in registry.
    pub fn built_in() -> Self {
        // The built-in file is checked by a unit test, so parsing it cannot fail in a released binary.
        Registry::parse(BUILT_IN, "built-in chains.toml").expect("the built-in chain registry parses")
    }

    /// Parses a registry file's text; `origin` names it in errors.
    ///
    /// # Errors
    /// Unknown keys, bad addresses, or a chain listed twice.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let file: RegistryFile =
            toml::from_str(text).map_err(|e| Error::Registry(format!("{origin}: {}", e.to_string().trim_end())))?;
        let mut chains = BTreeMap::new();
        for c in file.chain {
            if chains.contains_key(&c.chain_id) {
                return Err(Error::Registry(format!("{origin}: chain {} is listed twice", c.chain_id)));
            }
            chains.insert(c.chain_id, c);
        }
        Ok(Registry { chains })
    }

    /// The built-in registry with the chains of a user file added; a chain in the file replaces the built-in one
    /// of the same id.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn with_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Registry(format!("{}: {e}", path.display())))?;
        let mut reg = Registry::built_in();
        reg.chains.extend(Registry::parse(&text, &path.display().to_string())?.chains);
        Ok(reg)
    }

    /// The chain with this id.
    ///
    /// # Errors
    /// When the registry does not know it; the message lists the chains it knows.
    pub fn chain(&self, id: u64) -> Result<&ChainEntry> {
        self.chains.get(&id).ok_or_else(|| Error::UnknownChain { id: id.to_string(), known: self.names() })
    }

    /// The chain with this name (or id written in decimal).
    ///
    /// # Errors
    /// When the registry does not know it.
    pub fn by_name(&self, name: &str) -> Result<&ChainEntry> {
        self.chains
            .values()
            .find(|c| c.name.eq_ignore_ascii_case(name) || c.chain_id.to_string() == name)
            .ok_or_else(|| Error::UnknownChain { id: name.to_string(), known: self.names() })
    }

    /// Every chain, by id.
    pub fn chains(&self) -> impl Iterator<Item = &ChainEntry> {
        self.chains.values()
    }

    fn names(&self) -> String {
        self.chains.values().map(|c| format!("{} ({})", c.name, c.chain_id)).collect::<Vec<_>>().join(", ")
    }
}

impl ChainEntry {
    /// The token with this symbol, as a [`Token`].
    ///
    /// # Errors
    /// When the chain has no such token.
    pub fn token(&self, symbol: &str) -> Result<Token> {
        let t = self.tokens.get(symbol).ok_or_else(|| {
            Error::Registry(format!(
                "chain {} has no token {symbol} (known: {})",
                self.name,
                self.tokens.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        Token::new(ChainId(self.chain_id), t.address.to_string(), symbol, t.decimals)
            .map_err(|e| Error::Registry(e.to_string()))
    }

    /// The token at this address, if the registry knows it.
    pub fn token_by_address(&self, address: Address) -> Option<Token> {
        self.tokens.iter().find(|(_, t)| t.address == address).and_then(|(s, _)| self.token(s).ok())
    }

    /// The contract with this role.
    ///
    /// # Errors
    /// When the chain has none.
    pub fn contract(&self, role: &str) -> Result<Address> {
        self.contracts
            .get(role)
            .map(|c| c.address)
            .ok_or_else(|| Error::Registry(format!("chain {} has no {role} contract in the registry", self.name)))
    }

    /// The pool trading `a` against `b` (either order), with the lowest fee when there are several, or the one
    /// with exactly `fee_pips`.
    ///
    /// # Errors
    /// When there is none.
    pub fn pool(&self, a: &str, b: &str, fee_pips: Option<u32>) -> Result<&PoolEntry> {
        self.pools
            .iter()
            .filter(|p| (p.token0 == a && p.token1 == b) || (p.token0 == b && p.token1 == a))
            .filter(|p| fee_pips.is_none_or(|f| f == p.fee_pips))
            .min_by_key(|p| p.fee_pips)
            .ok_or_else(|| Error::Registry(format!("chain {} has no {a}/{b} pool in the registry", self.name)))
    }
}

/// Parses a `0x` address.
///
/// # Errors
/// When it is not 20 bytes of hex.
pub fn parse_address(s: &str) -> Result<Address> {
    s.trim().parse::<Address>().map_err(|e| Error::BadAddress { input: s.to_string(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_registry_has_the_mainnets_and_the_devnet_with_sources() {
        let reg = Registry::built_in();
        for (name, id) in [("ethereum", 1), ("base", 8453), ("arbitrum", 42161), ("devnet", 31337)] {
            let c = reg.by_name(name).unwrap();
            assert_eq!(c.chain_id, id);
            assert!(c.tokens.contains_key(&c.wrapped_native), "{name} lacks its wrapped native token");
            assert!(c.contracts.contains_key("uniswap_v3_factory"), "{name} lacks a factory");
            if id != 31337 {
                for (k, t) in &c.tokens {
                    assert!(t.source.as_deref().is_some_and(|s| s.starts_with("https://")), "{name} {k} has no source");
                }
                for (k, t) in &c.contracts {
                    assert!(t.source.as_deref().is_some_and(|s| s.starts_with("https://")), "{name} {k} has no source");
                }
            }
            for p in &c.pools {
                let (a, b) = (&c.tokens[&p.token0], &c.tokens[&p.token1]);
                assert!(a.address < b.address, "{name} {}: token0 must be the lower address", p.name);
            }
        }
        // The canonical USDC on Ethereum, for a spot check of the file itself.
        let usdc = reg.by_name("ethereum").unwrap().token("USDC").unwrap();
        assert_eq!(usdc.id.address, "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
        assert_eq!(usdc.decimals, 6);
    }

    #[test]
    fn unknown_keys_chains_and_tokens_are_clear_errors() {
        let e = Registry::parse(
            "[[chain]]\nname='x'\nchain_id=5\nnative_symbol='ETH'\nwrapped_native='WETH'\ncolour=1\n",
            "f.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("f.toml") && e.to_string().contains("colour"), "{e}");
        let reg = Registry::built_in();
        let e = reg.by_name("solana").unwrap_err().to_string();
        assert!(e.contains("solana") && e.contains("ethereum (1)"), "{e}");
        let e = reg.by_name("devnet").unwrap().token("DOGE").unwrap_err().to_string();
        assert!(e.contains("DOGE") && e.contains("USDC"), "{e}");
        assert!(parse_address("0x12").is_err());
    }
}
