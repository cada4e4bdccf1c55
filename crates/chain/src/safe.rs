//! Safe 1.4.1 transactions: the EIP-712 hash an owner signs, and the `execTransaction` call that carries the
//! signature. Gas refunds are never used (safeTxGas, baseGas and gasPrice are 0), so the sender pays its own gas
//! and a failing inner call makes the whole transaction revert (GS013) instead of burning a nonce silently.

use crate::bindings::ISafe;
use crate::calls::Call;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol;
use alloy::sol_types::{SolCall, SolStruct, eip712_domain};

sol! {
    /// The struct a Safe owner signs (EIP-712 type `SafeTx`).
    #[derive(Debug)]
    struct SafeTx {
        address to;
        uint256 value;
        bytes data;
        uint8 operation;
        uint256 safeTxGas;
        uint256 baseGas;
        uint256 gasPrice;
        address gasToken;
        address refundReceiver;
        uint256 nonce;
    }
}

/// A plain call (operation 0) from the Safe, at a given Safe nonce, without gas refunds.
pub fn safe_tx(call: &Call, nonce: u64) -> SafeTx {
    SafeTx {
        to: call.to,
        value: call.value,
        data: call.data.clone(),
        operation: 0,
        safeTxGas: U256::ZERO,
        baseGas: U256::ZERO,
        gasPrice: U256::ZERO,
        gasToken: Address::ZERO,
        refundReceiver: Address::ZERO,
        nonce: U256::from(nonce),
    }
}

/// The hash the owners of `safe` on `chain_id` sign for `tx` (what `Safe.getTransactionHash` returns).
pub fn safe_tx_hash(tx: &SafeTx, chain_id: u64, safe: Address) -> B256 {
    let domain = eip712_domain! { chain_id: chain_id, verifying_contract: safe, };
    tx.eip712_signing_hash(&domain)
}

/// Calldata of `execTransaction` for `tx` with owner signatures (`r || s || v` each, sorted by owner address).
pub fn exec_transaction_calldata(tx: &SafeTx, signatures: &[u8]) -> Bytes {
    ISafe::execTransactionCall {
        to: tx.to,
        value: tx.value,
        data: tx.data.clone(),
        operation: tx.operation,
        safeTxGas: tx.safeTxGas,
        baseGas: tx.baseGas,
        gasPrice: tx.gasPrice,
        gasToken: tx.gasToken,
        refundReceiver: tx.refundReceiver,
        signatures: Bytes::copy_from_slice(signatures),
    }
    .abi_encode()
    .into()
}

/// Calldata of `getTransactionHash` for `tx`, to check [`safe_tx_hash`] against the Safe itself.
pub fn get_transaction_hash_calldata(tx: &SafeTx) -> Bytes {
    ISafe::getTransactionHashCall {
        to: tx.to,
        value: tx.value,
        data: tx.data.clone(),
        operation: tx.operation,
        safeTxGas: tx.safeTxGas,
        baseGas: tx.baseGas,
        gasPrice: tx.gasPrice,
        gasToken: tx.gasToken,
        refundReceiver: tx.refundReceiver,
        _nonce: tx.nonce,
    }
    .abi_encode()
    .into()
}
