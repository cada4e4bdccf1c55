//! The strategy framework: the `Strategy` trait (a persistent state machine that turns market views into intents), the
//! portfolio it sees, and the `Executor` interface through which each intent runs as a prepare -> execute -> validate
//! flow. The backtest's simulated executor and the on-chain executor both implement `Executor`, so one strategy code
//! path serves backtest, paper and live.

mod decision;
mod error;
mod flow;
mod portfolio;
mod strategy;

pub use decision::Decision;
pub use error::{ExecError, ExecErrorKind};
pub use flow::{Executor, FlowOutcome, FlowStatus, RetryPolicy, run_flow};
pub use portfolio::{LendingPositionView, LpView, PortfolioView, PositionView};
pub use strategy::Strategy;
