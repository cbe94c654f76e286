//! `GET /metrics`: who may read it, and figures that follow what the service did.

mod common;

use common::{FakeEndpoint, fast_settings, run_to_success, spawn_with, step};
use lifeline_model::{Actor, State};

const SCRAPE_TOKEN: &str = "scrape-token-0123456789";

/// The value of one series (`name{labels}`) in an exposition, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

async fn scrape(app: &common::TestApp, token: Option<&str>) -> (u16, String) {
    let mut req = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    if status == 200 {
        let kind = resp.headers()[reqwest::header::CONTENT_TYPE].clone();
        assert!(
            kind.to_str().expect("ascii").starts_with("text/plain"),
            "{kind:?}"
        );
    }
    (status, resp.text().await.expect("body"))
}

#[tokio::test]
async fn metrics_count_what_happened_and_need_a_token() {
    let tmp = tempfile::tempdir().expect("dir");
    let mut settings = fast_settings(tmp.path().to_path_buf());
    settings.metrics_token = SCRAPE_TOKEN.into();
    settings.metrics_bind = "127.0.0.1:0".into();
    let app = spawn_with(settings).await;

    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some("scrape-token-wrong-wrong")).await.0, 401);
    let (status, body) = app
        .post("/v1/users", serde_json::json!({ "name": "carol" }))
        .await;
    assert_eq!(status, 201, "{body}");
    let carol = body["token"].as_str().expect("token").to_owned();
    assert_eq!(scrape(&app, Some(&carol)).await.0, 403);
    assert_eq!(scrape(&app, Some(&app.token)).await.0, 200);

    let (ep, token) = app.endpoint("metered").await;
    let f = app.python_function().await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    agent.heartbeat().await;
    let ids = app.submit(&ep, &f, 3, Some(2)).await;
    agent.recv_tasks().await;
    // One succeeds, one raises, one loses its manager and succeeds on attempt 2.
    assert!(
        agent
            .report(run_to_success(&ids[0], 1, "1"))
            .await
            .is_empty()
    );
    let mut raised = run_to_success(&ids[1], 1, "0");
    let last = raised.last_mut().expect("success");
    last.state = State::Failed;
    last.result = None;
    last.reason = Some("ValueError: 7 is not allowed".into());
    assert!(agent.report(raised).await.is_empty());
    let mut lost = run_to_success(&ids[2], 1, "0");
    lost.truncate(3);
    let mut requeue = step(&ids[2], State::WaitingForNodes, Actor::Endpoint, 2);
    requeue.reason = Some("manager lost: connection closed (block 1)".into());
    lost.push(requeue);
    assert!(agent.report(lost).await.is_empty());
    let rest = run_to_success(&ids[2], 2, "2").split_off(1);
    assert!(agent.report(rest).await.is_empty());
    app.wait_status(&ids[2], "success").await;

    // An open event stream is a subscriber.
    let stream = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);

    let (status, text) = scrape(&app, Some(SCRAPE_TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    let at = |labels: &str| format!("{{endpoint=\"{ep}\",{labels}}}");
    let expect = [
        (format!("lifeline_tasks{}", at("state=\"success\"")), 2.0),
        (format!("lifeline_tasks{}", at("state=\"failed\"")), 1.0),
        (format!("lifeline_tasks{}", at("state=\"running\"")), 0.0),
        (
            format!(
                "lifeline_transitions_total{}",
                at("from=\"running\",to=\"success\"")
            ),
            2.0,
        ),
        (
            format!(
                "lifeline_transitions_total{}",
                at("from=\"running\",to=\"waiting-for-nodes\"")
            ),
            1.0,
        ),
        (
            "lifeline_retries_total{reason=\"manager-lost\"}".into(),
            1.0,
        ),
        ("lifeline_failures_total{reason=\"exception\"}".into(), 1.0),
        (
            format!("lifeline_dispatch_queue_depth{{endpoint=\"{ep}\"}}"),
            0.0,
        ),
        (
            format!("lifeline_endpoint_online{{endpoint=\"{ep}\",name=\"metered\"}}"),
            1.0,
        ),
        ("lifeline_endpoints_online".into(), 1.0),
        ("lifeline_event_stream_subscribers".into(), 1.0),
        (
            "lifeline_http_request_duration_seconds_count{route=\"/v1/endpoints/{id}/submit\",method=\"POST\",status=\"202\"}"
                .into(),
            1.0,
        ),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, &series), Some(value), "{series} in\n{text}");
    }
    for series in [
        "lifeline_writer_commit_seconds_count",
        "lifeline_writer_batch_jobs_count",
    ] {
        assert!(
            sample(&text, series).is_some_and(|n| n >= 1.0),
            "{series} in\n{text}"
        );
    }
    drop(stream);
    common::eventually(
        "the stream to be counted out",
        || async {
            let (_, text) = scrape(&app, Some(SCRAPE_TOKEN)).await;
            sample(&text, "lifeline_event_stream_subscribers")
        },
        |n| *n == Some(0.0),
    )
    .await;

    // The metrics address needs no token and serves nothing else.
    let open = app.metrics_addr.expect("metrics_bind is set");
    let resp = reqwest::get(format!("http://{open}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("body");
    assert_eq!(
        sample(&text, "lifeline_endpoints_online"),
        Some(1.0),
        "{text}"
    );
    let resp = reqwest::get(format!("http://{open}/v1/tasks"))
        .await
        .expect("get");
    assert_eq!(resp.status(), 404);
}
