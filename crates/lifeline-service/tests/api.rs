//! The REST API as a client sees it: listing, statistics, the dashboard, and every kind of bad
//! input getting a clear error that changes nothing stored.

mod common;

use common::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

fn error_code(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error body: {body}"))
}

#[tokio::test]
async fn health_and_authentication() {
    let app = spawn_app().await;
    let resp = reqwest::get(app.url("/healthz")).await.expect("healthz");
    assert_eq!(resp.status(), 200);
    let health: Value = resp.json().await.expect("json");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"), "{health}");
    let commit = health["commit"].as_str().expect("a commit");
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{health}"
    );

    let resp = app
        .client
        .get(app.url("/v1/tasks"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(error_code(&body), "unauthorized");

    let resp = app
        .client
        .get(app.url("/v1/tasks"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 401);

    let (ep, ep_token) = app.endpoint("e").await;
    let resp = app
        .client
        .get(app.url("/v1/tasks"))
        .bearer_auth(&ep_token)
        .send()
        .await
        .expect("request");
    assert_eq!(
        resp.status(),
        401,
        "an endpoint token cannot use the user's routes"
    );

    // An endpoint may only open its own connection.
    let (other, _) = app.endpoint("f").await;
    let resp = app
        .client
        .get(app.url(&format!("/v1/endpoints/{other}/connect")))
        .bearer_auth(&ep_token)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 403);
    let _ = ep;
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let app = spawn_app().await;
    let (ep, _) = app.endpoint("site").await;
    let f = app.python_function().await;
    let submit = format!("/v1/endpoints/{ep}/submit");

    let resp = app
        .client
        .post(app.url("/v1/functions"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(error_code(&body), "invalid_json");

    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/v1/functions",
            json!({ "name": "f", "kind": "fortran", "source": "x" }),
            400,
            "invalid_request",
        ),
        (
            "/v1/functions",
            json!({ "name": "f", "kind": "python", "source": "def f(): pass" }),
            400,
            "invalid_request",
        ),
        (
            "/v1/functions",
            json!({ "name": "f", "kind": "python", "source": "x", "entrypoint": "not a name" }),
            400,
            "invalid_function",
        ),
        (
            "/v1/functions",
            json!({ "name": "", "kind": "shell", "command": "true" }),
            400,
            "invalid_name",
        ),
        (
            "/v1/functions",
            json!({ "name": "s", "kind": "shell", "command": " " }),
            400,
            "invalid_function",
        ),
        ("/v1/endpoints", json!({ "name": "" }), 400, "invalid_name"),
        (
            "/v1/endpoints",
            json!({ "title": "x" }),
            400,
            "invalid_request",
        ),
        (&submit, json!({ "tasks": [] }), 400, "invalid_request"),
        (
            &submit,
            json!({ "tasks": [{ "function_id": "nope" }] }),
            400,
            "invalid_request",
        ),
        (
            &submit,
            json!({ "tasks": [{ "function_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" }] }),
            400,
            "unknown_function",
        ),
        (
            &submit,
            json!({ "tasks": [{ "function_id": f, "args": {"a": 1} }] }),
            400,
            "invalid_request",
        ),
        (
            &submit,
            json!({ "tasks": [{ "function_id": f, "kwargs": [1] }] }),
            400,
            "invalid_request",
        ),
        (
            &submit,
            json!({ "tasks": [{ "function_id": f }], "max_retries": 1000 }),
            400,
            "invalid_request",
        ),
        (
            "/v1/endpoints/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/submit",
            json!({ "tasks": [{ "function_id": f }] }),
            404,
            "not_found",
        ),
        (
            "/v1/endpoints/xyz/submit",
            json!({ "tasks": [{ "function_id": f }] }),
            400,
            "invalid_id",
        ),
        (
            "/v1/tasks/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/cancel",
            json!({}),
            404,
            "not_found",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, answer) = app.post(path, body.clone()).await;
        assert_eq!(got, status, "{path} {body}: {answer}");
        assert_eq!(error_code(&answer), code, "{path} {body}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    // Too many tasks in one submission, and a body over the size limit: 413.
    let many: Vec<Value> = (0..10_001).map(|_| json!({ "function_id": f })).collect();
    let (status, body) = app.post(&submit, json!({ "tasks": many })).await;
    assert_eq!(status, 413, "{body}");
    let huge = json!({ "name": "big", "kind": "shell", "command": "x".repeat(3 * 1024 * 1024) });
    let (status, body) = app.post("/v1/functions", huge).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(error_code(&body), "payload_too_large");

    for (path, status, code) in [
        (
            "/v1/tasks/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            404,
            "not_found",
        ),
        ("/v1/tasks/42", 400, "invalid_id"),
        (
            "/v1/functions/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            404,
            "not_found",
        ),
        (
            "/v1/endpoints/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            404,
            "not_found",
        ),
        ("/v1/tasks?state=done", 400, "invalid_state"),
        ("/v1/tasks?cursor=abc", 400, "invalid_cursor"),
        ("/v1/tasks?colour=red", 400, "invalid_query"),
        ("/v1/stats?endpoint_id=zzz", 400, "invalid_id"),
        ("/v1/no/such/route", 404, "not_found"),
    ] {
        let (got, body) = app.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(error_code(&body), code, "{path}");
    }

    // None of that stored a task.
    let (_, page) = app.get("/v1/tasks").await;
    assert_eq!(page["tasks"].as_array().expect("tasks").len(), 0);
    let (_, stats) = app.get("/v1/stats").await;
    assert_eq!(stats["total"], 0);
}

#[tokio::test]
async fn functions_and_endpoints_read_back() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/v1/functions",
            json!({ "name": "greet", "kind": "shell", "command": "echo hello {name}" }),
        )
        .await;
    assert_eq!(status, 201);
    let id = body["function_id"].as_str().expect("id");
    let (status, f) = app.get(&format!("/v1/functions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(f["kind"], "shell");
    assert_eq!(f["command"], "echo hello {name}");
    assert_eq!(f["name"], "greet");

    let (ep, _) = app.endpoint("hpc").await;
    let (_, list) = app.get("/v1/endpoints").await;
    assert_eq!(list[0]["endpoint_id"], ep.as_str());
    assert_eq!(list[0]["status"], "offline");
    let (status, _) = app
        .call(Method::DELETE, &format!("/v1/endpoints/{ep}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.get(&format!("/v1/endpoints/{ep}")).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(Method::DELETE, &format!("/v1/endpoints/{ep}"), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_task_list_pages_newest_first_and_filters_before_limiting() {
    let app = spawn_app().await;
    let (a, _) = app.endpoint("a").await;
    let (b, _) = app.endpoint("b").await;
    let f = app.python_function().await;
    let mut ids_a = app.submit(&a, &f, 150, None).await;
    let ids_b = app.submit(&b, &f, 100, None).await;
    let more_a = app.submit(&a, &f, 10, None).await;
    ids_a.extend(more_a);
    // Cancel a few of a's oldest tasks: they are the only `cancelled` ones.
    for id in &ids_a[..3] {
        let (status, _) = app.post(&format!("/v1/tasks/{id}/cancel"), json!({})).await;
        assert_eq!(status, 200);
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tasks?endpoint_id={a}&limit=64&cursor={c}"),
            None => format!("/v1/tasks?endpoint_id={a}&limit=64"),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for t in page["tasks"].as_array().expect("tasks") {
            assert_eq!(t["endpoint_id"], a.as_str());
            seen.push(t["task_id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids_a.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let (_, page) = app
        .get(&format!(
            "/v1/tasks?endpoint_id={a}&state=cancelled&limit=2"
        ))
        .await;
    let got: Vec<&str> = page["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["task_id"].as_str().expect("id"))
        .collect();
    assert_eq!(got, [ids_a[2].as_str(), ids_a[1].as_str()]);
    assert!(page["next_cursor"].is_string());

    let (_, page) = app
        .get(&format!(
            "/v1/tasks?endpoint_id={a},{b}&state=waiting-for-ep,cancelled&limit=1000"
        ))
        .await;
    assert_eq!(page["tasks"].as_array().expect("tasks").len(), 260);
    assert!(page.get("next_cursor").is_none());
    let (_, page) = app
        .get(&format!(
            "/v1/tasks?endpoint_id={b}&function_id={f}&limit=1"
        ))
        .await;
    assert_eq!(page["tasks"][0]["task_id"], ids_b[99].as_str());
    let group = page["tasks"][0]["task_group_id"]
        .as_str()
        .expect("group")
        .to_owned();
    let (_, page) = app
        .get(&format!("/v1/tasks?task_group_id={group}&limit=1000"))
        .await;
    let listed: Vec<&str> = page["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["task_id"].as_str().expect("id"))
        .collect();
    let mut b_newest_first: Vec<&str> = ids_b.iter().map(String::as_str).collect();
    b_newest_first.reverse();
    assert_eq!(listed, b_newest_first);

    let (_, stats) = app.get("/v1/stats").await;
    assert_eq!(stats["total"], 260);
    assert_eq!(stats["tasks"]["waiting-for-ep"], 257);
    assert_eq!(stats["tasks"]["cancelled"], 3);
    assert_eq!(stats["pending"], 257);
    let (_, stats_b) = app.get(&format!("/v1/stats?endpoint_id={b}")).await;
    assert_eq!(stats_b["total"], 100);
    let (_, stats_ab) = app.get(&format!("/v1/stats?endpoint_id={a},{b}")).await;
    assert_eq!(stats_ab["total"], 260);
    assert_eq!(stats_ab["seq"], stats["seq"]);
    let edges = stats["edges"].as_array().expect("edges");
    let edge = |from: &str, to: &str| {
        edges
            .iter()
            .find(|e| e["from"] == from && e["to"] == to)
            .map(|e| e["count"].as_u64().expect("n"))
            .unwrap_or(0)
    };
    assert_eq!(edge("received", "waiting-for-ep"), 260);
    assert_eq!(edge("waiting-for-ep", "cancelled"), 3);
    assert!(
        stats["dwell"]
            .as_array()
            .expect("dwell")
            .iter()
            .any(|d| d["state"] == "waiting-for-ep" && d["count"] == 3)
    );
}

#[tokio::test]
async fn batch_status_answers_every_id() {
    let app = spawn_app().await;
    let (ep, _) = app.endpoint("a").await;
    let f = app.python_function().await;
    let ids = app.submit(&ep, &f, 2, None).await;
    let unknown = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let (status, body) = app
        .post(
            "/v1/tasks/batch_status",
            json!({ "task_ids": [ids[0], ids[1], unknown, "junk"] }),
        )
        .await;
    assert_eq!(status, 200);
    let results = &body["results"];
    assert_eq!(results[&ids[0]]["status"], "waiting-for-ep");
    assert_eq!(results[&ids[1]]["pending"], true);
    assert_eq!(results[unknown]["error"], "unknown_task");
    assert_eq!(results["junk"]["error"], "invalid_id");
    // Reading changes nothing: the task is still there, unchanged.
    assert_eq!(app.task(&ids[0]).await["status"], "waiting-for-ep");
}

#[tokio::test]
async fn the_dashboard_is_served_at_the_root() {
    let tmp = tempfile::tempdir().expect("dir");
    let dist = tmp.path().join("dist");
    std::fs::create_dir_all(&dist).expect("dist");
    std::fs::write(
        dist.join("index.html"),
        "<!DOCTYPE html><title>Lifeline</title>",
    )
    .expect("index");
    std::fs::write(dist.join("app_bg.wasm"), vec![0u8; 4096]).expect("wasm");
    let mut settings = common::fast_settings(tmp.path().join("data"));
    settings.dashboard_dir = dist;
    let app = common::spawn_with(settings).await;

    let resp = app.client.get(app.url("/")).send().await.expect("index");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .expect("text")
            .contains("<title>Lifeline</title>")
    );
    let resp = app
        .client
        .get(app.url("/app_bg.wasm"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("wasm");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/wasm");
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    // Client-side routes fall back to the app.
    let resp = app
        .client
        .get(app.url("/tasks/some-view"))
        .send()
        .await
        .expect("route");
    assert!(resp.text().await.expect("text").contains("Lifeline"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let resp = reqwest::get(app.url("/v1/openapi.json"))
        .await
        .expect("openapi");
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/v1/endpoints", "post"),
        ("/v1/endpoints", "get"),
        ("/v1/endpoints/{id}", "delete"),
        ("/v1/endpoints/{id}/submit", "post"),
        ("/v1/functions", "post"),
        ("/v1/tasks", "get"),
        ("/v1/tasks/{id}", "get"),
        ("/v1/tasks/batch_status", "post"),
        ("/v1/tasks/{id}/cancel", "post"),
        ("/v1/stats", "get"),
        ("/v1/events", "get"),
        ("/healthz", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
    }
    let states = doc["components"]["schemas"]["TaskState"]["enum"]
        .as_array()
        .expect("states");
    assert_eq!(states.len(), 9);
    assert!(states.contains(&json!("waiting-for-ep")));
}

#[test]
fn answers_are_checked_against_the_document() {
    // The check every helper call runs is not vacuous: a body of the wrong shape, or an
    // undocumented status, fails it.
    let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let wrong_body = std::panic::catch_unwind(|| {
        common::check_against_document("get", &format!("/v1/tasks/{id}"), 200, &json!({ "x": 1 }))
    });
    assert!(wrong_body.is_err());
    let undocumented = std::panic::catch_unwind(|| {
        common::check_against_document("post", "/v1/endpoints", 200, &json!({}))
    });
    assert!(undocumented.is_err());
    common::check_against_document(
        "get",
        "/v1/stats",
        400,
        &json!({ "error": "invalid_query", "message": "m" }),
    );
}
