//! The seed's scenarios end to end: the real service, real endpoint agents, real python3 and sh
//! workers.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{eventually, no_args, path, serve};
use lifeline_model::{Actor, State, TaskId, Timestamp};
use lifeline_protocol::{FromEndpoint, Reported};
use serde_json::json;

const HELLO: &str = "def hello():\n    return 'Hello World!'\n";

#[tokio::test]
async fn hello_world_succeeds_with_its_result_and_completion_time() {
    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let _agent = l.agent(&token, None).await;
    l.wait_endpoint(&ep, "online", |e| e.online).await;
    let f = l.python(HELLO, "hello").await;
    let ids = l.submit(&ep, &f, &[no_args()], None).await;
    let doc = l.finished(&ids[0]).await;
    assert_eq!(doc.status.wire(), "success", "{doc:#?}");
    assert!(!doc.pending);
    assert_eq!(doc.result, Some(json!("Hello World!")), "{doc:#?}");
    let completion: f64 = doc
        .completion_t
        .as_deref()
        .expect("completion_t")
        .parse()
        .expect("seconds");
    assert!(completion > 1.7e9);
    let states: Vec<String> = path(&doc).into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        states,
        [
            "received",
            "dispatched-to-ep",
            "waiting-for-nodes",
            "waiting-for-launch",
            "running",
            "success"
        ]
    );
    let actors: Vec<&str> = doc
        .details
        .task_transitions
        .iter()
        .map(|t| t.actor.wire())
        .collect();
    assert_eq!(
        actors,
        [
            "web-service",
            "forwarder",
            "endpoint",
            "manager",
            "worker",
            "worker"
        ]
    );
    let placed = doc.details.task_transitions[3].reason.as_deref();
    assert!(
        placed
            .expect("placement")
            .starts_with("executor default, manager "),
        "{placed:?}"
    );
}

#[tokio::test]
async fn a_task_for_an_offline_endpoint_completes_once_the_agent_starts() {
    let l = serve().await;
    let (ep, token) = l.endpoint("later").await;
    let f = l.python("def add(a, b):\n    return a + b\n", "add").await;
    let ids = l.submit(&ep, &f, &[(json!([2, 3]), json!({}))], None).await;
    let doc = l.task(&ids[0]).await;
    assert_eq!((doc.pending, doc.status), (true, State::WaitingForEp));
    let _agent = l.agent(&token, None).await;
    let doc = l.finished(&ids[0]).await;
    assert_eq!(doc.status.wire(), "success", "{doc:#?}");
    assert_eq!(doc.result, Some(json!(5)));
    assert_eq!(path(&doc)[1].0, "waiting-for-ep");
}

#[tokio::test]
async fn exceptions_fail_the_task_with_their_traceback() {
    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let _agent = l.agent(&token, None).await;
    let divide = l
        .python("def divide(a, b):\n    return a / b\n", "divide")
        .await;
    let analyse = l
        .python(
            "def analyse():\n    import nonexistent_module\n    return 1\n",
            "analyse",
        )
        .await;
    let odd = l.python("def odd():\n    return {1, 2}\n", "odd").await;
    let zero = l
        .submit(&ep, &divide, &[(json!([1, 0]), json!({}))], None)
        .await;
    let import = l.submit(&ep, &analyse, &[no_args()], None).await;
    let set = l.submit(&ep, &odd, &[no_args()], None).await;

    let doc = l.finished(&zero[0]).await;
    assert_eq!(doc.status.wire(), "failed");
    assert!(doc.completion_t.is_some());
    let exception = doc.exception.as_deref().expect("exception");
    assert!(
        exception.starts_with("Traceback (most recent call last):"),
        "{exception}"
    );
    assert!(
        exception.contains("in divide\n    return a / b"),
        "{exception}"
    );
    assert!(
        exception.ends_with("ZeroDivisionError: division by zero"),
        "{exception}"
    );
    assert_eq!(doc.details.attempt, 1, "user exceptions are not retried");

    let doc = l.finished(&import[0]).await;
    assert_eq!(doc.status.wire(), "failed");
    assert!(
        doc.exception
            .as_deref()
            .expect("exception")
            .ends_with("ModuleNotFoundError: No module named 'nonexistent_module'")
    );

    let doc = l.finished(&set[0]).await;
    assert_eq!(doc.status.wire(), "failed");
    assert!(
        doc.exception
            .as_deref()
            .expect("exception")
            .contains("not JSON-serialisable"),
        "{doc:#?}"
    );
}

#[tokio::test]
async fn shell_commands_run_with_their_placeholders_filled() {
    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let _agent = l.agent(&token, None).await;
    let greet = l.shell("echo Hello {name}").await;
    let fail = l.shell("echo 'no such file' >&2; exit 2").await;
    let ok = l
        .submit(
            &ep,
            &greet,
            &[(json!([]), json!({ "name": "World" }))],
            None,
        )
        .await;
    let bad = l.submit(&ep, &fail, &[no_args()], None).await;
    let doc = l.finished(&ok[0]).await;
    assert_eq!(doc.status.wire(), "success", "{doc:#?}");
    assert_eq!(
        doc.result,
        Some(json!({ "returncode": 0, "stdout": "Hello World\n", "stderr": "" }))
    );
    let doc = l.finished(&bad[0]).await;
    assert_eq!(doc.status.wire(), "failed");
    let exception = doc.exception.as_deref().expect("exception");
    assert!(
        exception.contains("exit code 2") && exception.ends_with("no such file\n"),
        "{exception}"
    );
}

#[tokio::test]
async fn a_worker_killed_mid_task_is_retried_and_succeeds_on_attempt_two() {
    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let _agent = l.agent(&token, None).await;
    let f = l
        .python(
            "def flaky(marker):\n    import os\n    if not os.path.exists(marker):\n        open(marker, 'w').close()\n        os.kill(os.getpid(), 9)\n    return 'survived'\n",
            "flaky",
        )
        .await;
    let marker = l.scratch().join("killed-once");
    let ids = l
        .submit(&ep, &f, &[(json!([marker]), json!({}))], None)
        .await;
    let doc = l.finished(&ids[0]).await;
    assert_eq!(doc.status.wire(), "success", "{doc:#?}");
    assert_eq!(doc.result, Some(json!("survived")), "{doc:#?}");
    assert_eq!(doc.details.attempt, 2);
    let p = path(&doc);
    assert!(
        p.contains(&("running".into(), 1)) && p.contains(&("running".into(), 2)),
        "{p:?}"
    );
    let retry = doc
        .details
        .task_transitions
        .iter()
        .find(|t| t.state == State::WaitingForNodes && t.attempt == 2)
        .expect("the retry")
        .clone();
    assert_eq!(retry.actor.wire(), "endpoint");
    assert!(
        retry
            .reason
            .as_deref()
            .expect("reason")
            .contains("worker lost"),
        "{retry:?}"
    );
}

#[tokio::test]
async fn exhausted_retries_fail_with_every_attempt_s_reason() {
    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let _agent = l.agent(&token, None).await;
    let f = l
        .python("def die():\n    import os\n    os._exit(3)\n", "die")
        .await;
    let ids = l.submit(&ep, &f, &[no_args()], Some(1)).await;
    let doc = l.finished(&ids[0]).await;
    assert_eq!(doc.status.wire(), "failed", "{doc:#?}");
    assert_eq!(doc.details.attempt, 2);
    let exception = doc.exception.as_deref().expect("exception");
    assert!(
        exception.starts_with("failed after 2 attempts"),
        "{exception}"
    );
    assert!(
        exception.contains("--- attempt 1 ---\nworker lost"),
        "{exception}"
    );
    assert!(
        exception.contains("--- attempt 2 ---\nworker lost")
            && exception.contains("no retries left"),
        "{exception}"
    );
}

#[tokio::test]
async fn walltime_kills_the_worker_and_fails_the_task() {
    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let config = "[[executor]]\nlabel = \"short\"\nworkers_per_node = 1\nwalltime_secs = 1\n";
    let _agent = l.agent(&token, Some(config)).await;
    let slow = l
        .python("def slow():\n    import time\n    time.sleep(60)\n", "slow")
        .await;
    let quick = l.python(HELLO, "hello").await;
    let ids = l.submit(&ep, &slow, &[no_args()], None).await;
    let doc = l.finished(&ids[0]).await;
    assert_eq!(doc.status.wire(), "failed");
    assert!(
        doc.exception
            .as_deref()
            .expect("exception")
            .starts_with("walltime exceeded"),
        "{doc:#?}"
    );
    // The worker was replaced: the next task runs.
    let ids = l.submit(&ep, &quick, &[no_args()], None).await;
    assert_eq!(
        l.finished(&ids[0]).await.result,
        Some(json!("Hello World!"))
    );
}

#[tokio::test]
async fn cancelling_queued_and_running_tasks() {
    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let config = "[[executor]]\nlabel = \"one\"\nworkers_per_node = 1\n";
    let _agent = l.agent(&token, Some(config)).await;
    let slow = l
        .python("def slow():\n    import time\n    time.sleep(60)\n", "slow")
        .await;
    let quick = l.python(HELLO, "hello").await;
    let ids = l
        .submit(&ep, &slow, &[no_args(), no_args(), no_args()], None)
        .await;
    l.wait_for(&ids[0], "running", |d| d.status == State::Running)
        .await;
    for id in ids.iter().rev() {
        let doc = l.api.cancel(*id).await.expect("cancelled");
        assert_eq!(doc.status.wire(), "cancelled");
    }
    // The running task's worker was stopped and replaced: a new task runs at once.
    let next = l.submit(&ep, &quick, &[no_args()], None).await;
    let doc = l.finished(&next[0]).await;
    assert_eq!(doc.result, Some(json!("Hello World!")), "{doc:#?}");
    for id in &ids {
        assert_eq!(l.task(id).await.status.wire(), "cancelled");
    }
}

#[tokio::test]
async fn a_killed_agent_s_tasks_wait_for_the_endpoint_and_a_new_agent_finishes_them() {
    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let mut agent = l.agent(&token, None).await;
    let f = l
        .python(
            "def nap(s):\n    import time\n    time.sleep(s)\n    return s\n",
            "nap",
        )
        .await;
    let ids = l
        .submit(
            &ep,
            &f,
            &[(json!([2]), json!({})), (json!([2]), json!({}))],
            None,
        )
        .await;
    l.wait_for(&ids[0], "running", |d| d.status == State::Running)
        .await;
    l.wait_endpoint(&ep, "online", |e| e.online).await;
    agent.kill9().await;
    l.wait_endpoint(&ep, "offline", |e| !e.online).await;
    for id in &ids {
        let doc = l
            .wait_for(id, "back in the forwarder's queue", |d| {
                d.status == State::WaitingForEp
            })
            .await;
        assert_eq!(doc.details.attempt, 2);
    }
    let _agent = l.agent(&token, None).await;
    for id in &ids {
        let doc = l.finished(id).await;
        assert_eq!(doc.status.wire(), "success", "{doc:#?}");
        assert_eq!(doc.details.attempt, 2);
    }
}

#[tokio::test]
async fn two_executors_report_separately() {
    let l = serve().await;
    let (ep, token) = l.endpoint("split").await;
    let config = "[[executor]]\nlabel = \"cpu\"\nnodes = 2\nworkers_per_node = 2\n\n[[executor]]\nlabel = \"io\"\nworkers_per_node = 1\n";
    let _agent = l.agent(&token, Some(config)).await;
    let f = l.python(HELLO, "hello").await;
    let calls: Vec<_> = (0..8).map(|_| no_args()).collect();
    let ids = l.submit(&ep, &f, &calls, None).await;
    for id in &ids {
        assert_eq!(l.finished(id).await.status.wire(), "success");
    }
    let endpoint = l
        .wait_endpoint(&ep, "both executors reported", |e| {
            e.report
                .as_ref()
                .is_some_and(|r| r.executors.len() == 2 && r.executors[0].managers == 2)
        })
        .await;
    let executors = endpoint.report.expect("report").executors;
    assert_eq!(executors[0].label, "cpu");
    assert_eq!(executors[0].provider, "local");
    assert_eq!(executors[0].managers, 2);
    assert_eq!(executors[0].total_workers, 4);
    assert_eq!(executors[1].label, "io");
    assert_eq!(executors[1].managers, 1);
    assert_eq!(executors[1].total_workers, 1);
}

#[tokio::test]
async fn a_result_finished_while_the_service_was_down_is_delivered_after_it_restarts() {
    let mut l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let agent = l.agent(&token, None).await;
    l.wait_endpoint(&ep, "online", |e| e.online).await;
    let f = l
        .python(
            "def nap(s):\n    import time\n    time.sleep(s)\n    return 'slept'\n",
            "nap",
        )
        .await;
    let ids = l.submit(&ep, &f, &[(json!([1.5]), json!({}))], None).await;
    l.wait_for(&ids[0], "running", |d| d.status == State::Running)
        .await;
    l.kill9().await;
    // The task finishes while nobody listens; its result waits in the agent's outbox.
    common::eventually(
        "the result in the agent's outbox",
        || async { agent.outbox_holds(&ids[0], "success") },
        |held| *held,
    )
    .await;
    l.restart().await;
    let doc = l.finished(&ids[0]).await;
    assert_eq!(doc.status.wire(), "success", "{doc:#?}");
    assert_eq!(doc.result, Some(json!("slept")), "{doc:#?}");
    assert_eq!(doc.details.attempt, 1, "delivered, not rerun: {doc:#?}");
}

#[tokio::test]
async fn a_manager_that_stops_heartbeating_is_replaced_and_its_task_retried() {
    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let config = "[[executor]]\nlabel = \"solo\"\nworkers_per_node = 1\n";
    let agent = l.agent(&token, Some(config)).await;
    let f = l
        .python(
            "def nap(s):\n    import time\n    time.sleep(s)\n    return s\n",
            "nap",
        )
        .await;
    let ids = l.submit(&ep, &f, &[(json!([1]), json!({}))], None).await;
    l.wait_for(&ids[0], "running", |d| d.status == State::Running)
        .await;
    let managers = agent.managers();
    assert_eq!(managers.len(), 1, "{managers:?}");
    // Freeze the manager: it stops heart-beating but does not exit.
    assert_eq!(unsafe_kill(managers[0], 19), 0);
    let doc = l.finished(&ids[0]).await;
    assert_eq!(doc.status.wire(), "success", "{doc:#?}");
    assert_eq!(doc.details.attempt, 2);
    let retry = doc
        .details
        .task_transitions
        .iter()
        .find(|t| t.attempt == 2)
        .expect("retry")
        .clone();
    assert!(
        retry
            .reason
            .as_deref()
            .expect("reason")
            .contains("manager lost"),
        "{retry:?}"
    );
    assert!(
        !agent.managers().contains(&managers[0]),
        "the frozen manager was replaced"
    );
}

/// Sends a signal with kill(1), so that the test needs no unsafe code.
fn unsafe_kill(pid: i32, signal: i32) -> i32 {
    std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .map_or(-1, |s| s.code().unwrap_or(-1))
}

#[tokio::test]
async fn a_manager_that_cannot_reach_the_interchange_exits_with_a_clear_message() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let address = format!("127.0.0.1:{port}");
    let out = tokio::process::Command::new(common::BIN)
        .args(["endpoint", "manager", "--interchange", &address])
        .args(["--block", "1", "--workers", "1", "--connect-timeout", "0.5"])
        .env("LIFELINE_BLOCK_SECRET", "0123")
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the interchange at {address}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn connections_that_do_not_authenticate_are_dropped_and_counted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = format!(
        "[interchange]\naddress = \"127.0.0.1\"\nport = {port}\n\n[[executor]]\nlabel = \"solo\"\nworkers_per_node = 1\n"
    );
    let _agent = l.agent(&token, Some(&config)).await;
    l.wait_endpoint(&ep, "a running block", |e| {
        e.report
            .as_ref()
            .is_some_and(|r| r.executors.iter().any(|x| x.managers == 1))
    })
    .await;
    let strangers = [
        "{\"block\": 1, \"secret\": \"guessed\", \"node\": \"intruder\"}\n",
        "{\"block\": 99, \"secret\": \"guessed\", \"node\": \"intruder\"}\n",
        "GET / HTTP/1.1\r\n\r\n",
    ];
    for hello in strangers {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the interchange listens");
        stream.write_all(hello.as_bytes()).await.expect("write");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(common::PATIENCE, stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "{hello:?} was not dropped");
        assert!(rest.is_empty(), "{hello:?} was answered: {rest:?}");
    }
    l.wait_endpoint(&ep, "the refusals counted", |e| {
        e.report
            .as_ref()
            .is_some_and(|r| r.rejected_connections == strangers.len() as u64)
    })
    .await;
    // The real manager is untouched.
    let f = l.python(HELLO, "hello").await;
    let ids = l.submit(&ep, &f, &[no_args()], None).await;
    let doc = l.finished(&ids[0]).await;
    assert_eq!(doc.status.wire(), "success", "{doc:#?}");
}

#[tokio::test]
async fn a_service_killed_while_reports_flow_restarts_without_stranding_a_task() {
    let mut l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let config = "[[executor]]\nlabel = \"cpu\"\nworkers_per_node = 4\n";
    let _agent = l.agent(&token, Some(config)).await;
    l.wait_endpoint(&ep, "online", |e| e.online).await;
    let f = l
        .python(
            "def nap(s):\n    import time\n    time.sleep(s)\n    return s\n",
            "nap",
        )
        .await;
    let calls: Vec<_> = (0..400).map(|_| (json!([0.01]), json!({}))).collect();
    let ids = l.submit(&ep, &f, &calls, None).await;
    let query = lifeline_model::api::StatsQuery {
        endpoint_id: Some(ep.to_string()),
        ..lifeline_model::api::StatsQuery::default()
    };
    let stats = || async { l.api.stats(&query).await.expect("stats") };
    eventually("20 tasks finished", stats, |s| s.total - s.pending >= 20).await;
    // Killed while the agent reports a transition every few milliseconds: the agent goes on
    // running tasks while the service is away and while it reconnects.
    l.kill9().await;
    l.restart().await;
    for id in &ids {
        let doc = l.finished(id).await;
        assert_eq!(doc.status.wire(), "success", "{doc:#?}");
    }
    // The service took the agent's reports in the order they were written, replayed or new.
    let stats = l.api.stats(&query).await.expect("stats");
    assert_eq!(stats.illegal_reports, 0, "{stats:#?}");
}

/// A service, an agent running `config`, and tasks that each wait for the gate file to appear
/// and then print their number.
struct Gated {
    l: common::Lifeline,
    agent: common::Agent,
    token: String,
    ids: Vec<TaskId>,
    gate: PathBuf,
}

/// Starts a service and an agent running `config`, and submits `n` gated tasks (see [`Gated`]).
async fn gated_tasks(config: &str, n: usize) -> Gated {
    let l = serve().await;
    let (ep, token) = l.endpoint("local").await;
    let agent = l.agent(&token, Some(config)).await;
    l.wait_endpoint(&ep, "online", |e| e.online).await;
    let gate = l.scratch().join("gate");
    let wait = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; echo {{n}}",
        gate.display()
    );
    let f = l.shell(&wait).await;
    let calls: Vec<_> = (0..n).map(|n| (json!([]), json!({ "n": n }))).collect();
    let ids = l.submit(&ep, &f, &calls, None).await;
    Gated {
        l,
        agent,
        token,
        ids,
        gate,
    }
}

/// Waits for every gated task to succeed, printing its number.
async fn each_printed_its_number(l: &common::Lifeline, ids: &[TaskId]) {
    for (n, id) in ids.iter().enumerate() {
        let doc = l.finished(id).await;
        assert_eq!(doc.status, State::Success, "{doc:#?}");
        let stdout = format!("{n}\n");
        let expected = json!({ "returncode": 0, "stdout": stdout, "stderr": "" });
        assert_eq!(doc.result, Some(expected), "{doc:#?}");
    }
}

#[tokio::test]
async fn prefetch_sets_how_many_tasks_wait_next_to_a_node_s_workers() {
    // One worker and `prefetch = 2`: of four tasks waiting for a gate, one runs, two wait next
    // to the worker, and the fourth stays at the endpoint for whichever node frees up first.
    let config = "[[executor]]\nlabel = \"cpu\"\nworkers_per_node = 1\nprefetch = 2\n";
    let Gated {
        l,
        agent: _agent,
        ids,
        gate,
        ..
    } = gated_tasks(config, 4).await;
    l.wait_for(&ids[0], "running", |d| d.status == State::Running)
        .await;
    for id in &ids[1..3] {
        l.wait_for(id, "placed", |d| d.status == State::WaitingForLaunch)
            .await;
    }
    // Placed in the same pass as the others had there been room: a moment is plenty.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(l.task(&ids[3]).await.status, State::WaitingForNodes);
    std::fs::write(&gate, "").expect("gate");
    each_printed_its_number(&l, &ids).await;
}

#[tokio::test]
async fn the_service_sends_an_endpoint_no_more_than_its_task_window() {
    // A window of 3 and one worker: of six gated tasks, three are at the endpoint (one running,
    // one next to it, one waiting for a node) and three wait at the service until earlier ones
    // finish.
    let config = "task_window = 3\n[[executor]]\nlabel = \"cpu\"\nworkers_per_node = 1\n";
    let Gated {
        l,
        agent: _agent,
        ids,
        gate,
        ..
    } = gated_tasks(config, 6).await;
    l.wait_for(&ids[0], "running", |d| d.status == State::Running)
        .await;
    l.wait_for(&ids[1], "placed", |d| d.status == State::WaitingForLaunch)
        .await;
    l.wait_for(&ids[2], "at the endpoint", |d| {
        d.status == State::WaitingForNodes
    })
    .await;
    for id in &ids[3..] {
        let doc = l.task(id).await;
        assert_eq!(doc.status, State::WaitingForEp, "{doc:#?}");
    }
    std::fs::write(&gate, "").expect("gate");
    each_printed_its_number(&l, &ids).await;
}

/// A service and an agent with one worker, and three tasks that wait for a gate file: the first
/// two on the agent's only manager (it takes up to twice its workers), the third waiting for a
/// node at the endpoint. Then both are killed, the service first so that it does not see the agent
/// go, and `forged` is written in the agent's outbox for the next agent in its directory to replay.
/// Returns the service (still down), the tasks and the gate.
async fn both_killed_with_a_forged_report(
    forged: impl FnOnce(&[TaskId]) -> Reported,
) -> (common::Lifeline, String, Vec<TaskId>, PathBuf) {
    let Gated {
        mut l,
        mut agent,
        token,
        ids,
        gate,
    } = gated_tasks(ONE_WORKER, 3).await;
    l.wait_for(&ids[1], "placed", |d| d.status == State::WaitingForLaunch)
        .await;
    l.wait_for(&ids[2], "acknowledged", |d| {
        d.status == State::WaitingForNodes
    })
    .await;
    // Nothing else waits in the outbox: the forged report is the only one replayed.
    let outbox = agent.dir.join("outbox");
    // (Acknowledged batches leave nothing on disk: the outbox's files are empty.)
    let unacknowledged = || async {
        std::fs::read_dir(&outbox).map_or(0, |d| {
            d.flatten()
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum::<u64>()
        })
    };
    eventually("every report acknowledged", unacknowledged, |n| *n == 0).await;
    l.kill9().await;
    agent.kill9().await;
    let batch = 1_000_000;
    let report = FromEndpoint::Report {
        batch,
        transitions: vec![forged(&ids)],
    };
    std::fs::write(
        outbox.join(format!("{batch:020}.json")),
        serde_json::to_string(&report).expect("json"),
    )
    .expect("forged batch");
    (l, token, ids, gate)
}

const ONE_WORKER: &str = "[[executor]]\nlabel = \"cpu\"\nworkers_per_node = 1\n";

/// A report of the third task of [`both_killed_with_a_forged_report`], made now.
fn reported(id: TaskId, state: State, actor: Actor) -> Reported {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros();
    Reported {
        task_id: id,
        state,
        actor,
        attempt: 1,
        at: Timestamp::from_micros(i64::try_from(micros).expect("micros")),
        reason: None,
        result: None,
    }
}

/// Restarts the service and an agent, opens the gate, and waits for the three tasks to succeed
/// each with its own output.
async fn restart_and_finish(
    l: &mut common::Lifeline,
    token: &str,
    ids: &[TaskId],
    gate: &Path,
) -> common::Agent {
    l.restart().await;
    let agent = l.agent(token, Some(ONE_WORKER)).await;
    std::fs::write(gate, "").expect("gate");
    for (n, id) in ids.iter().enumerate() {
        let doc = l.finished(id).await;
        assert_eq!(doc.status.wire(), "success", "{doc:#?}");
        assert_eq!(
            doc.result.as_ref().expect("result")["stdout"],
            format!("{n}\n")
        );
    }
    agent
}

#[tokio::test]
async fn a_refused_report_sends_the_acknowledged_task_back_to_be_dispatched_again() {
    // The third task's end, straight from waiting-for-nodes: the agent names the task in its
    // hello (its end waits in the outbox), so the service keeps it at the endpoint, then refuses
    // the report, and the agent has nothing left of the task.
    let (mut l, token, ids, gate) =
        both_killed_with_a_forged_report(|ids| reported(ids[2], State::Success, Actor::Worker))
            .await;
    let _agent = restart_and_finish(&mut l, &token, &ids, &gate).await;
    let doc = l.task(&ids[2]).await;
    assert_eq!(doc.details.attempt, 1, "requeued, not retried: {doc:#?}");
    assert!(
        doc.details
            .task_transitions
            .iter()
            .any(|t| t.state == State::WaitingForEp
                && t.reason.as_deref().is_some_and(|r| r.contains("refused"))),
        "{doc:#?}"
    );
}

#[tokio::test]
async fn a_refused_report_of_an_earlier_run_leaves_the_task_s_new_run_alone() {
    // An agent that restarted holds none of its tasks, but its outbox still holds the third
    // task's placement from before. The service sends the task again (same attempt: a requeue),
    // then refuses that old placement; the new run must go on.
    let (mut l, token, ids, gate) = both_killed_with_a_forged_report(|ids| {
        reported(ids[2], State::WaitingForLaunch, Actor::Manager)
    })
    .await;
    let _agent = restart_and_finish(&mut l, &token, &ids, &gate).await;
    let doc = l.task(&ids[2]).await;
    assert_eq!(doc.details.attempt, 1, "requeued, not retried: {doc:#?}");
    let stats = l.api.stats(&Default::default()).await.expect("stats");
    assert_eq!(stats.illegal_reports, 1, "the old placement only");
}

/// Every metric name in a Prometheus exposition, as queries name them (histograms with their
/// `_bucket`, `_count` and `_sum` series).
fn exported(text: &str) -> std::collections::HashSet<String> {
    let mut names = std::collections::HashSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').expect("name and type");
        if kind == "histogram" {
            for suffix in ["_bucket", "_count", "_sum"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name.to_owned());
    }
    names
}

/// The value of one series (`name{labels}`) in an exposition, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

/// Every `lifeline_*` metric a Grafana dashboard's queries name.
fn queried(dashboard: &serde_json::Value, names: &mut Vec<String>) {
    match dashboard {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition", serde_json::Value::String(query)) => {
                        let mut rest = query.as_str();
                        while let Some(at) = rest.find("lifeline_") {
                            let tail = &rest[at..];
                            let end = tail
                                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                                .unwrap_or(tail.len());
                            names.push(tail[..end].to_owned());
                            rest = &tail[end..];
                        }
                    }
                    _ => queried(value, names),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| queried(v, names)),
        _ => {}
    }
}

#[tokio::test]
async fn the_agent_s_metrics_and_the_grafana_dashboard_over_both() {
    let l = serve().await;
    let (ep, token) = l.endpoint("watched").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let config = format!(
        "metrics_bind = \"127.0.0.1:{port}\"\n\n[[executor]]\nlabel = \"cpu\"\nworkers_per_node = 2\n"
    );
    let _agent = l.agent(&token, Some(&config)).await;
    let f = l.python(HELLO, "hello").await;
    let ids = l.submit(&ep, &f, &[no_args(), no_args()], None).await;
    for id in &ids {
        assert_eq!(l.finished(id).await.status.wire(), "success");
    }
    let http = reqwest::Client::new();
    let agent_url = format!("http://127.0.0.1:{port}/metrics");
    let agent = eventually(
        "the agent's metrics to show its manager and the acknowledged reports",
        || async {
            match http.get(&agent_url).send().await {
                Ok(resp) => resp.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        },
        |text| {
            sample(text, "lifeline_agent_managers{executor=\"cpu\"}") == Some(1.0)
                && sample(text, "lifeline_agent_report_batch_seconds_count")
                    .is_some_and(|n| n >= 1.0)
        },
    )
    .await;
    for (series, value) in [
        ("lifeline_agent_connected", 1.0),
        (
            "lifeline_agent_workers{executor=\"cpu\",state=\"idle\"}",
            2.0,
        ),
        (
            "lifeline_agent_workers{executor=\"cpu\",state=\"busy\"}",
            0.0,
        ),
        (
            "lifeline_agent_tasks{executor=\"cpu\",state=\"running\"}",
            0.0,
        ),
        (
            "lifeline_agent_blocks{executor=\"cpu\",state=\"running\"}",
            1.0,
        ),
    ] {
        assert_eq!(sample(&agent, series), Some(value), "{series} in\n{agent}");
    }
    let service = http
        .get(format!("{}/metrics", l.url))
        .bearer_auth(&l.token)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    assert_eq!(
        sample(
            &service,
            &format!("lifeline_tasks{{endpoint=\"{ep}\",state=\"success\"}}")
        ),
        Some(2.0),
        "{service}"
    );

    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana/lifeline.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("the dashboard"))
            .expect("json");
    let mut names = Vec::new();
    queried(&dashboard, &mut names);
    assert!(names.len() >= 20, "{names:?}");
    let mut known = exported(&agent);
    known.extend(exported(&service));
    let unknown: Vec<&String> = names.iter().filter(|n| !known.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "the Grafana dashboard queries metrics nobody exports: {unknown:?}\nexported: {known:?}"
    );
}
