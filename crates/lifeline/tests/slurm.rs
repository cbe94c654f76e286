//! Endpoints on a real Slurm: the real service, a real agent whose executor gets its nodes from
//! `sbatch`, and managers started by Slurm jobs that dial the interchange over TCP. Needs a
//! running Slurm (`scripts/slurm` starts a single-node one); the test command runs these with
//! `--features slurm-tests`, one at a time, since they share the cluster's two CPUs.

mod common;

use std::time::Duration;

use common::{Lifeline, eventually, no_args, serve};
use lifeline_client::TaskStatus;
use lifeline_model::{BlockReport, BlockState, EndpointId, EndpointSummary, State};
use lifeline_testkit::eventually_within;
use serde_json::json;

/// An endpoint.toml with one Slurm executor; `extra` adds lines to `[executor.slurm]`.
fn slurm_config(workers: usize, extra: &str) -> String {
    format!(
        "[[executor]]\nlabel = \"cpu\"\nprovider = \"slurm\"\nworkers_per_node = {workers}\n\
         [executor.slurm]\nexclusive = false\nblock_walltime = \"00:10:00\"\nidle_timeout = 3\n{extra}\n"
    )
}

fn blocks(summary: &EndpointSummary) -> Vec<BlockReport> {
    summary
        .report
        .as_ref()
        .and_then(|r| r.executors.first())
        .map(|e| e.blocks.clone())
        .unwrap_or_default()
}

async fn summary(l: &Lifeline, ep: &EndpointId) -> EndpointSummary {
    l.api.endpoint(*ep).await.expect("endpoint")
}

/// The reason of the first transition of `attempt`.
fn retry_reason(doc: &TaskStatus, attempt: u32) -> String {
    doc.details
        .task_transitions
        .iter()
        .find(|t| t.attempt == attempt)
        .and_then(|t| t.reason.clone())
        .unwrap_or_default()
}

/// The job id a task's attempt ran on, from its waiting-for-launch placement.
fn job_of(doc: &TaskStatus, attempt: u32) -> String {
    let placement = doc
        .details
        .task_transitions
        .iter()
        .find(|t| t.attempt == attempt && t.state == State::WaitingForLaunch)
        .and_then(|t| t.reason.clone())
        .unwrap_or_default();
    placement
        .split("slurm job ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no slurm job in {placement:?}"))
        .to_owned()
}

const NAP: &str = "def nap(s):\n    import time\n    time.sleep(s)\n    return s\n";

/// Sleeps long on its first attempt only (a marker file remembers it ran).
const LONG_THEN_SHORT: &str = "def once(marker, s):\n    import os, time\n    if os.path.exists(marker):\n        return 'second'\n    open(marker, 'w').close()\n    time.sleep(s)\n    return 'first'\n";

#[tokio::test]
async fn a_burst_scales_out_to_max_blocks_and_idle_blocks_are_released() {
    let l = serve().await;
    let (ep, token) = l.endpoint("cluster").await;
    let config = slurm_config(1, "init_blocks = 0\nmin_blocks = 0\nmax_blocks = 2\n");
    let _agent = l.agent(&token, Some(&config)).await;
    l.wait_endpoint(&ep, "online", |e| e.online).await;
    let f = l.python(NAP, "nap").await;
    let calls: Vec<_> = (0..8).map(|_| (json!([0.5]), json!({}))).collect();
    let ids = l.submit(&ep, &f, &calls, None).await;

    // Watch the blocks while the burst runs: never more than two alive at once.
    let mut most_alive = 0;
    let mut jobs = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let seen = blocks(&summary(&l, &ep).await);
        most_alive = most_alive.max(seen.iter().filter(|b| !b.state.is_over()).count());
        jobs.extend(seen.iter().filter_map(|b| b.job_id.clone()));
        let mut done = 0;
        for id in &ids {
            if !l.task(id).await.pending {
                done += 1;
            }
        }
        if done == ids.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the burst did not finish: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        most_alive <= 2,
        "max_blocks = 2, but {most_alive} blocks were alive at once"
    );
    assert!(!jobs.is_empty(), "blocks have Slurm job ids");
    for id in &ids {
        let doc = l.task(id).await;
        assert_eq!(doc.status.wire(), "success", "{doc:#?}");
        let job = job_of(&doc, 1);
        assert!(
            jobs.contains(&job),
            "ran on a block of this endpoint: {job} {jobs:?}"
        );
    }

    // Nothing left to do: after idle_timeout (3 s) every block is released.
    let released = eventually(
        "every block released",
        || summary(&l, &ep),
        |s| {
            let seen = blocks(s);
            !seen.is_empty() && seen.iter().all(|b| b.state.is_over())
        },
    )
    .await;
    for b in blocks(&released) {
        assert_eq!(b.state, BlockState::Completed, "{b:#?}");
        assert!(
            b.reason.as_deref().unwrap_or("").contains("released"),
            "{b:#?}"
        );
    }
}

#[tokio::test]
async fn scancel_sends_running_tasks_back_to_waiting_for_nodes_and_a_new_block_runs_them() {
    let l = serve().await;
    let (ep, token) = l.endpoint("cluster").await;
    let _agent = l.agent(&token, Some(&slurm_config(2, ""))).await;
    let f = l.python(LONG_THEN_SHORT, "once").await;
    let marker = l.scratch().join("ran-once");
    let ids = l
        .submit(&ep, &f, &[(json!([marker, 300]), json!({}))], Some(2))
        .await;
    let running = l
        .wait_for(&ids[0], "running", |d| d.status == State::Running)
        .await;
    let job = job_of(&running, 1);
    // Cancel the job once the function is under way (it leaves its marker first).
    eventually(
        "the first attempt under way",
        || async { marker.exists() },
        |m| *m,
    )
    .await;
    let status = std::process::Command::new("scancel")
        .arg(&job)
        .status()
        .expect("scancel");
    assert!(status.success());

    let doc = eventually_within(
        Duration::from_secs(90),
        "finished on a new block",
        || l.task(&ids[0]),
        |d| !d.pending,
    )
    .await;
    assert_eq!(doc.status.wire(), "success", "{doc:#?}");
    assert_eq!(doc.result, Some(json!("second")));
    assert_eq!(doc.details.attempt, 2, "{doc:#?}");
    let retry = &doc.details.task_transitions;
    let back = retry.iter().find(|t| t.attempt == 2).expect("the retry");
    assert_eq!(back.state, State::WaitingForNodes, "{doc:#?}");
    let reason = retry_reason(&doc, 2);
    assert!(reason.contains(&format!("slurm job {job}")), "{reason}");
    assert!(reason.contains("cancelled"), "{reason}");
    assert_ne!(
        job_of(&doc, 2),
        job,
        "the second attempt ran on a new block"
    );

    let seen = blocks(&summary(&l, &ep).await);
    let first = seen
        .iter()
        .find(|b| b.job_id.as_deref() == Some(&job))
        .expect("the cancelled block is still reported");
    assert_eq!(first.state, BlockState::Cancelled, "{first:#?}");

    // `lifeline endpoint list` shows the blocks too.
    let out = tokio::process::Command::new(common::BIN)
        .args(["endpoint", "list", "--url", &l.url, "--token", &l.token])
        .output()
        .await
        .expect("endpoint list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|line| line.contains(&format!("slurm job {job} ")))
        .unwrap_or_else(|| panic!("no line for job {job}:\n{text}"));
    assert!(line.contains("cancelled"), "{line}");
}

#[tokio::test]
async fn a_block_whose_walltime_ends_sends_its_tasks_to_a_new_block() {
    let l = serve().await;
    let (ep, token) = l.endpoint("cluster").await;
    let config = slurm_config(1, "").replace("00:10:00", "00:01:00");
    let _agent = l.agent(&token, Some(&config)).await;
    let f = l.python(LONG_THEN_SHORT, "once").await;
    let marker = l.scratch().join("ran-once");
    let ids = l
        .submit(&ep, &f, &[(json!([marker, 600]), json!({}))], Some(2))
        .await;
    let running = l
        .wait_for(&ids[0], "running", |d| d.status == State::Running)
        .await;
    let job = job_of(&running, 1);
    // Slurm ends the job about a minute after it started.
    let doc = eventually_within(
        Duration::from_secs(180),
        "finished after the walltime",
        || l.task(&ids[0]),
        |d| !d.pending,
    )
    .await;
    assert_eq!(doc.status.wire(), "success", "{doc:#?}");
    assert_eq!(doc.details.attempt, 2, "{doc:#?}");
    let reason = retry_reason(&doc, 2);
    assert!(reason.contains(&format!("slurm job {job}")), "{reason}");
    assert!(reason.contains("timeout"), "{reason}");
    let _ = ep;
}

#[tokio::test]
async fn a_broken_sbatch_is_a_failed_block_and_tasks_keep_waiting() {
    let l = serve().await;
    let (ep, token) = l.endpoint("cluster").await;
    let config = slurm_config(1, "partition = \"no-such-partition\"");
    let _agent = l.agent(&token, Some(&config)).await;
    let f = l.python(NAP, "nap").await;
    let ids = l.submit(&ep, &f, &[no_args()], None).await;
    let failed = eventually(
        "a failed block",
        || summary(&l, &ep),
        |s| blocks(s).iter().any(|b| b.state == BlockState::Failed),
    )
    .await;
    let block = blocks(&failed)
        .into_iter()
        .find(|b| b.state == BlockState::Failed)
        .expect("failed");
    let reason = block.reason.unwrap_or_default();
    assert!(reason.contains("sbatch"), "{reason}");
    assert!(
        reason.to_lowercase().contains("partition"),
        "Slurm's own message: {reason}"
    );
    // The task was dispatched when the agent connected; the failed block leaves it waiting
    // for a node, not failed (its acknowledgement may arrive after the block's failure).
    let doc = l
        .wait_for(&ids[0], "waiting for a node", |d| {
            d.status == State::WaitingForNodes
        })
        .await;
    assert!(doc.pending);
    assert_eq!(doc.details.attempt, 1, "{doc:#?}");
}
