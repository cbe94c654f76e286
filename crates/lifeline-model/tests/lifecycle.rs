//! The transition table and its derived views, checked against the life cycle as specified.
//! These tests run natively and, compiled to wasm, in headless Chromium.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use lifeline_model::{Actor, EdgeKind, State, TransitionError, edges, validate};

use Actor::{Endpoint as E, Forwarder as F, Manager as M, WebService as WS, Worker as W};
use EdgeKind::{Cancel, Fail, Forward, Requeue, Retry};
use State::*;

/// The life cycle as specified, written out independently of the crate's table: every allowed
/// (from, to, actor) with the kind of step it is.
const SPEC: &[(State, State, Actor, EdgeKind)] = &[
    (Received, WaitingForEp, F, Forward),
    (Received, DispatchedToEp, F, Forward),
    (WaitingForEp, DispatchedToEp, F, Forward),
    (DispatchedToEp, WaitingForNodes, E, Forward),
    (WaitingForNodes, WaitingForLaunch, M, Forward),
    (WaitingForLaunch, Running, W, Forward),
    (Running, Success, W, Forward),
    (Running, Failed, W, Fail),
    // Rejection at the endpoint, and system failures on the last attempt.
    (WaitingForNodes, Failed, E, Fail),
    (WaitingForLaunch, Failed, E, Fail),
    (Running, Failed, E, Fail),
    (DispatchedToEp, Failed, F, Fail),
    (WaitingForNodes, Failed, F, Fail),
    (WaitingForLaunch, Failed, F, Fail),
    (Running, Failed, F, Fail),
    // Requeues, before the function started: endpoint lost or no acknowledgement...
    (DispatchedToEp, WaitingForEp, F, Requeue),
    (WaitingForNodes, WaitingForEp, F, Requeue),
    (WaitingForLaunch, WaitingForEp, F, Requeue),
    // ...manager lost.
    (WaitingForLaunch, WaitingForNodes, E, Requeue),
    // Retries, under the running function: endpoint, manager or worker lost.
    (Running, WaitingForEp, F, Retry),
    (Running, WaitingForNodes, E, Retry),
    // Cancel from any non-terminal state.
    (Received, Cancelled, WS, Cancel),
    (WaitingForEp, Cancelled, WS, Cancel),
    (DispatchedToEp, Cancelled, WS, Cancel),
    (WaitingForNodes, Cancelled, WS, Cancel),
    (WaitingForLaunch, Cancelled, WS, Cancel),
    (Running, Cancelled, WS, Cancel),
];

fn spec(from: State, to: State, actor: Actor) -> Option<EdgeKind> {
    SPEC.iter()
        .find(|&&(f, t, a, _)| (f, t, a) == (from, to, actor))
        .map(|&(.., k)| k)
}

fn check(from: State, to: State, actor: Actor, expect: Option<EdgeKind>) {
    let got = validate(from, to, actor, 1, 3);
    match (expect, got) {
        (Some(kind), Ok(accepted)) => {
            assert_eq!(accepted.edge.kind, kind, "{from} → {to} by {actor}");
            let attempt = if kind == Retry { 2 } else { 1 };
            assert_eq!(accepted.attempt, attempt, "{from} → {to} by {actor}");
        }
        (None, Err(error)) => {
            let expected_error = if from.is_terminal() {
                TransitionError::FromTerminal { from, to }
            } else if SPEC.iter().any(|&(f, t, ..)| (f, t) == (from, to)) {
                match error {
                    TransitionError::WrongActor { actor: a, .. } if a == actor => error.clone(),
                    _ => panic!("{from} → {to} by {actor}: expected WrongActor, got {error:?}"),
                }
            } else {
                TransitionError::NoSuchEdge { from, to }
            };
            assert_eq!(error, expected_error);
        }
        (expect, got) => panic!("{from} → {to} by {actor}: expected {expect:?}, got {got:?}"),
    }
}

#[test]
fn every_from_to_actor_triple_matches_the_spec() {
    for from in State::ALL {
        for to in State::ALL {
            for actor in Actor::ALL {
                check(from, to, actor, spec(from, to, actor));
            }
        }
    }
}

#[test]
fn the_table_has_exactly_the_specified_edges() {
    let mut from_table: Vec<(State, State, Actor)> = edges()
        .flat_map(|e| e.actors.iter().map(move |&a| (e.from, e.to, a)))
        .collect();
    let mut from_spec: Vec<(State, State, Actor)> =
        SPEC.iter().map(|&(f, t, a, _)| (f, t, a)).collect();
    from_table.sort();
    from_spec.sort();
    assert_eq!(from_table, from_spec);
}

#[test]
fn terminal_states_absorb_and_pending_means_not_terminal() {
    for state in State::ALL {
        let terminal = matches!(state, Success | Failed | Cancelled);
        assert_eq!(state.is_terminal(), terminal, "{state}");
        assert_eq!(state.is_pending(), !terminal, "{state}");
        if terminal {
            assert!(lifeline_model::edges_from(state).is_empty(), "{state}");
        }
    }
}

#[test]
fn retries_count_attempts_and_stop_at_the_last() {
    // With 2 retries a task has attempts 1, 2 and 3.
    assert_eq!(
        validate(Running, WaitingForNodes, E, 1, 2).map(|a| a.attempt),
        Ok(2)
    );
    assert_eq!(
        validate(Running, WaitingForEp, F, 2, 2).map(|a| a.attempt),
        Ok(3)
    );
    assert_eq!(
        validate(Running, WaitingForNodes, E, 3, 2),
        Err(TransitionError::RetriesExhausted {
            from: Running,
            to: WaitingForNodes,
            attempt: 3,
            max_retries: 2
        })
    );
    // On the last attempt the task fails instead.
    assert_eq!(validate(Running, Failed, E, 3, 2).map(|a| a.attempt), Ok(3));
    // With no retries at all, the first system failure under a running function is final.
    assert!(matches!(
        validate(Running, WaitingForEp, F, 1, 0),
        Err(TransitionError::RetriesExhausted { .. })
    ));
    assert_eq!(
        validate(Running, Success, W, 0, 3),
        Err(TransitionError::AttemptOutOfRange {
            attempt: 0,
            max_retries: 3
        })
    );
    assert_eq!(
        validate(Running, Success, W, 5, 3),
        Err(TransitionError::AttemptOutOfRange {
            attempt: 5,
            max_retries: 3
        })
    );
}

#[test]
fn errors_explain_themselves() {
    let err = validate(Success, Running, W, 1, 3).expect_err("terminal");
    assert_eq!(
        err.to_string(),
        "success → running: the task is already success, and terminal states are final"
    );
    let err = validate(Running, Success, M, 1, 3).expect_err("wrong actor");
    assert_eq!(
        err.to_string(),
        "running → success: made by manager, but only worker may make it"
    );
    let err = validate(Received, Running, W, 1, 3).expect_err("no edge");
    assert_eq!(
        err.to_string(),
        "received → running: the life cycle has no such transition"
    );
}

#[test]
fn wire_values_round_trip_and_labels_exist() {
    for state in State::ALL {
        assert_eq!(state.wire().parse::<State>(), Ok(state));
        assert_eq!(
            serde_json::to_string(&state).expect("json"),
            format!("\"{}\"", state.wire())
        );
        assert!(!state.label().is_empty() && state.description().ends_with('.'));
    }
    for actor in Actor::ALL {
        assert_eq!(actor.wire().parse::<Actor>(), Ok(actor));
        assert_eq!(
            serde_json::to_string(&actor).expect("json"),
            format!("\"{}\"", actor.wire())
        );
        assert!(!actor.label().is_empty() && actor.description().ends_with('.'));
    }
    assert_eq!(
        "waiting_for_ep"
            .parse::<State>()
            .expect_err("bad")
            .to_string(),
        "unknown state \"waiting_for_ep\""
    );
    for e in edges() {
        assert!(!e.label.is_empty() && e.description.ends_with('.'), "{e:?}");
    }
    let index: Vec<usize> = State::ALL.iter().map(|s| s.index()).collect();
    assert_eq!(index, (0..State::COUNT).collect::<Vec<_>>());
}

#[test]
fn requeues_never_use_up_retries() {
    // On the last attempt (3 retries: attempt 4), losing a task that has not started puts it
    // back in line on the same attempt, as often as it happens...
    for (from, to, actor) in [
        (DispatchedToEp, WaitingForEp, F),
        (WaitingForNodes, WaitingForEp, F),
        (WaitingForLaunch, WaitingForEp, F),
        (WaitingForLaunch, WaitingForNodes, E),
    ] {
        let accepted = validate(from, to, actor, 4, 3).expect("a requeue is always allowed");
        assert_eq!((accepted.edge.kind, accepted.attempt), (Requeue, 4));
        assert_eq!(accepted.edge.attempt_before(4), 4);
    }
    // ...while losing a running one needs a retry, and there is none left.
    for (to, actor) in [(WaitingForEp, F), (WaitingForNodes, E)] {
        assert_eq!(
            validate(Running, to, actor, 4, 3),
            Err(TransitionError::RetriesExhausted {
                from: Running,
                to,
                attempt: 4,
                max_retries: 3
            })
        );
        let edge = lifeline_model::Edge::find(Running, to).expect("edge");
        assert_eq!(edge.attempt_before(3), 2);
    }
}

#[test]
fn storage_codes_never_change() {
    // Stores hold these numbers: changing one would silently relabel every stored row.
    let states: Vec<(State, u8)> = State::ALL.iter().map(|s| (*s, s.storage_code())).collect();
    assert_eq!(
        states,
        [
            (Received, 0),
            (WaitingForEp, 1),
            (DispatchedToEp, 2),
            (WaitingForNodes, 3),
            (WaitingForLaunch, 4),
            (Running, 5),
            (Success, 6),
            (Failed, 7),
            (Cancelled, 8),
        ]
    );
    let actors: Vec<(Actor, u8)> = Actor::ALL.iter().map(|a| (*a, a.storage_code())).collect();
    assert_eq!(actors, [(WS, 0), (F, 1), (E, 2), (M, 3), (W, 4)]);
    for s in State::ALL {
        assert_eq!(
            State::from_storage_code(i64::from(s.storage_code())),
            Some(s)
        );
    }
    for a in Actor::ALL {
        assert_eq!(
            Actor::from_storage_code(i64::from(a.storage_code())),
            Some(a)
        );
    }
    assert_eq!(State::from_storage_code(9), None);
    assert_eq!(Actor::from_storage_code(-1), None);
}

#[test]
fn a_system_failure_requeues_retries_or_fails_by_one_rule() {
    use lifeline_model::{Recovery, system_failure};
    let lost = |from, back_to, actor, attempt| {
        system_failure(from, back_to, actor, attempt, 1, "endpoint lost").expect("a decision")
    };
    // Not started: requeued on the same attempt, even on the last one.
    assert_eq!(
        lost(WaitingForLaunch, WaitingForNodes, E, 2),
        Recovery {
            to: WaitingForNodes,
            attempt: 2,
            reason: "endpoint lost".into()
        }
    );
    // Running: the next attempt while one is left...
    assert_eq!(lost(Running, WaitingForEp, F, 1).attempt, 2);
    // ...and on the last one, the failure that says why.
    let last = lost(Running, WaitingForEp, F, 2);
    assert_eq!((last.to, last.attempt), (Failed, 2));
    assert_eq!(last.reason, "endpoint lost (attempt 2, no retries left)");
    // Finished tasks are not touched.
    assert!(matches!(
        system_failure(Success, WaitingForEp, F, 1, 1, "x"),
        Err(TransitionError::FromTerminal { .. })
    ));
    // Which states are in the endpoint's hands.
    let at_endpoint: Vec<State> = State::ALL.into_iter().filter(|s| s.at_endpoint()).collect();
    assert_eq!(
        at_endpoint,
        [DispatchedToEp, WaitingForNodes, WaitingForLaunch, Running]
    );
}
