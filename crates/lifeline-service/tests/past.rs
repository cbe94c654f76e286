//! The statistics of any moment (`GET /v1/stats?at_seq=`, `?at=`) and over a window
//! (`?window=`), read from checkpoints and the log: they must equal what the live statistics
//! said at that moment.

mod common;

use common::{FakeEndpoint, run_to_success, spawn_app};
use serde_json::Value;

/// The figures that must match: counts per state and transitions per edge.
fn figures(stats: &Value) -> (Value, Value) {
    (stats["tasks"].clone(), stats["edges"].clone())
}

#[tokio::test]
async fn the_figures_of_any_moment_are_those_seen_then() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("history").await;
    let f = app.python_function().await;
    // 1,700 tasks of 7 events each cross at least one checkpoint (every 10,000 events).
    let n = 1700;
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.extend(app.submit(&ep, &f, n / 2, None).await);
    }
    let mut seen = vec![app.get("/v1/stats").await.1];
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let mut dispatched = 0;
    while dispatched < n {
        dispatched += agent.recv_tasks().await.len();
    }
    for chunk in ids.chunks(250) {
        let report: Vec<_> = chunk
            .iter()
            .flat_map(|id| run_to_success(id, 1, "0"))
            .collect();
        assert!(agent.report(report).await.is_empty());
        seen.push(app.get("/v1/stats").await.1);
    }
    let head = seen.last().expect("now")["seq"].as_u64().expect("seq");
    assert!(head > 10_000, "{head} events: not past a checkpoint");

    for then in &seen {
        let seq = then["seq"].as_u64().expect("seq");
        let (status, past) = app.get(&format!("/v1/stats?at_seq={seq}")).await;
        assert_eq!(status, 200, "{past}");
        assert_eq!(past["seq"], seq);
        assert_eq!(figures(&past), figures(then), "at {seq}");
        // The same moment by its time.
        let at = past["at"].as_f64().expect("the moment's time");
        let (_, by_time) = app.get(&format!("/v1/stats?at={at}")).await;
        assert!(by_time["seq"].as_u64() >= Some(seq), "{by_time}");
    }

    // The task list as it was: before the agent connected, every task waited for it; after the
    // first report, 250 had succeeded.
    let first = seen[0]["seq"].as_u64().expect("seq");
    let (status, page) = app
        .get(&format!("/v1/tasks?at_seq={first}&limit=1000"))
        .await;
    assert_eq!(status, 200, "{page}");
    let states: std::collections::HashSet<&str> = page["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["waiting-for-ep"].into(), "{page}");
    let second = seen[1]["seq"].as_u64().expect("seq");
    let (_, page) = app
        .get(&format!(
            "/v1/tasks?at_seq={second}&state=success&limit=1000"
        ))
        .await;
    assert_eq!(page["tasks"].as_array().expect("tasks").len(), 250);
    assert!(page["next_cursor"].is_null(), "{}", page["next_cursor"]);

    // The timeline: points up to the head, transitions growing.
    let (status, timeline) = app.get("/v1/timeline?points=50").await;
    assert_eq!(status, 200, "{timeline}");
    let points = timeline["points"].as_array().expect("points");
    assert!(
        points.len() >= 10,
        "a young store's strip still has a shape: {timeline}"
    );
    assert_eq!(points.last().expect("the head")["seq"], head);
    let transitions: Vec<u64> = points
        .iter()
        .map(|p| p["transitions"].as_u64().expect("n"))
        .collect();
    assert!(
        transitions.windows(2).all(|w| w[0] <= w[1]),
        "{transitions:?}"
    );
    assert_eq!(
        *transitions.last().expect("last"),
        n as u64 * 7,
        "7 transitions per task"
    );

    // Over a window covering everything: every edge, and the stays measured.
    let (_, window) = app
        .get(&format!("/v1/stats?endpoint_id={ep}&window=1h"))
        .await;
    assert_eq!(window["window_secs"], 3600.0);
    assert_eq!(figures(&window), figures(seen.last().expect("now")));
    let running = window["dwell"]
        .as_array()
        .expect("dwell")
        .iter()
        .find(|d| d["state"] == "running")
        .expect("stays in running");
    assert_eq!(running["count"], n);

    for (query, status) in [
        (format!("at_seq={}", head + 1), 400),
        ("at_seq=1&at=1".to_owned(), 400),
        ("window=soon".to_owned(), 400),
        ("at=soon".to_owned(), 400),
    ] {
        let (got, body) = app.get(&format!("/v1/stats?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
    }
}
