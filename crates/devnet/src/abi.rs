//! Just enough Solidity ABI encoding to deploy and drive the devnet's contracts over raw JSON-RPC: static words
//! (addresses, unsigned and signed integers) and strings. The chain layer's alloy bindings cover the rest.

use tiny_keccak::{Hasher, Keccak};

/// An ABI value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A 20-byte address, `0x`-hex.
    Address(String),
    /// An unsigned integer up to 128 bits (uint8 ... uint256 whose values fit).
    Uint(u128),
    /// A signed integer (int24 ticks and the like), two's complement in 256 bits.
    Int(i128),
    /// A UTF-8 string (dynamic).
    Str(String),
    /// Raw bytes (dynamic).
    Bytes(Vec<u8>),
    /// An `address[]` (dynamic).
    Addresses(Vec<String>),
}

/// keccak256 of `data`.
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    let mut k = Keccak::v256();
    let mut out = [0u8; 32];
    k.update(data);
    k.finalize(&mut out);
    out
}

/// The 4-byte selector of a function signature such as `transfer(address,uint256)`.
pub fn selector(signature: &str) -> [u8; 4] {
    let h = keccak256(signature.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

fn word_of(v: &Value) -> Option<[u8; 32]> {
    let mut w = [0u8; 32];
    match v {
        Value::Address(a) => {
            let bytes = hex_decode(a.trim_start_matches("0x"))?;
            if bytes.len() != 20 {
                return None;
            }
            w[12..].copy_from_slice(&bytes);
        }
        Value::Uint(u) => w[16..].copy_from_slice(&u.to_be_bytes()),
        Value::Int(i) => {
            let fill = if *i < 0 { 0xff } else { 0 };
            w[..16].fill(fill);
            w[16..].copy_from_slice(&i.to_be_bytes());
        }
        Value::Str(_) | Value::Bytes(_) | Value::Addresses(_) => return None,
    }
    Some(w)
}

/// Encodes values as a tuple (head words, then the tails of dynamic values). Invalid addresses encode as zero.
pub fn encode(values: &[Value]) -> Vec<u8> {
    let mut head = Vec::with_capacity(32 * values.len());
    let mut tail = Vec::new();
    let word = |n: usize| word_of(&Value::Uint(n as u128)).unwrap_or_default();
    for v in values {
        let dynamic_start = 32 * values.len() + tail.len();
        match v {
            Value::Str(text) => {
                head.extend_from_slice(&word(dynamic_start));
                tail.extend_from_slice(&word(text.len()));
                tail.extend_from_slice(text.as_bytes());
                tail.resize(tail.len().div_ceil(32) * 32, 0);
            }
            Value::Bytes(bytes) => {
                head.extend_from_slice(&word(dynamic_start));
                tail.extend_from_slice(&word(bytes.len()));
                tail.extend_from_slice(bytes);
                tail.resize(tail.len().div_ceil(32) * 32, 0);
            }
            Value::Addresses(list) => {
                head.extend_from_slice(&word(dynamic_start));
                tail.extend_from_slice(&word(list.len()));
                for a in list {
                    tail.extend_from_slice(&word_of(&Value::Address(a.clone())).unwrap_or_default());
                }
            }
            _ => head.extend_from_slice(&word_of(v).unwrap_or_default()),
        }
    }
    head.extend_from_slice(&tail);
    head
}

/// Calldata: selector of `signature` then the encoded arguments.
pub fn call(signature: &str, args: &[Value]) -> Vec<u8> {
    let mut data = selector(signature).to_vec();
    data.extend_from_slice(&encode(args));
    data
}

/// Lowercase hex with `0x`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Decodes hex (no `0x`).
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The `i`-th 32-byte word of a return value, as an unsigned integer (None past the data or above 128 bits).
pub fn word_u128(ret: &[u8], i: usize) -> Option<u128> {
    let w = ret.get(32 * i..32 * i + 32)?;
    if w[..16].iter().any(|&b| b != 0) {
        return None;
    }
    Some(u128::from_be_bytes(w[16..].try_into().ok()?))
}

/// The `i`-th word of a return value as an address.
pub fn word_address(ret: &[u8], i: usize) -> Option<String> {
    ret.get(32 * i + 12..32 * i + 32).map(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_known_ones() {
        assert_eq!(hex(&selector("transfer(address,uint256)")), "0xa9059cbb");
        assert_eq!(hex(&selector("approve(address,uint256)")), "0x095ea7b3");
        assert_eq!(hex(&selector("balanceOf(address)")), "0x70a08231");
    }

    #[test]
    fn encodes_static_and_dynamic_values() {
        let enc = encode(&[Value::Str("USD Coin".into()), Value::Uint(6), Value::Int(-60)]);
        // head: offset 96, 6, -60; tail: length 8, "USD Coin" padded.
        assert_eq!(enc.len(), 5 * 32);
        assert_eq!(word_u128(&enc, 0), Some(96));
        assert_eq!(word_u128(&enc, 1), Some(6));
        assert!(enc[64..96 - 1].iter().all(|&b| b == 0xff) && enc[95] == 0xc4);
        assert_eq!(word_u128(&enc, 3), Some(8));
        assert_eq!(&enc[128..136], b"USD Coin");
        // address[] and bytes: offsets in the head, length-prefixed tails in order.
        let a = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
        let enc = encode(&[Value::Addresses(vec![a.into()]), Value::Uint(1), Value::Bytes(vec![0xab; 33])]);
        assert_eq!((word_u128(&enc, 0), word_u128(&enc, 1), word_u128(&enc, 2)), (Some(96), Some(1), Some(160)));
        assert_eq!((word_u128(&enc, 3), word_address(&enc, 4).as_deref()), (Some(1), Some(a)));
        assert_eq!(word_u128(&enc, 5), Some(33));
        assert_eq!(enc.len(), 32 * 8);
        let addr = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
        assert_eq!(word_address(&encode(&[Value::Address(addr.into())]), 0).as_deref(), Some(addr));
    }
}
