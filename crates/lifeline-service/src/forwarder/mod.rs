//! The forwarder: endpoint connections, dispatch, heartbeats and the retry of whatever a system
//! failure interrupted.
//!
//! Each connected endpoint has one WebSocket session (`session.rs`) with a reader and a writer
//! joined by `select!`. A monitor task ([`Forwarder::monitor`], `liveness.rs`) ticks a few times
//! per heartbeat period: it declares silent endpoints offline and retries their unfinished tasks,
//! retries dispatches nobody acknowledged, and dispatches tasks waiting for connected endpoints.
//! `dispatch.rs` sends tasks, `retry.rs` applies the model's system-failure rule to what a
//! lost endpoint or an unacknowledged dispatch interrupted, `reports.rs` stores what endpoints
//! report. This file holds the shared books: connections, liveness and function definitions.

mod dispatch;
mod liveness;
mod reports;
mod retry;
mod session;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lifeline_model::{Actor, EndpointId, FunctionId, State, TaskId, Timestamp};
use lifeline_protocol::{FunctionSpec, ToEndpoint};
use tokio::sync::mpsc;

use crate::log_limit::LogLimit;
use crate::store::{Proposal, Store, StoreResult, registry};

pub(crate) use dispatch::{Queue, assignment};
pub use liveness::Liveness;
use reports::{REPORT_LOG_INTERVAL, REPORT_LOG_LINES};
pub(crate) use session::session;

/// Tasks moved per write job and per dispatch message.
const PAGE: usize = 2000;
/// The largest window an endpoint may ask for.
const MAX_WINDOW: u32 = 1_000_000;

#[derive(Debug)]
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<String>,
    sent_functions: HashSet<FunctionId>,
    /// The most tasks the endpoint takes at once (its hello's window); `None`: no bound.
    window: Option<u64>,
    /// Room in the window taken by dispatches not committed yet (see `dispatch::Reservation`).
    reserved: u64,
    /// Whether a call is dispatching waiting tasks, and whether another asked it to look again.
    dispatching: bool,
    look_again: bool,
}

#[derive(Debug, Default)]
struct Inner {
    conns: HashMap<EndpointId, Conn>,
    live: HashMap<EndpointId, Liveness>,
    functions: HashMap<FunctionId, FunctionSpec>,
}

/// Timings the forwarder works with.
#[derive(Copy, Clone, Debug)]
pub struct Timings {
    pub heartbeat_period: Duration,
    pub heartbeat_threshold: Duration,
    pub ack_timeout: Duration,
    pub max_result_bytes: usize,
}

#[derive(Debug)]
pub struct Forwarder {
    store: Store,
    timings: Timings,
    // A std mutex: held for map look-ups and updates only, never across an await.
    inner: Mutex<Inner>,
    next_conn: AtomicU64,
    /// Transitions endpoints reported that the model refused.
    pub illegal_reports: AtomicU64,
    /// Warnings about refused reports, bounded per endpoint (a std mutex, never held across an
    /// await).
    report_log: Mutex<LogLimit<EndpointId>>,
}

impl Forwarder {
    /// Starts with every registered endpoint offline, due to be declared lost (and its
    /// unfinished tasks retried) if it does not connect within the heartbeat threshold.
    pub async fn new(store: Store, timings: Timings) -> StoreResult<Self> {
        let endpoints = store.read(registry::endpoints).await?;
        let deadline = Instant::now() + timings.heartbeat_threshold;
        let live = endpoints
            .into_iter()
            .map(|e| {
                let l = Liveness {
                    name: e.name,
                    online: false,
                    last_heartbeat: None,
                    report: None,
                    deadline,
                    swept: false,
                };
                (e.id, l)
            })
            .collect();
        Ok(Self {
            store,
            timings,
            inner: Mutex::new(Inner {
                live,
                ..Inner::default()
            }),
            next_conn: AtomicU64::new(1),
            illegal_reports: AtomicU64::new(0),
            report_log: Mutex::new(LogLimit::new(REPORT_LOG_LINES, REPORT_LOG_INTERVAL)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_connected(&self, endpoint: EndpointId) -> bool {
        self.lock().conns.contains_key(&endpoint)
    }

    /// Every endpoint known to the forwarder: its id, name and whether it is online.
    pub fn endpoints_live(&self) -> Vec<(EndpointId, String, bool)> {
        self.lock()
            .live
            .iter()
            .map(|(id, l)| (*id, l.name.clone(), l.online))
            .collect()
    }

    pub fn liveness(&self, endpoint: EndpointId) -> Option<Liveness> {
        self.lock().live.get(&endpoint).cloned()
    }

    pub(super) fn attach(
        &self,
        endpoint: EndpointId,
        tx: mpsc::UnboundedSender<String>,
        window: Option<u32>,
    ) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let conn = Conn {
            id,
            tx,
            sent_functions: HashSet::new(),
            window: window.map(|w| u64::from(w.clamp(1, MAX_WINDOW))),
            reserved: 0,
            dispatching: false,
            look_again: false,
        };
        // A second connection replaces the first, whose session then ends.
        self.lock().conns.insert(endpoint, conn);
        id
    }

    pub(super) fn detach(&self, endpoint: EndpointId, conn_id: u64) {
        let mut inner = self.lock();
        if inner.conns.get(&endpoint).is_some_and(|c| c.id == conn_id) {
            inner.conns.remove(&endpoint);
        }
    }

    /// Runs `f` on the endpoint's connection `conn_id`, if it is still the current one.
    fn with_conn<T>(
        &self,
        endpoint: EndpointId,
        conn_id: u64,
        f: impl FnOnce(&mut Conn) -> T,
    ) -> Option<T> {
        let mut inner = self.lock();
        let conn = inner.conns.get_mut(&endpoint).filter(|c| c.id == conn_id)?;
        Some(f(conn))
    }

    pub(super) fn reply(&self, endpoint: EndpointId, conn_id: u64, message: &ToEndpoint) {
        if let Ok(text) = serde_json::to_string(message) {
            self.with_conn(endpoint, conn_id, |conn| conn.tx.send(text));
        }
    }
}

/// A transition the forwarder itself makes.
pub(crate) fn forwarder_move(
    task_id: TaskId,
    to: State,
    at: Timestamp,
    reason: Option<String>,
) -> Proposal {
    Proposal {
        task_id,
        to,
        actor: Actor::Forwarder,
        attempt: None,
        at,
        reason,
        result: None,
        reporter: None,
    }
}
