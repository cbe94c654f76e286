//! Helpers that run Lifeline as its users do: the real `lifeline` binary serving on port 0 with a
//! fresh data directory, real endpoint agents, and HTTP calls.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_lifeline");
/// How long a test waits for something that should happen promptly.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Lifeline {
    pub url: String,
    pub token: String,
    pub client: reqwest::Client,
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
        url,
        token,
        client: reqwest::Client::new(),
        tmp,
        serve,
    }
}

async fn start_serve(dir: &Path, bind: &str, heartbeat_threshold: &str) -> (Child, String) {
    let mut serve = Command::new(BIN)
        .args(["serve", "--bind", bind, "--data-dir"])
        .arg(dir.join("data"))
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

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    }

    /// Registers an endpoint: (id, token).
    pub async fn endpoint(&self, name: &str) -> (String, String) {
        let body = self.post("/v1/endpoints", json!({ "name": name })).await;
        (
            body["endpoint_id"].as_str().expect("id").into(),
            body["token"].as_str().expect("token").into(),
        )
    }

    pub async fn python(&self, source: &str, entrypoint: &str) -> String {
        let body = self.post("/v1/functions", json!({ "name": entrypoint, "kind": "python", "source": source, "entrypoint": entrypoint })).await;
        body["function_id"].as_str().expect("id").into()
    }

    pub async fn shell(&self, command: &str) -> String {
        let body = self
            .post(
                "/v1/functions",
                json!({ "name": "sh", "kind": "shell", "command": command }),
            )
            .await;
        body["function_id"].as_str().expect("id").into()
    }

    /// Submits one task per `(args, kwargs)`; returns their ids.
    pub async fn submit(
        &self,
        endpoint: &str,
        function: &str,
        calls: &[(Value, Value)],
        max_retries: Option<u32>,
    ) -> Vec<String> {
        let tasks: Vec<Value> = calls
            .iter()
            .map(|(a, k)| json!({ "function_id": function, "args": a, "kwargs": k }))
            .collect();
        let mut body = json!({ "tasks": tasks });
        if let Some(r) = max_retries {
            body["max_retries"] = json!(r);
        }
        let answer = self
            .post(&format!("/v1/endpoints/{endpoint}/submit"), body)
            .await;
        answer["task_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_str().expect("id").to_owned())
            .collect()
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
        Agent { child }
    }

    pub async fn task(&self, id: &str) -> Value {
        self.get(&format!("/v1/tasks/{id}")).await
    }

    /// Polls until `check` holds, failing after [`PATIENCE`] with the last document.
    pub async fn wait_for(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let doc = self.task(id).await;
            if check(&doc) {
                return doc;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {id} never got {what}: {doc:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn finished(&self, id: &str) -> Value {
        self.wait_for(id, "finished", |d| d["pending"] == false)
            .await
    }

    pub async fn wait_endpoint(
        &self,
        id: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let doc = self.get(&format!("/v1/endpoints/{id}")).await;
            if check(&doc) {
                return doc;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "endpoint {id} never got {what}: {doc:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn scratch(&self) -> &Path {
        self.tmp.path()
    }
}

/// The states of a status document's transitions, with their attempts.
pub fn path(doc: &Value) -> Vec<(String, u64)> {
    doc["details"]["task_transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| {
            (
                t["state"].as_str().expect("state").to_owned(),
                t["attempt"].as_u64().expect("attempt"),
            )
        })
        .collect()
}

pub fn no_args() -> (Value, Value) {
    (json!([]), json!({}))
}
