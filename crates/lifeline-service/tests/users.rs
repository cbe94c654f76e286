//! Users, tokens and isolation against the real service: who sees what, on every route; bad
//! tokens of every shape; revocation closing open streams; stream tickets; quotas; the audit log.

mod common;

use common::{EventReader, FakeEndpoint, TestApp, run_to_success, spawn_app, task_ids};
use reqwest::Method;
use serde_json::{Value, json};

/// Adds a user (as admin); returns their token.
async fn add_user(app: &TestApp, name: &str) -> String {
    let (status, body) = app.post("/v1/users", json!({ "name": name })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"], name);
    body["token"].as_str().expect("token").to_owned()
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    app.call_as(token, Method::GET, path, None).await
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    app.call_as(token, Method::POST, path, Some(body)).await
}

/// What one user made: an endpoint (and its token), a function and a submitted task.
struct Made {
    endpoint: String,
    endpoint_token: String,
    function: String,
    task: String,
}

async fn make(app: &TestApp, token: &str, name: &str) -> Made {
    let (status, ep) = post(app, token, "/v1/endpoints", json!({ "name": name })).await;
    assert_eq!(status, 201, "{ep}");
    let endpoint = ep["endpoint_id"].as_str().expect("id").to_owned();
    let (status, f) = post(
        app,
        token,
        "/v1/functions",
        json!({ "name": "f", "kind": "shell", "command": "true" }),
    )
    .await;
    assert_eq!(status, 201, "{f}");
    let function = f["function_id"].as_str().expect("id").to_owned();
    let (status, sub) = post(
        app,
        token,
        &format!("/v1/endpoints/{endpoint}/submit"),
        json!({ "tasks": [{ "function_id": function }] }),
    )
    .await;
    assert_eq!(status, 202, "{sub}");
    Made {
        endpoint,
        endpoint_token: ep["token"].as_str().expect("token").to_owned(),
        function,
        task: sub["task_ids"][0].as_str().expect("id").to_owned(),
    }
}

#[tokio::test]
async fn each_user_sees_only_their_own_and_another_user_s_things_do_not_exist() {
    let app = spawn_app().await;
    let ada = add_user(&app, "ada").await;
    let bob = add_user(&app, "bob").await;
    let a = make(&app, &ada, "ada-site").await;
    let b = make(&app, &bob, "bob-site").await;

    // Every route, with the other user's ids: 404, as if nothing were there.
    for (method, path, body) in [
        (Method::GET, format!("/v1/tasks/{}", b.task), None),
        (Method::POST, format!("/v1/tasks/{}/cancel", b.task), None),
        (Method::GET, format!("/v1/functions/{}", b.function), None),
        (Method::GET, format!("/v1/endpoints/{}", b.endpoint), None),
        (
            Method::DELETE,
            format!("/v1/endpoints/{}", b.endpoint),
            None,
        ),
        (
            Method::POST,
            format!("/v1/endpoints/{}/share", b.endpoint),
            Some(json!({ "public": true })),
        ),
        (
            Method::POST,
            format!("/v1/endpoints/{}/submit", b.endpoint),
            Some(json!({ "tasks": [{ "function_id": a.function }] })),
        ),
    ] {
        let (status, answer) = app.call_as(&ada, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert_eq!(answer["error"], "not_found", "{answer}");
    }
    // Another user's function is unknown, even on one's own endpoint.
    let (status, answer) = post(
        &app,
        &ada,
        &format!("/v1/endpoints/{}/submit", a.endpoint),
        json!({ "tasks": [{ "function_id": b.function }] }),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "unknown_function");
    // Batch status answers the unseen task as unknown.
    let (status, answer) = post(
        &app,
        &ada,
        "/v1/tasks/batch_status",
        json!({ "task_ids": [a.task, b.task] }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["results"][&a.task]["status"], "waiting-for-ep");
    assert_eq!(answer["results"][&b.task]["error"], "unknown_task");

    // Lists and statistics hold exactly what each may see.
    let (_, page) = get(&app, &ada, "/v1/tasks").await;
    assert_eq!(task_ids(&page), vec![a.task.clone()]);
    let (_, page) = get(&app, &bob, "/v1/tasks").await;
    assert_eq!(task_ids(&page), vec![b.task.clone()]);
    let (_, page) = app.get("/v1/tasks").await;
    assert_eq!(task_ids(&page).len(), 2, "admin sees everyone's");
    let (_, page) = app.get("/v1/tasks?mine=true").await;
    assert!(task_ids(&page).is_empty(), "admin submitted nothing");
    let (_, stats) = get(&app, &ada, "/v1/stats").await;
    assert_eq!(stats["total"], 1, "{stats}");
    let (_, stats) = app.get("/v1/stats").await;
    assert_eq!(stats["total"], 2, "{stats}");
    let (_, endpoints) = get(&app, &ada, "/v1/endpoints").await;
    let names: Vec<&str> = endpoints
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["ada-site"]);
    assert_eq!(endpoints[0]["owner"], "ada");

    // Admin-only routes.
    for path in ["/v1/users", "/v1/audit"] {
        let (status, answer) = get(&app, &ada, path).await;
        assert_eq!(status, 403, "{path}: {answer}");
    }
    let (status, me) = get(&app, &ada, "/v1/me").await;
    assert_eq!(
        (status, me["user"].as_str(), me["admin"].as_bool()),
        (200, Some("ada"), Some(false))
    );
}

#[tokio::test]
async fn a_shared_endpoint_runs_others_tasks_and_its_owner_sees_them_without_their_results() {
    let app = spawn_app().await;
    let ada = add_user(&app, "ada").await;
    let bob = add_user(&app, "bob").await;
    let b = make(&app, &bob, "bob-site").await;
    let (status, shares) = post(
        &app,
        &bob,
        &format!("/v1/endpoints/{}/share", b.endpoint),
        json!({ "with": "ada" }),
    )
    .await;
    assert_eq!(status, 200, "{shares}");
    assert_eq!(
        shares,
        json!({ "owner": "bob", "public": false, "shared_with": ["ada"] })
    );

    let (status, f) = post(
        &app,
        &ada,
        "/v1/functions",
        json!({ "name": "secret", "kind": "shell", "command": "echo 42" }),
    )
    .await;
    assert_eq!(status, 201);
    let (status, sub) = post(
        &app,
        &ada,
        &format!("/v1/endpoints/{}/submit", b.endpoint),
        json!({ "tasks": [{ "function_id": f["function_id"] }] }),
    )
    .await;
    assert_eq!(status, 202, "{sub}");
    let task = sub["task_ids"][0].as_str().expect("id").to_owned();

    // Bob's endpoint runs both tasks.
    let mut agent = FakeEndpoint::connect(&app, &b.endpoint, &b.endpoint_token).await;
    agent.recv_tasks().await;
    for id in [&task, &b.task] {
        let rejected = agent.report(run_to_success(id, 1, r#""the answer""#)).await;
        assert!(rejected.is_empty(), "{rejected:?}");
    }
    let (_, for_ada) = get(&app, &ada, &format!("/v1/tasks/{task}")).await;
    assert_eq!(for_ada["status"], "success");
    assert_eq!(
        for_ada["result"], "the answer",
        "the submitter reads the result"
    );
    let (status, for_bob) = get(&app, &bob, &format!("/v1/tasks/{task}")).await;
    assert_eq!(status, 200, "the owner sees tasks on the endpoint");
    assert_eq!(for_bob["status"], "success");
    assert!(
        for_bob.get("result").is_none(),
        "but not others' results: {for_bob}"
    );
    // Ada sees her task on it, not Bob's.
    let (_, page) = get(&app, &ada, "/v1/tasks").await;
    assert_eq!(task_ids(&page), vec![task.clone()]);
    let (_, page) = get(&app, &bob, "/v1/tasks").await;
    assert_eq!(task_ids(&page).len(), 2, "{page}");
    let (_, page) = get(&app, &bob, "/v1/tasks?mine=true").await;
    assert_eq!(task_ids(&page), vec![b.task.clone()]);
    let (_, stats) = get(&app, &bob, "/v1/stats").await;
    assert_eq!(stats["total"], 2);
    let (_, stats) = get(&app, &ada, "/v1/stats").await;
    assert_eq!(stats["total"], 1);

    // The share is in the audit log.
    let (status, audit) = app.get("/v1/audit").await;
    assert_eq!(status, 200);
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or(""),
                e["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(actions.contains(&("admin", "user.add")), "{actions:?}");
    assert!(actions.contains(&("bob", "endpoint.share")), "{actions:?}");
}

#[tokio::test]
async fn event_streams_carry_only_what_their_user_may_see() {
    let app = spawn_app().await;
    let ada = add_user(&app, "ada").await;
    let bob = add_user(&app, "bob").await;
    let mut ada_events = EventReader::open_as(&app, &ada, "", None).await;
    let mut bob_events = EventReader::open_as(&app, &bob, "", None).await;
    let a = make(&app, &ada, "ada-site").await;
    let b = make(&app, &bob, "bob-site").await;
    for _ in 0..2 {
        let event = ada_events.next().await;
        assert_eq!(event.data["task_id"], a.task.as_str(), "{:?}", event.data);
        let event = bob_events.next().await;
        assert_eq!(event.data["task_id"], b.task.as_str(), "{:?}", event.data);
    }
    // An endpoint's status reaches its owner only.
    let agent = FakeEndpoint::connect(&app, &b.endpoint, &b.endpoint_token).await;
    let event = bob_events.next().await;
    assert_eq!(event.data["type"], "endpoint", "{:?}", event.data);
    // Ada's next event is her own, whatever came between.
    let late = make(&app, &ada, "ada-second").await;
    let event = ada_events.next().await;
    assert_eq!(
        event.data["task_id"],
        late.task.as_str(),
        "{:?}",
        event.data
    );
    agent.close().await;
}

#[tokio::test]
async fn bad_tokens_of_every_shape_get_401_and_change_nothing() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let ada = add_user(&app, "ada").await;
    let a = make(&app, &ada, "ada-site").await;
    // A revoked token, and one that has expired.
    let (_, revoked) = post(&app, &ada, "/v1/tokens", json!({ "name": "old" })).await;
    let revoked_token = revoked["token"].as_str().expect("token").to_owned();
    let (status, _) = app
        .call_as(
            &ada,
            Method::DELETE,
            &format!("/v1/tokens/{}", revoked["id"].as_str().expect("id")),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, brief) = post(&app, &ada, "/v1/tokens", json!({ "expires": "1s" })).await;
    let expired = brief["token"].as_str().expect("token").to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let (_, before) = app.get("/v1/stats").await;
    let shapes: Vec<(&str, Option<String>)> = vec![
        ("absent", None),
        ("malformed", Some("Bearer".into())),
        ("another scheme", Some(format!("Basic {ada}"))),
        ("unknown", Some("Bearer 0123456789abcdef".into())),
        ("revoked", Some(format!("Bearer {revoked_token}"))),
        ("expired", Some(format!("Bearer {expired}"))),
        ("another service's", Some(format!("Bearer {}", other.token))),
        (
            "an endpoint's",
            Some(format!("Bearer {}", a.endpoint_token)),
        ),
    ];
    for (shape, header) in shapes {
        for (method, path) in [
            (Method::GET, "/v1/tasks".to_owned()),
            (Method::POST, format!("/v1/endpoints/{}/submit", a.endpoint)),
            (Method::POST, "/v1/tokens".to_owned()),
        ] {
            let mut req = app.client.request(method.clone(), app.url(&path));
            if let Some(h) = &header {
                req = req.header("authorization", h);
            }
            let resp = req
                .json(&json!({ "tasks": [{ "function_id": a.function }] }))
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status(), 401, "{shape} token on {method} {path}");
            let body: Value = resp.json().await.expect("a JSON body");
            assert_eq!(body["error"], "unauthorized", "{shape}: {body}");
        }
    }
    let (_, after) = app.get("/v1/stats").await;
    assert_eq!(before["total"], after["total"], "nothing was stored");
    let (_, tokens) = get(&app, &ada, "/v1/tokens").await;
    assert_eq!(
        tokens.as_array().map(Vec::len),
        Some(2),
        "first and the brief one: {tokens}"
    );
}

#[tokio::test]
async fn revoking_a_token_closes_its_open_stream_and_tickets_are_single_use() {
    let app = spawn_app().await;
    let ada = add_user(&app, "ada").await;
    let (_, second) = post(&app, &ada, "/v1/tokens", json!({ "name": "stream" })).await;
    let token = second["token"].as_str().expect("token").to_owned();
    let mut events = EventReader::open_as(&app, &token, "", None).await;
    let (status, _) = app
        .call_as(
            &ada,
            Method::DELETE,
            &format!("/v1/tokens/{}", second["id"].as_str().expect("id")),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(
        events.ends().await,
        "the stream closed when its token was revoked"
    );

    // A ticket opens one stream, once; a token is never taken from the query.
    let (status, ticket) = post(&app, &ada, "/v1/events/ticket", json!({})).await;
    assert_eq!(status, 200, "{ticket}");
    let url = app.url(&format!(
        "/v1/events?ticket={}",
        ticket["ticket"].as_str().expect("ticket")
    ));
    let first = app.client.get(&url).send().await.expect("stream");
    assert_eq!(first.status(), 200);
    let again = app.client.get(&url).send().await.expect("stream");
    assert_eq!(again.status(), 401, "a ticket is single-use");
    let query = app
        .client
        .get(app.url(&format!("/v1/events?access_token={ada}")))
        .send()
        .await
        .expect("stream");
    assert_ne!(query.status(), 200, "a token in the URL is not accepted");
}

#[tokio::test]
async fn quotas_answer_429_with_retry_after() {
    let app = spawn_app().await;
    let ada = add_user(&app, "ada").await;
    let a = make(&app, &ada, "ada-site").await;
    let (status, info) = app
        .call(
            Method::PATCH,
            "/v1/users/ada",
            Some(json!({ "max_queued": 3, "max_submits_per_sec": 1000 })),
        )
        .await;
    assert_eq!(status, 200, "{info}");
    let submit = |n: usize| {
        let tasks: Vec<Value> = (0..n)
            .map(|_| json!({ "function_id": a.function }))
            .collect();
        json!({ "tasks": tasks })
    };
    let path = format!("/v1/endpoints/{}/submit", a.endpoint);
    let resp = app
        .client
        .post(app.url(&path))
        .bearer_auth(&ada)
        .json(&submit(3))
        .send()
        .await
        .expect("submit");
    assert_eq!(
        resp.status(),
        429,
        "one queued already, three more pass the limit"
    );
    assert!(resp.headers().contains_key("retry-after"));
    let (status, _) = post(&app, &ada, &path, submit(2)).await;
    assert_eq!(status, 202, "up to the limit");

    app.call(
        Method::PATCH,
        "/v1/users/ada",
        Some(json!({ "max_queued": 1000, "max_submits_per_sec": 1 })),
    )
    .await;
    let mut refused = 0;
    for _ in 0..3 {
        let (status, _) = post(&app, &ada, &path, submit(1)).await;
        if status == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 1, "one submission per second");
    let (_, users) = app.get("/v1/users").await;
    let ada_info = users
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["user"] == "ada")
        .expect("ada")
        .clone();
    assert_eq!(ada_info["max_submits_per_sec"], 1.0);
}
