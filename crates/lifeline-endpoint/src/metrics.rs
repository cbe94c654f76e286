//! The agent's Prometheus metrics, served at `GET /metrics` on `metrics_bind` when
//! `endpoint.toml` sets it: tasks by state, managers, workers busy and idle, and blocks, per
//! executor (as of the interchange's last look, at most a second old), and how long report
//! batches wait for the service's acknowledgement.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::extract::State as Shared;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use lifeline_model::{BlockState, ExecutorReport, State};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text::{CONTENT_TYPE, encode};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// What the agent counts, and its executors as last seen.
#[derive(Debug)]
pub(crate) struct AgentMetrics {
    registry: Registry,
    /// From a report batch's flush to the service's acknowledgement, in seconds.
    pub(crate) report_seconds: Histogram,
    /// 1 while connected to the service.
    pub(crate) connected: Gauge,
    executors: Mutex<Vec<ExecutorReport>>,
}

impl AgentMetrics {
    pub(crate) fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("lifeline_agent");
        let report_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        let connected = Gauge::default();
        registry.register(
            "report_batch_seconds",
            "From a batch of reported transitions leaving the agent to the service's acknowledgement",
            report_seconds.clone(),
        );
        registry.register(
            "connected",
            "1 while the agent is connected to the service",
            connected.clone(),
        );
        Arc::new(Self {
            registry,
            report_seconds,
            connected,
            executors: Mutex::default(),
        })
    }

    /// Keeps the executors' latest reports for the next scrape.
    pub(crate) fn executors_seen(&self, reports: Vec<ExecutorReport>) {
        *self.executors.lock().unwrap_or_else(|e| e.into_inner()) = reports;
    }

    fn render(&self) -> String {
        let executors = self
            .executors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut scrape = Registry::with_prefix("lifeline_agent");
        scrape.register_collector(Box::new(Executors(executors)));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        let _ = encode(&mut text, &scrape);
        text
    }
}

/// Starts serving `GET /metrics` on `bind`; returns the address it listens on.
pub(crate) async fn serve(
    bind: SocketAddr,
    metrics: Arc<AgentMetrics>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} for the metrics (metrics_bind)"))?;
    let address = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics is served here\n") })
        .with_state(metrics);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the metrics server stopped");
        }
    });
    Ok(address)
}

async fn scrape(Shared(metrics): Shared<Arc<AgentMetrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render())
}

/// The executors' figures, as gauges per executor.
#[derive(Debug)]
struct Executors(Vec<ExecutorReport>);

fn gauges(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Executors {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let executor = |r: &ExecutorReport| ("executor", r.label.clone());
        gauges(
            &mut encoder,
            "tasks",
            "Tasks the agent holds, by executor and state",
            self.0.iter().flat_map(|r| {
                State::ALL
                    .into_iter()
                    .filter(|s| s.at_endpoint())
                    .map(move |s| {
                        let labels = vec![executor(r), ("state", s.wire().to_owned())];
                        (labels, r.tasks.get(s) as i64)
                    })
            }),
        )?;
        gauges(
            &mut encoder,
            "managers",
            "Managers (one per node) connected, by executor",
            self.0
                .iter()
                .map(|r| (vec![executor(r)], i64::from(r.managers))),
        )?;
        gauges(
            &mut encoder,
            "workers",
            "Workers by executor, busy or idle",
            self.0.iter().flat_map(|r| {
                [("busy", r.busy_workers), ("idle", r.idle_workers)].map(|(state, n)| {
                    (vec![executor(r), ("state", state.to_owned())], i64::from(n))
                })
            }),
        )?;
        gauges(
            &mut encoder,
            "blocks",
            "Blocks (provider allocations) by executor and state, the ended ones among the last few",
            self.0.iter().flat_map(|r| {
                BlockState::ALL.into_iter().map(move |state| {
                    let n = r.blocks.iter().filter(|b| b.state == state).count();
                    (
                        vec![executor(r), ("state", state.wire().to_owned())],
                        n as i64,
                    )
                })
            }),
        )
    }
}
