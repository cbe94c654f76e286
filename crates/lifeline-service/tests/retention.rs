//! Retention: finished tasks past it lose their data and answer 410 Gone; statistics stay; a
//! stream resuming from before removed events is told to reload.

mod common;

use common::{EventReader, FakeEndpoint, fast_settings, run_to_success, spawn_with, step};
use lifeline_model::{Actor, State};
use reqwest::Method;
use serde_json::json;

fn stored(app: &common::TestApp, task: &str) -> (String, Option<String>, bool, i64) {
    let conn = rusqlite::Connection::open_with_flags(
        app.dir.join("lifeline.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the store opens");
    let id = task
        .parse::<lifeline_model::TaskId>()
        .expect("id")
        .as_u128();
    conn.query_row(
        "SELECT args, result, expired, (SELECT count(*) FROM events WHERE task = tasks.seq) \
         FROM tasks WHERE id = ?1",
        [id.to_be_bytes()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .expect("the task's row")
}

#[tokio::test]
async fn finished_tasks_past_the_retention_are_gone_and_the_rest_stays() {
    let tmp = tempfile::tempdir().expect("dir");
    let mut settings = fast_settings(tmp.path().to_path_buf());
    settings.retention = "1s".into();
    let app = spawn_with(settings).await;
    let (ep, token) = app.endpoint("brief").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    agent.heartbeat().await;
    let ids = app.submit(&ep, &f, 2, None).await;
    agent.recv_tasks().await;
    assert!(
        agent
            .report(run_to_success(&ids[0], 1, "42"))
            .await
            .is_empty()
    );
    let running = vec![
        step(&ids[1], State::WaitingForNodes, Actor::Endpoint, 1),
        step(&ids[1], State::WaitingForLaunch, Actor::Manager, 1),
        step(&ids[1], State::Running, Actor::Worker, 1),
    ];
    assert!(agent.report(running).await.is_empty());
    assert_eq!(app.task(&ids[0]).await["result"], 42);
    let (done, unfinished) = (&ids[0], &ids[1]);
    assert_eq!(stored(&app, done).0, "[0]");

    // Past the retention: 410 with `expired`, for its owner only; others still get 404.
    let path = format!("/v1/tasks/{done}");
    let (status, body) = common::eventually(
        "the finished task to expire",
        || app.get(&path),
        |(status, _)| *status == 410,
    )
    .await;
    assert_eq!(body["error"], "expired", "{body}");
    assert_eq!(status, 410);
    let (_, answer) = app
        .post(
            "/v1/tasks/batch_status",
            json!({ "task_ids": [done, unfinished] }),
        )
        .await;
    assert_eq!(
        answer["results"][done.as_str()]["error"],
        "expired",
        "{answer}"
    );
    assert_eq!(
        answer["results"][unfinished.as_str()]["status"],
        "running",
        "{answer}"
    );
    let (_, carol) = app.post("/v1/users", json!({ "name": "carol" })).await;
    let carol = carol["token"].as_str().expect("token").to_owned();
    let (status, _) = app
        .call_as(&carol, Method::GET, &format!("/v1/tasks/{done}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .call(Method::POST, &format!("/v1/tasks/{done}/cancel"), None)
        .await;
    assert_eq!(status, 409, "{body}");

    // Its arguments, result and events are removed from the store; the running task keeps its own.
    let (args, result, expired, events) = common::eventually(
        "the expired task's data to be removed",
        || async { stored(&app, done) },
        |row| row.2,
    )
    .await;
    assert_eq!(
        (args.as_str(), result, expired, events),
        ("[]", None, true, 0)
    );
    let (args, _, expired, events) = stored(&app, unfinished);
    assert_eq!((args.as_str(), expired), ("[1]", false));
    assert!(events >= 5, "{events}");

    // The statistics still count both tasks where they are.
    let (_, stats) = app.get(&format!("/v1/stats?endpoint_id={ep}")).await;
    assert_eq!(stats["tasks"]["success"], 1, "{stats}");
    assert_eq!(stats["tasks"]["running"], 1, "{stats}");

    // A stream resuming from the start is told to reload, then goes on from the head.
    let mut stream = EventReader::open(&app, "", Some(0)).await;
    let reset = stream.next().await;
    assert_eq!(reset.name, "reset", "{:?}", reset.data);
    assert_eq!(reset.data["after"], 0);
    assert!(
        reset.data["purged_through"].as_u64() > Some(0),
        "{:?}",
        reset.data
    );
    let head = reset.data["head"].as_u64().expect("head");
    assert_eq!(reset.id, head);
    let mut finish = run_to_success(&ids[1], 1, "7");
    let finish = finish.split_off(3);
    assert!(agent.report(finish).await.is_empty());
    let next = stream.next().await;
    assert_eq!(
        (next.name.as_str(), next.id),
        ("message", head + 1),
        "{:?}",
        next.data
    );
    assert_eq!(next.data["task_id"], unfinished.as_str());

    // A stream resuming after the removed events gets no reset.
    let mut stream = EventReader::open(&app, "", Some(head)).await;
    let next = stream.next().await;
    assert_eq!((next.name.as_str(), next.id), ("message", head + 1));
}
