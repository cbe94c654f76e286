//! Random event sequences fold to a consistent status.
#![cfg(not(target_arch = "wasm32"))]

use lifeline_model::{
    Actor, EdgeKind, EndpointId, FunctionId, State, StatusDocument, TaskId, TaskMeta, TaskView,
    Timestamp, TransitionError, TransitionRecord, fold, validate,
};
use proptest::prelude::*;

fn state() -> impl Strategy<Value = State> {
    proptest::sample::select(State::ALL.to_vec())
}

fn actor() -> impl Strategy<Value = Actor> {
    proptest::sample::select(Actor::ALL.to_vec())
}

/// Proposals biased towards legal ones, so that long runs reach deep into the life cycle.
fn proposals() -> impl Strategy<Value = Vec<(State, Actor, u32)>> {
    proptest::collection::vec((state(), actor(), 0u32..4), 0..200)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_sequences_fold_consistently(max_retries in 0u32..4, proposals in proposals()) {
        let mut view = TaskView::received(Timestamp::from_micros(0), max_retries);
        let mut log = vec![TransitionRecord::received(Timestamp::from_micros(0))];
        let mut retries = 0;
        for (i, (to, actor, attempt_skew)) in proposals.into_iter().enumerate() {
            let at = Timestamp::from_micros(i as i64 + 1);
            let before = view.clone();
            match validate(view.state, to, actor, view.attempt, max_retries) {
                Ok(accepted) => {
                    prop_assert!(!before.state.is_terminal());
                    // A record carrying any other attempt number is refused and changes nothing.
                    let wrong = TransitionRecord { state: to, actor, attempt: accepted.attempt + attempt_skew + 1, at, reason: None };
                    let refused = view.apply(&wrong);
                    let is_mismatch = matches!(refused, Err(TransitionError::AttemptMismatch { .. }));
                    prop_assert!(is_mismatch);
                    prop_assert_eq!(&view, &before);

                    let record = TransitionRecord { state: to, actor, attempt: accepted.attempt, at, reason: Some(format!("step {i}")) };
                    prop_assert_eq!(view.apply(&record), Ok(accepted));
                    if accepted.edge.kind == EdgeKind::Retry {
                        retries += 1;
                    }
                    log.push(record);
                }
                Err(TransitionError::FromTerminal { .. }) => prop_assert!(before.state.is_terminal()),
                Err(_) => {}
            }
            prop_assert_eq!(view.attempt, 1 + retries);
            prop_assert!(view.attempt <= max_retries + 1);
        }

        prop_assert_eq!(fold(&log, max_retries), Ok(view.clone()));
        let meta = TaskMeta {
            task_id: TaskId::from_u128(1),
            endpoint_id: EndpointId::from_u128(2),
            function_id: FunctionId::from_u128(3),
            max_retries,
        };
        let doc = StatusDocument::build(meta, log, Some(42)).expect("a validated log folds");
        prop_assert_eq!(doc.status, view.state);
        prop_assert_eq!(doc.pending, !view.state.is_terminal());
        prop_assert_eq!(doc.completion_t.is_some(), view.state.is_terminal());
        prop_assert_eq!(doc.exception.is_some(), view.state == State::Failed);
        prop_assert_eq!(doc.result.is_some(), view.state == State::Success);
        prop_assert_eq!(doc.details.attempt, view.attempt);
    }
}
