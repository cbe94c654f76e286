//! Wire compatibility: answers recorded from a running service (`scripts/record-wire`, under
//! `fixtures/wire/`) read into the model's API types and write back as the same JSON, field for
//! field. A renamed, dropped or retyped field fails here before any client notices. Also runs in
//! headless Chromium, where the dashboard reads the same types.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use lifeline_model::api::{
    BatchStatus, EndpointRegistered, ErrorBody, FunctionInfo, FunctionRegistered, Health, Submitted,
};
use lifeline_model::{EndpointSummary, Event, StatsSummary, StatusDocument, TaskPage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Reads `text` as a `T` and writes it back; the two JSON documents must be equal.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str, text: &str) {
    let recorded: Value = serde_json::from_str(text).expect("recorded JSON");
    let typed: T = serde_json::from_value(recorded.clone()).unwrap_or_else(|e| {
        panic!(
            "{name} does not read as {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let written = serde_json::to_value(&typed).expect("serializes");
    assert_eq!(
        written,
        recorded,
        "{name} reads as {} but does not write back the same",
        std::any::type_name::<T>()
    );
}

macro_rules! fixtures {
    ($($name:literal => $ty:ty),* $(,)?) => {
        /// Every recorded answer, with the type it must read as.
        const FIXTURES: &[(&str, fn(&str, &str))] = &[
            $( ($name, round_trip::<$ty>) ),*
        ];
        const TEXTS: &[&str] = &[
            $( include_str!(concat!("fixtures/wire/", $name, ".json")) ),*
        ];
    };
}

type Json = Value;

fixtures! {
    "health" => Health,
    "endpoint_registered" => EndpointRegistered,
    "endpoints" => Vec<EndpointSummary>,
    "endpoint" => EndpointSummary,
    "function_registered" => FunctionRegistered,
    "function_shell_registered" => FunctionRegistered,
    "function_python" => FunctionInfo,
    "function_shell" => FunctionInfo,
    "submitted" => Submitted,
    "task_waiting" => StatusDocument<Json>,
    "task_running" => StatusDocument<Json>,
    "task_cancelled" => StatusDocument<Json>,
    "task_success" => StatusDocument<Json>,
    "task_failed" => StatusDocument<Json>,
    "batch_status" => BatchStatus<Json>,
    "task_page" => TaskPage,
    "stats" => StatsSummary,
    "error_not_found" => ErrorBody,
    "error_bad_request" => ErrorBody,
    "error_conflict" => ErrorBody,
    "events" => Vec<Event>,
}

#[test]
fn recorded_answers_read_and_write_back_unchanged() {
    for ((name, check), text) in FIXTURES.iter().zip(TEXTS) {
        check(name, text);
    }
}

#[test]
fn the_recording_covers_every_kind_of_answer() {
    // A recording that lost its failures or its events would pass the round trip vacuously.
    let text = |name: &str| {
        let i = FIXTURES.iter().position(|(n, _)| *n == name).expect(name);
        serde_json::from_str::<Value>(TEXTS[i]).expect("JSON")
    };
    assert_eq!(text("task_success")["status"], "success");
    assert_eq!(text("task_failed")["status"], "failed");
    assert_eq!(text("task_cancelled")["status"], "cancelled");
    assert_eq!(text("task_running")["status"], "running");
    let events = text("events");
    let kinds: std::collections::BTreeSet<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds, ["endpoint", "transition"].into(), "{events:#}");
}
