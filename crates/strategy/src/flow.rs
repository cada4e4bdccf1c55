use crate::ExecError;
use serde::{Deserialize, Serialize};
use sextant_types::{Fill, Intent};

/// Carries out intents. The backtest's simulated executor and the on-chain executor implement it, and strategies
/// cannot tell them apart.
pub trait Executor {
    /// What `prepare` produces: a quote in simulation, a simulated and signed transaction on chain.
    type Prepared;
    /// What `execute` produces: a simulated fill, a transaction receipt.
    type Receipt;

    /// Checks the intent can run now and prepares it (quote, balances, tolerance, build the transaction).
    ///
    /// # Errors
    /// When the intent cannot run; `ExecError::recoverable` says whether a retry may help.
    fn prepare(&mut self, intent: &Intent) -> Result<Self::Prepared, ExecError>;

    /// Carries out a prepared intent.
    ///
    /// # Errors
    /// When execution failed; `ExecError::recoverable` says whether a retry may help.
    fn execute(&mut self, prepared: &Self::Prepared) -> Result<Self::Receipt, ExecError>;

    /// Checks the outcome against what was prepared and turns it into a fill (None for intents that move no tokens).
    ///
    /// # Errors
    /// When the outcome is not what was prepared.
    fn validate(&mut self, prepared: &Self::Prepared, receipt: Self::Receipt) -> Result<Option<Fill>, ExecError>;

    /// Waits before a retry. Live executors sleep; the simulator has no wall clock and returns at once.
    fn backoff(&mut self, _delay_ms: u64) {}
}

/// How often and how patiently a failed flow is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (>= 1).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles on each further retry.
    pub base_delay_ms: u64,
    /// Cap on the delay.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 3, base_delay_ms: 1_000, max_delay_ms: 30_000 }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 for the first retry): exponential, capped.
    pub fn delay_ms(&self, retry: u32) -> u64 {
        let factor = 1u64.checked_shl(retry.saturating_sub(1)).unwrap_or(u64::MAX);
        self.base_delay_ms.saturating_mul(factor).min(self.max_delay_ms)
    }
}

/// How a flow ended.
// One per intent, never in a hot loop or a large collection: the fill stays inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FlowStatus {
    /// Done; the fill if tokens moved.
    Completed {
        /// The fill.
        fill: Option<Fill>,
    },
    /// Gave up.
    Failed {
        /// The last error.
        error: ExecError,
    },
}

/// The end of one intent's flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowOutcome {
    /// The intent carried out.
    pub intent: Intent,
    /// How it ended.
    pub status: FlowStatus,
    /// Attempts made (1 when the first try settled it).
    pub attempts: u32,
}

impl FlowOutcome {
    /// The fill, when the flow completed with one.
    pub fn fill(&self) -> Option<&Fill> {
        match &self.status {
            FlowStatus::Completed { fill } => fill.as_ref(),
            FlowStatus::Failed { .. } => None,
        }
    }
}

/// Runs one intent as a flow: prepare -> execute -> validate; a recoverable failure at any stage waits
/// (`policy.delay_ms`, doubling) and starts again from prepare, up to `policy.max_attempts`; a non-recoverable
/// failure ends the flow at once.
pub fn run_flow<E: Executor + ?Sized>(executor: &mut E, intent: &Intent, policy: &RetryPolicy) -> FlowOutcome {
    let max_attempts = policy.max_attempts.max(1);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = executor
            .prepare(intent)
            .and_then(|prepared| executor.execute(&prepared).and_then(|receipt| executor.validate(&prepared, receipt)));
        let status = match result {
            Ok(fill) => FlowStatus::Completed { fill },
            Err(error) if error.recoverable() && attempts < max_attempts => {
                executor.backoff(policy.delay_ms(attempts));
                continue;
            }
            Err(error) => FlowStatus::Failed { error },
        };
        return FlowOutcome { intent: intent.clone(), status, attempts };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExecErrorKind;

    /// An executor whose stages fail on a script, to exercise the flow's retry logic.
    #[derive(Default)]
    struct Scripted {
        execute_failures: Vec<ExecErrorKind>,
        stages: Vec<&'static str>,
        waits: Vec<u64>,
    }

    impl Executor for Scripted {
        type Prepared = ();
        type Receipt = ();
        fn prepare(&mut self, _: &Intent) -> Result<(), ExecError> {
            self.stages.push("prepare");
            Ok(())
        }
        fn execute(&mut self, _: &()) -> Result<(), ExecError> {
            self.stages.push("execute");
            match self.execute_failures.pop() {
                Some(kind) => Err(ExecError::new(kind, "scripted")),
                None => Ok(()),
            }
        }
        fn validate(&mut self, _: &(), _: ()) -> Result<Option<Fill>, ExecError> {
            self.stages.push("validate");
            Ok(None)
        }
        fn backoff(&mut self, delay_ms: u64) {
            self.waits.push(delay_ms);
        }
    }

    fn hold() -> Intent {
        Intent::Hold { reason: "test".into() }
    }

    #[test]
    fn transient_failures_retry_with_exponential_backoff_then_complete() {
        let mut ex = Scripted { execute_failures: vec![ExecErrorKind::Transient; 2], ..Default::default() };
        let policy = RetryPolicy { max_attempts: 5, base_delay_ms: 100, max_delay_ms: 150 };
        let out = run_flow(&mut ex, &hold(), &policy);
        assert_eq!(out.status, FlowStatus::Completed { fill: None });
        assert_eq!(out.attempts, 3);
        assert_eq!(ex.waits, [100, 150]);
        assert_eq!(ex.stages, ["prepare", "execute", "prepare", "execute", "prepare", "execute", "validate"]);
    }

    #[test]
    fn gives_up_after_max_attempts_and_at_once_on_permanent_errors() {
        let mut ex = Scripted { execute_failures: vec![ExecErrorKind::Transient; 9], ..Default::default() };
        let out = run_flow(&mut ex, &hold(), &RetryPolicy { max_attempts: 3, ..Default::default() });
        assert!(matches!(out.status, FlowStatus::Failed { .. }));
        assert_eq!((out.attempts, ex.waits.len()), (3, 2));

        let mut ex = Scripted { execute_failures: vec![ExecErrorKind::SlippageExceeded], ..Default::default() };
        let out = run_flow(&mut ex, &hold(), &RetryPolicy::default());
        assert_eq!(out.attempts, 1);
        assert!(ex.waits.is_empty());
    }

    #[test]
    fn delay_doubles_and_saturates() {
        let p = RetryPolicy { max_attempts: 100, base_delay_ms: 1_000, max_delay_ms: u64::MAX };
        assert_eq!((p.delay_ms(1), p.delay_ms(2), p.delay_ms(4)), (1_000, 2_000, 8_000));
        assert_eq!(p.delay_ms(90), u64::MAX);
    }
}
