use anyhow::{Context, Result};
use clap::Subcommand;
use sextant_devnet::{UpOptions, down, up, write_json};
use std::io::Write;
use std::path::PathBuf;

/// A local devnet (anvil on 127.0.0.1) for paper trading and integration tests.
///
/// `up` starts the node, deploys WETH, two test tokens (USDC, WBTC), Uniswap v3 (factory, swap router, position
/// manager) with a liquid WETH/USDC 0.3 % pool at 2000 USDC, and a Safe 1.4.1 owned by the safe_owner account and
/// funded with ETH, WETH and USDC; funds the accounts, and records everything.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DevnetCommand,
}

#[derive(Subcommand)]
enum DevnetCommand {
    /// Start anvil in the background and write its endpoint, accounts and roles to ADDRESSES.json.
    Up(UpArgs),
    /// Stop the devnet that `up` started from the same state directory.
    Down(DownArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 8545)]
    port: u16,
    /// Where the pid, anvil's log and its account list are kept.
    #[arg(long, default_value = ".sextant/devnet")]
    state_dir: PathBuf,
    /// Also write the endpoint, accounts and roles to this file.
    #[arg(long, value_name = "ADDRESSES.json")]
    json: Option<PathBuf>,
    /// The anvil binary [default: SEXTANT_ANVIL, else node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil].
    #[arg(long)]
    anvil: Option<PathBuf>,
    /// Start a bare node without deploying the contracts.
    #[arg(long)]
    no_deploy: bool,
}

#[derive(clap::Args)]
struct DownArgs {
    /// The state directory `up` used.
    #[arg(long, default_value = ".sextant/devnet")]
    state_dir: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match args.command {
        DevnetCommand::Up(a) => {
            let devnet = up(&UpOptions {
                port: a.port,
                state_dir: a.state_dir.clone(),
                anvil: a.anvil,
                deploy: !a.no_deploy,
                fork_url: None,
            })?;
            writeln!(o, "devnet up: {} (chain id {}, anvil pid {})", devnet.rpc_url, devnet.chain_id, devnet.pid)?;
            writeln!(o, "accounts (keys: anvil's public test mnemonic, index in brackets):")?;
            for acc in &devnet.accounts {
                writeln!(o, "  {:<15} {} [{}]", acc.role, acc.address, acc.mnemonic_index)?;
            }
            if !devnet.contracts.is_empty() {
                writeln!(o, "contracts:")?;
                for (name, address) in &devnet.contracts {
                    writeln!(o, "  {name:<27} {address}")?;
                }
            }
            if let Some(path) = a.json {
                write_json(&path, &devnet).with_context(|| format!("writing {}", path.display()))?;
                writeln!(o, "addresses written to {}", path.display())?;
            }
            writeln!(o, "stop it with: sextant devnet down --state-dir {}", a.state_dir.display())?;
        }
        DevnetCommand::Down(a) => match down(&a.state_dir)? {
            Some(pid) => writeln!(o, "devnet down: stopped anvil (pid {pid})")?,
            None => writeln!(o, "no devnet recorded in {}", a.state_dir.display())?,
        },
    }
    Ok(())
}
