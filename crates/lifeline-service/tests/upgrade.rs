//! Upgrading a store written by the previous release. `fixtures/store-v2/` is what `lifeline
//! serve` of commit 968eb13 (schema version 2: one user token, no users, owners or edge index)
//! wrote while a real endpoint ran five calls of `double`: three succeeded, one failed
//! (`ValueError: negative`), and one, submitted after the endpoint stopped, waits for it. This
//! version opens it, migrates it in place and loses nothing.

mod common;

use common::{fast_settings, spawn_with, task_ids};
use std::os::unix::fs::PermissionsExt;

const ENDPOINT: &str = "01a22ff5-e8f2-7d84-8105-62b36a863559";
const WAITING: &str = "01a22ff5-fbe0-77f8-bedf-da97ae388d33";

#[tokio::test]
async fn a_store_of_the_previous_release_upgrades_in_place() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("mode");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v2");
    for file in ["lifeline.sqlite3", "token"] {
        std::fs::copy(fixture.join(file), dir.join(file)).expect("copy");
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600))
            .expect("mode");
    }
    let app = spawn_with(fast_settings(dir.clone())).await;

    // The old token is admin's, and everything stored is there and admin's.
    let (status, me) = app.get("/v1/me").await;
    assert_eq!((status, me["user"].as_str()), (200, Some("admin")), "{me}");
    let (_, page) = app.get("/v1/tasks").await;
    assert_eq!(task_ids(&page).len(), 5, "{page}");
    let (_, stats) = app.get("/v1/stats").await;
    assert_eq!(stats["total"], 5, "{stats}");
    assert_eq!(stats["tasks"]["success"], 3, "{stats}");
    assert_eq!(stats["tasks"]["failed"], 1, "{stats}");
    let (_, endpoint) = app.get(&format!("/v1/endpoints/{ENDPOINT}")).await;
    assert_eq!(endpoint["owner"], "admin", "{endpoint}");
    let waiting = app.task(WAITING).await;
    assert_eq!(waiting["status"], "waiting-for-ep", "{waiting}");
    // The old log is found through the new edge index.
    let (_, page) = app.get("/v1/tasks?edge=running%3Esuccess").await;
    assert_eq!(task_ids(&page).len(), 3, "{page}");
    let (_, page) = app.get("/v1/tasks?edge=running%3Efailed").await;
    let failed = app.task(&task_ids(&page)[0]).await;
    assert!(
        failed["exception"]
            .as_str()
            .is_some_and(|e| e.contains("ValueError: negative")),
        "{failed}"
    );
    // And it takes new writes.
    let (status, _) = app
        .post("/v1/users", serde_json::json!({ "name": "ada" }))
        .await;
    assert_eq!(status, 201);
}
