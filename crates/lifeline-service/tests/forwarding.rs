//! Tasks driven through every state by a client speaking the real endpoint protocol.

mod common;

use common::{FakeEndpoint, run_to_success, spawn_app, step, task_ids};
use lifeline_model::{Actor, State};
use lifeline_protocol::ToEndpoint;
use serde_json::json;

#[tokio::test]
async fn a_task_for_an_offline_endpoint_waits_for_it() {
    let app = spawn_app().await;
    let (ep, _) = app.endpoint("offline").await;
    let f = app.python_function().await;
    let ids = app.submit(&ep, &f, 1, None).await;
    let doc = app.task(&ids[0]).await;
    assert_eq!(doc["pending"], true);
    assert_eq!(doc["status"], "waiting-for-ep");
    assert!(doc.get("completion_t").is_none());
    let states: Vec<&str> = doc["details"]["task_transitions"]
        .as_array()
        .expect("log")
        .iter()
        .map(|t| t["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["received", "waiting-for-ep"]);
}

#[tokio::test]
async fn a_connected_endpoint_takes_a_task_through_every_state() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("site").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    agent.heartbeat().await;
    app.wait_task_endpoint_online(&ep).await;

    let ids = app.submit(&ep, &f, 1, None).await;
    let message = agent.recv().await;
    let ToEndpoint::Tasks { functions, tasks } = message else {
        panic!("expected tasks, got {message:?}")
    };
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task_id.to_string(), ids[0]);
    assert_eq!(tasks[0].attempt, 1);
    assert_eq!(tasks[0].args.get(), "[0]");
    assert_eq!(
        functions.len(),
        1,
        "the function's definition comes with its first task"
    );
    assert_eq!(app.task(&ids[0]).await["status"], "dispatched-to-ep");

    let rejected = agent
        .report(run_to_success(&ids[0], 1, "\"Hello World!\""))
        .await;
    assert!(rejected.is_empty(), "{rejected:?}");
    let doc = app.task(&ids[0]).await;
    assert_eq!(doc["pending"], false);
    assert_eq!(doc["status"], "success");
    assert_eq!(doc["result"], "Hello World!");
    let completion: f64 = doc["completion_t"]
        .as_str()
        .expect("completion_t")
        .parse()
        .expect("epoch seconds");
    assert!(completion > 1.6e9);
    let log: Vec<(String, String)> = doc["details"]["task_transitions"]
        .as_array()
        .expect("log")
        .iter()
        .map(|t| {
            (
                t["state"].as_str().expect("s").to_owned(),
                t["actor"].as_str().expect("a").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("received", "web-service"),
        ("dispatched-to-ep", "forwarder"),
        ("waiting-for-nodes", "endpoint"),
        ("waiting-for-launch", "manager"),
        ("running", "worker"),
        ("success", "worker"),
    ];
    assert_eq!(log, expected.map(|(s, a)| (s.to_owned(), a.to_owned())));

    // A second batch of the same function does not resend its definition.
    app.submit(&ep, &f, 2, None).await;
    let ToEndpoint::Tasks { functions, tasks } = agent.recv().await else {
        panic!("expected tasks")
    };
    assert!(functions.is_empty());
    assert_eq!(tasks.len(), 2);
}

#[tokio::test]
async fn waiting_tasks_are_dispatched_when_their_endpoint_connects() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("late").await;
    let f = app.python_function().await;
    let ids = app.submit(&ep, &f, 3, None).await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let tasks = agent.recv_tasks().await;
    let mut got: Vec<String> = tasks.iter().map(|t| t.task_id.to_string()).collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
    for id in &ids {
        agent.report(run_to_success(id, 1, "1")).await;
        let doc = app.wait_status(id, "success").await;
        let states: Vec<&str> = doc["details"]["task_transitions"]
            .as_array()
            .expect("log")
            .iter()
            .map(|t| t["state"].as_str().expect("s"))
            .collect();
        assert_eq!(
            &states[..3],
            ["received", "waiting-for-ep", "dispatched-to-ep"]
        );
    }
}

#[tokio::test]
async fn a_lost_endpoint_s_tasks_are_retried_and_finish_on_attempt_two() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("flaky").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    agent.heartbeat().await;
    let ids = app.submit(&ep, &f, 1, Some(2)).await;
    agent.recv_tasks().await;
    agent
        .report(vec![
            step(&ids[0], State::WaitingForNodes, Actor::Endpoint, 1),
            step(&ids[0], State::WaitingForLaunch, Actor::Manager, 1),
            step(&ids[0], State::Running, Actor::Worker, 1),
        ])
        .await;
    // The endpoint goes silent: after the heartbeat threshold the task starts attempt 2.
    agent.close().await;
    let doc = app
        .wait_task(&ids[0], "retried", |d| d["details"]["attempt"] == 2)
        .await;
    assert_eq!(doc["status"], "waiting-for-ep");
    let last = doc["details"]["task_transitions"]
        .as_array()
        .expect("log")
        .last()
        .expect("entry")
        .clone();
    assert_eq!(last["actor"], "forwarder");
    assert!(
        last["reason"]
            .as_str()
            .expect("reason")
            .contains("endpoint lost"),
        "{last}"
    );
    let (_, endpoints) = app.get(&format!("/v1/endpoints/{ep}")).await;
    assert_eq!(endpoints["status"], "offline");

    // A new connection gets the task again, on attempt 2, and finishes it.
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let tasks = agent.recv_tasks().await;
    assert_eq!(tasks[0].attempt, 2);
    // A late report from attempt 1 is refused.
    let stale = agent
        .report(vec![step(&ids[0], State::Success, Actor::Worker, 1)])
        .await;
    assert_eq!(stale.len(), 1, "{stale:?}");
    let rejected = agent.report(run_to_success(&ids[0], 2, "42")).await;
    assert!(rejected.is_empty(), "{rejected:?}");
    let doc = app.task(&ids[0]).await;
    assert_eq!(doc["status"], "success");
    assert_eq!(doc["result"], 42);
    assert_eq!(doc["details"]["attempt"], 2);
    let attempts: Vec<u64> = doc["details"]["task_transitions"]
        .as_array()
        .expect("log")
        .iter()
        .map(|t| t["attempt"].as_u64().expect("n"))
        .collect();
    assert_eq!(attempts, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2], "{doc:#}");
}

#[tokio::test]
async fn exhausted_retries_fail_the_task_with_every_attempt_s_reason() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("doomed").await;
    let f = app.python_function().await;
    let ids = app.submit(&ep, &f, 1, Some(1)).await;
    for attempt in 1..=2 {
        let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
        let tasks = agent.recv_tasks().await;
        assert_eq!(tasks[0].attempt, attempt);
        // Each attempt dies running (a loss before the function starts would only requeue it).
        agent
            .report(vec![
                step(&ids[0], State::WaitingForNodes, Actor::Endpoint, attempt),
                step(&ids[0], State::WaitingForLaunch, Actor::Manager, attempt),
                step(&ids[0], State::Running, Actor::Worker, attempt),
            ])
            .await;
        agent.close().await;
        app.wait_task(&ids[0], "past this attempt", |d| {
            d["details"]["attempt"] != attempt || d["pending"] == false
        })
        .await;
    }
    let doc = app.wait_status(&ids[0], "failed").await;
    assert_eq!(doc["pending"], false);
    assert!(doc["completion_t"].is_string());
    let exception = doc["exception"].as_str().expect("exception");
    assert!(
        exception.starts_with("failed after 2 attempts"),
        "{exception}"
    );
    assert!(
        exception.contains("--- attempt 1 ---\nendpoint lost"),
        "{exception}"
    );
    assert!(
        exception.contains("--- attempt 2 ---\nendpoint lost"),
        "{exception}"
    );
    assert!(exception.contains("no retries left"), "{exception}");
}

#[tokio::test]
async fn an_unacknowledged_dispatch_is_requeued() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("mute").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let ids = app.submit(&ep, &f, 1, None).await;
    agent.recv_tasks().await;
    // Keep the endpoint alive but never acknowledge: the dispatch times out and the task is
    // requeued on the same attempt (nothing ran), then dispatched again on the same connection.
    let doc = loop {
        agent.heartbeat().await;
        let doc = app.task(&ids[0]).await;
        let log = doc["details"]["task_transitions"].as_array().expect("log");
        if log.len() > 3 && doc["status"] == "dispatched-to-ep" {
            break doc;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(doc["details"]["attempt"], 1, "{doc:#}");
    let reasons: Vec<&str> = doc["details"]["task_transitions"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|t| t["reason"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not acknowledged")),
        "{reasons:?}"
    );
    let again = agent.recv_tasks().await;
    assert_eq!(again[0].attempt, 1);
}

#[tokio::test]
async fn illegal_duplicate_and_foreign_reports_change_nothing() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("a").await;
    let (other, other_token) = app.endpoint("b").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let ids = app.submit(&ep, &f, 1, None).await;
    agent.recv_tasks().await;

    // Skipping straight to success is not a transition of the life cycle.
    let rejected = agent
        .report(vec![step(&ids[0], State::Success, Actor::Worker, 1)])
        .await;
    assert_eq!(rejected.len(), 1);
    assert!(
        rejected[0].message.contains("no such transition"),
        "{}",
        rejected[0].message
    );
    // The wrong actor.
    let rejected = agent
        .report(vec![step(
            &ids[0],
            State::WaitingForNodes,
            Actor::Worker,
            1,
        )])
        .await;
    assert!(
        rejected[0].message.contains("only endpoint may make it"),
        "{}",
        rejected[0].message
    );
    assert_eq!(app.task(&ids[0]).await["status"], "dispatched-to-ep");

    // Another endpoint cannot report this endpoint's task.
    let mut intruder = FakeEndpoint::connect(&app, &other, &other_token).await;
    let rejected = intruder
        .report(vec![step(
            &ids[0],
            State::WaitingForNodes,
            Actor::Endpoint,
            1,
        )])
        .await;
    assert_eq!(rejected[0].message, "the task belongs to another endpoint");

    // A replayed report (the same transitions again) is acknowledged and ignored.
    let path = run_to_success(&ids[0], 1, "\"once\"");
    assert!(agent.report(path.clone()).await.is_empty());
    assert!(agent.report(path).await.is_empty());
    let doc = app.task(&ids[0]).await;
    assert_eq!(
        doc["details"]["task_transitions"]
            .as_array()
            .expect("log")
            .len(),
        6
    );
    assert_eq!(doc["result"], "once");

    let (_, stats) = app.get("/v1/stats").await;
    assert_eq!(stats["illegal_reports"], 3);

    // Garbage on the socket gets an error message and the session goes on.
    agent
        .send_text("{\"report\":{\"batch\":\"x\"}}".into())
        .await;
    let ToEndpoint::Error { message } = agent.recv().await else {
        panic!("expected an error")
    };
    assert!(message.contains("not a valid message"), "{message}");
    agent.heartbeat().await;
    let ids2 = app.submit(&ep, &f, 1, None).await;
    assert_eq!(agent.recv_tasks().await[0].task_id.to_string(), ids2[0]);
}

#[tokio::test]
async fn a_replayed_report_never_moves_a_task_back_to_a_state_it_left() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("site").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let ids = app.submit(&ep, &f, 1, None).await;
    agent.recv_tasks().await;
    let id = &ids[0];
    let log_length = |doc: &serde_json::Value| {
        doc["details"]["task_transitions"]
            .as_array()
            .expect("log")
            .len()
    };

    // Queued and launched, then its manager is lost before the function starts: the task waits
    // for a node again on the same attempt.
    let first = vec![
        step(id, State::WaitingForNodes, Actor::Endpoint, 1),
        step(id, State::WaitingForLaunch, Actor::Manager, 1),
    ];
    assert!(agent.report(first.clone()).await.is_empty());
    let mut lost = step(id, State::WaitingForNodes, Actor::Endpoint, 1);
    lost.reason = Some("manager lost".into());
    assert!(agent.report(vec![lost.clone()]).await.is_empty());

    // The launch from before the loss, sent again (an endpoint replays what it was not
    // acknowledged for), is acknowledged and changes nothing.
    assert!(agent.report(first[1..].to_vec()).await.is_empty());
    let doc = app.task(id).await;
    assert_eq!(doc["status"], "waiting-for-nodes");
    assert_eq!(log_length(&doc), 5);

    // Launched on another manager; the loss, sent again, leaves it there too.
    assert!(
        agent
            .report(vec![step(id, State::WaitingForLaunch, Actor::Manager, 1)])
            .await
            .is_empty()
    );
    assert!(agent.report(vec![lost]).await.is_empty());
    let doc = app.task(id).await;
    assert_eq!(doc["status"], "waiting-for-launch");
    assert_eq!(log_length(&doc), 6);

    // And the task finishes on its first attempt.
    let path = run_to_success(id, 1, "\"done\"");
    assert!(agent.report(path[2..].to_vec()).await.is_empty());
    let doc = app.task(id).await;
    assert_eq!(doc["status"], "success");
    assert_eq!(doc["result"], "done");
    assert_eq!(log_length(&doc), 8);
    let (_, stats) = app.get("/v1/stats").await;
    assert_eq!(stats["illegal_reports"], 0);
}

#[tokio::test]
async fn an_oversized_result_fails_the_task() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("big").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let ids = app.submit(&ep, &f, 1, None).await;
    agent.recv_tasks().await;
    let big = format!("\"{}\"", "x".repeat(100 * 1024));
    assert!(
        agent
            .report(run_to_success(&ids[0], 1, &big))
            .await
            .is_empty()
    );
    let doc = app.task(&ids[0]).await;
    assert_eq!(doc["status"], "failed");
    assert!(
        doc["exception"]
            .as_str()
            .expect("exception")
            .starts_with("MaxResultSizeExceeded")
    );
}

#[tokio::test]
async fn large_results_read_back_whole_one_at_a_time_and_together() {
    // One 60 KiB document is read on the request's thread, two together (120 KiB) on the
    // blocking pool: both ways give the stored result.
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("large").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let ids = app.submit(&ep, &f, 2, None).await;
    agent.recv_tasks().await;
    let results: Vec<String> = ["a", "b"].iter().map(|c| c.repeat(60 * 1024)).collect();
    for (id, text) in ids.iter().zip(&results) {
        let json = serde_json::to_string(text).expect("json");
        assert!(agent.report(run_to_success(id, 1, &json)).await.is_empty());
    }
    for (id, text) in ids.iter().zip(&results) {
        let doc = app.task(id).await;
        assert_eq!(doc["status"], "success", "{id}");
        assert_eq!(doc["result"].as_str(), Some(text.as_str()));
    }
    let (status, batch) = app
        .post("/v1/tasks/batch_status?wait=1", json!({ "task_ids": ids }))
        .await;
    assert_eq!(status, 200, "{batch}");
    for (id, text) in ids.iter().zip(&results) {
        assert_eq!(batch["results"][id]["result"].as_str(), Some(text.as_str()));
    }
}

#[tokio::test]
async fn cancelling_a_dispatched_task_tells_the_endpoint() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("c").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let ids = app.submit(&ep, &f, 1, None).await;
    agent.recv_tasks().await;
    agent
        .report(vec![step(
            &ids[0],
            State::WaitingForNodes,
            Actor::Endpoint,
            1,
        )])
        .await;
    let (status, doc) = app
        .post(&format!("/v1/tasks/{}/cancel", ids[0]), json!({}))
        .await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["status"], "cancelled");
    assert_eq!(doc["pending"], false);
    loop {
        if let ToEndpoint::Cancel { task_ids } = agent.recv().await {
            assert_eq!(task_ids[0].to_string(), ids[0]);
            break;
        }
    }
    // The endpoint's late report for it is refused: cancelled absorbs.
    let rejected = agent
        .report(vec![step(
            &ids[0],
            State::WaitingForLaunch,
            Actor::Manager,
            1,
        )])
        .await;
    assert!(
        rejected[0].message.contains("terminal"),
        "{}",
        rejected[0].message
    );
    let (status, body) = app
        .post(&format!("/v1/tasks/{}/cancel", ids[0]), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn an_agent_that_restarted_without_its_tasks_gets_them_requeued() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("restarts").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let ids = app.submit(&ep, &f, 2, None).await;
    agent.recv_tasks().await;
    for id in &ids {
        agent
            .report(vec![step(id, State::WaitingForNodes, Actor::Endpoint, 1)])
            .await;
    }
    agent.close().await;
    // It comes back at once, still holding the first task but not the second.
    let mut agent = FakeEndpoint::connect_holding(&app, &ep, &token, &ids[..1]).await;
    let tasks = agent.recv_tasks().await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task_id.to_string(), ids[1]);
    // It never started: requeued on the same attempt, no retry used.
    assert_eq!(tasks[0].attempt, 1);
    let kept = app.task(&ids[0]).await;
    assert_eq!(kept["status"], "waiting-for-nodes");
    assert_eq!(kept["details"]["attempt"], 1);
    let lost = app.task(&ids[1]).await;
    let reasons: Vec<&str> = lost["details"]["task_transitions"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|t| t["reason"].as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("reconnected without this task")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_connection_must_start_with_hello() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("rude").await;
    let mut req = format!("ws://{}/v1/endpoints/{ep}/connect", app.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connects");
    ws.send(Message::Text("garbage".into()))
        .await
        .expect("send");
    let Some(Ok(Message::Text(text))) = ws.next().await else {
        panic!("expected an error message")
    };
    let reply: ToEndpoint = serde_json::from_str(&text).expect("protocol");
    let ToEndpoint::Error { message } = reply else {
        panic!("expected an error")
    };
    assert!(message.contains("not a valid message"), "{message}");
    let (_, endpoint) = app.get(&format!("/v1/endpoints/{ep}")).await;
    assert_eq!(endpoint["online"], false);
}

#[tokio::test]
async fn tasks_are_listed_by_the_edges_they_took() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("site").await;
    let f = app.python_function().await;
    let ids = app.submit(&ep, &f, 3, Some(2)).await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    agent.recv_tasks().await;
    // The first succeeds; the second is retried once from running, then succeeds; the third
    // waits for nodes.
    assert!(
        agent
            .report(run_to_success(&ids[0], 1, "1"))
            .await
            .is_empty()
    );
    let mut second = run_to_success(&ids[1], 1, "2");
    second.truncate(3);
    second.push(step(&ids[1], State::WaitingForNodes, Actor::Endpoint, 2));
    second.extend(run_to_success(&ids[1], 2, "2").into_iter().skip(1));
    assert!(agent.report(second).await.is_empty());
    assert!(
        agent
            .report(vec![step(
                &ids[2],
                State::WaitingForNodes,
                Actor::Endpoint,
                1
            )])
            .await
            .is_empty()
    );

    let edge = |e: &str| format!("/v1/tasks?edge={}", e.replace('>', "%3E"));
    let (status, page) = app.get(&edge("running>success")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        task_ids(&page),
        [ids[1].clone(), ids[0].clone()],
        "newest crossing first"
    );
    let (_, page) = app.get(&edge("running>waiting-for-nodes")).await;
    assert_eq!(task_ids(&page), [ids[1].clone()]);
    let (_, page) = app.get(&edge("dispatched-to-ep>waiting-for-nodes")).await;
    assert_eq!(task_ids(&page).len(), 3);
    // With the other filters, and a page at a time.
    let (_, page) = app
        .get(&format!(
            "{}&state=waiting-for-nodes",
            edge("dispatched-to-ep>waiting-for-nodes")
        ))
        .await;
    assert_eq!(task_ids(&page), [ids[2].clone()]);
    let (_, first) = app
        .get(&format!(
            "{}&limit=2",
            edge("dispatched-to-ep>waiting-for-nodes")
        ))
        .await;
    assert_eq!(task_ids(&first).len(), 2);
    let cursor = first["next_cursor"].as_str().expect("more").to_owned();
    let (_, rest) = app
        .get(&format!(
            "{}&limit=2&cursor={cursor}",
            edge("dispatched-to-ep>waiting-for-nodes")
        ))
        .await;
    assert_eq!(task_ids(&rest).len(), 1);
    assert!(!task_ids(&first).contains(&task_ids(&rest)[0]));
    // Not an edge of the life cycle, or not an edge at all.
    for bad in ["running>received", "running", "running>nowhere"] {
        let (status, body) = app.get(&edge(bad)).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_edge", "{body}");
    }
}

#[tokio::test]
async fn a_status_request_can_wait_for_the_end() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("site").await;
    let f = app.python_function().await;
    let ids = app.submit(&ep, &f, 2, None).await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    agent.recv_tasks().await;

    // A wait that runs out answers the pending document.
    let (status, doc) = app.get(&format!("/v1/tasks/{}?wait=0.2", ids[0])).await;
    assert_eq!(
        (status, doc["pending"].as_bool()),
        (200, Some(true)),
        "{doc}"
    );

    // A waiting request is still open while the task runs, and answers its end.
    let path = format!("/v1/tasks/{}?wait=30", ids[0]);
    let one = app.get(&path);
    let both = app.call(
        reqwest::Method::POST,
        "/v1/tasks/batch_status?wait=30",
        Some(json!({ "task_ids": ids })),
    );
    tokio::pin!(one);
    tokio::pin!(both);
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), &mut one).await;
    assert!(early.is_err(), "answered before the task ended: {early:?}");
    assert!(
        agent
            .report(run_to_success(&ids[0], 1, "1"))
            .await
            .is_empty()
    );
    let (status, doc) = one.await;
    assert_eq!(status, 200);
    assert_eq!(doc["status"], "success", "{doc}");
    // The batch waits for every task it asked about.
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), &mut both).await;
    assert!(early.is_err(), "answered with a task still running");
    assert!(
        agent
            .report(run_to_success(&ids[1], 1, "2"))
            .await
            .is_empty()
    );
    let (status, batch) = both.await;
    assert_eq!(status, 200);
    for id in &ids {
        assert_eq!(batch["results"][id]["status"], "success", "{batch}");
    }
    let (status, body) = app.get(&format!("/v1/tasks/{}?wait=61", ids[0])).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn an_endpoint_is_sent_no_more_than_its_window_and_the_rest_follow_oldest_first() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("small").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect_with(&app, &ep, &token, &[], Some(3)).await;
    agent.heartbeat().await;
    app.wait_task_endpoint_online(&ep).await;

    let ids = app.submit(&ep, &f, 5, None).await;
    let sent: Vec<String> = agent
        .recv_tasks()
        .await
        .iter()
        .map(|t| t.task_id.to_string())
        .collect();
    assert_eq!(sent, ids[..3], "the window's worth, oldest first");
    for id in &ids[3..] {
        let doc = app.task(id).await;
        assert_eq!(doc["status"], "waiting-for-ep", "{doc}");
        let last = doc["details"]["task_transitions"]
            .as_array()
            .and_then(|log| log.last())
            .expect("a transition");
        assert_eq!(
            last["reason"], "queued at the service: the endpoint takes 3 tasks at once",
            "{doc}"
        );
    }
    // A later submission queues behind the waiting ones even though nothing is in its way yet.
    let later = app.submit(&ep, &f, 1, None).await;
    assert_eq!(app.task(&later[0]).await["status"], "waiting-for-ep");

    // Each finished task makes room for the oldest waiting one.
    let rejected = agent.report(run_to_success(&ids[0], 1, "0")).await;
    assert!(rejected.is_empty(), "{rejected:?}");
    let next = agent.recv_tasks().await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].task_id.to_string(), ids[3]);

    let mut finished = run_to_success(&ids[1], 1, "1");
    finished.extend(run_to_success(&ids[2], 1, "2"));
    assert!(agent.report(finished).await.is_empty());
    let mut sent = Vec::new();
    while sent.len() < 2 {
        sent.extend(
            agent
                .recv_tasks()
                .await
                .iter()
                .map(|t| t.task_id.to_string()),
        );
    }
    assert_eq!(sent, [ids[4].clone(), later[0].clone()]);
    for id in [&ids[3], &ids[4], &later[0]] {
        assert_eq!(app.task(id).await["status"], "dispatched-to-ep");
    }
}

#[tokio::test]
async fn a_window_of_zero_is_taken_as_one() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("hostile").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect_with(&app, &ep, &token, &[], Some(0)).await;
    agent.heartbeat().await;
    app.wait_task_endpoint_online(&ep).await;
    let ids = app.submit(&ep, &f, 2, None).await;
    let sent = agent.recv_tasks().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].task_id.to_string(), ids[0]);
    assert_eq!(app.task(&ids[1]).await["status"], "waiting-for-ep");
}
