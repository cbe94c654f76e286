//! Prometheus metrics at `GET /metrics`, every name prefixed `lifeline_`.
//!
//! Two kinds: what the service counts as it goes ([`WriterMetrics`] on the writer thread: batch
//! sizes, commit latency, retries and failures by cause; HTTP latency by route; event-stream
//! subscribers), and what it reads at scrape time from figures it keeps anyway (tasks by state
//! and transitions by edge from the statistics, queue depth and endpoints online from the
//! forwarder), so that a scrape costs the same with ten tasks or ten million.
//!
//! Each service has its own registry (no process-wide recorder), so that several services in one
//! process, as in the tests, never mix their figures.

use std::time::Duration;

use lifeline_model::{ReasonKind, State};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::AppState;

/// A metric's labels: name and value pairs.
pub type Labels = Vec<(&'static str, String)>;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What the store's writer counts; cheap to clone (every metric is shared).
#[derive(Clone, Debug)]
pub struct WriterMetrics {
    /// Jobs (submissions, reports, moves) folded into one transaction.
    pub batch_jobs: Histogram,
    /// From a batch's first job to its durable commit, in seconds.
    pub commit_seconds: Histogram,
    /// Retries (a task sent back to wait after a system failure) by cause.
    pub retries: Family<Labels, Counter>,
    /// Tasks that entered `failed`, by cause.
    pub failures: Family<Labels, Counter>,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        let metrics = Self {
            batch_jobs: Histogram::new(exponential_buckets(1.0, 4.0, 7)),
            commit_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            retries: Family::default(),
            failures: Family::default(),
        };
        // Every cause from the start at zero, so that a rate is defined before the first one.
        for kind in ReasonKind::ALL {
            drop(metrics.failures.get_or_create(&reason(kind)));
            if kind != ReasonKind::Exception {
                drop(metrics.retries.get_or_create(&reason(kind)));
            }
        }
        metrics
    }
}

impl WriterMetrics {
    /// Counts what a committed batch did.
    pub fn committed(&self, jobs: usize, took: Duration, counted: &[Counted]) {
        self.batch_jobs.observe(jobs as f64);
        self.commit_seconds.observe(took.as_secs_f64());
        for c in counted {
            let (family, kind) = match *c {
                Counted::Retry(kind) => (&self.retries, kind),
                Counted::Failure(kind) => (&self.failures, kind),
            };
            family.get_or_create(&reason(kind)).inc();
        }
    }
}

/// A retry or a failure the writer applied, counted once its batch commits.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Counted {
    Retry(ReasonKind),
    Failure(ReasonKind),
}

impl Counted {
    /// What a transition from `from` to `to` counts as, if anything.
    pub fn of(from: State, to: State, reason: Option<&str>) -> Option<Self> {
        if to == State::Failed {
            Some(Counted::Failure(ReasonKind::of_failure(reason)))
        } else if !to.is_terminal() && to.index() < from.index() {
            Some(Counted::Retry(ReasonKind::of_retry(reason)))
        } else {
            None
        }
    }
}

fn reason(kind: ReasonKind) -> Labels {
    vec![("reason", kind.wire().to_owned())]
}

/// The service's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route, method and status, with their latency in seconds.
    pub http: Family<Labels, Histogram>,
    /// Open event streams.
    pub subscribers: Gauge,
}

impl Metrics {
    /// A registry holding the HTTP and stream metrics and the store writer's.
    pub fn new(writer: &WriterMetrics) -> Self {
        let mut registry = Registry::with_prefix("lifeline");
        let http = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
        });
        let subscribers = Gauge::default();
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests by route, method and status, and how long they took to answer",
            http.clone(),
        );
        registry.register(
            "event_stream_subscribers",
            "Open event streams (GET /v1/events)",
            subscribers.clone(),
        );
        registry.register(
            "writer_batch_jobs",
            "Jobs (submissions, reports, moves) the store's writer folded into one transaction",
            writer.batch_jobs.clone(),
        );
        registry.register(
            "writer_commit_seconds",
            "From a write batch's first job to its durable commit",
            writer.commit_seconds.clone(),
        );
        registry.register(
            "retries",
            "Tasks sent back to wait after a system failure, by cause",
            writer.retries.clone(),
        );
        registry.register(
            "failures",
            "Tasks that failed, by cause (exception: the function or command itself)",
            writer.failures.clone(),
        );
        Self {
            registry,
            http,
            subscribers,
        }
    }

    /// Every metric in the Prometheus text format: the counted ones and a snapshot of the
    /// service's figures taken now.
    pub fn render(&self, state: &AppState) -> String {
        let mut scrape = Registry::with_prefix("lifeline");
        scrape.register_collector(Box::new(Snapshot::take(state)));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &scrape);
        text
    }
}

/// Figures read at scrape time.
#[derive(Debug, Default)]
struct Snapshot {
    tasks: Vec<(Labels, i64)>,
    transitions: Vec<(Labels, u64)>,
    queue: Vec<(Labels, i64)>,
    endpoint_online: Vec<(Labels, i64)>,
    online: i64,
}

impl Snapshot {
    fn take(state: &AppState) -> Self {
        let endpoints = state.forwarder().endpoints_live();
        let mut snap = Snapshot {
            online: endpoints.iter().filter(|e| e.2).count() as i64,
            ..Snapshot::default()
        };
        for (id, name, online) in &endpoints {
            let endpoint = id.to_string();
            let (_, stats) = state.store().with_stats(|book| book.sum(|e, _| e == *id));
            for s in State::ALL {
                let labels = vec![("endpoint", endpoint.clone()), ("state", s.wire().into())];
                snap.tasks.push((labels, stats.tasks.get(s) as i64));
            }
            for from in State::ALL {
                for to in State::ALL {
                    let n = stats.edges[from.index()][to.index()];
                    if n > 0 {
                        let labels = vec![
                            ("endpoint", endpoint.clone()),
                            ("from", from.wire().into()),
                            ("to", to.wire().into()),
                        ];
                        snap.transitions.push((labels, n));
                    }
                }
            }
            let depth = stats.tasks.get(State::WaitingForEp) as i64;
            snap.queue
                .push((vec![("endpoint", endpoint.clone())], depth));
            let labels = vec![("endpoint", endpoint), ("name", name.clone())];
            snap.endpoint_online.push((labels, i64::from(*online)));
        }
        snap
    }
}

fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let gauges = |rows: &[(Labels, i64)]| {
            rows.iter()
                .map(|(l, v)| (l.clone(), ConstGauge::new(*v)))
                .collect::<Vec<_>>()
        };
        family(
            &mut encoder,
            "tasks",
            "Tasks in each state, per endpoint",
            MetricType::Gauge,
            gauges(&self.tasks),
        )?;
        family(
            &mut encoder,
            "transitions",
            "Transitions per edge of the life cycle, per endpoint",
            MetricType::Counter,
            self.transitions
                .iter()
                .map(|(l, v)| (l.clone(), ConstCounter::new(*v))),
        )?;
        family(
            &mut encoder,
            "dispatch_queue_depth",
            "Tasks waiting at the forwarder for their endpoint (waiting-for-ep)",
            MetricType::Gauge,
            gauges(&self.queue),
        )?;
        family(
            &mut encoder,
            "endpoint_online",
            "1 while the endpoint is connected and sending heartbeats",
            MetricType::Gauge,
            gauges(&self.endpoint_online),
        )?;
        let online = encoder.encode_descriptor(
            "endpoints_online",
            "Endpoints connected and sending heartbeats",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.online).encode(online)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_and_failures_are_told_apart() {
        use State::*;
        assert_eq!(
            Counted::of(Running, WaitingForNodes, Some("manager lost: gone")),
            Some(Counted::Retry(ReasonKind::ManagerLost))
        );
        assert_eq!(
            Counted::of(
                DispatchedToEp,
                WaitingForEp,
                Some("endpoint lost: no heartbeat")
            ),
            Some(Counted::Retry(ReasonKind::EndpointLost))
        );
        assert_eq!(
            Counted::of(Running, Failed, Some("ValueError: 3")),
            Some(Counted::Failure(ReasonKind::Exception))
        );
        assert_eq!(Counted::of(Running, Success, None), None);
        assert_eq!(Counted::of(WaitingForEp, DispatchedToEp, None), None);
        assert_eq!(Counted::of(Running, Cancelled, None), None);
    }
}
