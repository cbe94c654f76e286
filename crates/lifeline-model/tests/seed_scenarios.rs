//! The five status queries of the seed document, built by folding transition logs and compared
//! with the documents in `fixtures/`. Also runs in headless Chromium.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use lifeline_model::{
    Actor, EndpointId, FoldError, FunctionId, State, StatusDocument, TaskId, TaskMeta, Timestamp,
    TransitionError, TransitionRecord,
};
use serde_json::Value;

use Actor::{Endpoint as E, Forwarder as F, Manager as M, WebService as WS, Worker as W};
use State::*;

const ZERO_DIVISION: &str = "Traceback (most recent call last):\n  File \"<lifeline function divide>\", line 2, in divide\n    return a / b\n           ~~^~~\nZeroDivisionError: division by zero";
const FAILED_IMPORT: &str = "Traceback (most recent call last):\n  File \"<lifeline function analyse>\", line 2, in analyse\n    import nonexistent_module\nModuleNotFoundError: No module named 'nonexistent_module'";

fn meta() -> TaskMeta {
    TaskMeta {
        task_id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
            .parse::<TaskId>()
            .expect("id"),
        endpoint_id: "4b1c7e9a-0d2f-4a6b-9c8d-7e6f5a4b3c2d"
            .parse::<EndpointId>()
            .expect("id"),
        function_id: "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
            .parse::<FunctionId>()
            .expect("id"),
        max_retries: 3,
    }
}

fn log(steps: &[(State, Actor, u32, f64, Option<&str>)]) -> Vec<TransitionRecord> {
    steps
        .iter()
        .map(|&(state, actor, attempt, secs, reason)| TransitionRecord {
            state,
            actor,
            attempt,
            at: Timestamp::from_secs_f64(secs),
            reason: reason.map(str::to_owned),
        })
        .collect()
}

/// Received, dispatched, acknowledged, placed and started, a few milliseconds apart.
fn up_to_running() -> Vec<TransitionRecord> {
    log(&[
        (Received, WS, 1, 1623881816.301, None),
        (DispatchedToEp, F, 1, 1623881816.302, None),
        (WaitingForNodes, E, 1, 1623881816.305, None),
        (WaitingForLaunch, M, 1, 1623881816.306, None),
        (Running, W, 1, 1623881816.307, None),
    ])
}

fn finished(state: State, reason: Option<&str>) -> Vec<TransitionRecord> {
    let mut l = up_to_running();
    l.extend(log(&[(state, W, 1, 1623881816.333504, reason)]));
    l
}

fn check(fixture: &str, log: Vec<TransitionRecord>, result: Option<Value>) {
    let doc = StatusDocument::build(meta(), log, result).expect("the log folds");
    let expected: Value = serde_json::from_str(fixture).expect("fixture is JSON");
    assert_eq!(serde_json::to_value(&doc).expect("serialises"), expected);
    let back: StatusDocument<Value> = serde_json::from_value(expected).expect("deserialises");
    assert_eq!(back, doc);
}

#[test]
fn completed_task() {
    let result = Some(Value::String("Hello World!".into()));
    check(
        include_str!("fixtures/completed.json"),
        finished(Success, None),
        result,
    );
}

#[test]
fn task_in_process() {
    check(include_str!("fixtures/running.json"), up_to_running(), None);
}

#[test]
fn task_submitted_to_an_offline_endpoint() {
    let l = log(&[
        (Received, WS, 1, 1623881816.301, None),
        (WaitingForEp, F, 1, 1623881816.302, None),
    ]);
    check(include_str!("fixtures/waiting-for-ep.json"), l, None);
}

#[test]
fn task_dividing_by_zero() {
    check(
        include_str!("fixtures/zero-division.json"),
        finished(Failed, Some(ZERO_DIVISION)),
        None,
    );
}

#[test]
fn task_with_a_failed_import() {
    check(
        include_str!("fixtures/failed-import.json"),
        finished(Failed, Some(FAILED_IMPORT)),
        None,
    );
}

#[test]
fn exception_lists_every_attempt_after_retries() {
    let l = log(&[
        (Received, WS, 1, 10.0, None),
        (DispatchedToEp, F, 1, 11.0, None),
        (WaitingForNodes, E, 1, 12.0, None),
        (WaitingForLaunch, M, 1, 13.0, None),
        (Running, W, 1, 14.0, None),
        (
            WaitingForNodes,
            E,
            2,
            15.0,
            Some("worker lost: process 41 killed by signal 9"),
        ),
        (WaitingForLaunch, M, 2, 16.0, None),
        (Running, W, 2, 17.0, None),
        (
            WaitingForEp,
            F,
            3,
            18.0,
            Some("endpoint lost: no heartbeat for 120 s"),
        ),
        (DispatchedToEp, F, 3, 19.0, None),
        (
            Failed,
            F,
            3,
            20.0,
            Some("dispatch not acknowledged within 30 s"),
        ),
    ]);
    let doc = StatusDocument::<Value>::build(
        TaskMeta {
            max_retries: 2,
            ..meta()
        },
        l,
        None,
    )
    .expect("folds");
    assert_eq!(doc.status, Failed);
    assert_eq!(doc.details.attempt, 3);
    assert_eq!(doc.completion_t.as_deref(), Some("20.000000"));
    assert_eq!(
        doc.exception.as_deref(),
        Some(
            "failed after 3 attempts\n\n--- attempt 1 ---\nworker lost: process 41 killed by signal 9\n\n\
             --- attempt 2 ---\nendpoint lost: no heartbeat for 120 s\n\n\
             --- attempt 3 ---\ndispatch not acknowledged within 30 s"
        )
    );
}

#[test]
fn illegal_logs_do_not_fold() {
    let bad_start = log(&[(Running, W, 1, 1.0, None)]);
    assert_eq!(
        StatusDocument::<Value>::build(meta(), bad_start, None).err(),
        Some(FoldError::BadStart)
    );
    assert_eq!(
        StatusDocument::<Value>::build(meta(), vec![], None).err(),
        Some(FoldError::BadStart)
    );

    let mut skipped = finished(Success, None);
    skipped.remove(2);
    assert_eq!(
        StatusDocument::<Value>::build(meta(), skipped, None).err(),
        Some(FoldError::Illegal {
            index: 2,
            error: TransitionError::NoSuchEdge {
                from: DispatchedToEp,
                to: WaitingForLaunch
            }
        })
    );

    let mut wrong_attempt = up_to_running();
    wrong_attempt.extend(log(&[(WaitingForNodes, E, 1, 2.0, None)]));
    assert_eq!(
        StatusDocument::<Value>::build(meta(), wrong_attempt, None).err(),
        Some(FoldError::Illegal {
            index: 5,
            error: TransitionError::AttemptMismatch {
                state: WaitingForNodes,
                expected: 2,
                got: 1
            }
        })
    );
}

#[test]
fn result_is_shown_only_on_success() {
    let doc = StatusDocument::build(meta(), up_to_running(), Some(Value::from(7))).expect("folds");
    assert_eq!(doc.result, None);
}
