//! Permission policies: what a deployment key may make a Safe do, derived from a strategy, checked off-chain with
//! exactly the semantics of Sextant's permissions module (`contracts/src/SextantRoles.sol`), and encoded as that
//! module's configuration calls or as Zodiac Roles v2's.

mod checker;
mod condition;
mod derive;
mod describe;
mod encode;
mod error;
mod model;

pub use checker::{Checker, Consumption, Status, Verdict};
pub use condition::{Condition, FlatCondition, Operator, ParamType, flatten};
pub use derive::{Needs, SwapVenue, TokenNeed, approval_key, derive};
pub use describe::{Names, amount, describe};
pub use encode::{RolesAbi, module_calls, zodiac_export};
pub use error::{Error, Result};
pub use model::{Allowance, Clearance, Counterparty, ExecOptions, Function, Policy, Target, key};
