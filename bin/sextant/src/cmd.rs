//! One module per subcommand.

pub mod backtest;
pub mod batch;
pub mod data;
pub mod devnet;
pub mod indicator;
pub mod key;
pub mod optimize;
pub mod permissions;
pub mod pool;
pub mod run;
pub mod stress;
pub mod vault;

/// True when the error is a closed stdout (e.g. piped into `head`), which is not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
