//! A blocking JSON-RPC facade over alloy's HTTP provider: the runner is a plain loop, so each call runs on a
//! private current-thread tokio runtime with a timeout, and every failure is classified ([`RpcFailure`]) so the
//! execution layer knows whether a retry can help.

use crate::revert::decode_revert;
use crate::{Error, Result, RpcFailure};
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::transports::{RpcError, TransportErrorKind};
use std::future::Future;
use std::time::Duration;

/// A JSON-RPC endpoint.
pub struct Rpc {
    url: String,
    provider: RootProvider,
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
    retries: u32,
    transient_failures: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc").field("url", &self.url).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// The fee market as the node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeQuote {
    /// The latest block's base fee (wei per gas).
    pub base_fee: u128,
    /// The node's suggested priority fee (wei per gas).
    pub priority_fee: u128,
}

impl Rpc {
    /// An endpoint at `url` (http:// or https://); each request times out after `timeout`. No request is made yet.
    ///
    /// # Errors
    /// When the URL is malformed.
    pub fn new(url: &str, timeout: Duration) -> Result<Self> {
        let parsed: alloy::transports::http::reqwest::Url = url.parse().map_err(|e| Error::Rpc {
            url: url.to_string(),
            method: "connect".into(),
            kind: RpcFailure::Rejected,
            message: format!("not a URL: {e}"),
            revert_data: None,
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Error::Rpc {
            url: url.to_string(),
            method: "connect".into(),
            kind: RpcFailure::Transient,
            message: format!("cannot start the I/O runtime: {e}"),
            revert_data: None,
        })?;
        let provider = {
            let _guard = runtime.enter();
            RootProvider::new_http(parsed)
        };
        Ok(Rpc { url: url.to_string(), provider, runtime, timeout, retries: 2, transient_failures: Default::default() })
    }

    /// Retries each request this many times (100 ms, then doubling) when it fails transiently; 2 by default. Every
    /// method here is safe to repeat: reads, and broadcasts of an already signed transaction.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// How many requests have failed transiently so far (retried or not): a health signal for logs and metrics.
    pub fn transient_failures(&self) -> u64 {
        self.transient_failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn run<T, E, F>(&self, method: &str, make: impl Fn() -> F) -> Result<T>
    where
        F: Future<Output = std::result::Result<T, E>>,
        E: Into<RpcError<TransportErrorKind>>,
    {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            let outcome = self.runtime.block_on(async { tokio::time::timeout(self.timeout, make()).await });
            let err = match outcome {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => classify(&self.url, method, e.into()),
                Err(_) => Error::Rpc {
                    url: self.url.clone(),
                    method: method.to_string(),
                    kind: RpcFailure::Transient,
                    message: format!("no answer within {:?}", self.timeout),
                    revert_data: None,
                },
            };
            if err.rpc_failure() != Some(RpcFailure::Transient) {
                return Err(err);
            }
            self.transient_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if attempt >= self.retries {
                return Err(err);
            }
            attempt += 1;
            std::thread::sleep(delay);
            delay *= 2;
        }
    }

    /// `eth_chainId`.
    ///
    /// # Errors
    /// Classified RPC failures.
    pub fn chain_id(&self) -> Result<u64> {
        self.run("eth_chainId", || self.provider.get_chain_id())
    }

    /// `eth_blockNumber`.
    ///
    /// # Errors
    /// Classified RPC failures.
    pub fn block_number(&self) -> Result<u64> {
        self.run("eth_blockNumber", || self.provider.get_block_number())
    }

    /// The hash and timestamp of block `number`, or None when the node has no such block.
    ///
    /// # Errors
    /// Classified RPC failures.
    pub fn block(&self, number: u64) -> Result<Option<(B256, u64)>> {
        let block = self.run("eth_getBlockByNumber", || {
            self.provider.get_block_by_number(BlockNumberOrTag::Number(number)).into_future()
        })?;
        Ok(block.map(|b| (b.header.hash, b.header.timestamp)))
    }

    /// Native balance at the latest block.
    ///
    /// # Errors
    /// Classified RPC failures.
    pub fn balance(&self, who: Address) -> Result<U256> {
        self.run("eth_getBalance", || self.provider.get_balance(who).into_future())
    }

    /// Transaction count of `who`: mined only (`latest`) or including the node's pool (`pending`).
    ///
    /// # Errors
    /// Classified RPC failures.
    pub fn nonce(&self, who: Address, pending: bool) -> Result<u64> {
        let id = if pending { BlockId::pending() } else { BlockId::latest() };
        self.run("eth_getTransactionCount", || self.provider.get_transaction_count(who).block_id(id).into_future())
    }

    /// `eth_call` at the latest block; a revert is an error of kind [`RpcFailure::Reverted`] with the reason decoded.
    ///
    /// # Errors
    /// Classified RPC failures.
    pub fn call(&self, tx: &TransactionRequest) -> Result<Bytes> {
        self.run("eth_call", || self.provider.call(tx.clone()).into_future())
    }

    /// `eth_call` at block `number` (a consistent snapshot for several reads).
    ///
    /// # Errors
    /// As [`Rpc::call`].
    pub fn call_at(&self, tx: &TransactionRequest, number: u64) -> Result<Bytes> {
        self.run("eth_call", || self.provider.call(tx.clone()).block(BlockId::number(number)).into_future())
    }

    /// `eth_estimateGas`.
    ///
    /// # Errors
    /// Classified RPC failures; a transaction that would revert is [`RpcFailure::Reverted`].
    pub fn estimate_gas(&self, tx: &TransactionRequest) -> Result<u64> {
        self.run("eth_estimateGas", || self.provider.estimate_gas(tx.clone()).into_future())
    }

    /// The latest base fee and the node's suggested priority fee.
    ///
    /// # Errors
    /// Classified RPC failures.
    pub fn fees(&self) -> Result<FeeQuote> {
        let latest = self.run("eth_getBlockByNumber", || {
            self.provider.get_block_by_number(BlockNumberOrTag::Latest).into_future()
        })?;
        let base_fee = latest.and_then(|b| b.header.base_fee_per_gas).map_or(0, u128::from);
        let priority_fee = self.run("eth_maxPriorityFeePerGas", || self.provider.get_max_priority_fee_per_gas())?;
        Ok(FeeQuote { base_fee, priority_fee })
    }

    /// Broadcasts a signed, EIP-2718-encoded transaction and returns its hash.
    ///
    /// # Errors
    /// Classified RPC failures ("already known" is not an error: the hash is returned).
    pub fn send_raw(&self, raw: &[u8], hash: B256) -> Result<B256> {
        match self.run("eth_sendRawTransaction", || self.provider.send_raw_transaction(raw)) {
            Ok(pending) => Ok(*pending.tx_hash()),
            Err(Error::Rpc { message, .. })
                if message.contains("already known") || message.contains("already imported") =>
            {
                Ok(hash)
            }
            Err(e) => Err(e),
        }
    }

    /// The receipt of a mined transaction, or None.
    ///
    /// # Errors
    /// Classified RPC failures.
    pub fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>> {
        self.run("eth_getTransactionReceipt", || self.provider.get_transaction_receipt(hash))
    }

    /// Whether the node knows the transaction (pending or mined).
    ///
    /// # Errors
    /// Classified RPC failures.
    pub fn knows_transaction(&self, hash: B256) -> Result<bool> {
        Ok(self.run("eth_getTransactionByHash", || self.provider.get_transaction_by_hash(hash))?.is_some())
    }

    /// Logs of `address` whose first topics are `topics`, in blocks `from..=to`.
    ///
    /// # Errors
    /// Classified RPC failures (some nodes cap the range; callers keep it short).
    pub fn logs(&self, address: Address, topics: &[B256], from: u64, to: u64) -> Result<Vec<alloy::rpc::types::Log>> {
        let mut filter = alloy::rpc::types::Filter::new().address(address).from_block(from).to_block(to);
        if let Some(t) = topics.first() {
            filter = filter.event_signature(*t);
        }
        if let Some(t) = topics.get(1) {
            filter = filter.topic1(*t);
        }
        self.run("eth_getLogs", || self.provider.get_logs(&filter))
    }

    /// Any other method, with JSON parameters and result (devnet controls such as `evm_mine`).
    ///
    /// # Errors
    /// Classified RPC failures.
    pub fn request(&self, method: &str, params: serde_json::Value) -> Result<serde_json::Value> {
        self.run(method, || {
            self.provider.raw_request::<_, serde_json::Value>(method.to_string().into(), params.clone())
        })
    }
}

/// Sorts an alloy transport error into transient, rejected and reverted, decoding revert data.
fn classify(url: &str, method: &str, e: RpcError<TransportErrorKind>) -> Error {
    let (kind, message, revert_data) = match &e {
        RpcError::ErrorResp(payload) => {
            let msg = payload.message.to_string();
            let lower = msg.to_ascii_lowercase();
            if let Some(data) = payload.as_revert_data() {
                (RpcFailure::Reverted, decode_revert(&data), Some(data))
            } else if lower.contains("revert") {
                (RpcFailure::Reverted, msg, None)
            } else if payload.code == 429
                || payload.code == -32005
                || [
                    "rate limit",
                    "timeout",
                    "timed out",
                    "temporarily",
                    "busy",
                    "header not found",
                    "unknown block",
                    "indexing",
                    "missing trie node",
                    "try again",
                    "not available",
                ]
                .iter()
                .any(|m| lower.contains(m))
            {
                (RpcFailure::Transient, msg, None)
            } else {
                (RpcFailure::Rejected, format!("{msg} (code {})", payload.code), None)
            }
        }
        RpcError::Transport(kind) => {
            let transient = match kind {
                TransportErrorKind::HttpError(h) => h.status >= 500 || h.status == 429 || h.status == 408,
                _ => true,
            };
            (if transient { RpcFailure::Transient } else { RpcFailure::Rejected }, e.to_string(), None)
        }
        // A cut or garbled reply, or a null where a value was due: the node or the path to it misbehaved.
        RpcError::DeserError { .. } | RpcError::NullResp => (RpcFailure::Transient, e.to_string(), None),
        _ => (RpcFailure::Rejected, e.to_string(), None),
    };
    Error::Rpc { url: url.to_string(), method: method.to_string(), kind, message, revert_data }
}
