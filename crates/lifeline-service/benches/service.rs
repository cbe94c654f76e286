//! Service benchmarks: durable transition ingest (with and without dashboards subscribed) and
//! read latency with many tasks stored. Prints figures; asserts nothing about speed.
//!
//! Last, retention: the service is reopened on the same store with a retention that every
//! stored task is past, and ingest is measured again while the purge runs.
//!
//! ```text
//! cargo bench -p lifeline-service --bench service            # 200,000 tasks
//! LIFELINE_BENCH_TASKS=1000000 cargo bench -p lifeline-service --bench service
//! ```

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lifeline_model::api::{
    FunctionSpec, RegisterFunction, StatsQuery, SubmitRequest, TaskListQuery, TaskSpec,
};
use lifeline_model::{Actor, EndpointId, FunctionId, State, TaskId};
use lifeline_protocol::{FromEndpoint, Reported, ToEndpoint};
use lifeline_service::Service;
use lifeline_service::config::Settings;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct Bench {
    base: String,
    token: String,
    /// Raw HTTP, for timing requests and counting streamed bytes.
    client: reqwest::Client,
    /// Typed calls, for everything the benchmark reads.
    api: lifeline_client::Client,
}

impl Bench {
    async fn get_latency(&self, path: &str) -> Duration {
        let t = Instant::now();
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("get");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.bytes().await.expect("body");
        t.elapsed()
    }
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

async fn latencies(bench: &Bench, label: &str, paths: &[String]) {
    let mut times = Vec::new();
    for path in paths {
        times.push(bench.get_latency(path).await);
    }
    times.sort();
    println!("metric: {label} p50 = {:.3} ms", percentile(&times, 0.5));
    println!(
        "metric: {label} p99 = {:.3} ms   ({} requests)",
        percentile(&times, 0.99),
        times.len()
    );
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Drives `ids` from dispatched to success over one endpoint connection, in report batches of
/// `per_batch` tasks (4 transitions each); returns transitions per second, acknowledged.
async fn ingest(
    bench: &Bench,
    ws_url: &str,
    endpoint_token: &str,
    ids: &[TaskId],
    per_batch: usize,
) -> f64 {
    let mut req = ws_url.into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {endpoint_token}").parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    let (mut sink, mut stream) = ws.split();
    let _ = bench;
    let hello = serde_json::to_string(&FromEndpoint::Hello {
        tasks: vec![],
        window: None,
    })
    .expect("json");
    sink.send(Message::Text(hello.into())).await.expect("hello");
    // Take every dispatched task first, so that only reports are timed.
    let mut received = 0;
    while received < ids.len() {
        if let Some(Ok(Message::Text(text))) = stream.next().await
            && let Ok(ToEndpoint::Tasks { tasks, .. }) = serde_json::from_str::<ToEndpoint>(&text)
        {
            received += tasks.len();
        }
    }
    let start = Instant::now();
    let mut transitions = 0usize;
    let batches: Vec<&[TaskId]> = ids.chunks(per_batch).collect();
    let in_flight = 4;
    let mut sent = 0u64;
    let mut acked = 0u64;
    for chunk in &batches {
        let now = lifeline_service::now();
        let mut report = Vec::with_capacity(chunk.len() * 4);
        for id in *chunk {
            for (state, actor) in [
                (State::WaitingForNodes, Actor::Endpoint),
                (State::WaitingForLaunch, Actor::Manager),
                (State::Running, Actor::Worker),
                (State::Success, Actor::Worker),
            ] {
                let result = (state == State::Success)
                    .then(|| serde_json::value::RawValue::from_string("null".into()).expect("raw"));
                report.push(Reported {
                    task_id: *id,
                    state,
                    actor,
                    attempt: 1,
                    at: now,
                    reason: None,
                    result,
                });
            }
        }
        transitions += report.len();
        sent += 1;
        let text = serde_json::to_string(&FromEndpoint::Report {
            batch: sent,
            transitions: report,
        })
        .expect("json");
        sink.send(Message::Text(text.into())).await.expect("send");
        while sent - acked >= in_flight {
            acked += wait_ack(&mut stream).await;
        }
    }
    while acked < sent {
        acked += wait_ack(&mut stream).await;
    }
    transitions as f64 / start.elapsed().as_secs_f64()
}

async fn wait_ack<S>(stream: &mut S) -> u64
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        if let Some(Ok(Message::Text(text))) = stream.next().await
            && let Ok(ToEndpoint::Ack { rejected, .. }) = serde_json::from_str::<ToEndpoint>(&text)
        {
            assert!(rejected.is_empty(), "rejected: {:?}", rejected.first());
            return 1;
        }
    }
}

async fn submit_all(
    bench: &Bench,
    endpoint: EndpointId,
    function: FunctionId,
    n: usize,
) -> (Vec<TaskId>, f64) {
    let start = Instant::now();
    let mut ids = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let batch = left.min(10_000);
        let tasks = (0..batch)
            .map(|i| TaskSpec {
                function_id: function,
                args: Some(json!([i])),
                kwargs: None,
            })
            .collect();
        let request = SubmitRequest {
            tasks,
            max_retries: None,
        };
        let answer = bench.api.submit(endpoint, &request).await.expect("submit");
        ids.extend(answer.task_ids);
        left -= batch;
    }
    (ids, n as f64 / start.elapsed().as_secs_f64())
}

async fn subscribe(bench: &Bench) -> tokio::task::JoinHandle<usize> {
    let resp = bench
        .client
        .get(format!("{}/v1/events", bench.base))
        .bearer_auth(&bench.token)
        .send()
        .await
        .expect("events");
    tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        let mut bytes = 0;
        while let Some(Ok(chunk)) = body.next().await {
            bytes += chunk.len();
        }
        bytes
    })
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("LIFELINE_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let tmp = tempfile::tempdir().expect("dir");
    let mut settings = Settings::for_data_dir(tmp.path());
    settings.max_payload_bytes = 64 * 1024 * 1024;
    settings.dispatch_ack_timeout_secs = 3600.0;
    settings.heartbeat_threshold_secs = 3600.0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = Service::open(settings.clone()).await.expect("open");
    let token = service.new_user_token.clone().expect("token");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let first = tokio::spawn(service.run(listener, async move {
        let _ = stopped.await;
    }));
    let bench = Bench {
        base: format!("http://{addr}"),
        api: lifeline_client::Client::new(format!("http://{addr}"), token.clone()),
        token,
        client: reqwest::Client::new(),
    };

    let noop = FunctionSpec::Python {
        source: "def noop(*a):\n    return None\n".into(),
        entrypoint: "noop".into(),
    };
    let f = bench
        .api
        .register_function(&RegisterFunction::new("noop", noop))
        .await
        .expect("function");
    println!(
        "Lifeline service benchmark: {n} tasks in all (half per ingest run), {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    for (label, dashboards) in [("ingest", 0), ("ingest with 10 dashboards streaming", 10)] {
        let ep = bench.api.register_endpoint(label).await.expect("endpoint");
        let (ep_id, ep_token) = (ep.endpoint_id, ep.token);
        let mut subscribers = Vec::new();
        for _ in 0..dashboards {
            subscribers.push(subscribe(&bench).await);
        }
        // Submitted while offline; dispatched when the connection below opens.
        let (ids, submit_rate) = submit_all(&bench, ep_id, f, n / 2).await;
        let ws_url = format!("ws://{addr}/v1/endpoints/{ep_id}/connect");
        let rate = ingest(&bench, &ws_url, &ep_token, &ids, 500).await;
        println!("metric: {label} = {rate:.0} transitions/s");
        println!("metric: submission ({label}) = {submit_rate:.0} tasks/s");
        // Stopped, not just let go of: a dashboard still catching up from the store would
        // otherwise stream on through the read latencies below.
        for subscriber in subscribers {
            subscriber.abort();
        }
    }

    // Read latencies with everything above stored.
    let query = TaskListQuery {
        limit: Some(1000),
        ..TaskListQuery::default()
    };
    let page = bench.api.tasks(&query).await.expect("list");
    let some: Vec<String> = page.tasks.iter().map(|t| t.task_id.to_string()).collect();
    let stats = bench
        .api
        .stats(&StatsQuery::default())
        .await
        .expect("stats");
    println!("metric: tasks stored = {} tasks", stats.total);
    println!("metric: events stored = {} events", stats.seq);
    let ep = page.tasks[0].endpoint_id;
    latencies(
        &bench,
        "GET /v1/tasks/{id}",
        &some
            .iter()
            .map(|id| format!("/v1/tasks/{id}"))
            .collect::<Vec<_>>(),
    )
    .await;
    latencies(
        &bench,
        "GET /v1/tasks?endpoint_id=&state= (first page)",
        &vec![format!("/v1/tasks?endpoint_id={ep}&state=success"); 300],
    )
    .await;
    latencies(
        &bench,
        "GET /v1/tasks?edge=running>success (first page)",
        &vec!["/v1/tasks?edge=running%3Esuccess".to_owned(); 300],
    )
    .await;
    latencies(&bench, "GET /v1/stats", &vec!["/v1/stats".to_owned(); 300]).await;
    // The past: moments spread over the whole log, each from its checkpoint and the events after.
    let moments: Vec<String> = (1..=300u64)
        .map(|i| format!("/v1/stats?at_seq={}", stats.seq * i / 301))
        .collect();
    latencies(&bench, "GET /v1/stats?at_seq= (any moment)", &moments).await;
    let windows: Vec<String> = moments.iter().map(|m| format!("{m}&window=1m")).collect();
    latencies(&bench, "GET /v1/stats?at_seq=&window=1m", &windows).await;
    latencies(
        &bench,
        "GET /v1/timeline",
        &vec!["/v1/timeline".to_owned(); 20],
    )
    .await;
    println!(
        "metric: service RSS (benchmark process) = {:.0} MiB",
        rss_mib()
    );

    let _ = stop.send(());
    first.await.expect("service task").expect("service stops");
    retention(settings, f, n / 4).await;
}

/// Reopens the store with a retention every stored task is past, and ingests `n` new tasks
/// while the purge runs.
async fn retention(mut settings: Settings, f: FunctionId, n: usize) {
    let file = settings.data_dir.join(lifeline_service::store::FILE_NAME);
    let size = || std::fs::metadata(&file).map_or(0, |m| m.len()) as f64 / 1e6;
    let open = || {
        rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open")
    };
    // The tasks stored so far, all finished before `boundary`: those the purge removes (the ones
    // ingested below stay). Progress is read through the index of tasks due to expire, oldest
    // end first, so that watching costs the purge nothing.
    let boundary = lifeline_service::now().as_micros();
    let due: i64 = open()
        .query_row("SELECT count(*) FROM tasks WHERE expired = 0", [], |r| {
            r.get(0)
        })
        .expect("count");
    let oldest_left = || {
        open()
            .query_row(
                "SELECT since FROM tasks WHERE state BETWEEN 6 AND 8 AND expired = 0 \
                 ORDER BY since LIMIT 1",
                [],
                |r| r.get::<_, i64>(0),
            )
            .ok()
            .filter(|since| *since < boundary)
    };
    println!(
        "retention: store {:.0} MB, {due} finished tasks to expire",
        size()
    );
    // Every task stored so far finished at least this long ago.
    let retention = Duration::from_secs(3);
    tokio::time::sleep(retention).await;
    settings.retention = "3s".into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let token = std::fs::read_to_string(settings.data_dir.join("token"))
        .expect("token")
        .trim()
        .to_owned();
    let service = Service::open(settings).await.expect("open");
    tokio::spawn(service.run(listener, std::future::pending()));
    let bench = Bench {
        base: format!("http://{addr}"),
        api: lifeline_client::Client::new(format!("http://{addr}"), token.clone()),
        token,
        client: reqwest::Client::new(),
    };
    let ep = bench
        .api
        .register_endpoint("during a purge")
        .await
        .expect("endpoint");
    let (ids, _) = submit_all(&bench, ep.endpoint_id, f, n).await;
    let purge = Instant::now();
    let first = oldest_left();
    while oldest_left() == first {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ws_url = format!("ws://{addr}/v1/endpoints/{}/connect", ep.endpoint_id);
    let rate = ingest(&bench, &ws_url, &ep.token, &ids, 500).await;
    let still_running = oldest_left().is_some();
    println!(
        "metric: ingest during a purge = {rate:.0} transitions/s (the purge {} meanwhile)",
        if still_running {
            "still running"
        } else {
            "ended"
        }
    );
    while oldest_left().is_some() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let took = purge.elapsed().as_secs_f64();
    println!(
        "metric: purge = {:.0} tasks/s ({due} tasks in {took:.1} s); store {:.0} MB after (SQLite reuses the freed pages)",
        due as f64 / took,
        size()
    );
}
