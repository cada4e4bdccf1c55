//! `sextant vault`: deploy a strategy vault and use it as an investor, the curator or its owner.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sextant_chain::alloy::primitives::{Address, Bytes, U256};
use sextant_chain::alloy::sol_types::{SolCall, SolValue};
use sextant_chain::bindings::{IERC20, ISextantVault as V};
use sextant_chain::{Rpc, parse_address};
use sextant_exec::{LocalKey, TransactionManager, TxSettings, view};
use std::path::PathBuf;
use std::time::Duration;

/// The vault's compiled artifact, carried in the binary so `deploy` works anywhere.
const ARTIFACT: &str = include_str!("../../../../contracts/out/SextantVault.json");

/// Deploy an ERC-7540 strategy vault and use it: requests, claims, settlement, status (docs/vault.md).
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: VaultCommand,
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Deploy a vault for a Safe's strategy; the key becomes its owner (and curator and guardian unless given).
    Deploy(DeployArgs),
    /// Show a vault: NAV, price per share, high-water mark, fees, pending and claimable requests.
    Status(StatusArgs),
    /// Request a deposit of assets (approving exactly that much to the vault first if needed).
    RequestDeposit(AmountArgs),
    /// Request a redemption of shares.
    RequestRedeem(AmountArgs),
    /// Claim everything settled: shares of deposits, assets of redemptions.
    Claim(ClaimArgs),
    /// Settle the open epoch at a NAV (curator only).
    Settle(SettleArgs),
    /// Let another account request and claim for you, or stop it.
    SetOperator(OperatorArgs),
}

#[derive(clap::Args)]
struct Signing {
    /// JSON-RPC endpoint.
    #[arg(long)]
    rpc: String,
    /// Keystore file of the key that signs.
    #[arg(long)]
    keystore: PathBuf,
    /// Read the keystore password from this file (first line) [else SEXTANT_KEY_PASSWORD, else a prompt].
    #[arg(long)]
    password_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DeployArgs {
    #[command(flatten)]
    signing: Signing,
    /// The asset token (e.g. USDC).
    #[arg(long)]
    asset: String,
    /// The Safe whose strategy manages the assets (it must approve the vault for redemptions).
    #[arg(long)]
    safe: String,
    /// Share token name.
    #[arg(long, default_value = "Sextant strategy vault")]
    name: String,
    /// Share token symbol.
    #[arg(long, default_value = "sxVAULT")]
    symbol: String,
    /// Who settles epochs [default: the key].
    #[arg(long)]
    curator: Option<String>,
    /// Who can pause and freeze [default: the key].
    #[arg(long)]
    guardian: Option<String>,
    /// Who receives fee shares [default: the key].
    #[arg(long)]
    fee_recipient: Option<String>,
    /// Management fee, basis points a year (at most 500).
    #[arg(long, default_value_t = 0)]
    management_fee_bps: u64,
    /// Performance fee above the high-water mark, basis points (at most 5000).
    #[arg(long, default_value_t = 0)]
    performance_fee_bps: u64,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// JSON-RPC endpoint.
    #[arg(long)]
    rpc: String,
    /// The vault.
    #[arg(long)]
    vault: String,
    /// Also show this account's shares and requests.
    #[arg(long)]
    controller: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct AmountArgs {
    #[command(flatten)]
    signing: Signing,
    /// The vault.
    #[arg(long)]
    vault: String,
    /// Amount in human units (assets for a deposit, shares for a redemption).
    #[arg(long)]
    amount: String,
    /// The request's controller [default: the key].
    #[arg(long)]
    controller: Option<String>,
}

#[derive(clap::Args)]
struct ClaimArgs {
    #[command(flatten)]
    signing: Signing,
    /// The vault.
    #[arg(long)]
    vault: String,
    /// Claim for this controller (the key must be it or its operator) [default: the key].
    #[arg(long)]
    controller: Option<String>,
    /// Send what is claimed here [default: the controller].
    #[arg(long)]
    receiver: Option<String>,
}

#[derive(clap::Args)]
struct SettleArgs {
    #[command(flatten)]
    signing: Signing,
    /// The vault.
    #[arg(long)]
    vault: String,
    /// The NAV: what the Safe holds for the vault now, in human units of the asset.
    #[arg(long)]
    nav: String,
}

#[derive(clap::Args)]
struct OperatorArgs {
    #[command(flatten)]
    signing: Signing,
    /// The vault.
    #[arg(long)]
    vault: String,
    /// The operator.
    #[arg(long)]
    operator: String,
    /// Revoke instead of approve.
    #[arg(long)]
    revoke: bool,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        VaultCommand::Deploy(a) => deploy(a),
        VaultCommand::Status(a) => status(a),
        VaultCommand::RequestDeposit(a) => request(a, true),
        VaultCommand::RequestRedeem(a) => request(a, false),
        VaultCommand::Claim(a) => claim(a),
        VaultCommand::Settle(a) => settle(a),
        VaultCommand::SetOperator(a) => set_operator(a),
    }
}

/// A key and a connection that send plain transactions (no Safe involved).
struct Sender {
    rpc: Rpc,
    key: LocalKey,
    chain_id: u64,
}

impl Sender {
    fn open(s: &Signing) -> Result<Sender> {
        let rpc = Rpc::new(&s.rpc, Duration::from_secs(30))?;
        let chain_id = rpc.chain_id().with_context(|| format!("cannot reach {}", s.rpc))?;
        let password = super::key::password(s.password_file.clone(), false)?;
        let key = LocalKey::unlock_file(&s.keystore, &password)?;
        Ok(Sender { rpc, key, chain_id })
    }

    fn address(&self) -> Result<Address> {
        Ok(parse_address(&sextant_exec::Signer::address(&self.key))?)
    }

    /// Simulates, signs, sends and waits for `data` to `to` (None: a deployment); returns the receipt.
    fn send(
        &self,
        to: Option<Address>,
        data: Vec<u8>,
        what: &str,
    ) -> Result<sextant_chain::alloy::rpc::types::TransactionReceipt> {
        let tm = TransactionManager::new(&self.rpc, &self.key, self.chain_id, Address::ZERO, TxSettings::default())?;
        let tx = tm.build_direct(to, Bytes::from(data), what).with_context(|| what.to_string())?;
        tm.submit(&tx, what, Duration::from_secs(120)).with_context(|| what.to_string())
    }
}

fn addr(s: &Option<String>, default: Address, flag: &str) -> Result<Address> {
    match s {
        Some(s) => parse_address(s).with_context(|| flag.to_string()),
        None => Ok(default),
    }
}

/// `1.5` in `decimals` to base units, exactly (no float).
fn units(amount: &str, decimals: u8) -> Result<U256> {
    let a = amount.trim();
    let (whole, frac) = a.split_once('.').unwrap_or((a, ""));
    if whole.is_empty() && frac.is_empty() || !whole.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        bail!("{amount:?} is not a non-negative decimal number");
    }
    if frac.len() > usize::from(decimals) {
        bail!("{amount:?} has more than {decimals} decimals");
    }
    let digits = format!("{whole}{frac:0<width$}", width = usize::from(decimals));
    U256::from_str_radix(if digits.is_empty() { "0" } else { &digits }, 10).context("amount too large")
}

/// Base units as a human decimal.
fn human(x: U256, decimals: u8) -> String {
    let s = x.to_string();
    let d = usize::from(decimals);
    if d == 0 {
        return s;
    }
    let s = format!("{s:0>width$}", width = d + 1);
    let (w, f) = s.split_at(s.len() - d);
    let f = f.trim_end_matches('0');
    if f.is_empty() { w.to_string() } else { format!("{w}.{f}") }
}

fn deploy(a: DeployArgs) -> Result<()> {
    let s = Sender::open(&a.signing)?;
    let me = s.address()?;
    let asset = parse_address(&a.asset).context("--asset")?;
    let safe = parse_address(&a.safe).context("--safe")?;
    let artifact: serde_json::Value = serde_json::from_str(ARTIFACT)?;
    let mut code = sextant_chain::alloy::hex::decode(artifact["bytecode"].as_str().unwrap_or_default())
        .context("the vault artifact's bytecode")?;
    let curator = addr(&a.curator, me, "--curator")?;
    let guardian = addr(&a.guardian, me, "--guardian")?;
    let fees = addr(&a.fee_recipient, me, "--fee-recipient")?;
    code.extend((asset, a.name.clone(), a.symbol.clone(), safe, me, curator, guardian, fees).abi_encode_params());
    let r = s.send(None, code, "deploy the vault")?;
    let vault = r.contract_address.context("the deployment's receipt has no contract address")?;
    println!("vault {vault} deployed (tx {})", r.transaction_hash);
    println!("  asset {asset}, Safe {safe}, owner {me}, curator {curator}, guardian {guardian}, fees to {fees}");
    if a.management_fee_bps > 0 || a.performance_fee_bps > 0 {
        let data = V::setFeesCall {
            managementBps: U256::from(a.management_fee_bps),
            performanceBps: U256::from(a.performance_fee_bps),
        }
        .abi_encode();
        s.send(Some(vault), data, "set the fees")?;
        println!(
            "  fees {} bp a year and {} bp above the high-water mark, from the first settlement after the next",
            a.management_fee_bps, a.performance_fee_bps
        );
    }
    println!("the Safe must approve the vault for the asset so settlements can pay redemptions");
    Ok(())
}

/// What `status` reads.
#[derive(serde::Serialize)]
struct Status {
    vault: Address,
    asset: Address,
    safe: Address,
    epoch: U256,
    nav: String,
    total_supply: String,
    price_per_share: String,
    high_water_mark: String,
    pending_deposits: String,
    pending_redemptions: String,
    reserved_for_claims: String,
    management_fee_bps: U256,
    performance_fee_bps: U256,
    next_fees_bps: (U256, U256),
    fee_shares: String,
    last_settlement: U256,
    paused: bool,
    frozen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    controller: Option<ControllerStatus>,
}

#[derive(serde::Serialize)]
struct ControllerStatus {
    account: Address,
    shares: String,
    shares_value: String,
    pending_deposit: String,
    claimable_deposit: String,
    pending_redeem: String,
    claimable_redeem_shares: String,
    claimable_redeem_assets: String,
}

fn status(a: StatusArgs) -> Result<()> {
    let rpc = Rpc::new(&a.rpc, Duration::from_secs(30))?;
    let v = parse_address(&a.vault).context("--vault")?;
    let asset = view(&rpc, v, &V::assetCall {}).with_context(|| format!("{v} does not answer as a Sextant vault"))?;
    let ad = view(&rpc, asset, &IERC20::decimalsCall {})?;
    let sd = view(&rpc, v, &V::decimalsCall {})?;
    let nav = view(&rpc, v, &V::totalAssetsCall {})?;
    let supply = view(&rpc, v, &V::totalSupplyCall {})?;
    let one_share = U256::from(10u8).pow(U256::from(sd));
    let price = view(&rpc, v, &V::convertToAssetsCall { shares: one_share })?;
    let hwm = view(&rpc, v, &V::highWaterMarkCall {})?;
    // the mark is assets per 1e18 share units
    let hwm_per_share = hwm * one_share / U256::from(10u64.pow(18));
    let fee_recipient = view(&rpc, v, &V::feeRecipientCall {})?;
    let st = Status {
        vault: v,
        asset,
        safe: view(&rpc, v, &V::safeCall {})?,
        epoch: view(&rpc, v, &V::epochCall {})?,
        nav: human(nav, ad),
        total_supply: human(supply, sd),
        price_per_share: human(price, ad),
        high_water_mark: human(hwm_per_share, ad),
        pending_deposits: human(view(&rpc, v, &V::pendingDepositAssetsCall {})?, ad),
        pending_redemptions: human(view(&rpc, v, &V::pendingRedeemSharesCall {})?, sd),
        reserved_for_claims: human(view(&rpc, v, &V::reservedAssetsCall {})?, ad),
        management_fee_bps: view(&rpc, v, &V::managementFeeBpsCall {})?,
        performance_fee_bps: view(&rpc, v, &V::performanceFeeBpsCall {})?,
        next_fees_bps: (
            view(&rpc, v, &V::nextManagementFeeBpsCall {})?,
            view(&rpc, v, &V::nextPerformanceFeeBpsCall {})?,
        ),
        fee_shares: human(view(&rpc, v, &V::balanceOfCall { who: fee_recipient })?, sd),
        last_settlement: view(&rpc, v, &V::lastFeeAccrualCall {})?,
        paused: view(&rpc, v, &V::pausedCall {})?,
        frozen: view(&rpc, v, &V::frozenCall {})?,
        controller: match &a.controller {
            None => None,
            Some(c) => {
                let c = parse_address(c).context("--controller")?;
                let shares = view(&rpc, v, &V::balanceOfCall { who: c })?;
                let zero = U256::ZERO;
                Some(ControllerStatus {
                    account: c,
                    shares: human(shares, sd),
                    shares_value: human(view(&rpc, v, &V::convertToAssetsCall { shares })?, ad),
                    pending_deposit: human(
                        view(&rpc, v, &V::pendingDepositRequestCall { requestId: zero, controller: c })?,
                        ad,
                    ),
                    claimable_deposit: human(view(&rpc, v, &V::maxDepositCall { controller: c })?, ad),
                    pending_redeem: human(
                        view(&rpc, v, &V::pendingRedeemRequestCall { requestId: zero, controller: c })?,
                        sd,
                    ),
                    claimable_redeem_shares: human(view(&rpc, v, &V::maxRedeemCall { controller: c })?, sd),
                    claimable_redeem_assets: human(view(&rpc, v, &V::maxWithdrawCall { controller: c })?, ad),
                })
            }
        },
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    println!("vault {} (asset {}, Safe {}), epoch {} open", st.vault, st.asset, st.safe, st.epoch);
    println!("  NAV                 {}", st.nav);
    println!("  shares              {}", st.total_supply);
    println!("  price per share     {}", st.price_per_share);
    println!("  high-water mark     {}", st.high_water_mark);
    println!("  pending deposits    {}", st.pending_deposits);
    println!("  pending redemptions {} shares", st.pending_redemptions);
    println!("  reserved for claims {}", st.reserved_for_claims);
    println!(
        "  fees                {} bp a year, {} bp above the mark (next: {} / {}); fee recipient holds {} shares",
        st.management_fee_bps, st.performance_fee_bps, st.next_fees_bps.0, st.next_fees_bps.1, st.fee_shares
    );
    println!(
        "  state               {}{}",
        if st.paused { "deposits paused" } else { "open" },
        if st.frozen { ", settlement frozen" } else { "" }
    );
    if let Some(c) = &st.controller {
        println!("account {}", c.account);
        println!("  shares              {} (worth {})", c.shares, c.shares_value);
        println!("  deposit             {} pending, {} claimable", c.pending_deposit, c.claimable_deposit);
        println!(
            "  redemption          {} shares pending, {} shares claimable for {}",
            c.pending_redeem, c.claimable_redeem_shares, c.claimable_redeem_assets
        );
    }
    Ok(())
}

fn request(a: AmountArgs, deposit: bool) -> Result<()> {
    let s = Sender::open(&a.signing)?;
    let me = s.address()?;
    let v = parse_address(&a.vault).context("--vault")?;
    let controller = addr(&a.controller, me, "--controller")?;
    if deposit {
        let asset = view(&s.rpc, v, &V::assetCall {})?;
        let d = view(&s.rpc, asset, &IERC20::decimalsCall {})?;
        let amount = units(&a.amount, d).context("--amount")?;
        let allowed = view(&s.rpc, asset, &IERC20::allowanceCall { owner: me, spender: v })?;
        if allowed < amount {
            s.send(Some(asset), IERC20::approveCall { spender: v, amount }.abi_encode(), "approve the vault")?;
        }
        let data = V::requestDepositCall { assets: amount, controller, owner: me }.abi_encode();
        s.send(Some(v), data, "request the deposit")?;
        println!("requested a deposit of {} for {controller}: it is priced at the next settlement", a.amount);
    } else {
        let d = view(&s.rpc, v, &V::decimalsCall {})?;
        let shares = units(&a.amount, d).context("--amount")?;
        let data = V::requestRedeemCall { shares, controller, owner: me }.abi_encode();
        s.send(Some(v), data, "request the redemption")?;
        println!("requested a redemption of {} shares for {controller}: it is priced at the next settlement", a.amount);
    }
    Ok(())
}

fn claim(a: ClaimArgs) -> Result<()> {
    let s = Sender::open(&a.signing)?;
    let me = s.address()?;
    let v = parse_address(&a.vault).context("--vault")?;
    let controller = addr(&a.controller, me, "--controller")?;
    let receiver = addr(&a.receiver, controller, "--receiver")?;
    let asset = view(&s.rpc, v, &V::assetCall {})?;
    let (ad, sd) = (view(&s.rpc, asset, &IERC20::decimalsCall {})?, view(&s.rpc, v, &V::decimalsCall {})?);
    let deposit = view(&s.rpc, v, &V::maxDepositCall { controller })?;
    let redeem = view(&s.rpc, v, &V::maxRedeemCall { controller })?;
    if deposit.is_zero() && redeem.is_zero() {
        println!("nothing to claim for {controller}: requests are claimable after the epoch they joined is settled");
        return Ok(());
    }
    if !deposit.is_zero() {
        let data = V::deposit_0Call { assets: deposit, receiver, controller }.abi_encode();
        let before = view(&s.rpc, v, &V::balanceOfCall { who: receiver })?;
        s.send(Some(v), data, "claim the deposit")?;
        let got = view(&s.rpc, v, &V::balanceOfCall { who: receiver })? - before;
        println!("claimed {} shares for a deposit of {} (to {receiver})", human(got, sd), human(deposit, ad));
    }
    if !redeem.is_zero() {
        let assets = view(&s.rpc, v, &V::maxWithdrawCall { controller })?;
        let data = V::redeemCall { shares: redeem, receiver, controller }.abi_encode();
        s.send(Some(v), data, "claim the redemption")?;
        println!("claimed {} for a redemption of {} shares (to {receiver})", human(assets, ad), human(redeem, sd));
    }
    Ok(())
}

fn settle(a: SettleArgs) -> Result<()> {
    let s = Sender::open(&a.signing)?;
    let v = parse_address(&a.vault).context("--vault")?;
    let asset = view(&s.rpc, v, &V::assetCall {})?;
    let ad = view(&s.rpc, asset, &IERC20::decimalsCall {})?;
    let nav = units(&a.nav, ad).context("--nav")?;
    let epoch = view(&s.rpc, v, &V::epochCall {})?;
    let r = s.send(Some(v), V::settleCall { nav }.abi_encode(), "settle")?;
    let settled = r.inner.logs().iter().find_map(|l| l.log_decode::<V::Settled>().ok()).map(|l| l.inner.data);
    match settled {
        Some(e) => {
            let sd = view(&s.rpc, v, &V::decimalsCall {})?;
            println!("epoch {epoch} settled at NAV {}", a.nav);
            println!("  fees        {} shares", human(e.feeShares, sd));
            println!("  deposits    {} for {} shares", human(e.depositAssets, ad), human(e.depositShares, sd));
            println!("  redemptions {} shares for {}", human(e.redeemShares, sd), human(e.redeemAssets, ad));
        }
        None => println!("epoch {epoch} settled at NAV {}", a.nav),
    }
    Ok(())
}

fn set_operator(a: OperatorArgs) -> Result<()> {
    let s = Sender::open(&a.signing)?;
    let v = parse_address(&a.vault).context("--vault")?;
    let operator = parse_address(&a.operator).context("--operator")?;
    s.send(Some(v), V::setOperatorCall { operator, approved: !a.revoke }.abi_encode(), "set the operator")?;
    println!(
        "{operator} {} for {}",
        if a.revoke { "is no longer an operator" } else { "is now an operator" },
        s.address()?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_in_base_units() {
        assert_eq!(units("1.5", 6).unwrap(), U256::from(1_500_000u64));
        assert_eq!(units("0.000001", 6).unwrap(), U256::from(1u8));
        assert_eq!(units("100", 0).unwrap(), U256::from(100u8));
        assert!(units("1.0000001", 6).is_err());
        assert!(units("-1", 6).is_err());
        assert!(units("1e6", 6).is_err());
        assert_eq!(human(U256::from(1_500_000u64), 6), "1.5");
        assert_eq!(human(U256::from(1u8), 6), "0.000001");
        assert_eq!(human(U256::from(7_000_000u64), 6), "7");
    }
}
