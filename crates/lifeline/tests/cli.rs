//! The command line as people use it: `lifeline up --demo`, submit + watch + status, and the
//! messages and exit codes of mistakes.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::{BIN, PATIENCE, eventually};
use lifeline_client::{Client, TaskStatus};
use lifeline_model::api::{StatsQuery, StatsSummary};
use lifeline_model::{State, TaskId};
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
    let wanted = if demo { 7 } else { 0 };
    while url.is_empty() || found.len() < wanted {
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
        if let Some(rest) = line.strip_prefix("demo: ")
            && let Some((what, ids)) = rest.split_once(" -> ")
        {
            found.push((
                what.to_owned(),
                ids.split_whitespace().next().expect("id").to_owned(),
            ));
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Up {
        child,
        home,
        url,
        token,
        demo: found,
    }
}

impl Up {
    /// Runs `lifeline ARGS` as the same user (it finds the service through the saved config).
    async fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("LIFELINE_URL")
            .env_remove("LIFELINE_TOKEN")
            .output()
            .await
            .expect("lifeline runs")
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
    // The other tasks of the late endpoint finish about now too.
    let stats = eventually(
        "every demo task finished",
        || up.stats(),
        |s| s.pending == 0,
    )
    .await;
    assert_eq!(stats.pending, 0, "{stats:#?}");
    assert_eq!(stats.tasks.get(State::Failed), 1);
    assert_eq!(stats.tasks.get(State::Cancelled), 1);
    let total = stats.total;

    // Ctrl-C, then up again on the same store: nothing lost, no second local endpoint.
    let home = up.interrupt().await;
    let again = self::up(Some(home), false).await;
    assert_eq!(again.stats().await.total, total);
    let endpoints = again.api().endpoints().await.expect("endpoints");
    let names: Vec<&str> = endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["local", "demo-late"]);
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
    assert!(text(&out.stderr).contains("1 of the watched tasks failed"));
    let out = up.run(&["status", &id]).await;
    assert!(
        text(&out.stdout).contains("ValueError: bad sample"),
        "{}",
        text(&out.stdout)
    );

    // Cancelling a finished task is refused.
    let out = up.run(&["cancel", &id]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("already failed"),
        "{}",
        text(&out.stdout)
    );
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
    let out = up.run(&["status", "not-an-id"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("is not a valid task id"),
        "{}",
        text(&out.stdout)
    );
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
