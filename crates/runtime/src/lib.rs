//! Strategy deployments: `sextant run` drives the same strategy code as the backtest, fed by the chain (pool price,
//! Safe balances), executing through the journaled ExecutionManager; `status`, `teardown` and `diagnose` work on
//! the same SQLite state; metrics are served in the Prometheus text format.

pub mod config;
mod deployment;
mod error;
pub mod metrics;
pub mod permissions;
pub mod schedule;
mod status;

pub use config::{DeploymentConfig, LiveConfig};
pub use deployment::{Deployment, Log, OpenOptions, TickKind, TickReport};
pub use error::{Error, Result};
pub use status::{Finding, Status, diagnose, status};
