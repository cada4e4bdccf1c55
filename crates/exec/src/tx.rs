//! The TransactionManager: turns one call the Safe should make into a signed transaction. It simulates the call
//! from the Safe (so a revert is reported with the target's own reason), then either has the owner key sign the
//! Safe transaction and wraps it in `execTransaction`, or (through the permissions module) checks the call against
//! the deployment's policy with the off-chain checker and wraps it in the module's `execTransactionWithRole`. It
//! simulates the outer transaction, estimates gas with a margin, prices EIP-1559 fees and signs.

use crate::{Error, Result, Signer};
use sextant_chain::Call;
use sextant_chain::alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use sextant_chain::alloy::eips::eip2718::{Decodable2718, Encodable2718};
use sextant_chain::alloy::primitives::{Address, B256, Bytes, Signature, TxKind, U256};
use sextant_chain::alloy::rpc::types::TransactionRequest;
use sextant_chain::alloy::sol_types::{SolCall, SolEvent};
use sextant_chain::bindings::{ISafe, ISextantRoles};
use sextant_chain::{Rpc, RpcFailure, safe};
use sextant_policy::{Checker, Policy};

/// How transactions are priced and sized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxSettings {
    /// Gas limit = estimate * (100 + margin) / 100.
    pub gas_margin_pct: u64,
    /// Never pay more than this per gas (wei); None: no cap.
    pub max_fee_wei: Option<u128>,
    /// Priority fee (wei); None: the node's suggestion.
    pub priority_fee_wei: Option<u128>,
    /// A replacement raises both fees by this much (nodes require at least 10 %).
    pub fee_bump_pct: u64,
}

impl Default for TxSettings {
    fn default() -> Self {
        TxSettings { gas_margin_pct: 25, max_fee_wei: None, priority_fee_wei: None, fee_bump_pct: 15 }
    }
}

/// A signed transaction ready to journal and broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    /// Account nonce.
    pub nonce: u64,
    /// Safe nonce inside.
    pub safe_nonce: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// Max fee per gas.
    pub max_fee: u128,
    /// Priority fee per gas.
    pub priority_fee: u128,
    /// EIP-2718 bytes.
    pub raw: Vec<u8>,
    /// Hash.
    pub hash: B256,
}

/// What `check_safe` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeInfo {
    /// `VERSION()`.
    pub version: String,
    /// Owners.
    pub owners: Vec<Address>,
    /// Threshold.
    pub threshold: u64,
    /// Next Safe nonce.
    pub nonce: u64,
}

/// How the key makes the Safe act.
#[derive(Debug, Clone)]
pub enum Route {
    /// The key is a Safe owner (threshold 1) and signs Safe transactions.
    Owner,
    /// The key is a member of a role of Sextant's permissions module; every call is checked against `policy`
    /// off-chain before signing, and on chain by the module.
    Module {
        /// The module.
        module: Address,
        /// The role's policy (its key and allowances are read from it).
        policy: Box<Policy>,
    },
}

/// Builds, simulates and signs transactions that make one Safe act, for one key.
pub struct TransactionManager<'a> {
    rpc: &'a Rpc,
    signer: &'a dyn Signer,
    chain_id: u64,
    safe: Address,
    sender: Address,
    settings: TxSettings,
    route: Route,
}

impl std::fmt::Debug for TransactionManager<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionManager")
            .field("chain_id", &self.chain_id)
            .field("safe", &self.safe)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// Reads a view function.
///
/// # Errors
/// RPC failures and undecodable replies.
pub fn view<C: SolCall>(rpc: &Rpc, to: Address, call: &C) -> Result<C::Return> {
    let req = TransactionRequest::default().to(to).input(Bytes::from(call.abi_encode()).into());
    let out = rpc.call(&req)?;
    C::abi_decode_returns(&out).map_err(|e| Error::Chain(format!("cannot decode {} from {to}: {e}", C::SIGNATURE)))
}

impl<'a> TransactionManager<'a> {
    /// A manager for `safe` on `chain_id`, signing with `signer` (an owner of the Safe, also the sender).
    ///
    /// # Errors
    /// When the signer's address is malformed.
    pub fn new(
        rpc: &'a Rpc,
        signer: &'a dyn Signer,
        chain_id: u64,
        safe: Address,
        settings: TxSettings,
    ) -> Result<Self> {
        let sender: Address = signer
            .address()
            .parse()
            .map_err(|e| Error::Invalid(format!("signer address {}: {e}", signer.address())))?;
        Ok(TransactionManager { rpc, signer, chain_id, safe, sender, settings, route: Route::Owner })
    }

    /// The same manager routing through the permissions module `module` under `policy`'s role.
    pub fn with_module(mut self, module: Address, policy: Policy) -> Self {
        self.route = Route::Module { module, policy: Box::new(policy) };
        self
    }

    /// How calls reach the Safe.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// The contract the key's transactions go to: the Safe, or the module.
    fn outer_to(&self) -> Address {
        match &self.route {
            Route::Owner => self.safe,
            Route::Module { module, .. } => *module,
        }
    }

    /// Whether a receipt shows the Safe executed the call (`ExecutionSuccess`, or `ExecutionFromModuleSuccess` for
    /// the module).
    ///
    /// The receipt says which: a transaction sent to the Safe settles on `ExecutionSuccess`, one sent to a module on
    /// that module's `ExecutionFromModuleSuccess`, whatever the route is now (a deployment may have switched routes
    /// with a transaction in flight).
    pub fn executed_ok(&self, r: &sextant_chain::alloy::rpc::types::TransactionReceipt) -> bool {
        let logs = r.inner.logs();
        let from_safe = |topic: B256, module: Option<Address>| {
            logs.iter().any(|l| {
                let t = l.topics();
                l.address() == self.safe
                    && t.first() == Some(&topic)
                    && module.is_none_or(|m| t.get(1) == Some(&B256::left_padding_from(m.as_slice())))
            })
        };
        let ok = match r.to {
            Some(to) if to == self.safe => from_safe(ISafe::ExecutionSuccess::SIGNATURE_HASH, None),
            Some(module) => from_safe(ISafe::ExecutionFromModuleSuccess::SIGNATURE_HASH, Some(module)),
            None => false,
        };
        r.status() && ok
    }

    /// The sending account.
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The chain id transactions are signed for.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The Safe.
    pub fn safe(&self) -> Address {
        self.safe
    }

    /// The RPC endpoint.
    pub fn rpc(&self) -> &Rpc {
        self.rpc
    }

    /// The settings.
    pub fn settings(&self) -> &TxSettings {
        &self.settings
    }

    /// Checks the Safe exists, is a Safe, and that the key is an owner of it with threshold 1.
    ///
    /// # Errors
    /// A clear error for each: no contract at the address, not a Safe, not an owner, threshold above 1.
    pub fn check_safe(&self) -> Result<SafeInfo> {
        let code = self.rpc.request("eth_getCode", serde_json::json!([self.safe.to_string(), "latest"]))?;
        // An empty reply means no contract; a transient failure above was returned as such.
        if code.as_str().is_none_or(|c| c == "0x" || c.is_empty()) {
            return Err(Error::Safe(format!(
                "no contract at {} on chain {}: is the Safe address right, and deployed on this chain?",
                self.safe, self.chain_id
            )));
        }
        let not_safe = |e: Error| {
            if crate::is_transient(&e) {
                e
            } else {
                Error::Safe(format!("{} does not answer like a Safe: {e}", self.safe))
            }
        };
        let version = view(self.rpc, self.safe, &ISafe::VERSIONCall {}).map_err(not_safe)?;
        let owners = view(self.rpc, self.safe, &ISafe::getOwnersCall {}).map_err(not_safe)?;
        let threshold =
            view(self.rpc, self.safe, &ISafe::getThresholdCall {}).map_err(not_safe)?.saturating_to::<u64>();
        let nonce = view(self.rpc, self.safe, &ISafe::nonceCall {}).map_err(not_safe)?.saturating_to::<u64>();
        if let Route::Module { module, policy } = &self.route {
            self.check_module(*module, policy)?;
            return Ok(SafeInfo { version, owners, threshold, nonce });
        }
        if !owners.contains(&self.sender) {
            return Err(Error::Safe(format!(
                "key {} is not an owner of Safe {} (owners: {})",
                self.sender,
                self.safe,
                owners.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
        if threshold != 1 {
            return Err(Error::Safe(format!(
                "Safe {} needs {threshold} signatures; a deployment key signs alone, so the threshold must be 1 \
                 (or route through the permissions module)",
                self.safe
            )));
        }
        Ok(SafeInfo { version, owners, threshold, nonce })
    }

    /// The module is Sextant's, serves this Safe, is enabled on it, and the key is a member of the role.
    fn check_module(&self, module: Address, policy: &Policy) -> Result<()> {
        let code = self.rpc.request("eth_getCode", serde_json::json!([module.to_string(), "latest"]))?;
        if code.as_str().is_none_or(|c| c == "0x" || c.is_empty()) {
            return Err(Error::Safe(format!(
                "no permissions module at {module} (run `sextant permissions apply` first)"
            )));
        }
        let avatar = view(self.rpc, module, &ISextantRoles::avatarCall {})
            .map_err(|e| Error::Safe(format!("{module} does not answer like Sextant's permissions module: {e}")))?;
        if avatar != self.safe {
            return Err(Error::Safe(format!("permissions module {module} serves Safe {avatar}, not {}", self.safe)));
        }
        if !view(self.rpc, self.safe, &ISafe::isModuleEnabledCall { module })? {
            return Err(Error::Safe(format!("permissions module {module} is not enabled on Safe {}", self.safe)));
        }
        let member =
            view(self.rpc, module, &ISextantRoles::isMemberCall { roleKey: policy.role_key, member: self.sender })?;
        if !member {
            return Err(Error::Safe(format!(
                "key {} is not a member of role {:?} on permissions module {module} (was it revoked?)",
                self.sender, policy.role
            )));
        }
        Ok(())
    }

    /// The off-chain checker's verdict on `call`, with the module's allowances as they stand now.
    ///
    /// # Errors
    /// [`Error::Policy`] when the module would refuse it; RPC failures reading the allowances.
    pub fn check_policy(&self, call: &Call) -> Result<()> {
        let Route::Module { module, policy } = &self.route else { return Ok(()) };
        let mut checker = Checker::new(policy, 0).map_err(|e| Error::Policy(e.to_string()))?;
        for a in &policy.allowances {
            let s = view(self.rpc, *module, &ISextantRoles::allowancesCall { key: a.key })?;
            checker.sync_allowance(a.key, s.refill, s.maxRefill, s.period, s.balance, s.timestamp);
        }
        if let Some(k) = policy.ether_allowance {
            let s = view(self.rpc, *module, &ISextantRoles::allowancesCall { key: k })?;
            checker.sync_allowance(k, s.refill, s.maxRefill, s.period, s.balance, s.timestamp);
        }
        let now = match self.rpc.block(self.rpc.block_number()?)? {
            Some((_, timestamp)) => timestamp,
            None => return Err(Error::Chain("the latest block vanished".into())),
        };
        let v = checker.check(call.to, call.value, &call.data, 0, now);
        if v.allowed() {
            return Ok(());
        }
        Err(Error::Policy(format!(
            "{} is outside role {:?}'s policy ({:?}, {}): not signed; the permissions module would refuse it",
            call.label, policy.role, v.status, v.info
        )))
    }

    /// Simulates `call` made by the Safe itself (eth_call from the Safe's address), returning its output.
    ///
    /// # Errors
    /// [`Error::Rpc`] of kind `Reverted` with the target's decoded reason when it would revert.
    pub fn simulate(&self, call: &Call) -> Result<Bytes> {
        let req =
            TransactionRequest::default().from(self.safe).to(call.to).value(call.value).input(call.data.clone().into());
        self.rpc.call(&req).map_err(|e| with_context(e, &call.label))
    }

    /// The current Safe nonce.
    ///
    /// # Errors
    /// RPC failures.
    pub fn safe_nonce(&self) -> Result<u64> {
        Ok(view(self.rpc, self.safe, &ISafe::nonceCall {})?.saturating_to::<u64>())
    }

    /// Current fees: (max fee, priority fee) per gas.
    ///
    /// # Errors
    /// RPC failures, or a cap below what the next block needs (transient: fees may fall).
    pub fn fees(&self) -> Result<(u128, u128)> {
        let quote = self.rpc.fees()?;
        let priority = self.settings.priority_fee_wei.unwrap_or(quote.priority_fee);
        let mut max_fee = quote.base_fee.saturating_mul(2).saturating_add(priority);
        if let Some(cap) = self.settings.max_fee_wei {
            if cap < quote.base_fee.saturating_add(priority) {
                return Err(Error::FeeCap { cap, base_fee: quote.base_fee, priority });
            }
            max_fee = max_fee.min(cap);
        }
        Ok((max_fee, priority))
    }

    /// Builds the signed `execTransaction` for `call` at account nonce `nonce`: simulates the call from the Safe,
    /// signs the Safe transaction, simulates and estimates the outer transaction, prices fees and signs it.
    ///
    /// # Errors
    /// A revert in either simulation (decoded), RPC failures, a signer failure.
    pub fn build(&self, call: &Call, nonce: u64) -> Result<SignedTx> {
        // Outside the policy is the first thing to know: nothing else about such a call matters.
        self.check_policy(call)?;
        self.simulate(call)?;
        if let Route::Module { module, policy } = &self.route {
            let input: Bytes = ISextantRoles::execTransactionWithRoleCall {
                to: call.to,
                value: call.value,
                data: call.data.clone(),
                operation: 0,
                roleKey: policy.role_key,
                shouldRevert: true,
            }
            .abi_encode()
            .into();
            let req = TransactionRequest::default().from(self.sender).to(*module).input(input.clone().into());
            self.rpc.call(&req).map_err(|e| with_context(e, &format!("execTransactionWithRole of {}", call.label)))?;
            let estimate = self.rpc.estimate_gas(&req).map_err(|e| with_context(e, &call.label))?;
            let gas_limit = estimate.saturating_mul(100 + self.settings.gas_margin_pct) / 100;
            let (max_fee, priority_fee) = self.fees()?;
            return self.sign(nonce, 0, gas_limit, max_fee, priority_fee, input);
        }
        let safe_nonce = self.safe_nonce()?;
        let stx = safe::safe_tx(call, safe_nonce);
        let hash = safe::safe_tx_hash(&stx, self.chain_id, self.safe);
        let signature = self.signer.sign_hash(&hash.0)?;
        let input = safe::exec_transaction_calldata(&stx, &signature);
        let req = TransactionRequest::default().from(self.sender).to(self.safe).input(input.clone().into());
        self.rpc.call(&req).map_err(|e| with_context(e, &format!("execTransaction of {}", call.label)))?;
        let estimate = self.rpc.estimate_gas(&req).map_err(|e| with_context(e, &call.label))?;
        let gas_limit = estimate.saturating_mul(100 + self.settings.gas_margin_pct) / 100;
        let (max_fee, priority_fee) = self.fees()?;
        self.sign(nonce, safe_nonce, gas_limit, max_fee, priority_fee, input)
    }

    /// The same transaction (same nonce, same Safe transaction) with both fees raised by `fee_bump_pct`, for
    /// replacing a stuck one. Capped by `max_fee_wei`.
    ///
    /// # Errors
    /// When the raw transaction cannot be decoded, the cap leaves no room to bump, or signing fails.
    pub fn bump(&self, raw: &[u8], safe_nonce: u64) -> Result<SignedTx> {
        let env = TxEnvelope::decode_2718(&mut &raw[..]).map_err(|e| Error::Chain(format!("journaled tx: {e}")))?;
        let TxEnvelope::Eip1559(signed) = env else {
            return Err(Error::Chain("journaled tx is not EIP-1559".into()));
        };
        let old = signed.tx();
        let bump = |x: u128| x.saturating_mul(100 + u128::from(self.settings.fee_bump_pct)) / 100 + 1;
        let (mut max_fee, priority) = (bump(old.max_fee_per_gas), bump(old.max_priority_fee_per_gas));
        // Follow the market too: a base fee that rose past the bump would leave the replacement stuck as well.
        if let Ok((now_max, _)) = self.fees() {
            max_fee = max_fee.max(now_max);
        }
        if let Some(cap) = self.settings.max_fee_wei {
            if cap <= old.max_fee_per_gas {
                return Err(Error::FeeCap { cap, base_fee: old.max_fee_per_gas, priority });
            }
            max_fee = max_fee.min(cap);
        }
        // The same destination as the original: the route may have changed since it was signed.
        self.sign_to(old.to, old.nonce, safe_nonce, old.gas_limit, (max_fee, priority.min(max_fee)), old.input.clone())
    }

    fn sign(
        &self,
        nonce: u64,
        safe_nonce: u64,
        gas_limit: u64,
        max_fee: u128,
        priority_fee: u128,
        input: Bytes,
    ) -> Result<SignedTx> {
        self.sign_to(TxKind::Call(self.outer_to()), nonce, safe_nonce, gas_limit, (max_fee, priority_fee), input)
    }

    /// An ordinary transaction from the key itself (`to` None: a contract creation), simulated, estimated, priced
    /// and signed: for setting up what the key's Safe transactions use (e.g. deploying the permissions module).
    ///
    /// # Errors
    /// A revert in simulation (decoded), RPC failures, a signer failure.
    pub fn build_direct(&self, to: Option<Address>, data: Bytes, what: &str) -> Result<SignedTx> {
        let nonce = self.rpc.nonce(self.sender, true)?;
        let mut req = TransactionRequest::default().from(self.sender).input(data.clone().into());
        let kind = match to {
            Some(to) => {
                req = req.to(to);
                TxKind::Call(to)
            }
            None => {
                req.to = Some(TxKind::Create);
                TxKind::Create
            }
        };
        self.rpc.call(&req).map_err(|e| with_context(e, what))?;
        let estimate = self.rpc.estimate_gas(&req).map_err(|e| with_context(e, what))?;
        let gas_limit = estimate.saturating_mul(100 + self.settings.gas_margin_pct) / 100;
        let fees = self.fees()?;
        self.sign_to(kind, nonce, 0, gas_limit, fees, data)
    }

    /// Broadcasts a signed transaction and waits (up to `timeout`) for its receipt.
    ///
    /// # Errors
    /// RPC failures, a revert on chain, no receipt in time.
    pub fn submit(
        &self,
        tx: &SignedTx,
        what: &str,
        timeout: std::time::Duration,
    ) -> Result<sextant_chain::alloy::rpc::types::TransactionReceipt> {
        self.rpc.send_raw(&tx.raw, tx.hash)?;
        let start = std::time::Instant::now();
        loop {
            if let Some(r) = self.rpc.receipt(tx.hash)? {
                if !r.status() {
                    return Err(Error::RevertedOnChain(format!("{what} reverted on chain (tx {})", tx.hash)));
                }
                return Ok(r);
            }
            if start.elapsed() > timeout {
                return Err(Error::Chain(format!("{what}: no receipt for {} after {timeout:?}", tx.hash)));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    fn sign_to(
        &self,
        to: TxKind,
        nonce: u64,
        safe_nonce: u64,
        gas_limit: u64,
        (max_fee, priority_fee): (u128, u128),
        input: Bytes,
    ) -> Result<SignedTx> {
        let tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: priority_fee,
            to,
            value: U256::ZERO,
            access_list: Default::default(),
            input,
        };
        let sighash = tx.signature_hash();
        let sig = self.signer.sign_hash(&sighash.0)?;
        let sig = Signature::from_raw(&sig).map_err(|e| Error::Signing(e.to_string()))?;
        let env = TxEnvelope::from(tx.into_signed(sig));
        Ok(SignedTx {
            nonce,
            safe_nonce,
            gas_limit,
            max_fee,
            priority_fee,
            raw: env.encoded_2718(),
            hash: *env.tx_hash(),
        })
    }
}

/// Adds what was being done to a chain error's message.
fn with_context(e: sextant_chain::Error, what: &str) -> Error {
    match e {
        sextant_chain::Error::Rpc { kind: RpcFailure::Reverted, message, .. } => {
            Error::Reverted(format!("{what} would revert: {message}"))
        }
        other => Error::from(other),
    }
}
