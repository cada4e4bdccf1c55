//! Running a step's intents as flows, shared by the engines that execute intents at once (LP, lending, leverage,
//! fixed yield): each intent runs through `run_flow` on an executor that puts its state back when an attempt fails
//! (a transaction refused in simulation is never sent), its outcome is counted, and the strategy hears of it.

use crate::engine::FlowStats;
use sextant_strategy::{ExecError, Executor, FlowOutcome, FlowStatus, RetryPolicy, Strategy, run_flow};
use sextant_types::{Fill, Intent};

/// An engine's executor for intents carried out at once: what `run` changes, `save` and `restore` can undo.
pub(crate) trait Atomic {
    /// What is saved before an attempt.
    type Saved;
    /// Saves the state an attempt may change.
    fn save(&self) -> Self::Saved;
    /// Puts it back after a failed attempt.
    fn restore(&mut self, saved: Self::Saved);
    /// Carries the intent out (a fill, or None for an intent that moves nothing).
    fn run(&mut self, intent: &Intent) -> Result<Option<Fill>, ExecError>;
}

struct Attempt<'a, E: Atomic> {
    exec: &'a mut E,
    intent: &'a Intent,
}

impl<E: Atomic> Executor for Attempt<'_, E> {
    type Prepared = ();
    type Receipt = Option<Fill>;

    fn prepare(&mut self, _intent: &Intent) -> Result<(), ExecError> {
        Ok(())
    }

    fn execute(&mut self, _prepared: &()) -> Result<Option<Fill>, ExecError> {
        let saved = self.exec.save();
        let result = self.exec.run(self.intent);
        if result.is_err() {
            self.exec.restore(saved);
        }
        result
    }

    fn validate(&mut self, _prepared: &(), receipt: Option<Fill>) -> Result<Option<Fill>, ExecError> {
        Ok(receipt)
    }
}

/// Counts a flow's outcome.
pub(crate) fn record(flows: &mut FlowStats, outcome: &FlowOutcome) {
    flows.retries += outcome.attempts.saturating_sub(1) as usize;
    match &outcome.status {
        FlowStatus::Completed { .. } => flows.completed += 1,
        FlowStatus::Failed { error } => *flows.failed.entry(error.kind.name().to_string()).or_default() += 1,
    }
}

/// Runs `intents` in order on `exec`, counting each outcome in `flows` and telling the strategy.
pub(crate) fn run_intents<S: Strategy, E: Atomic>(
    strategy: &S,
    state: &mut S::State,
    flows: &mut FlowStats,
    retry: &RetryPolicy,
    intents: &[Intent],
    exec: &mut E,
) {
    for intent in intents {
        if matches!(intent, Intent::Hold { .. }) {
            flows.holds += 1;
            continue;
        }
        let outcome = run_flow(&mut Attempt { exec: &mut *exec, intent }, intent, retry);
        record(flows, &outcome);
        strategy.on_outcome(state, &outcome);
    }
}
