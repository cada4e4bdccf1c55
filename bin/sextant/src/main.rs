//! The `sextant` command line: backtests, sweeps, indicators, market data, the devnet, keys, permissions, vaults and live deployments. The only place that formats for humans.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Sextant: build, backtest and stress-test on-chain quant strategies.
#[derive(Parser)]
#[command(name = "sextant", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Backtest(cmd::backtest::Args),
    Optimize(cmd::optimize::Args),
    Stress(cmd::stress::Args),
    Indicator(cmd::indicator::Args),
    /// Market data tools: synthetic markets.
    Data(cmd::data::Args),
    /// A local devnet (anvil) for paper trading and integration tests.
    Devnet(cmd::devnet::Args),
    /// Keys for deployments, in encrypted keystore files.
    Key(cmd::key::Args),
    /// Uniswap v3 pools: state rebuilt from events.
    Pool(cmd::pool::Args),
    Permissions(cmd::permissions::Args),
    Vault(cmd::vault::Args),
    Run(cmd::run::RunArgs),
    Status(cmd::run::StatusArgs),
    Teardown(cmd::run::TeardownArgs),
    Diagnose(cmd::run::DiagnoseArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Backtest(args) => cmd::backtest::run(args),
        Command::Optimize(args) => cmd::optimize::run(args),
        Command::Stress(args) => cmd::stress::run(args),
        Command::Indicator(args) => cmd::indicator::run(args),
        Command::Data(args) => cmd::data::run(args),
        Command::Devnet(args) => cmd::devnet::run(args),
        Command::Key(args) => cmd::key::run(args),
        Command::Pool(args) => cmd::pool::run(args),
        Command::Permissions(args) => cmd::permissions::run(args),
        Command::Vault(args) => cmd::vault::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Status(args) => cmd::run::status(args),
        Command::Teardown(args) => cmd::run::teardown(args),
        Command::Diagnose(args) => cmd::run::diagnose(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cmd::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
