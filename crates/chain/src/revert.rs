//! Revert decoding: `Error(string)` (with the meaning of Safe's `GSxxx` and Uniswap's short codes), `Panic(uint256)`
//! codes, and the custom errors of the ABIs Sextant calls.

use crate::bindings::{IERC20, IERC4626, ISextantRoles, ISextantVault};
use alloy::sol_types::{SolInterface, SolValue};

const ERROR_STRING: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
const PANIC: [u8; 4] = [0x4e, 0x48, 0x7b, 0x71];

/// A readable description of revert data.
pub fn decode_revert(data: &[u8]) -> String {
    if data.is_empty() {
        return "reverted without a reason".into();
    }
    if data.len() >= 4 && data[..4] == ERROR_STRING {
        return match String::abi_decode(&data[4..]) {
            Ok(reason) => match explain_reason(&reason) {
                Some(meaning) => format!("reverted: {reason:?} ({meaning})"),
                None => format!("reverted: {reason:?}"),
            },
            Err(_) => format!("reverted with malformed Error(string) data 0x{}", hex(data)),
        };
    }
    if data.len() >= 4 && data[..4] == PANIC {
        return match alloy::primitives::U256::abi_decode(&data[4..]) {
            Ok(code) => {
                let code = code.saturating_to::<u64>();
                format!("panicked with code 0x{code:02x} ({})", panic_meaning(code))
            }
            Err(_) => format!("panicked with malformed data 0x{}", hex(data)),
        };
    }
    if let Ok(e) = IERC20::IERC20Errors::abi_decode(data) {
        return format!("reverted with {e:?}");
    }
    if let Ok(e) = IERC4626::IERC4626Errors::abi_decode(data) {
        return format!("reverted with {e:?}");
    }
    if let Ok(e) = ISextantRoles::ISextantRolesErrors::abi_decode(data) {
        return describe_module_error(&e);
    }
    if let Ok(e) = ISextantVault::ISextantVaultErrors::abi_decode(data) {
        use ISextantVault::ISextantVaultErrors as V;
        return match e {
            V::Unauthorized(_) => "refused by the vault: this account may not do that".into(),
            V::ZeroAmount(_) => "refused by the vault: the amount is zero".into(),
            V::IsPaused(_) => "refused by the vault: deposit requests are paused".into(),
            V::IsFrozen(_) => "refused by the vault: settlement is frozen by the guardian".into(),
            V::CapExceeded(c) => format!("refused by the vault: {} would exceed the deposit cap {}", c.wanted, c.cap),
            V::ExceedsClaimable(c) => {
                format!("refused by the vault: asked {}, only {} is claimable", c.asked, c.claimable)
            }
            V::AsyncVault(_) => "refused by the vault: an asynchronous vault has no synchronous preview".into(),
            V::FeeTooHigh(_) => "refused by the vault: fee above the maximum".into(),
            V::SafeCannotPay(c) => format!(
                "refused by the vault: the Safe can pay {} (balance or allowance), the redemptions need {}",
                c.available, c.needed
            ),
            V::InvalidAddress(_) => "refused by the vault: a zero address, or the vault itself as receiver".into(),
            V::NotAllReceived(n) => format!(
                "refused by the vault: {} arrived of the {} requested (fee-on-transfer tokens are not supported)",
                n.received, n.assets
            ),
        };
    }
    if data.len() >= 4 {
        return format!("reverted with unknown custom error 0x{} ({} bytes of data)", hex(&data[..4]), data.len());
    }
    format!("reverted with 0x{}", hex(data))
}

/// The permissions module's refusals in words (status names are Zodiac Roles v2's, plus Sextant's two).
fn describe_module_error(e: &ISextantRoles::ISextantRolesErrors) -> String {
    use ISextantRoles::ISextantRolesErrors as E;
    match e {
        E::ConditionViolation(v) => {
            let status = MODULE_STATUS.get(v.status as usize).copied().unwrap_or("unknown status");
            let info = alloy::primitives::U256::from_be_bytes(v.info.0);
            let info = if info < alloy::primitives::U256::from(256) {
                format!("condition {info}")
            } else {
                format!("{}", v.info)
            };
            format!("refused by the permissions module: {status} ({info})")
        }
        E::NotAuthorized(n) => {
            format!("refused by the permissions module: {} is not a member of role {}", n.caller, n.roleKey)
        }
        E::ModuleTransactionFailed(f) => {
            format!("the Safe's call through the permissions module failed: {}", decode_revert(&f.returnData))
        }
        other => format!("reverted with {other:?}"),
    }
}

/// `SextantRoles.Status`, by value.
pub const MODULE_STATUS: [&str; 22] = [
    "Ok",
    "DelegateCallNotAllowed",
    "TargetAddressNotAllowed",
    "FunctionNotAllowed",
    "SendNotAllowed",
    "OrViolation",
    "NorViolation",
    "ParameterNotAllowed",
    "ParameterLessThanAllowed",
    "ParameterGreaterThanAllowed",
    "ParameterNotAMatch",
    "NotEveryArrayElementPasses",
    "NoArrayElementPasses",
    "ParameterNotSubsetOfAllowed",
    "BitmaskOverflow",
    "BitmaskNotAllowed",
    "CustomConditionViolation",
    "AllowanceExceeded",
    "CallAllowanceExceeded",
    "EtherAllowanceExceeded",
    "CalldataOutOfBounds",
    "FunctionSignatureTooShort",
];

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// The meaning of a Solidity panic code.
pub fn panic_meaning(code: u64) -> &'static str {
    match code {
        0x00 => "generic compiler panic",
        0x01 => "assertion failed",
        0x11 => "arithmetic overflow or underflow",
        0x12 => "division or modulo by zero",
        0x21 => "invalid enum value",
        0x22 => "corrupt storage byte array",
        0x31 => "pop on an empty array",
        0x32 => "array index out of bounds",
        0x41 => "out of memory",
        0x51 => "call to an uninitialised function",
        _ => "unknown panic code",
    }
}

/// What the terse revert strings of Safe 1.4.1 and Uniswap v3 mean.
pub fn explain_reason(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "GS000" => "Safe: could not finish initialization",
        "GS001" => "Safe: threshold needs to be defined",
        "GS010" => "Safe: not enough gas to execute the Safe transaction",
        "GS011" => "Safe: could not pay gas costs with ether",
        "GS012" => "Safe: could not pay gas costs with token",
        "GS013" => "Safe: the inner call failed (safeTxGas and gasPrice were 0)",
        "GS020" => "Safe: signatures data too short",
        "GS021" => "Safe: invalid contract signature location (inside static part)",
        "GS022" => "Safe: invalid contract signature location (length not present)",
        "GS023" => "Safe: invalid contract signature location (data not complete)",
        "GS024" => "Safe: invalid contract signature",
        "GS025" => "Safe: hash has not been approved",
        "GS026" => "Safe: the signer is not an owner of this Safe (or signatures are out of order)",
        "GS030" => "Safe: only owners can approve a hash",
        "GS031" => "Safe: method can only be called from the Safe itself",
        "GS100" => "Safe: modules have already been initialized",
        "GS101" => "Safe: invalid module address",
        "GS102" => "Safe: module has already been added",
        "GS103" => "Safe: invalid prevModule, module pair",
        "GS104" => "Safe: method can only be called from an enabled module",
        "GS200" => "Safe: owners have already been set up",
        "GS201" => "Safe: threshold cannot exceed owner count",
        "GS202" => "Safe: threshold needs to be greater than 0",
        "GS203" => "Safe: invalid owner address",
        "GS204" => "Safe: address is already an owner",
        "GS205" => "Safe: invalid prevOwner, owner pair",
        "STF" => "Uniswap: token transferFrom failed (allowance or balance too small)",
        "TF" => "Uniswap: token transfer failed",
        "SPL" => "Uniswap: sqrt price limit out of range",
        "AS" => "Uniswap: amount specified is zero",
        "LOK" => "Uniswap: pool is locked (re-entrancy)",
        "IIA" => "Uniswap: insufficient input amount",
        "Too little received" => "Uniswap: output below the minimum (slippage cap)",
        "Too much requested" => "Uniswap: input above the maximum (slippage cap)",
        "Transaction too old" => "Uniswap: deadline passed",
        "Price slippage check" => "Uniswap: minted amounts below the minimum",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, U256};
    use alloy::sol_types::SolError;

    fn error_string(reason: &str) -> Vec<u8> {
        let mut v = ERROR_STRING.to_vec();
        v.extend(reason.to_string().abi_encode());
        v
    }

    #[test]
    fn decodes_strings_panics_and_custom_errors() {
        assert_eq!(decode_revert(&[]), "reverted without a reason");
        let gs = decode_revert(&error_string("GS026"));
        assert!(gs.contains("GS026") && gs.contains("not an owner"), "{gs}");
        assert_eq!(decode_revert(&error_string("nope")), "reverted: \"nope\"");
        let mut panic = PANIC.to_vec();
        panic.extend(U256::from(0x11).abi_encode());
        assert_eq!(decode_revert(&panic), "panicked with code 0x11 (arithmetic overflow or underflow)");
        let custom = IERC20::ERC20InsufficientBalance {
            sender: Address::repeat_byte(0xaa),
            balance: U256::from(5),
            needed: U256::from(7),
        }
        .abi_encode();
        let text = decode_revert(&custom);
        assert!(text.contains("ERC20InsufficientBalance") && text.contains("needed: 7"), "{text}");
        let text = decode_revert(&[0xde, 0xad, 0xbe, 0xef, 0, 1]);
        assert!(text.contains("0xdeadbeef"), "{text}");
        // Truncated Error(string) data is reported, not mis-read.
        assert!(decode_revert(&ERROR_STRING).contains("malformed"));
    }
}
