//! `sextant permissions`: a strategy's least-privilege policy in words and as JSON (Sextant's module or Zodiac
//! Roles v2), installing it on a Safe through Sextant's permissions module, and revoking a key.

use anyhow::{Context, Result, bail};
use sextant_chain::alloy::primitives::Address;
use sextant_chain::{Registry, Rpc, parse_address};
use sextant_exec::{LocalKey, TransactionManager, TxSettings};
use sextant_runtime::permissions::{Derived, config_chain, derive_for_config, install, revoke as revoke_member};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Least-privilege permissions for a strategy's deployment key: show the policy derived from a config, install it
/// on a Safe through Sextant's permissions module, or revoke a key.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    show: ShowArgs,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Install the policy: deploy the permissions module for the Safe (unless --module names one), enable it, and
    /// configure the role and its member in one Safe transaction. Signed by a Safe owner key.
    Apply(ApplyArgs),
    /// Take a key out of a role: from the next block on, its calls through the module are refused.
    Revoke(RevokeArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Sextant's policy JSON (what `sextant permissions apply` installs).
    Sextant,
    /// Zodiac Roles v2: the configuration calls and the Roles app's targets.
    Zodiac,
}

#[derive(clap::Args)]
struct ShowArgs {
    /// The strategy config (any Sextant config: backtest, live, or both).
    config: Option<PathBuf>,
    /// Chain name from the registry (ethereum, base, arbitrum, devnet) [default: the config's live.chain].
    #[arg(long)]
    chain: Option<String>,
    /// The Safe the deployment trades from.
    #[arg(long)]
    safe: Option<String>,
    /// Output format of the file written with -o (or of --json).
    #[arg(long, value_enum, default_value_t = Format::Sextant)]
    format: Format,
    /// Write the policy to this file.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// The deployment key to make the role's member (in the Zodiac calls).
    #[arg(long)]
    member: Option<String>,
    /// Print the JSON instead of the words.
    #[arg(long)]
    json: bool,
    /// A chain registry file whose chains are added to (or replace) the built-in ones.
    #[arg(long)]
    registry: Option<PathBuf>,
}

#[derive(clap::Args)]
struct Signing {
    /// JSON-RPC endpoint of the chain.
    #[arg(long)]
    rpc: String,
    /// The Safe.
    #[arg(long)]
    safe: String,
    /// Keystore file of a Safe owner key (threshold 1), which signs the Safe transactions.
    #[arg(long)]
    owner_keystore: PathBuf,
    /// Read the keystore password from this file (first line) [else SEXTANT_KEY_PASSWORD, else a prompt].
    #[arg(long)]
    password_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ApplyArgs {
    /// The strategy config.
    config: PathBuf,
    #[command(flatten)]
    signing: Signing,
    /// The deployment key (address) to make the role's member.
    #[arg(long)]
    member: String,
    /// An already deployed permissions module of this Safe to configure [default: deploy a new one].
    #[arg(long)]
    module: Option<String>,
    /// A chain registry file whose chains are added to (or replace) the built-in ones.
    #[arg(long)]
    registry: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RevokeArgs {
    #[command(flatten)]
    signing: Signing,
    /// The permissions module.
    #[arg(long)]
    module: String,
    /// The key to take out of the role.
    #[arg(long)]
    member: String,
    /// The role's name (as `sextant permissions` shows it, e.g. sextant-rsi).
    #[arg(long)]
    role: String,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        Some(Sub::Apply(a)) => apply(a),
        Some(Sub::Revoke(r)) => revoke(r),
        None => show(args.show),
    }
}

fn registry(path: Option<&Path>) -> Result<Registry> {
    Ok(match path {
        Some(p) => Registry::with_file(p)?,
        None => Registry::built_in(),
    })
}

fn derive(config: &Path, chain: Option<&str>, safe: Address, registry: &Registry) -> Result<Derived> {
    let text = std::fs::read_to_string(config).with_context(|| format!("cannot read {}", config.display()))?;
    let chain = match chain {
        Some(c) => c.to_string(),
        None => config_chain(&text).with_context(|| {
            format!("{} names no [live] chain: give --chain (ethereum, base, arbitrum or devnet)", config.display())
        })?,
    };
    Ok(derive_for_config(&text, &config.display().to_string(), registry, &chain, safe)?)
}

fn show(a: ShowArgs) -> Result<()> {
    let Some(config) = a.config else {
        bail!("give a strategy config: sextant permissions CONFIG --chain NAME --safe ADDRESS")
    };
    let Some(safe) = a.safe else { bail!("give the Safe the deployment trades from: --safe ADDRESS") };
    let safe = parse_address(&safe).context("--safe")?;
    let member = a.member.as_deref().map(parse_address).transpose().context("--member")?;
    let registry = registry(a.registry.as_deref())?;
    let d = derive(&config, a.chain.as_deref(), safe, &registry)?;
    let json = match a.format {
        Format::Sextant => serde_json::to_value(&d.policy)?,
        Format::Zodiac => {
            let mut z = sextant_policy::zodiac_export(&d.policy, member.unwrap_or(Address::ZERO))?;
            z["rolesMastercopy"] = serde_json::json!(d.zodiac_mastercopy.map(|a| a.to_string()));
            z
        }
    };
    let text = serde_json::to_string_pretty(&json)? + "\n";
    if let Some(out) = &a.output {
        std::fs::write(out, &text).with_context(|| format!("cannot write {}", out.display()))?;
    }
    if a.json {
        print!("{text}");
        return Ok(());
    }
    print!("{}", sextant_policy::describe(&d.policy, &d.names));
    if !d.notes.is_empty() {
        println!("\nAssumed:");
        for n in &d.notes {
            println!("  - {n}");
        }
    }
    if a.format == Format::Zodiac && d.zodiac_mastercopy.is_none() {
        println!(
            "\nNote: the registry knows no Zodiac Roles v2 deployment on {}; use --format sextant.",
            d.policy.chain
        );
    }
    if let Some(out) = &a.output {
        let what = match a.format {
            Format::Sextant => "policy",
            Format::Zodiac => "Zodiac Roles v2 calls and targets",
        };
        println!("\nwrote the {what} to {}", out.display());
    }
    Ok(())
}

/// An owner-signed Safe transaction manager on the --rpc chain.
fn owner<'a>(s: &Signing, rpc: &'a Rpc, key: &'a LocalKey) -> Result<TransactionManager<'a>> {
    let safe = parse_address(&s.safe).context("--safe")?;
    let chain_id = rpc.chain_id().with_context(|| format!("cannot reach {}", rpc.url()))?;
    let tm = TransactionManager::new(rpc, key, chain_id, safe, TxSettings::default())?;
    tm.check_safe()?;
    Ok(tm)
}

fn unlock(s: &Signing) -> Result<LocalKey> {
    let password = super::key::password(s.password_file.clone(), false)?;
    Ok(LocalKey::unlock_file(&s.owner_keystore, &password)?)
}

fn apply(a: ApplyArgs) -> Result<()> {
    let rpc = Rpc::new(&a.signing.rpc, Duration::from_secs(30))?;
    let key = unlock(&a.signing)?;
    let tm = owner(&a.signing, &rpc, &key)?;
    let safe = tm.safe();
    let member = parse_address(&a.member).context("--member")?;
    let registry = registry(a.registry.as_deref())?;
    let chain = registry.chain(tm.chain_id())?.name.clone();
    let d = derive(&a.config, Some(&chain), safe, &registry)?;
    println!("installing role {:?} for {member} on Safe {safe} ({chain})", d.policy.role);
    let module = a.module.as_deref().map(parse_address).transpose().context("--module")?;
    let module = install(&tm, &d.policy, member, module, &|line| println!("  {line}"))?;
    println!("\ndone. Route the deployment through the module by adding to {}:\n", a.config.display());
    println!("[permissions]\nmodule = \"{module}\"");
    Ok(())
}

fn revoke(r: RevokeArgs) -> Result<()> {
    let rpc = Rpc::new(&r.signing.rpc, Duration::from_secs(30))?;
    let key = unlock(&r.signing)?;
    let tm = owner(&r.signing, &rpc, &key)?;
    let module = parse_address(&r.module).context("--module")?;
    let member = parse_address(&r.member).context("--member")?;
    if !revoke_member(&tm, module, &r.role, member, &|line| println!("  {line}"))? {
        println!("{member} is not a member of role {:?} on {module}: nothing to revoke", r.role);
        return Ok(());
    }
    println!("{member} can no longer act through {module}");
    Ok(())
}
