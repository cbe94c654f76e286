//! Test helpers: the real service on port 0 with a fresh data directory, an HTTP client, a
//! client of the real endpoint WebSocket protocol, and a Server-Sent Events reader.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;

use futures_util::{SinkExt, StreamExt};
use lifeline_model::{Actor, EndpointReport, State, TaskId, Timestamp};
use lifeline_protocol::{FromEndpoint, Reported, ToEndpoint};
use lifeline_service::Service;
use lifeline_service::config::Settings;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use lifeline_testkit::{PATIENCE, eventually};

pub struct TestApp {
    pub addr: SocketAddr,
    pub token: String,
    pub client: reqwest::Client,
    pub dir: PathBuf,
    /// Where `/metrics` is served without a token, when `metrics_bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
}

/// Settings with short heartbeats so that failures show up within a test.
pub fn fast_settings(dir: PathBuf) -> Settings {
    let mut s = Settings::for_data_dir(dir);
    s.heartbeat_period_secs = 0.2;
    s.heartbeat_threshold_secs = 2.0;
    s.dispatch_ack_timeout_secs = 2.0;
    s.max_payload_bytes = 2 * 1024 * 1024;
    s.max_result_bytes = 64 * 1024;
    s
}

pub async fn spawn_app() -> TestApp {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut app = spawn_with(fast_settings(tmp.path().to_path_buf())).await;
    app._tmp = Some(tmp);
    app
}

pub async fn spawn_with(settings: Settings) -> TestApp {
    // `LIFELINE_TEST_LOG=debug` (any filter) shows the service's log in the test output.
    if let Ok(filter) = std::env::var("LIFELINE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let dir = settings.data_dir.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = Service::open(settings).await.expect("service opens");
    let metrics_addr = service.metrics_addr();
    let token = std::fs::read_to_string(dir.join("token"))
        .expect("token file")
        .trim()
        .to_owned();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(service.run(listener, async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        token,
        client: reqwest::Client::new(),
        dir,
        metrics_addr,
        stop: Some(stop),
        server: Some(server),
        _tmp: None,
    }
}

/// Checks an answer of the service against its OpenAPI document: the status must be documented
/// for the route, and a JSON body must match the documented schema.
pub fn check_against_document(method: &str, path: &str, status: u16, body: &Value) {
    let doc = lifeline_service::api::openapi();
    let path = path.split('?').next().unwrap_or(path);
    let Some((template, operations)) = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .find(|(template, _)| matches_template(template, path))
    else {
        // Not an API route (the dashboard, or a route that does not exist: 404 by design).
        assert!(
            !path.starts_with("/v1/") || status == 404,
            "{method} {path} answered {status} but is not in the document"
        );
        return;
    };
    let Some(operation) = operations.get(method) else {
        assert_eq!(status, 405, "{method} {template} is not documented");
        return;
    };
    let responses = &operation["responses"];
    let family = format!("{}XX", status / 100);
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get(&family))
        .unwrap_or_else(|| {
            panic!("{method} {template} answered {status}, which is not documented")
        });
    let Some(schema) = response["content"]["application/json"].get("schema") else {
        return;
    };
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&root).expect("the document's schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body the document does not allow: {errors:?}\n{body:#}"
    );
}

fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the service gracefully and waits for it; the data directory stays.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
    }

    /// Keeps the data directory alive beyond this app (for a restart).
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_as(&self.token, method, path, body).await
    }

    /// A call made with another user's `token`.
    pub async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method_name = method.as_str().to_ascii_lowercase();
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        check_against_document(&method_name, path, status, &value);
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Registers an endpoint; returns its id and token.
    pub async fn endpoint(&self, name: &str) -> (String, String) {
        let (status, body) = self.post("/v1/endpoints", json!({ "name": name })).await;
        assert_eq!(status, 201, "{body}");
        (
            body["endpoint_id"].as_str().expect("id").into(),
            body["token"].as_str().expect("token").into(),
        )
    }

    pub async fn python_function(&self) -> String {
        let (status, body) = self
            .post(
                "/v1/functions",
                json!({ "name": "hello", "kind": "python", "source": "def hello():\n    return 'Hello World!'\n", "entrypoint": "hello" }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["function_id"].as_str().expect("id").into()
    }

    /// Submits `n` calls of `function`; returns the task ids.
    pub async fn submit(
        &self,
        endpoint: &str,
        function: &str,
        n: usize,
        max_retries: Option<u32>,
    ) -> Vec<String> {
        let tasks: Vec<Value> = (0..n)
            .map(|i| json!({ "function_id": function, "args": [i], "kwargs": {} }))
            .collect();
        let mut body = json!({ "tasks": tasks });
        if let Some(r) = max_retries {
            body["max_retries"] = json!(r);
        }
        let (status, body) = self
            .post(&format!("/v1/endpoints/{endpoint}/submit"), body)
            .await;
        assert_eq!(status, 202, "{body}");
        body["task_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_str().expect("id").to_owned())
            .collect()
    }

    pub async fn task(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/tasks/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls a task until `check` holds, failing after [`PATIENCE`].
    pub async fn wait_task(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(&format!("task {id} {what}"), || self.task(id), check).await
    }

    /// Waits until the endpoint shows as online.
    pub async fn wait_task_endpoint_online(&self, endpoint: &str) {
        let path = format!("/v1/endpoints/{endpoint}");
        eventually(
            &format!("endpoint {endpoint} online"),
            || self.get(&path),
            |(_, body)| body["online"] == true,
        )
        .await;
    }

    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        self.wait_task(id, status, |d| d["status"] == status).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A client of the endpoint WebSocket protocol, driven step by step by a test.
pub struct FakeEndpoint {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    batch: u64,
}

pub fn now() -> Timestamp {
    lifeline_service::now()
}

impl FakeEndpoint {
    /// Connects and says hello holding no task.
    pub async fn connect(app: &TestApp, endpoint: &str, token: &str) -> Self {
        Self::connect_holding(app, endpoint, token, &[]).await
    }

    /// Connects and says hello holding `held`.
    pub async fn connect_holding(
        app: &TestApp,
        endpoint: &str,
        token: &str,
        held: &[String],
    ) -> Self {
        Self::connect_with(app, endpoint, token, held, None).await
    }

    /// Connects and says hello holding `held`, taking at most `window` tasks at once.
    pub async fn connect_with(
        app: &TestApp,
        endpoint: &str,
        token: &str,
        held: &[String],
        window: Option<u32>,
    ) -> Self {
        let mut req = format!("ws://{}/v1/endpoints/{endpoint}/connect", app.addr)
            .into_client_request()
            .expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("websocket connects");
        let mut agent = Self { ws, batch: 0 };
        let tasks = held.iter().map(|t| t.parse().expect("task id")).collect();
        agent.send(&FromEndpoint::Hello { tasks, window }).await;
        let welcome = agent.recv().await;
        assert!(
            matches!(welcome, ToEndpoint::Welcome { .. }),
            "expected welcome, got {welcome:?}"
        );
        agent
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send(&mut self, message: &FromEndpoint) {
        self.send_text(serde_json::to_string(message).expect("json"))
            .await;
    }

    /// The next message from the service, failing after [`PATIENCE`].
    pub async fn recv(&mut self) -> ToEndpoint {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message from the service in time")
                .expect("the socket is open")
                .expect("a frame");
            match msg {
                Message::Text(text) => {
                    return serde_json::from_str(&text).expect("a protocol message");
                }
                Message::Close(_) => panic!("the service closed the socket"),
                _ => continue,
            }
        }
    }

    /// Waits for a batch of tasks, skipping other messages.
    pub async fn recv_tasks(&mut self) -> Vec<lifeline_protocol::Assignment> {
        loop {
            if let ToEndpoint::Tasks { tasks, .. } = self.recv().await {
                return tasks;
            }
        }
    }

    pub async fn heartbeat(&mut self) {
        self.send(&FromEndpoint::Heartbeat {
            report: EndpointReport {
                at: now(),
                ..EndpointReport::default()
            },
        })
        .await;
    }

    /// Reports transitions and returns the service's acknowledgement's rejections.
    pub async fn report(
        &mut self,
        transitions: Vec<Reported>,
    ) -> Vec<lifeline_protocol::Rejection> {
        self.batch += 1;
        let batch = self.batch;
        self.send(&FromEndpoint::Report { batch, transitions })
            .await;
        loop {
            match self.recv().await {
                ToEndpoint::Ack { batch: b, rejected } if b == batch => return rejected,
                _ => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A reported transition.
pub fn step(task: &str, state: State, actor: Actor, attempt: u32) -> Reported {
    Reported {
        task_id: task.parse::<TaskId>().expect("task id"),
        state,
        actor,
        attempt,
        at: now(),
        reason: None,
        result: None,
    }
}

/// The endpoint's side of a task's normal path, ending with `success` and `result`.
pub fn run_to_success(task: &str, attempt: u32, result: &str) -> Vec<Reported> {
    let mut done = step(task, State::Success, Actor::Worker, attempt);
    done.result = Some(serde_json::value::RawValue::from_string(result.to_owned()).expect("json"));
    vec![
        step(task, State::WaitingForNodes, Actor::Endpoint, attempt),
        step(task, State::WaitingForLaunch, Actor::Manager, attempt),
        step(task, State::Running, Actor::Worker, attempt),
        done,
    ]
}

/// A Server-Sent Events reader over a streaming response.
pub struct EventReader {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

/// One event: its id and JSON data.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: u64,
    /// The event's name: `message` unless it says otherwise (`reset`).
    pub name: String,
    pub data: Value,
}

impl EventReader {
    pub async fn open(app: &TestApp, query: &str, last_event_id: Option<u64>) -> Self {
        Self::open_as(app, &app.token, query, last_event_id).await
    }

    /// A stream opened with another user's `token`.
    pub async fn open_as(
        app: &TestApp,
        token: &str,
        query: &str,
        last_event_id: Option<u64>,
    ) -> Self {
        let mut req = app
            .client
            .get(app.url(&format!("/v1/events{query}")))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.expect("events request");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self {
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// Whether the stream ends (the service closed it) within [`PATIENCE`], whatever events
    /// come before.
    pub async fn ends(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next event (keep-alive comments skipped), failing after [`PATIENCE`].
    pub async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut name = "message".to_owned();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if let Some(id) = id {
                    return SseEvent {
                        id,
                        name,
                        data: serde_json::from_str(&data).expect("event data is JSON"),
                    };
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next())
                .await
                .expect("an event in time")
                .expect("the stream is open")
                .expect("a chunk");
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }
}

/// The task ids of a `GET /v1/tasks` page, in order.
pub fn task_ids(page: &Value) -> Vec<String> {
    page["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["task_id"].as_str().expect("id").to_owned())
        .collect()
}
