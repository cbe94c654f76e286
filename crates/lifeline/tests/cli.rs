//! The command line as people use it: `lifeline up --demo`, submit + watch + status, and the
//! messages and exit codes of mistakes.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::{BIN, PATIENCE, eventually};
use lifeline_client::{Client, TaskStatus};
use lifeline_model::api::{
    FunctionSpec, RegisterFunction, StatsQuery, StatsSummary, SubmitRequest, TaskListQuery,
    TaskSpec,
};
use lifeline_model::{State, TaskId, TaskSummary};
use lifeline_testkit::eventually_within;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// `lifeline up` running in its own home directory.
struct Up {
    child: Child,
    home: tempfile::TempDir,
    url: String,
    token: String,
    /// What `--demo` printed: (what, first task id).
    demo: Vec<(String, String)>,
    /// Every line `--demo` printed up to the trickle's.
    demo_lines: Vec<String>,
}

async fn up(home: Option<tempfile::TempDir>, demo: bool) -> Up {
    let home = home.unwrap_or_else(|| tempfile::tempdir().expect("home"));
    let mut cmd = Command::new(BIN);
    cmd.args(["up", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(home.path().join("data"));
    if demo {
        cmd.arg("--demo");
    }
    let mut child = cmd
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env("LIFELINE_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("lifeline up starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut url = String::new();
    let mut token = String::new();
    let mut found = Vec::new();
    let mut demo_lines = Vec::new();
    // With --demo, up to the line that says the trickle runs (the batch, if any, comes first).
    let mut trickling = !demo;
    while url.is_empty() || !trickling {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("up prints")
            .expect("stdout")
            .expect("a line");
        if let Some(rest) = line.strip_prefix("Lifeline is up: ") {
            let (u, t) = rest.split_once("/#token=").expect("url with token");
            url = u.to_owned();
            token = t.to_owned();
        }
        if let Some(rest) = line.strip_prefix("demo: ") {
            demo_lines.push(line.clone());
            trickling |= rest.starts_with("a trickle of tasks");
            if let Some((what, ids)) = rest.split_once(" -> ") {
                found.push((
                    what.to_owned(),
                    ids.split_whitespace().next().expect("id").to_owned(),
                ));
            }
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Up {
        child,
        home,
        url,
        token,
        demo: found,
        demo_lines,
    }
}

impl Up {
    /// `lifeline ARGS` as the same user (it finds the service through the saved config).
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("HOME", self.home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("LIFELINE_URL")
            .env_remove("LIFELINE_TOKEN");
        cmd
    }

    /// Runs `lifeline ARGS` as the same user and waits for it.
    async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("lifeline runs")
    }

    /// Writes `nap.py` (`nap(seconds, fail=False)`) into the home; returns `FILE:nap`.
    fn nap(&self) -> String {
        let file = self.home.path().join("nap.py");
        std::fs::write(&file, NAP).expect("write");
        format!("{}:nap", file.display())
    }

    /// Runs `lifeline submit ARGS`, which must succeed: the task ids and the task group.
    async fn submit(&self, args: &[&str]) -> (Vec<String>, String) {
        let out = self.run(&[&["submit"][..], args].concat()).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let ids = text(&out.stdout).lines().map(str::to_owned).collect();
        let group = text(&out.stderr)
            .lines()
            .find_map(|l| l.strip_prefix("task group ").map(str::to_owned))
            .expect("the task group is printed");
        (ids, group)
    }

    /// The service `up` started, through the typed client.
    fn api(&self) -> Client {
        Client::new(self.url.clone(), self.token.clone())
    }

    async fn stats(&self) -> StatsSummary {
        self.api()
            .stats(&StatsQuery::default())
            .await
            .expect("stats")
    }

    async fn finished(&self, id: &str) -> TaskStatus {
        let id: TaskId = id.parse().expect("a task id");
        let probe = || async { self.api().task(id).await.expect("task") };
        eventually_within(PATIENCE * 2, &format!("{id} finished"), probe, |d| {
            !d.pending
        })
        .await
    }

    fn demo_task(&self, prefix: &str) -> &str {
        &self
            .demo
            .iter()
            .find(|(what, _)| what.starts_with(prefix))
            .unwrap_or_else(|| panic!("demo printed {prefix}: {:?}", self.demo))
            .1
    }

    /// Stops it as Ctrl-C does and waits; returns its home for a restart.
    async fn interrupt(mut self) -> tempfile::TempDir {
        let pid = self.child.id().expect("running");
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("stops in time")
            .expect("status");
        assert!(status.success(), "up exits cleanly on Ctrl-C: {status}");
        self.home
    }
}

/// A function that sleeps, then returns how long it slept or fails.
const NAP: &str = "import time\n\n\ndef nap(seconds, fail=False):\n    time.sleep(seconds)\n    if fail:\n        raise ValueError(\"woke up badly\")\n    return seconds\n";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What `lifeline result` wrote on stderr, without the note it writes while it waits.
fn without_waiting(stderr: &[u8]) -> String {
    let text = text(stderr);
    match text.strip_prefix("waiting for task ") {
        Some(rest) => rest
            .split_once('\n')
            .map_or("", |(_, after)| after)
            .to_owned(),
        None => text,
    }
}

#[tokio::test]
async fn up_demo_shows_the_whole_life_cycle_and_resumes_its_store() {
    let up = up(None, true).await;
    let doc = up.finished(up.demo_task("hello")).await;
    assert_eq!(
        (doc.status, doc.result),
        (State::Success, Some(json!("Hello World!")))
    );
    let doc = up.finished(up.demo_task("greet")).await;
    assert!(
        doc.result
            .as_ref()
            .and_then(|r| r["stdout"].as_str())
            .expect("stdout")
            .starts_with("Hello Lifeline from "),
        "{doc:#?}"
    );
    let doc = up.finished(up.demo_task("divide by zero")).await;
    assert_eq!(doc.status, State::Failed);
    assert!(
        doc.exception
            .as_deref()
            .expect("exception")
            .ends_with("ZeroDivisionError: division by zero")
    );
    let doc = up.finished(up.demo_task("worker crash")).await;
    assert_eq!(
        (doc.status, doc.details.attempt),
        (State::Success, 2),
        "{doc:#?}"
    );
    let doc = up.finished(up.demo_task("cancelled")).await;
    assert_eq!(doc.status, State::Cancelled);
    let late = up.demo_task("6 tasks waiting");
    let doc = up.finished(late).await;
    assert_eq!(doc.status, State::Success, "{doc:#?}");
    let states: Vec<&str> = doc
        .details
        .task_transitions
        .iter()
        .map(|t| t.state.wire())
        .collect();
    assert_eq!(
        states[1], "waiting-for-ep",
        "it waited for the late endpoint"
    );
    assert_eq!(up.demo.len(), 7, "{:?}", up.demo_lines);

    // Then a gentle trickle goes on: about a task a second, now and then a failure (besides the
    // batch's division by zero) and a worker crash that is retried (besides the batch's).
    let api = up.api();
    let failed = TaskListQuery {
        state: Some("failed".into()),
        ..TaskListQuery::default()
    };
    eventually_within(
        PATIENCE * 2,
        "a task of the trickle failed",
        || async { api.tasks(&failed).await.expect("tasks").tasks.len() },
        |n| *n >= 2,
    )
    .await;
    let retried = || async {
        let page = api
            .tasks(&TaskListQuery {
                state: Some("success".into()),
                limit: Some(1000),
                ..TaskListQuery::default()
            })
            .await
            .expect("tasks");
        page.tasks.iter().filter(|t| t.attempt == 2).count()
    };
    eventually_within(
        PATIENCE * 2,
        "a task of the trickle retried",
        retried,
        |n| *n >= 2,
    )
    .await;
    let before = up.stats().await.total;
    let watched = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let added = up.stats().await.total - before;
    let rate = added as f64 / watched.elapsed().as_secs_f64();
    assert!(
        added >= 1 && rate <= 3.0,
        "{added} tasks in {:?}",
        watched.elapsed()
    );
    let late_id = api
        .endpoints()
        .await
        .expect("endpoints")
        .into_iter()
        .find(|e| e.name == "demo-late")
        .expect("demo-late")
        .endpoint_id;
    let late_stats = StatsQuery {
        endpoint_id: Some(late_id.to_string()),
        ..StatsQuery::default()
    };
    assert_eq!(api.stats(&late_stats).await.expect("stats").total, 6);

    // Ctrl-C, then up --demo again on the same store: nothing lost, no second local endpoint,
    // and the batch is not submitted again; the trickle resumes.
    let home = up.interrupt().await;
    let again = self::up(Some(home), true).await;
    assert!(again.demo.is_empty(), "{:?}", again.demo_lines);
    assert!(
        again.demo_lines[0].contains("not submitted again"),
        "{:?}",
        again.demo_lines
    );
    let total = again.stats().await.total;
    eventually("the trickle resumes", || again.stats(), |s| s.total > total).await;
    let api = again.api();
    let endpoints = api.endpoints().await.expect("endpoints");
    let names: Vec<&str> = endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["local", "demo-late"]);
    assert_eq!(api.stats(&late_stats).await.expect("stats").total, 6);
    assert_eq!(again.stats().await.tasks.get(State::Cancelled), 1);
    again.interrupt().await;
}

#[tokio::test]
async fn submit_watch_and_status_round_trip() {
    let up = up(None, false).await;
    let file = up.home.path().join("science.py");
    std::fs::write(
        &file,
        "def square(x):\n    return x * x\n\ndef fail():\n    raise ValueError('bad sample')\n",
    )
    .expect("write");
    let python = format!("{}:square", file.display());

    let out = up
        .run(&[
            "submit",
            "--python",
            &python,
            "--args",
            "[7]",
            "--endpoint",
            "local",
            "--count",
            "3",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 3);
    let group = text(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("task group ").map(str::to_owned))
        .expect("group printed");

    let out = up.run(&["watch", "--task-group", &group]).await;
    assert!(out.status.success(), "watch: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3 success, 0 failed"),
        "{}",
        text(&out.stdout)
    );

    let out = up.run(&["status", &ids[0]]).await;
    assert!(out.status.success());
    let shown = text(&out.stdout);
    assert!(
        shown.contains("Success (attempt 1 of at most 4)") && shown.contains("result:   49"),
        "{shown}"
    );
    assert!(shown.contains("waiting-for-launch  by manager"), "{shown}");
    let out = up.run(&["status", "--json", &ids[1]]).await;
    let doc: TaskStatus = serde_json::from_slice(&out.stdout).expect("a status document");
    assert_eq!((doc.status, doc.result), (State::Success, Some(json!(49))));

    // Shell, with a placeholder.
    let out = up
        .run(&[
            "submit",
            "--shell",
            "echo hello {name}",
            "--kwargs",
            r#"{"name": "shell"}"#,
            "--endpoint",
            "local",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    let doc = up.finished(&id).await;
    assert_eq!(
        doc.result.as_ref().map(|r| &r["stdout"]),
        Some(&json!("hello shell\n"))
    );

    // A failing submission makes watch exit 1, and status shows the exception.
    let out = up
        .run(&[
            "submit",
            "--python",
            &format!("{}:fail", file.display()),
            "--endpoint",
            "local",
        ])
        .await;
    let id = text(&out.stdout).trim().to_owned();
    let group = text(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("task group ").map(str::to_owned))
        .expect("group");
    let out = up.run(&["watch", "--task-group", &group]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: 1 of the 1 watched tasks failed"
    );
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("Watching the 1 tasks of task group {group}"))
            && shown.contains("0 success, 1 failed, 0 cancelled")
            && shown.contains(&format!("  {id}\n")),
        "{shown}"
    );
    // The status of a failed task exits 1, as README says, read or as JSON.
    let out = up.run(&["status", &id]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ValueError: bad sample"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(text(&out.stderr).trim(), "error: the task failed");
    let out = up.run(&["status", "--json", &id]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = up.run(&["status", &id, &ids[0]]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).trim(), "error: 1 of the tasks failed");

    // Cancelling a finished task is refused.
    let out = up.run(&["cancel", &id]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("already failed"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn watch_follows_the_unfinished_tasks_and_those_submitted_while_it_runs() {
    let up = up(None, false).await;
    let nap = up.nap();
    // A failure of an earlier run: finished before watch starts, so not watched.
    let (old, _) = up
        .submit(&[
            "--python",
            &nap,
            "--kwargs",
            r#"{"seconds": 0, "fail": true}"#,
            "--endpoint",
            "local",
        ])
        .await;
    assert_eq!(up.finished(&old[0]).await.status, State::Failed);

    // Three tasks from a file, one per line (a blank line is skipped), long enough for watch to
    // start while they run, even on a busy machine.
    let file = up.home.path().join("tasks.jsonl");
    std::fs::write(
        &file,
        "{\"args\": [8]}\n\n{\"args\": [8], \"kwargs\": {\"fail\": true}}\n{\"kwargs\": {\"seconds\": 7}}\n",
    )
    .expect("write");
    let file = file.display().to_string();
    let (ids, _) = up
        .submit(&[
            "--python",
            &nap,
            "--args-file",
            &file,
            "--endpoint",
            "local",
        ])
        .await;
    assert_eq!(ids.len(), 3, "{ids:?}");

    let mut watch = up
        .command(&["watch", "--endpoint", "local"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("watch starts");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let header = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("watch prints its header")
        .expect("stdout")
        .expect("a line");
    assert_eq!(
        header,
        "Watching 3 unfinished tasks on local, and any submitted there from now on, until all are finished."
    );
    // A task submitted while watch runs is watched too.
    let (late, _) = up
        .submit(&["--python", &nap, "--args", "[1]", "--endpoint", "local"])
        .await;
    let mut rest = Vec::new();
    while let Some(line) = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("watch goes on printing")
        .expect("stdout")
    {
        rest.push(line);
    }
    let out = tokio::time::timeout(PATIENCE, watch.wait_with_output())
        .await
        .expect("watch ends")
        .expect("watch's output");
    assert_eq!(out.status.code(), Some(1), "{rest:?}");
    assert_eq!(
        text(&out.stderr),
        "error: 1 of the 4 watched tasks failed\n"
    );
    assert_eq!(rest.len(), 3, "{rest:?}");
    assert!(
        rest[0].starts_with("All 4 watched tasks finished in ")
            && rest[0].ends_with(": 3 success, 1 failed, 0 cancelled."),
        "{rest:?}"
    );
    assert_eq!(rest[1], "Failed tasks (`lifeline status ID` shows why):");
    assert_eq!(rest[2], format!("  {}", ids[1]));
    assert_eq!(up.finished(&late[0]).await.status, State::Success);

    // Everything is finished now: nothing to watch, and that is no failure.
    let out = up.run(&["watch", "--endpoint", "local"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Nothing to watch: no task on local is unfinished (submit some, then watch again).\n"
    );
}

#[tokio::test]
async fn result_cancel_and_task_list() {
    let up = up(None, false).await;
    let nap = up.nap();
    let (slow, _) = up
        .submit(&["--python", &nap, "--args", "[2]", "--endpoint", "local"])
        .await;
    let (failing, _) = up
        .submit(&[
            "--python",
            &nap,
            "--args",
            "[0]",
            "--kwargs",
            r#"{"fail": true}"#,
            "--endpoint",
            "local",
        ])
        .await;
    let (long, _) = up
        .submit(&["--python", &nap, "--args", "[60]", "--endpoint", "local"])
        .await;

    // `result` waits for a pending task and prints its result as JSON.
    let out = up.run(&["result", &slow[0]]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "2\n");
    // A failure: its traceback, the user's frames only, then exit 1.
    let out = up.run(&["result", &failing[0]]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = without_waiting(&out.stderr);
    assert!(
        err.starts_with(
            "Traceback (most recent call last):\n  File \"<lifeline function nap>\", line 7, in nap\n"
        ) && err.ends_with(&format!(
            "ValueError: woke up badly\nerror: task {} failed\n",
            failing[0]
        )),
        "{err}"
    );
    assert!(!err.contains("lifeline worker"), "{err}");

    // Cancelling: done once, and a second time is no failure, only a note.
    let out = up.run(&["cancel", &long[0]]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}  cancelled\n", long[0]));
    let out = up.run(&["cancel", &long[0]]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{}  already cancelled; nothing to do\n", long[0])
    );
    let out = up.run(&["result", &long[0]]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: task {} was cancelled, so it has no result\n",
            long[0]
        )
    );

    // Lists: filtered by state, endpoint and submission, page after page.
    let out = up.run(&["task", "list", "--state", "failed"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let rows: Vec<&str> = listed.lines().collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(rows[0].starts_with("TASK "), "{listed}");
    assert!(
        rows[1].starts_with(&failing[0])
            && rows[1].contains(" failed ")
            && rows[1].contains(" local "),
        "{listed}"
    );
    assert!(rows[1].contains(" nap "), "the function's name: {listed}");
    let out = up
        .run(&[
            "task",
            "list",
            "--endpoint",
            "local",
            "--state",
            "success,cancelled",
            "--json",
        ])
        .await;
    let mut ids: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            let task: TaskSummary = serde_json::from_str(l).expect("a task per line");
            task.task_id.to_string()
        })
        .collect();
    ids.sort();
    let mut expected = vec![slow[0].clone(), long[0].clone()];
    expected.sort();
    assert_eq!(ids, expected);
    let (many, group) = up
        .submit(&[
            "--python",
            &nap,
            "--args",
            "[0]",
            "--count",
            "1500",
            "--endpoint",
            "local",
        ])
        .await;
    let out = up.run(&["task", "list", "--group", &group, "--json"]).await;
    let mut listed: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<TaskSummary>(l)
                .expect("task")
                .task_id
                .to_string()
        })
        .collect();
    listed.sort();
    let mut many = many;
    many.sort();
    assert_eq!(listed, many, "every page of the group");
    let out = up
        .run(&["task", "list", "--group", &group, "--limit", "3"])
        .await;
    assert_eq!(
        text(&out.stdout).lines().count(),
        4,
        "{}",
        text(&out.stdout)
    );

    let out = up.run(&["task", "list", "--state", "finished"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .starts_with("error: \"finished\" is not a state; the states are received, "),
        "{}",
        text(&out.stderr)
    );
    let out = up.run(&["task", "list", "--endpoint", "nowhere"]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = up
        .run(&["result", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown task"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn files_are_checked_before_anything_is_submitted() {
    let up = up(None, false).await;
    let dir = up.home.path();
    let ok = dir.join("ok.py");
    std::fs::write(&ok, "import math\n\n\ndef square(x):\n    return x * x\n").expect("write");
    let broken = dir.join("broken.py");
    std::fs::write(&broken, "def square(x):\n    return x *\n").expect("write");
    let (ok, broken) = (ok.display().to_string(), broken.display().to_string());

    let out = up
        .run(&[
            "submit",
            "--python",
            &format!("{ok}:missing"),
            "--endpoint",
            "local",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("error: {ok} has no function named \"missing\"; it defines square\n")
    );
    for command in [
        &[
            "submit",
            "--python",
            &format!("{broken}:square"),
            "--endpoint",
            "local",
        ][..],
        &[
            "function",
            "register",
            "--python",
            &format!("{broken}:square"),
        ],
    ] {
        let out = up.run(command).await;
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        assert_eq!(
            text(&out.stderr),
            format!("error: {broken}, line 2: invalid syntax in `return x *`\n"),
            "{command:?}"
        );
    }

    // An --args-file with a bad line is refused whole, naming the line.
    let tasks = dir.join("tasks.jsonl");
    for (content, why) in [
        (
            "{\"args\": [1]}\n[2]\n",
            "line 2: not a JSON object such as {\"args\": [1, 2], \"kwargs\": {}}",
        ),
        (
            "{\"args\": [1]}\n\n{\"arg\": [2]}\n",
            "line 3: unknown key \"arg\" (a line holds \"args\" and \"kwargs\")",
        ),
        (
            "{\"kwargs\": [1]}\n",
            "line 1: \"kwargs\" must be a JSON object; got [1]",
        ),
        (
            "{\"args\": [1\n",
            "line 1: not valid JSON (EOF while parsing a list at line 1 column 11)",
        ),
    ] {
        std::fs::write(&tasks, content).expect("write");
        let out = up
            .run(&[
                "submit",
                "--python",
                &format!("{ok}:square"),
                "--args-file",
                &tasks.display().to_string(),
                "--endpoint",
                "local",
            ])
            .await;
        assert_eq!(out.status.code(), Some(2), "{content}");
        assert_eq!(
            text(&out.stderr),
            format!("error: {}, {why}; nothing was submitted\n", tasks.display()),
            "{content}"
        );
    }
    std::fs::write(&tasks, "\n").expect("write");
    let out = up
        .run(&[
            "submit",
            "--shell",
            "true",
            "--args-file",
            &tasks.display().to_string(),
            "--endpoint",
            "local",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("holds no task"),
        "{}",
        text(&out.stderr)
    );
    let out = up
        .run(&[
            "submit",
            "--shell",
            "true",
            "--args-file",
            "tasks.jsonl",
            "--count",
            "2",
            "--endpoint",
            "local",
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "--args-file and --count conflict"
    );
    assert_eq!(up.stats().await.total, 0, "nothing was submitted");

    // What gets past the check (registered through the API here) fails on the endpoint with
    // the user's own lines, never the worker's.
    let api = up.api();
    let local = api.endpoints().await.expect("endpoints")[0].endpoint_id;
    let cases = [
        (
            "boom",
            "import nonexistent_module\n\ndef boom():\n    pass\n",
            "boom",
            "Traceback (most recent call last):\n  File \"<lifeline function boom>\", line 1, in <module>\n",
            "\nModuleNotFoundError: No module named 'nonexistent_module'\n",
        ),
        (
            "nope",
            "def square(x):\n    return x * x\n",
            "nope",
            "NameError: the function's source defines no function named 'nope'\n",
            "",
        ),
        (
            "bad",
            "def bad(:\n    pass\n",
            "bad",
            "  File \"<lifeline function bad>\", line 1\n    def bad(:\n",
            "\nSyntaxError: invalid syntax\n",
        ),
    ];
    for (name, source, entrypoint, starts, ends) in cases {
        let spec = FunctionSpec::Python {
            source: source.into(),
            entrypoint: entrypoint.into(),
        };
        let function = api
            .register_function(&RegisterFunction::new(name, spec))
            .await
            .expect("function");
        let request = SubmitRequest {
            tasks: vec![TaskSpec::<serde_json::Value> {
                function_id: function,
                args: None,
                kwargs: None,
            }],
            max_retries: None,
        };
        let id = api.submit(local, &request).await.expect("submit").task_ids[0].to_string();
        let out = up.run(&["result", &id]).await;
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = without_waiting(&out.stderr);
        assert!(
            err.starts_with(starts) && err.ends_with(&format!("{ends}error: task {id} failed\n")),
            "{name}: {err}"
        );
        assert!(!err.contains("lifeline worker"), "{name}: {err}");
    }
}

async fn lifeline(args: &[&str], env: &[(&str, &str)], home: &Path) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("LIFELINE_URL")
        .env_remove("LIFELINE_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("runs")
}

#[tokio::test]
async fn mistakes_get_one_clear_sentence_and_the_right_exit_code() {
    let home = tempfile::tempdir().expect("home");
    let h = home.path();

    let out = lifeline(&["submit", "--endpoint"], &[], h).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--endpoint"),
        "{}",
        text(&out.stderr)
    );

    let out = lifeline(&["status", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"], &[], h).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("lifeline up"),
        "{}",
        text(&out.stderr)
    );

    let unreachable = [
        ("LIFELINE_URL", "http://127.0.0.1:9"),
        ("LIFELINE_TOKEN", "x"),
    ];
    let out = lifeline(&["endpoint", "list"], &unreachable, h).await;
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: cannot reach the Lifeline service at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && err.lines().count() == 1,
        "{err}"
    );

    let up = up(None, false).await;
    let bad_token = [
        ("LIFELINE_URL", up.url.as_str()),
        ("LIFELINE_TOKEN", "wrong"),
    ];
    let out = lifeline(&["endpoint", "list"], &bad_token, h).await;
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("refused the token"),
        "{}",
        text(&out.stderr)
    );

    let out = up
        .run(&[
            "submit",
            "--shell",
            "true",
            "--args",
            "{oops",
            "--endpoint",
            "local",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--args is not valid JSON"),
        "{}",
        text(&out.stderr)
    );
    let out = up
        .run(&["submit", "--shell", "true", "--endpoint", "nowhere"])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no endpoint is named or numbered \"nowhere\""),
        "{}",
        text(&out.stderr)
    );
    let out = up
        .run(&["submit", "--python", "missing.py:f", "--endpoint", "local"])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read missing.py"),
        "{}",
        text(&out.stderr)
    );
    // A malformed id is bad usage, refused before the service is asked.
    for (command, kind) in [
        (&["status", "not-an-id"][..], "task"),
        (&["status", "--json", "not-an-id"], "task"),
        (&["result", "not-an-id"], "task"),
        (&["cancel", "not-an-id"], "task"),
        (&["watch", "--task-group", "not-an-id"], "task group"),
        (&["task", "list", "--group", "not-an-id"], "task group"),
        (&["submit", "not-an-id", "--endpoint", "local"], "function"),
    ] {
        let out = up.run(command).await;
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "error: \"not-an-id\" is not a valid {kind} id (expected a UUID such as \
                 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b)\n"
            ),
            "{command:?}"
        );
        assert!(out.stdout.is_empty(), "{command:?}");
    }
}

/// What `lifeline serve` prints up to the line that says where the dashboard is.
async fn serve_banner(data_dir: &Path) -> Vec<String> {
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("LIFELINE_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut banner = Vec::new();
    loop {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("serve prints")
            .expect("stdout")
            .expect("a line");
        let done = line.contains("dashboard");
        banner.push(line);
        if done {
            break;
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    banner
}

#[tokio::test]
async fn version_names_the_commit() {
    let home = tempfile::tempdir().expect("home");
    let out = lifeline(&["--version"], &[], home.path()).await;
    assert!(out.status.success());
    let line = text(&out.stdout);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        line.trim(),
        format!("lifeline {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn serve_prints_the_user_token_only_when_it_creates_it() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let first = serve_banner(&data).await.join("\n");
    let token = std::fs::read_to_string(data.join("token")).expect("token");
    let token = token.trim();
    assert!(first.contains(token), "{first}");
    // Every later start only says where the token is kept: service logs never hold it.
    let again = serve_banner(&data).await.join("\n");
    assert!(!again.contains(token), "{again}");
    assert!(
        again.contains(&data.join("token").display().to_string()),
        "{again}"
    );
}

#[tokio::test]
async fn users_and_their_tokens_from_the_command_line() {
    let l = common::serve().await;
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let url = l.url.as_str();
    let as_admin = [("LIFELINE_URL", url), ("LIFELINE_TOKEN", l.token.as_str())];

    let out = lifeline(&["user", "add", "ada", "--json"], &as_admin, h).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(added["user"], "ada");
    let ada = added["token"].as_str().expect("token").to_owned();
    let out = lifeline(&["user", "add", "bob"], &as_admin, h).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bob = text(&out.stdout)
        .lines()
        .last()
        .expect("the token is the last line")
        .to_owned();
    let as_ada = [("LIFELINE_URL", url), ("LIFELINE_TOKEN", ada.as_str())];
    let as_bob = [("LIFELINE_URL", url), ("LIFELINE_TOKEN", bob.as_str())];

    // Ada's endpoint is hers until she shares it.
    let out = lifeline(&["endpoint", "register", "ada-site"], &as_ada, h).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lifeline(&["endpoint", "list"], &as_bob, h).await;
    assert!(
        !text(&out.stdout).contains("ada-site"),
        "{}",
        text(&out.stdout)
    );
    let out = lifeline(
        &["endpoint", "share", "ada-site", "--with", "bob"],
        &as_ada,
        h,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("shared with bob"),
        "{}",
        text(&out.stdout)
    );
    let out = lifeline(&["endpoint", "list"], &as_bob, h).await;
    assert!(
        text(&out.stdout).contains("ada-site"),
        "{}",
        text(&out.stdout)
    );

    // Functions are their maker's.
    let out = lifeline(
        &[
            "function", "register", "--shell", "echo hi", "--name", "greet",
        ],
        &as_ada,
        h,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lifeline(&["function", "list"], &as_ada, h).await;
    assert!(text(&out.stdout).contains("greet"), "{}", text(&out.stdout));
    let out = lifeline(&["function", "list"], &as_bob, h).await;
    assert!(
        !text(&out.stdout).contains("greet"),
        "{}",
        text(&out.stdout)
    );

    // Tokens: made, listed, revoked, and then refused (exit code 4).
    let out = lifeline(
        &[
            "token",
            "create",
            "--name",
            "laptop",
            "--expires",
            "30d",
            "--json",
        ],
        &as_ada,
        h,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let id = made["id"].as_str().expect("id").to_owned();
    assert_eq!(made["name"], "laptop");
    assert!(
        made["expires"].as_f64().is_some_and(|t| t > 1.7e9),
        "{made}"
    );
    let laptop = made["token"].as_str().expect("token").to_owned();
    let out = lifeline(&["token", "list"], &as_ada, h).await;
    assert!(text(&out.stdout).contains(&id), "{}", text(&out.stdout));
    let out = lifeline(&["token", "revoke", &id], &as_ada, h).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let with_laptop = [("LIFELINE_URL", url), ("LIFELINE_TOKEN", laptop.as_str())];
    let out = lifeline(&["endpoint", "list"], &with_laptop, h).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));

    // Only admin manages users.
    let out = lifeline(&["user", "list"], &as_ada, h).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("only an admin"),
        "{}",
        text(&out.stderr)
    );
    let out = lifeline(&["user", "list"], &as_admin, h).await;
    let listed = text(&out.stdout);
    assert!(
        listed.contains("ada") && listed.contains("bob") && listed.contains("admin"),
        "{listed}"
    );
    let out = lifeline(&["user", "remove", "bob"], &as_admin, h).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lifeline(&["endpoint", "list"], &as_bob, h).await;
    assert_eq!(
        out.status.code(),
        Some(4),
        "a removed user's token is refused"
    );
}

#[tokio::test]
async fn backup_copies_a_running_store_to_a_new_file() {
    let l = common::serve().await;
    let home = tempfile::tempdir().expect("home");
    let dest = l.scratch().join("copy.sqlite3");
    let data = l.data_dir();
    let args = [
        "backup",
        "--data-dir",
        data.to_str().expect("path"),
        dest.to_str().expect("path"),
    ];
    let out = lifeline(&args, &[], home.path()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Backed up 0 tasks"),
        "{}",
        text(&out.stdout)
    );
    let again = lifeline(&args, &[], home.path()).await;
    assert_eq!(again.status.code(), Some(1), "never over an existing file");
    assert!(
        text(&again.stderr).contains("never overwrites"),
        "{}",
        text(&again.stderr)
    );
}
