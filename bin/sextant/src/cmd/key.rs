use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sextant_exec::Keystore;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// Keys for deployments: Web3 Secret Storage keystore files (scrypt-encrypted), one per key.
///
/// Passwords come from --password-file, else the SEXTANT_KEY_PASSWORD environment variable, else a prompt. Keys are
/// never printed; imported keys are read from a file or standard input, never from the command line.
#[derive(clap::Args)]
pub struct Args {
    /// Keystore directory [default: SEXTANT_KEYSTORE, else ~/.sextant/keystore].
    #[arg(long, global = true)]
    keystore_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a new random key.
    New {
        /// Name of the key (letters, digits, '-', '_').
        name: String,
        /// Read the password from this file (first line).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Import a private key (hex) from a file or standard input.
    Import {
        /// Name of the key.
        name: String,
        /// Read the private key from this file instead of standard input.
        #[arg(long)]
        private_key_file: Option<PathBuf>,
        /// Read the password from this file (first line).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the keys and their addresses.
    List,
    /// Print a key's address.
    Address {
        /// Name of the key.
        name: String,
    },
}

fn keystore_dir(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = explicit.or_else(|| std::env::var_os("SEXTANT_KEYSTORE").map(PathBuf::from)) {
        return Ok(dir);
    }
    let home = std::env::var_os("HOME").context("no HOME: give --keystore-dir")?;
    Ok(PathBuf::from(home).join(".sextant").join("keystore"))
}

/// The password: the file's first line, else SEXTANT_KEY_PASSWORD, else a prompt (twice when `confirm`).
pub(crate) fn password(file: Option<PathBuf>, confirm: bool) -> Result<String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_string());
    }
    if let Ok(p) = std::env::var("SEXTANT_KEY_PASSWORD") {
        return Ok(p);
    }
    let first = rpassword::prompt_password("password: ")
        .context("no password: give --password-file or SEXTANT_KEY_PASSWORD")?;
    if confirm && rpassword::prompt_password("again: ")? != first {
        bail!("the passwords differ");
    }
    Ok(first)
}

pub fn run(args: Args) -> Result<()> {
    let ks = Keystore::new(keystore_dir(args.keystore_dir)?);
    let mut o = std::io::stdout().lock();
    match args.command {
        KeyCommand::New { name, password_file } => {
            let info = ks.create(&name, &password(password_file, true)?)?;
            writeln!(o, "created key {} {} in {}", info.name, info.address, info.path.display())?;
        }
        KeyCommand::Import { name, private_key_file, password_file } => {
            let secret = match private_key_file {
                Some(path) => {
                    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
                }
                None if std::io::stdin().is_terminal() => rpassword::prompt_password("private key (hex): ")?,
                None => {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    line
                }
            };
            let info = ks.import(&name, secret.trim(), &password(password_file, true)?)?;
            writeln!(o, "imported key {} {} into {}", info.name, info.address, info.path.display())?;
        }
        KeyCommand::List => {
            let keys = ks.list()?;
            if keys.is_empty() {
                writeln!(o, "no keys in {}", ks.dir().display())?;
            }
            for k in keys {
                writeln!(o, "{:<20} {}", k.name, k.address)?;
            }
        }
        KeyCommand::Address { name } => writeln!(o, "{}", ks.address(&name)?)?,
    }
    Ok(())
}
