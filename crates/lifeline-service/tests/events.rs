//! The live event stream and durability: resuming after a dropped connection delivers every
//! event exactly once, and a restart in the middle of a run loses nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{EventReader, FakeEndpoint, run_to_success, spawn_app, spawn_with};
use lifeline_model::{Actor, State};
use serde_json::json;

#[tokio::test]
async fn resuming_with_last_event_id_delivers_every_event_exactly_once() {
    let app = spawn_app().await;
    let (ep, _) = app.endpoint("e").await;
    let f = app.python_function().await;

    let mut stream = EventReader::open(&app, "?after=0", None).await;
    let first = app.submit(&ep, &f, 5, None).await;
    // Each task makes two events: received, then waiting-for-ep.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(stream.next().await);
    }
    let last_seen = seen.last().expect("events").id;
    drop(stream);

    // While disconnected: more tasks and a cancellation.
    let second = app.submit(&ep, &f, 7, None).await;
    app.post(&format!("/v1/tasks/{}/cancel", first[0]), json!({}))
        .await;

    let mut resumed = EventReader::open(&app, "", Some(last_seen)).await;
    let expected_total = 2 * 12 + 1;
    while seen.len() < expected_total {
        seen.push(resumed.next().await);
    }
    let ids: Vec<u64> = seen.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=expected_total as u64).collect::<Vec<_>>(),
        "gap-free, in order, no duplicates"
    );
    for e in &seen {
        assert_eq!(e.data["seq"], e.id);
        assert_eq!(e.data["type"], "transition");
        // A task's first event names its submission, live and replayed alike.
        assert_eq!(
            e.data["task_group_id"].is_string(),
            e.data["to"] == "received",
            "{}",
            e.data
        );
    }
    let last = &seen.last().expect("event").data;
    assert_eq!(last["to"], "cancelled");
    assert_eq!(last["from"], "waiting-for-ep");
    assert_eq!(last["actor"], "web-service");
    let _ = second;

    // Live events keep coming on the resumed stream.
    app.submit(&ep, &f, 1, None).await;
    assert_eq!(resumed.next().await.id, expected_total as u64 + 1);
}

#[tokio::test]
async fn the_stream_filters_by_endpoint_and_reports_endpoint_status() {
    let app = spawn_app().await;
    let (a, token_a) = app.endpoint("a").await;
    let (b, _) = app.endpoint("b").await;
    let f = app.python_function().await;
    let mut only_a = EventReader::open(&app, &format!("?endpoint_id={a}"), None).await;
    app.submit(&b, &f, 3, None).await;
    app.submit(&a, &f, 1, None).await;
    let e = only_a.next().await;
    assert_eq!(e.data["endpoint_id"], a.as_str());
    assert_eq!(e.data["to"], "received");

    // The endpoint connects: an `endpoint` event says it is online, then its task moves on.
    let mut agent = FakeEndpoint::connect(&app, &a, &token_a).await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let e = only_a.next().await;
        assert_eq!(e.data["endpoint_id"], a.as_str());
        kinds.push((
            e.data["type"].as_str().expect("type").to_owned(),
            e.data["to"].as_str().unwrap_or("").to_owned(),
            e.data["online"].as_bool(),
        ));
    }
    assert!(
        kinds.contains(&("endpoint".into(), String::new(), Some(true))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("transition".into(), "dispatched-to-ep".into(), None)),
        "{kinds:?}"
    );
    agent.recv_tasks().await;
    agent.close().await;
    // Silent past the threshold: offline.
    loop {
        let e = only_a.next().await;
        if e.data["type"] == "endpoint" {
            assert_eq!(e.data["online"], false);
            break;
        }
    }
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_run_loses_nothing() {
    let mut app = spawn_app().await;
    let dir = app.take_dir().expect("temp dir");
    let (ep, token) = app.endpoint("site").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    agent.heartbeat().await;
    let ids = app.submit(&ep, &f, 20, None).await;
    let tasks = agent.recv_tasks().await;
    assert_eq!(tasks.len(), 20);
    for id in &ids[..10] {
        assert!(agent.report(run_to_success(id, 1, "7")).await.is_empty());
    }
    for id in &ids[10..] {
        agent
            .report(vec![common::step(
                id,
                State::WaitingForNodes,
                Actor::Endpoint,
                1,
            )])
            .await;
    }
    let before: Vec<serde_json::Value> = {
        let mut docs = Vec::new();
        for id in &ids {
            docs.push(app.task(id).await);
        }
        docs
    };
    let (_, stats_before) = app.get("/v1/stats").await;
    let token_before = app.token.clone();
    agent.close().await;
    app.stop().await;

    let settings = common::fast_settings(dir.path().to_path_buf());
    let app = spawn_with(settings).await;
    assert_eq!(app.token, token_before, "the user token survives");
    for (id, doc) in ids.iter().zip(&before) {
        let after = app.task(id).await;
        if doc["status"] == "success" {
            assert_eq!(&after, doc, "finished tasks are unchanged");
        } else {
            assert_eq!(
                after["details"]["task_transitions"]
                    .as_array()
                    .expect("log")[..3],
                doc["details"]["task_transitions"].as_array().expect("log")[..3]
            );
        }
    }
    let (_, stats_after) = app.get("/v1/stats").await;
    assert_eq!(stats_after["seq"], stats_before["seq"]);
    assert_eq!(stats_after["tasks"], stats_before["tasks"]);

    // The endpoint comes back, still holding the rest, and finishes them on the same store.
    let mut agent = FakeEndpoint::connect_holding(&app, &ep, &token, &ids[10..]).await;
    agent.heartbeat().await;
    for id in &ids[10..] {
        let mut path = run_to_success(id, 1, "8");
        path.remove(0);
        assert!(agent.report(path).await.is_empty());
    }
    let (_, stats) = app.get("/v1/stats").await;
    assert_eq!(stats["tasks"]["success"], 20);
    // Sequence numbers continue where they stopped.
    let mut events = EventReader::open(&app, "?after=0", None).await;
    let mut previous = 0;
    for _ in 0..stats["seq"].as_u64().expect("seq") {
        let e = events.next().await;
        assert_eq!(e.id, previous + 1);
        previous = e.id;
    }
    drop(dir);
}

/// Submits `n` calls of `function`; returns the submission's group and its task ids.
async fn submit_group(
    app: &common::TestApp,
    endpoint: &str,
    function: &str,
    n: usize,
) -> (String, Vec<String>) {
    let tasks: Vec<serde_json::Value> = (0..n)
        .map(|i| json!({ "function_id": function, "args": [i] }))
        .collect();
    let (status, body) = app
        .post(
            &format!("/v1/endpoints/{endpoint}/submit"),
            json!({ "tasks": tasks }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let ids = body["task_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    (
        body["task_group_id"].as_str().expect("group").to_owned(),
        ids,
    )
}

/// Reads `n` events and returns, per task, the states it entered in order (checking that the
/// events come in sequence order), and the groups named by `received` events.
async fn paths(
    stream: &mut EventReader,
    n: usize,
) -> (BTreeMap<String, Vec<String>>, BTreeSet<String>) {
    let mut paths = BTreeMap::<String, Vec<String>>::new();
    let mut groups = BTreeSet::new();
    let mut previous = 0;
    for _ in 0..n {
        let e = stream.next().await;
        assert!(e.id > previous, "in sequence order");
        previous = e.id;
        assert_eq!(e.data["type"], "transition", "{}", e.data);
        if e.data["to"] == "received" {
            groups.insert(e.data["task_group_id"].as_str().expect("group").to_owned());
        }
        paths
            .entry(e.data["task_id"].as_str().expect("task").to_owned())
            .or_default()
            .push(e.data["to"].as_str().expect("state").to_owned());
    }
    (paths, groups)
}

#[tokio::test]
async fn the_stream_filters_by_task_group_live_and_replayed() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("e").await;
    let f = app.python_function().await;
    let (a, a_ids) = submit_group(&app, &ep, &f, 3).await;
    let (b, b_ids) = submit_group(&app, &ep, &f, 2).await;
    let (_, health) = app.get("/healthz").await;
    let head = health["seq"].as_u64().expect("seq");
    assert_eq!(head, 10, "received and waiting-for-ep for each of 5 tasks");

    // Subscribed after both submissions: `a`'s tasks are known from the store, since their
    // `received` events lie before the stream's start.
    let mut only_a = EventReader::open(&app, &format!("?task_group_id={a}"), None).await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    agent.heartbeat().await;
    let mut dispatched = 0;
    while dispatched < 5 {
        dispatched += agent.recv_tasks().await.len();
    }
    // `b` finishes first: were any of its events let through, they would come before `a`'s.
    for id in b_ids.iter().chain(&a_ids) {
        assert!(agent.report(run_to_success(id, 1, "1")).await.is_empty());
    }
    let (live, _) = paths(&mut only_a, 3 * 5).await;
    let after_head = [
        "dispatched-to-ep",
        "waiting-for-nodes",
        "waiting-for-launch",
        "running",
        "success",
    ];
    let mut a_sorted = a_ids.clone();
    a_sorted.sort();
    assert_eq!(live.keys().cloned().collect::<Vec<_>>(), a_sorted);
    assert!(live.values().all(|p| p == &after_head), "{live:?}");

    // Replayed from the log: several groups at once from a resume point, and one group from
    // the start, with the `received` events that name it.
    let mut both = EventReader::open(&app, &format!("?task_group_id={a},{b}"), Some(head)).await;
    let (replayed, _) = paths(&mut both, 5 * 5).await;
    assert_eq!(replayed.len(), 5);
    assert!(replayed.values().all(|p| p == &after_head), "{replayed:?}");
    let mut only_b = EventReader::open(&app, &format!("?task_group_id={b}&after=0"), None).await;
    let (whole, groups) = paths(&mut only_b, 2 * 7).await;
    let mut b_sorted = b_ids.clone();
    b_sorted.sort();
    assert_eq!(whole.keys().cloned().collect::<Vec<_>>(), b_sorted);
    assert!(
        whole
            .values()
            .all(|p| p.len() == 7 && p[0] == "received" && p[6] == "success")
    );
    assert_eq!(groups, BTreeSet::from([b.clone()]));

    // With the endpoint's filter too, both must hold.
    let mut a_here = EventReader::open(
        &app,
        &format!("?task_group_id={a}&endpoint_id={ep}&after=0"),
        None,
    )
    .await;
    let (whole, _) = paths(&mut a_here, 3 * 7).await;
    assert_eq!(whole.keys().cloned().collect::<Vec<_>>(), a_sorted);

    // Bad filters are refused before the stream opens.
    let (status, body) = app.get("/v1/events?task_group_id=nope").await;
    assert_eq!(status, 400, "{body}");
    let many: Vec<String> = (0..1001)
        .map(|i| format!("0192f0a0-0000-7000-8000-{i:012x}"))
        .collect();
    let (status, body) = app
        .get(&format!("/v1/events?task_group_id={}", many.join(",")))
        .await;
    assert_eq!(status, 400, "{body}");
    agent.close().await;
}
