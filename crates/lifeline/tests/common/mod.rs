//! Helpers that run Lifeline as its users do: the real `lifeline` binary serving on port 0 with a
//! fresh data directory, real endpoint agents, and HTTP calls.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use lifeline_client::{Client, TaskStatus};
use lifeline_model::api::{
    EndpointSummary, FunctionSpec, RegisterFunction, SubmitRequest, TaskSpec,
};
use lifeline_model::{EndpointId, FunctionId, TaskId};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_lifeline");
pub use lifeline_testkit::{PATIENCE, eventually};

pub struct Lifeline {
    pub url: String,
    pub token: String,
    pub api: Client,
    pub tmp: tempfile::TempDir,
    serve: Child,
}

/// Starts `lifeline serve` with short heartbeats so that failures show within a test.
pub async fn serve() -> Lifeline {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (serve, url) = start_serve(tmp.path(), "127.0.0.1:0", "2").await;
    let token = std::fs::read_to_string(tmp.path().join("data/token"))
        .expect("token")
        .trim()
        .to_owned();
    Lifeline {
        api: Client::new(url.clone(), token.clone()),
        url,
        token,
        tmp,
        serve,
    }
}

async fn start_serve(dir: &Path, bind: &str, heartbeat_threshold: &str) -> (Child, String) {
    start_serve_with(dir, bind, heartbeat_threshold, &[]).await
}

/// `lifeline serve` with short heartbeats and `extra` arguments (such as `--tls-cert FILE`);
/// returns it and the URL it prints.
pub async fn start_serve_with(
    dir: &Path,
    bind: &str,
    heartbeat_threshold: &str,
    extra: &[&std::ffi::OsStr],
) -> (Child, String) {
    let mut serve = Command::new(BIN)
        .args(["serve", "--bind", bind, "--data-dir"])
        .arg(dir.join("data"))
        .args(extra)
        .env("LIFELINE_HEARTBEAT_PERIOD", "0.2")
        .env("LIFELINE_HEARTBEAT_THRESHOLD", heartbeat_threshold)
        .env("LIFELINE_DISPATCH_ACK_TIMEOUT", "5")
        .env(
            "LIFELINE_LOG",
            std::env::var("LIFELINE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("lifeline serve starts");
    let mut lines = BufReader::new(serve.stdout.take().expect("stdout")).lines();
    let url = loop {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("serve prints its address")
            .expect("stdout")
            .expect("a line");
        if let Some(rest) = line.strip_prefix("Lifeline is listening on ") {
            break rest.trim_end_matches('/').to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (serve, url)
}

/// A running endpoint agent.
pub struct Agent {
    pub child: Child,
    /// The agent's directory (its outbox is in `outbox/`).
    pub dir: PathBuf,
}

impl Agent {
    pub fn pid(&self) -> i32 {
        self.child.id().expect("running") as i32
    }

    /// The process ids of the agent's children (its managers).
    pub fn managers(&self) -> Vec<i32> {
        let parent = self.pid();
        let mut children = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The fourth field, after the parenthesised command name, is the parent's pid.
            let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            let ppid: Option<i32> = after_name
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse().ok());
            if ppid == Some(parent) {
                children.push(pid);
            }
        }
        children
    }

    /// Whether a report batch waiting in the agent's outbox says `task` reached `state`.
    pub fn outbox_holds(&self, task: &TaskId, state: &str) -> bool {
        let (task, state) = (format!("\"{task}\""), format!("\"{state}\""));
        std::fs::read_dir(self.dir.join("outbox"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .any(|text| text.contains(&task) && text.contains(&state))
    }

    /// Kills the agent with SIGKILL (its managers notice their closed stdin and stop).
    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

impl Lifeline {
    /// Kills the service with SIGKILL.
    pub async fn kill9(&mut self) {
        let _ = self.serve.start_kill();
        let _ = self.serve.wait().await;
    }

    /// Starts the service again on the same address and data directory. Its heartbeat
    /// threshold is long enough for agents backing off to reconnect before they are declared lost.
    pub async fn restart(&mut self) {
        let bind = self.url.trim_start_matches("http://").to_owned();
        let (serve, url) = start_serve(self.tmp.path(), &bind, "30").await;
        assert_eq!(url, self.url);
        self.serve = serve;
    }

    /// Registers an endpoint: (id, token).
    pub async fn endpoint(&self, name: &str) -> (EndpointId, String) {
        let answer = self.api.register_endpoint(name).await.expect("endpoint");
        (answer.endpoint_id, answer.token)
    }

    async fn function(&self, name: &str, spec: FunctionSpec) -> FunctionId {
        self.api
            .register_function(&RegisterFunction::new(name, spec))
            .await
            .expect("function")
    }

    pub async fn python(&self, source: &str, entrypoint: &str) -> FunctionId {
        let spec = FunctionSpec::Python {
            source: source.into(),
            entrypoint: entrypoint.into(),
        };
        self.function(entrypoint, spec).await
    }

    pub async fn shell(&self, command: &str) -> FunctionId {
        let spec = FunctionSpec::Shell {
            command: command.into(),
        };
        self.function("sh", spec).await
    }

    /// Submits one task per `(args, kwargs)`; returns their ids.
    pub async fn submit(
        &self,
        endpoint: &EndpointId,
        function: &FunctionId,
        calls: &[(Value, Value)],
        max_retries: Option<u32>,
    ) -> Vec<TaskId> {
        let tasks = calls
            .iter()
            .map(|(args, kwargs)| TaskSpec {
                function_id: *function,
                args: Some(args.clone()),
                kwargs: Some(kwargs.clone()),
            })
            .collect();
        let request = SubmitRequest { tasks, max_retries };
        self.api
            .submit(*endpoint, &request)
            .await
            .expect("submit")
            .task_ids
    }

    /// Starts an endpoint agent for `token`, with `config` (TOML) if given.
    pub async fn agent(&self, token: &str, config: Option<&str>) -> Agent {
        let dir = self.tmp.path().join(format!("agent-{}", &token[..8]));
        std::fs::create_dir_all(&dir).expect("agent dir");
        // The token goes in a file, as README tells users: a flag would show it in `ps`.
        let token_file = dir.join("endpoint.token");
        std::fs::write(&token_file, format!("{token}\n")).expect("token file");
        let mut cmd = Command::new(BIN);
        cmd.args(["endpoint", "start", "--service", &self.url, "--token-file"])
            .arg(&token_file)
            .arg("--dir")
            .arg(&dir);
        if let Some(config) = config {
            let path = dir.join("endpoint.toml");
            std::fs::write(&path, config).expect("config");
            cmd.arg("--config").arg(path);
        }
        let child = cmd
            .env(
                "LIFELINE_LOG",
                std::env::var("LIFELINE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the agent starts");
        Agent { child, dir }
    }

    pub async fn task(&self, id: &TaskId) -> TaskStatus {
        self.api.task(*id).await.expect("task")
    }

    /// Polls until `check` holds, failing after [`PATIENCE`] with the last document.
    pub async fn wait_for(
        &self,
        id: &TaskId,
        what: &str,
        check: impl Fn(&TaskStatus) -> bool,
    ) -> TaskStatus {
        eventually(&format!("task {id} {what}"), || self.task(id), check).await
    }

    pub async fn finished(&self, id: &TaskId) -> TaskStatus {
        self.wait_for(id, "finished", |d| !d.pending).await
    }

    pub async fn wait_endpoint(
        &self,
        id: &EndpointId,
        what: &str,
        check: impl Fn(&EndpointSummary) -> bool,
    ) -> EndpointSummary {
        let probe = || async { self.api.endpoint(*id).await.expect("endpoint") };
        eventually(&format!("endpoint {id} {what}"), probe, check).await
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn scratch(&self) -> &Path {
        self.tmp.path()
    }
}

/// The states of a status document's transitions, with their attempts.
pub fn path(doc: &TaskStatus) -> Vec<(String, u64)> {
    doc.details
        .task_transitions
        .iter()
        .map(|t| (t.state.wire().to_owned(), u64::from(t.attempt)))
        .collect()
}

pub fn no_args() -> (Value, Value) {
    (json!([]), json!({}))
}
