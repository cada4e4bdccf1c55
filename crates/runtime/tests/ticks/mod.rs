//! A deployment tick for the runtime's live tests (the shared devnet harness in `common` serves crates that have
//! no runtime).

/// Runs one tick and returns the kinds of the intents it carried out, each of which must have completed (a swap may
/// be refused for its price impact: an LP range is then opened with what is held).
pub fn tick(
    dep: &mut sextant_runtime::Deployment<'_>,
    kind: sextant_runtime::TickKind,
) -> Vec<sextant_types::IntentKind> {
    use sextant_strategy::FlowStatus;
    use sextant_types::IntentKind;
    match dep.tick(kind).unwrap() {
        sextant_runtime::TickReport::Stepped { outcomes, .. } => outcomes
            .into_iter()
            .map(|(intent, outcome)| {
                let outcome = outcome.expect("settled");
                let ok = matches!(outcome.status, FlowStatus::Completed { .. })
                    || (intent.kind() == IntentKind::Swap
                        && matches!(&outcome.status, FlowStatus::Failed { error } if error.kind.name() == "slippage_exceeded"));
                assert!(ok, "{intent:?}: {:?}", outcome.status);
                intent.kind()
            })
            .collect(),
        sextant_runtime::TickReport::Waiting { .. } => panic!("nothing should wait on a healthy devnet"),
    }
}
