//! `GET /v1/groups`: each submission one row, newest first, with its tasks per state.

mod common;

use common::{FakeEndpoint, run_to_success, spawn_app, task_ids};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn each_submission_is_a_group_with_its_progress() {
    let app = spawn_app().await;
    let (ep, token) = app.endpoint("grouped").await;
    let f = app.python_function().await;
    let first = app.submit(&ep, &f, 3, None).await;
    let second = app.submit(&ep, &f, 2, None).await;
    let mut agent = FakeEndpoint::connect(&app, &ep, &token).await;
    let mut dispatched = 0;
    while dispatched < 5 {
        dispatched += agent.recv_tasks().await.len();
    }
    assert!(
        agent
            .report(run_to_success(&first[0], 1, "1"))
            .await
            .is_empty()
    );

    let (status, page) = app.get("/v1/groups").await;
    assert_eq!(status, 200, "{page}");
    let groups = page["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    let (newest, oldest) = (&groups[0], &groups[1]);
    for (group, ids) in [(newest, &second), (oldest, &first)] {
        let id = group["task_group_id"].as_str().expect("id");
        let (_, tasks) = app.get(&format!("/v1/tasks?task_group_id={id}")).await;
        let mut listed = task_ids(&tasks);
        listed.sort();
        let mut submitted = ids.clone();
        submitted.sort();
        assert_eq!(listed, submitted);
    }
    assert_eq!((&newest["size"], &oldest["size"]), (&json!(2), &json!(3)));
    assert_eq!(newest["tasks"], json!({ "dispatched-to-ep": 2 }));
    assert_eq!(
        oldest["tasks"],
        json!({ "dispatched-to-ep": 2, "success": 1 })
    );
    assert_eq!(oldest["endpoint_id"], ep.as_str());
    assert_eq!(oldest["function_id"], f.as_str());

    // A group's own figures, for a diagram narrowed to it.
    let id = oldest["task_group_id"].as_str().expect("id");
    let (status, figures) = app.get(&format!("/v1/stats?task_group_id={id}")).await;
    assert_eq!(status, 200, "{figures}");
    assert_eq!(figures["tasks"], oldest["tasks"]);
    assert_eq!(figures["total"], 3);
    let edges = figures["edges"].as_array().expect("edges");
    assert!(
        edges.contains(&json!({ "from": "running", "to": "success", "count": 1 })),
        "{figures}"
    );
    let (status, _) = app
        .get(&format!("/v1/stats?task_group_id={id}&at_seq=1"))
        .await;
    assert_eq!(status, 400);

    // Paged, newest first.
    let (_, one) = app.get("/v1/groups?limit=1").await;
    assert_eq!(one["groups"][0]["task_group_id"], newest["task_group_id"]);
    let cursor = one["next_cursor"].as_str().expect("a cursor");
    let (_, next) = app
        .get(&format!("/v1/groups?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(next["groups"][0]["task_group_id"], oldest["task_group_id"]);

    let (_, carol) = app.post("/v1/users", json!({ "name": "carol" })).await;
    let carol = carol["token"].as_str().expect("token").to_owned();
    let (_, none) = app.call_as(&carol, Method::GET, "/v1/groups", None).await;
    assert_eq!(none["groups"], json!([]));
    let (status, _) = app
        .call_as(
            &carol,
            Method::GET,
            &format!("/v1/stats?task_group_id={id}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "another user's group does not exist for carol");
    for query in ["limit=0", "limit=500", "cursor=soon", "endpoint_id=nope"] {
        let (status, body) = app.get(&format!("/v1/groups?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
    }
}
