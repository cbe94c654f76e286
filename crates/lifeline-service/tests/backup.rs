//! Backups of a running store: taken while submissions pour in, the copy is one consistent
//! moment, and a service started on it comes up with every task and event of that moment.

mod common;

use common::{fast_settings, spawn_app, spawn_with};
use lifeline_service::store;

#[tokio::test]
async fn a_backup_under_load_is_consistent_and_serves() {
    let app = spawn_app().await;
    let (ep, _) = app.endpoint("site").await;
    let f = app.python_function().await;
    app.submit(&ep, &f, 100, None).await;

    // Submissions keep coming while the backup runs.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let load = async {
        let mut rounds = 0;
        loop {
            tokio::select! {
                _ = &mut stopped => return rounds,
                _ = app.submit(&ep, &f, 50, None) => rounds += 1,
            }
        }
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let copy_dir = tmp.path().join("restored");
    std::fs::create_dir(&copy_dir).expect("dir");
    let dest = copy_dir.join("lifeline.sqlite3");
    let (data_dir, target) = (app.dir.clone(), dest.clone());
    let backup = async {
        // Let the load get going first.
        common::eventually(
            "submissions under way",
            || app.get("/v1/stats"),
            |(_, s)| s["total"].as_u64().is_some_and(|n| n > 200),
        )
        .await;
        let summary = tokio::task::spawn_blocking(move || store::backup(&data_dir, &target))
            .await
            .expect("joined")
            .expect("backup");
        let _ = stop.send(());
        summary
    };
    let (rounds, summary) = tokio::join!(load, backup);
    assert!(rounds > 0, "submissions ran during the backup");
    assert!(summary.tasks >= 200, "{summary:?}");

    // A backup never overwrites.
    let again = store::backup(&app.dir, &dest).expect_err("exists");
    assert!(
        format!("{again:#}").contains("never overwrites"),
        "{again:#}"
    );

    // A service on the copy has exactly the moment it holds: every task, every event, the
    // statistics agreeing with them.
    std::fs::copy(app.dir.join("token"), copy_dir.join("token")).expect("token");
    let restored = spawn_with(fast_settings(copy_dir)).await;
    let (_, stats) = restored.get("/v1/stats").await;
    assert_eq!(stats["total"].as_u64(), Some(summary.tasks), "{stats}");
    assert_eq!(stats["seq"].as_u64(), Some(summary.events), "{stats}");
    let (_, page) = restored.get("/v1/tasks?limit=10000").await;
    let listed = common::task_ids(&page);
    assert_eq!(listed.len() as u64, summary.tasks);
    for id in listed.iter().take(20) {
        let doc = restored.task(id).await;
        assert!(
            doc["details"]["task_transitions"]
                .as_array()
                .is_some_and(|t| !t.is_empty())
        );
    }
}

#[tokio::test]
async fn the_log_is_copied_into_the_store_file_while_the_service_runs() {
    // The writer never checkpoints its log itself; the service's own checkpointing must move
    // committed pages into the store file as it goes, or the log would grow without end.
    let app = spawn_app().await;
    let (ep, _) = app.endpoint("site").await;
    let f = app.python_function().await;
    let file = app.dir.join(store::FILE_NAME);
    let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let before = size();
    for _ in 0..10 {
        app.submit(&ep, &f, 500, None).await;
    }
    common::eventually(
        "the store file grows by the tasks' pages",
        || async { size() },
        |now| *now > before + 1024 * 1024,
    )
    .await;
}
