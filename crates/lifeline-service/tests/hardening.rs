//! What an adversarial test of the service found, each kept from coming back: hostile request
//! shapes, damaged stores, floods, and restarts that must not cost a task its retries.

mod common;

use std::time::Duration;

use common::{FakeEndpoint, fast_settings, spawn_app, spawn_with, step};
use lifeline_model::{Actor, MAX_ARGUMENT_DEPTH, State};
use lifeline_service::Service;
use lifeline_service::config::Settings;
use reqwest::Method;
use serde_json::{Value, json};

fn nested(depth: usize) -> Value {
    let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    serde_json::from_str(&text).expect("nested json")
}

#[tokio::test]
async fn arguments_nested_past_the_limit_are_refused_at_submit() {
    let app = spawn_app().await;
    let (ep, _) = app.endpoint("site").await;
    let f = app.python_function().await;
    let submit = format!("/v1/endpoints/{ep}/submit");
    for (what, task) in [
        (
            "args",
            json!({ "function_id": f, "args": [nested(MAX_ARGUMENT_DEPTH)] }),
        ),
        (
            "kwargs",
            json!({ "function_id": f, "kwargs": { "x": nested(MAX_ARGUMENT_DEPTH) } }),
        ),
    ] {
        let (status, body) = app.post(&submit, json!({ "tasks": [task] })).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], "too_deep", "{body}");
        let message = body["message"].as_str().expect("message");
        assert!(
            message.contains(&format!("tasks[0].{what}")) && message.contains("64"),
            "{message}"
        );
    }
    // At the limit it is accepted.
    let (status, body) = app
        .post(
            &submit,
            json!({ "tasks": [{ "function_id": f, "args": nested(MAX_ARGUMENT_DEPTH) }] }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn lenient_input_is_refused_with_the_documented_answer() {
    let app = spawn_app().await;
    let (ep, _) = app.endpoint("site").await;

    // Bodies must say they are JSON.
    for content_type in [Some("text/plain"), None] {
        let mut req = app
            .client
            .post(app.url("/v1/endpoints"))
            .bearer_auth(&app.token)
            .body(r#"{"name": "x"}"#);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 415, "{content_type:?}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "unsupported_media_type");
    }
    let resp = app
        .client
        .post(app.url("/v1/endpoints"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"name": "charset"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 201);

    // Names without control characters.
    for name in ["a\u{0}b", "tab\there", "bell\u{7}"] {
        for path in ["/v1/endpoints", "/v1/functions"] {
            let body = json!({ "name": name, "kind": "shell", "command": "true" });
            let body = if path == "/v1/endpoints" {
                json!({ "name": name })
            } else {
                body
            };
            let (status, answer) = app.post(path, body).await;
            assert_eq!(status, 400, "{path} {name:?}: {answer}");
            assert_eq!(answer["error"], "invalid_name");
        }
    }

    // A kind is one of its names, never a number.
    let (status, answer) = app
        .post(
            "/v1/functions",
            json!({ "name": "n", "kind": 0, "source": "def n(): pass", "entrypoint": "n" }),
        )
        .await;
    assert_eq!(status, 400, "{answer}");

    // Query parameters out of their documented ranges.
    for path in [
        "/v1/tasks?limit=0".to_owned(),
        "/v1/tasks?limit=10001".to_owned(),
        "/v1/tasks?cursor=-1".to_owned(),
        "/v1/tasks?cursor=0".to_owned(),
        "/v1/tasks?endpoint_id=".to_owned(),
        format!("/v1/tasks?endpoint_id={ep},"),
        "/v1/tasks?state=".to_owned(),
        "/v1/stats?endpoint_id=".to_owned(),
    ] {
        let (status, answer) = app.get(&path).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    let (status, _) = app.get("/v1/tasks?limit=10000").await;
    assert_eq!(status, 200);

    // The scheme of Authorization is case-insensitive.
    let resp = app
        .client
        .get(app.url("/v1/tasks"))
        .header("authorization", format!("bearer {}", app.token))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);

    // A route that exists with another method: 405 with a JSON body.
    let (status, answer) = app.call(Method::PUT, "/v1/endpoints", None).await;
    assert_eq!(status, 405, "{answer}");
    assert_eq!(answer["error"], "method_not_allowed");

    // None of that stored anything.
    let (_, endpoints) = app.get("/v1/endpoints").await;
    assert_eq!(endpoints.as_array().expect("list").len(), 2);
}

#[tokio::test]
async fn submissions_are_capped_and_a_large_one_does_not_stall_small_ones() {
    let app = spawn_app().await;
    let (ep, _) = app.endpoint("site").await;
    let f = app.python_function().await;
    let submit = format!("/v1/endpoints/{ep}/submit");
    let tasks = |n: usize| -> Vec<Value> { (0..n).map(|_| json!({ "function_id": f })).collect() };

    let (status, body) = app.post(&submit, json!({ "tasks": tasks(10_001) })).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("10000")),
        "{body}"
    );

    // While the largest allowed submission is being stored, a small one is answered first.
    let big = {
        let client = app.client.clone();
        let url = app.url(&submit);
        let token = app.token.clone();
        let body = json!({ "tasks": tasks(10_000) });
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("big submit");
            assert_eq!(resp.status(), 202);
        })
    };
    // Once part of it is stored...
    loop {
        let (_, stats) = app.get("/v1/stats").await;
        if stats["total"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // ...a single task goes in while the rest of it is still on its way.
    let (status, _) = app.post(&submit, json!({ "tasks": tasks(1) })).await;
    assert_eq!(status, 202);
    assert!(
        !big.is_finished(),
        "the large submission was stored in one piece"
    );
    big.await.expect("big submit");
    let (_, stats) = app.get("/v1/stats").await;
    assert_eq!(stats["total"], 10_001);
}

#[tokio::test]
async fn damaged_stores_stop_the_start_and_are_never_replaced() {
    let tmp = tempfile::tempdir().expect("tmp");

    // An empty file is not a store: no new store over it, no new token.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    std::fs::write(empty.join("lifeline.sqlite3"), b"").expect("write");
    let error = Service::open(Settings::for_data_dir(&empty))
        .await
        .expect_err("an empty store is refused");
    let message = format!("{error:#}");
    assert!(
        message.contains("empty") && message.contains("backup"),
        "{message}"
    );
    assert!(!empty.join("token").exists());
    assert_eq!(
        std::fs::metadata(empty.join("lifeline.sqlite3"))
            .expect("kept")
            .len(),
        0
    );

    // A real store, then bytes overwritten in its middle.
    let damaged = tmp.path().join("damaged");
    {
        let mut app = spawn_with(fast_settings(damaged.clone())).await;
        let (ep, _) = app.endpoint("site").await;
        let f = app.python_function().await;
        for _ in 0..20 {
            app.submit(&ep, &f, 500, None).await;
        }
        app.stop().await;
    }
    let token_before = std::fs::read_to_string(damaged.join("token")).expect("token");
    let file = damaged.join("lifeline.sqlite3");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for path in [file.clone(), damaged.join("token")] {
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", path.display());
        }
        let mode = std::fs::metadata(&damaged)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the data directory is mode {mode:o}");
    }
    let mut bytes = std::fs::read(&file).expect("read");
    assert!(bytes.len() > 200_000, "{} bytes", bytes.len());
    let middle = bytes.len() / 2;
    for (i, b) in bytes[middle..middle + 8192].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    std::fs::write(&file, &bytes).expect("write");
    let error = Service::open(Settings::for_data_dir(&damaged))
        .await
        .expect_err("a damaged store is refused");
    let message = format!("{error:#}");
    assert!(
        message.contains("damaged") || message.contains("cannot be read"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(damaged.join("token")).expect("token"),
        token_before
    );

    // A token file without the store that made it is never overwritten.
    let orphan = tmp.path().join("orphan");
    std::fs::create_dir_all(&orphan).expect("dir");
    std::fs::write(orphan.join("token"), "keep me\n").expect("write");
    let error = Service::open(Settings::for_data_dir(&orphan))
        .await
        .expect_err("refused");
    assert!(format!("{error:#}").contains("token"), "{error:#}");
    assert_eq!(
        std::fs::read_to_string(orphan.join("token")).expect("kept"),
        "keep me\n"
    );
}

#[tokio::test]
async fn a_task_lost_before_it_started_keeps_its_retries() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("restarts").await;
    let f = app.python_function().await;
    // No retries at all: any loss that used one would fail the task.
    let ids = app.submit(&ep, &f, 1, Some(0)).await;
    for round in 0..3 {
        let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
        let tasks = agent.recv_tasks().await;
        assert_eq!(tasks[0].attempt, 1, "round {round}");
        let mut steps = vec![step(&ids[0], State::WaitingForNodes, Actor::Endpoint, 1)];
        if round > 0 {
            steps.push(step(&ids[0], State::WaitingForLaunch, Actor::Manager, 1));
        }
        assert!(agent.report(steps).await.is_empty());
        // The agent restarts without the task.
        agent.close().await;
        app.wait_task(&ids[0], "requeued", |d| d["status"] == "waiting-for-ep")
            .await;
    }
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let tasks = agent.recv_tasks().await;
    assert_eq!(tasks[0].attempt, 1);
    assert!(
        agent
            .report(common::run_to_success(&ids[0], 1, "7"))
            .await
            .is_empty()
    );
    let doc = app.wait_status(&ids[0], "success").await;
    assert_eq!(doc["details"]["attempt"], 1);
}

#[tokio::test]
async fn a_clean_close_is_offline_at_once_and_an_oversized_frame_is_closed_with_1009() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let tmp = tempfile::tempdir().expect("tmp");
    let mut settings = fast_settings(tmp.path().to_path_buf());
    // Long enough that only the clean close can explain going offline within the test.
    settings.heartbeat_threshold_secs = 120.0;
    let app = spawn_with(settings).await;
    let (ep, token) = app.endpoint("tidy").await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    agent.heartbeat().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while status_of(&app, &ep).await != "online" {
        assert!(tokio::time::Instant::now() < deadline, "never online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.close().await;
    while status_of(&app, &ep).await != "offline" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still online after a clean close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A frame far over the limit: a close frame with 1009 and a reason, not a dropped socket.
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let huge = "x".repeat(64 * 1024 * 1024);
    let _ = agent.ws.send(Message::Text(huge.into())).await;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(30), agent.ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let frame = close.expect("a close frame with a code");
    assert_eq!(frame.code, CloseCode::Size);
    assert!(frame.reason.contains("too big"), "{}", frame.reason);
}

async fn status_of(app: &common::TestApp, endpoint: &str) -> String {
    let (_, body) = app.get(&format!("/v1/endpoints/{endpoint}")).await;
    body["status"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn stores_written_before_requeues_are_renumbered_on_open() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let (id, endpoint, token) = {
        let mut app = spawn_with(fast_settings(dir.clone())).await;
        let (ep, token) = app.endpoint("old").await;
        let f = app.python_function().await;
        let ids = app.submit(&ep, &f, 1, Some(3)).await;
        let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
        agent.recv_tasks().await;
        agent
            .report(vec![step(
                &ids[0],
                State::WaitingForNodes,
                Actor::Endpoint,
                1,
            )])
            .await;
        agent.close().await;
        app.wait_task(&ids[0], "requeued", |d| d["status"] == "waiting-for-ep")
            .await;
        app.stop().await;
        (ids[0].clone(), ep, token)
    };
    // Rewrite the log as the previous rule numbered it: the requeue took attempt 2.
    {
        let conn = rusqlite::Connection::open(dir.join("lifeline.sqlite3")).expect("open");
        let task_seq: i64 = conn
            .query_row("SELECT seq FROM tasks", [], |r| r.get(0))
            .expect("task");
        let last: i64 = conn
            .query_row(
                "SELECT max(seq) FROM events WHERE task = ?1",
                [task_seq],
                |r| r.get(0),
            )
            .expect("last event");
        conn.execute("UPDATE events SET attempt = 2 WHERE seq = ?1", [last])
            .expect("old numbering");
        conn.execute("UPDATE tasks SET attempt = 2", [])
            .expect("old numbering");
        downgrade_to_single_user(&conn);
        conn.pragma_update(None, "user_version", 2)
            .expect("version");
    }
    let app = spawn_with(fast_settings(dir.clone())).await;
    let doc = app.task(&id).await;
    assert_eq!(doc["status"], "waiting-for-ep");
    assert_eq!(doc["details"]["attempt"], 1, "{doc:#}");
    // The log written before the edge index is found through it too.
    let (_, page) = app
        .get("/v1/tasks?edge=waiting-for-nodes%3Ewaiting-for-ep")
        .await;
    assert_eq!(page["tasks"][0]["task_id"], id.as_str(), "{page}");
    let mut agent = FakeEndpoint::connect(&app, &endpoint, &token).await;
    let tasks = agent.recv_tasks().await;
    assert_eq!(tasks[0].attempt, 1);
    assert!(
        agent
            .report(common::run_to_success(&id, 1, "1"))
            .await
            .is_empty()
    );
    app.wait_status(&id, "success").await;

    // A store from a newer Lifeline is refused with the version it needs.
    drop(agent);
    let mut app = app;
    app.stop().await;
    let conn = rusqlite::Connection::open(dir.join("lifeline.sqlite3")).expect("open");
    conn.pragma_update(None, "user_version", 99)
        .expect("version");
    drop(conn);
    let error = Service::open(Settings::for_data_dir(&dir))
        .await
        .expect_err("a newer store is refused");
    assert!(format!("{error:#}").contains("newer"), "{error:#}");
}

/// Turns a store back into what versions before users wrote (schema 3): one user token kept in
/// `meta`, no users, owners, shares or audit, statistics per endpoint, no edge index.
fn downgrade_to_single_user(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "INSERT INTO meta (key, value) SELECT 'user_token_digest', digest FROM tokens WHERE user_id = 1;
         CREATE TABLE stats (endpoint_id BLOB PRIMARY KEY, body TEXT NOT NULL) STRICT;
         INSERT INTO stats SELECT endpoint_id, body FROM stats_by_owner WHERE owner = 1;
         DROP TABLE stats_by_owner;
         DROP TABLE audit;
         DROP TABLE endpoint_shares;
         DROP TABLE tokens;
         DROP TABLE users;
         DROP INDEX tasks_by_owner;
         DROP INDEX events_by_edge;
         DROP INDEX tasks_to_expire;
         ALTER TABLE tasks DROP COLUMN expired;
         DROP TABLE checkpoints;
         DROP TABLE task_groups;
         ALTER TABLE events DROP COLUMN dwell_us;
         ALTER TABLE events DROP COLUMN from_state;
         ALTER TABLE tasks DROP COLUMN owner;
         ALTER TABLE functions DROP COLUMN owner;
         ALTER TABLE endpoints DROP COLUMN owner;
         ALTER TABLE endpoints DROP COLUMN public;",
    )
    .expect("downgrade");
}
