//! The policy crate's errors.

/// What can go wrong building, checking or encoding a policy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A condition tree the module would refuse to store.
    #[error("condition node {index}: {reason}")]
    UnsuitableConditions {
        /// Breadth-first index of the node.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A policy that cannot be derived or encoded.
    #[error("{0}")]
    Invalid(String),
    /// A registry lookup failed.
    #[error(transparent)]
    Chain(#[from] sextant_chain::Error),
}

/// The policy crate's result.
pub type Result<T> = std::result::Result<T, Error>;
