//! `GET /v1/failures`: failures and retries grouped by cause, and a group's tasks listed.

mod common;

use common::{FakeEndpoint, run_to_success, spawn_app, step, task_ids};
use lifeline_model::{Actor, State};
use reqwest::Method;
use serde_json::{Value, json};

fn traceback(last: &str) -> String {
    format!("Traceback (most recent call last):\n  File \"<lifeline>\", line 2, in f\n{last}\n")
}

/// The transitions of a task that runs and fails for `reason`.
fn run_to_failure(id: &str, reason: &str) -> Vec<lifeline_protocol::Reported> {
    let mut steps = run_to_success(id, 1, "0");
    let last = steps.last_mut().expect("the end");
    last.state = State::Failed;
    last.result = None;
    last.reason = Some(reason.to_owned());
    steps
}

fn group<'a>(answer: &'a Value, key: &str) -> &'a Value {
    answer["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key} in {answer:#}"))
}

#[tokio::test]
async fn failures_are_grouped_by_cause_with_numbers_masked() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("flaky").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    agent.heartbeat().await;
    let ids = app.submit(&ep, &f, 6, Some(2)).await;
    agent.recv_tasks().await;
    let mut report = Vec::new();
    report.extend(run_to_failure(
        &ids[0],
        &traceback("ValueError: sample 17 is bad"),
    ));
    report.extend(run_to_failure(
        &ids[1],
        &traceback("ValueError: sample 23 is bad"),
    ));
    report.extend(run_to_failure(&ids[2], &traceback("KeyError: 'x'")));
    report.extend(run_to_failure(
        &ids[3],
        "walltime exceeded: the task ran longer than 2 s and its worker was killed",
    ));
    // Retried once after its manager was lost, then fine.
    let mut retried = run_to_success(&ids[4], 1, "0");
    retried.truncate(3);
    let mut lost = step(&ids[4], State::WaitingForNodes, Actor::Endpoint, 2);
    lost.reason = Some("manager lost: no heartbeat for 4 s (block 3)".into());
    retried.push(lost);
    retried.extend(run_to_success(&ids[4], 2, "0").into_iter().skip(1));
    report.extend(retried);
    report.extend(run_to_success(&ids[5], 1, "0"));
    assert!(agent.report(report).await.is_empty());
    app.wait_status(&ids[5], "success").await;

    let (status, answer) = app.get("/v1/failures").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["groups"].as_array().expect("groups").len(),
        4,
        "{answer:#}"
    );
    let value = group(&answer, "exception:ValueError: sample <n> is bad");
    assert_eq!(
        (&value["count"], &value["final_failures"], &value["retried"]),
        (&json!(2), &json!(2), &json!(0))
    );
    assert_eq!(
        value["example_task_id"],
        ids[1].as_str(),
        "the newest is the example"
    );
    assert!(
        value["example"]
            .as_str()
            .expect("example")
            .starts_with("Traceback")
    );
    assert_eq!(value["endpoints"], json!([ep]));
    assert_eq!(value["functions"], json!([f]));
    assert_eq!(group(&answer, "exception:KeyError: 'x'")["count"], 1);
    let walltime = group(
        &answer,
        "walltime:walltime exceeded: the task ran longer than <n> s and its worker was killed",
    );
    assert_eq!(walltime["reason"], "walltime");
    let lost = group(
        &answer,
        "manager-lost:manager lost: no heartbeat for <n> s (block <n>)",
    );
    assert_eq!(
        (&lost["retried"], &lost["final_failures"]),
        (&json!(1), &json!(0))
    );
    assert_eq!(answer["groups"][0]["count"], 2, "the largest group first");

    // A group's tasks, through the task list.
    let key = "exception:ValueError: sample <n> is bad";
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("failure", key)
        .finish();
    let (status, page) = app.get(&format!("/v1/tasks?{query}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(task_ids(&page), [ids[1].clone(), ids[0].clone()]);

    // Filters: another endpoint, a later time, another user: nothing.
    let (other, _) = app.endpoint("quiet").await;
    let (_, none) = app.get(&format!("/v1/failures?endpoint_id={other}")).await;
    assert_eq!(none["groups"], json!([]));
    let later = lifeline_service::now().as_secs_f64() + 60.0;
    let (_, none) = app.get(&format!("/v1/failures?since={later}")).await;
    assert_eq!(none["groups"], json!([]));
    let (_, carol) = app.post("/v1/users", json!({ "name": "carol" })).await;
    let carol = carol["token"].as_str().expect("token").to_owned();
    let (_, none) = app.call_as(&carol, Method::GET, "/v1/failures", None).await;
    assert_eq!(none["groups"], json!([]));
}
