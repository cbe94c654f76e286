//! The forwarder: endpoint connections, dispatch, heartbeats and the retry of whatever a system
//! failure interrupted.
//!
//! Each connected endpoint has one WebSocket session ([`session`]) with a reader and a writer
//! joined by `select!`. A monitor task ([`Forwarder::monitor`]) ticks a few times per heartbeat
//! period: it declares silent endpoints offline and retries their unfinished tasks, retries
//! dispatches nobody acknowledged, and dispatches tasks waiting for connected endpoints.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use lifeline_model::{
    Actor, EndpointId, EndpointReport, EndpointStatus, FunctionId, State, TaskId, Timestamp,
    system_failure,
};
use lifeline_protocol::{
    Assignment, FromEndpoint, FunctionDef, FunctionSpec, Rejection, Reported, ToEndpoint,
};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};

use crate::log_limit::{LogLimit, Verdict};
use crate::now;
use crate::store::{self, Ctx, Outcome, Proposal, Store, StoreResult, TaskRow, registry};

/// Tasks moved per write job and per dispatch message.
const PAGE: usize = 2000;

#[derive(Debug)]
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<String>,
    sent_functions: HashSet<FunctionId>,
}

/// What the forwarder knows of an endpoint's health.
#[derive(Clone, Debug)]
pub struct Liveness {
    pub name: String,
    pub online: bool,
    pub last_heartbeat: Option<Timestamp>,
    pub report: Option<EndpointReport>,
    /// When the endpoint is lost if nothing is heard from it.
    deadline: Instant,
    /// Whether its unfinished tasks were already retried since it was last heard from.
    swept: bool,
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

/// Refused reports logged per endpoint per [`REPORT_LOG_INTERVAL`]; the rest are summarised.
const REPORT_LOG_LINES: u32 = 20;
const REPORT_LOG_INTERVAL: Duration = Duration::from_secs(60);

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

    pub fn liveness(&self, endpoint: EndpointId) -> Option<Liveness> {
        self.lock().live.get(&endpoint).cloned()
    }

    /// A newly registered endpoint: offline until it connects.
    pub fn register(&self, endpoint: EndpointId, name: String) {
        let l = Liveness {
            name,
            online: false,
            last_heartbeat: None,
            report: None,
            deadline: Instant::now(),
            swept: true,
        };
        self.lock().live.insert(endpoint, l);
    }

    /// A deleted endpoint: its connection is closed and it is forgotten.
    pub fn forget(&self, endpoint: EndpointId) {
        let mut inner = self.lock();
        inner.conns.remove(&endpoint);
        inner.live.remove(&endpoint);
    }

    /// Marks the endpoint heard from now; returns its status if it just came online.
    fn heard_from(
        &self,
        endpoint: EndpointId,
        report: Option<EndpointReport>,
    ) -> Option<EndpointStatus> {
        let mut inner = self.lock();
        let live = inner.live.get_mut(&endpoint)?;
        live.deadline = Instant::now() + self.timings.heartbeat_threshold;
        live.swept = false;
        live.last_heartbeat = Some(now());
        if report.is_some() {
            live.report = report;
        }
        if live.online {
            return None;
        }
        live.online = true;
        Some(status_of(endpoint, live))
    }

    /// The endpoint closed its connection cleanly: it is offline now, not after the heartbeat
    /// threshold, and the monitor's next tick requeues what it held (unless it reconnects
    /// first and says it still holds it). Returns its status if it was online.
    fn closed(&self, endpoint: EndpointId) -> Option<EndpointStatus> {
        let mut inner = self.lock();
        if inner.conns.contains_key(&endpoint) {
            // A newer connection replaced this one.
            return None;
        }
        let live = inner.live.get_mut(&endpoint)?;
        live.deadline = Instant::now();
        if !live.online {
            return None;
        }
        live.online = false;
        Some(status_of(endpoint, live))
    }

    async fn announce(&self, status: EndpointStatus) {
        let at = status.last_heartbeat.unwrap_or_else(now);
        if let Err(error) = self
            .store
            .write(move |ctx| ctx.endpoint_event(status, at))
            .await
        {
            tracing::warn!(%error, "could not record an endpoint status change");
        }
    }

    /// Sends tasks already moved to `dispatched-to-ep` to the endpoint, with the definitions of
    /// functions it has not been sent on this connection.
    async fn send_tasks(&self, endpoint: EndpointId, tasks: Vec<Assignment>) -> StoreResult<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let wanted: HashSet<FunctionId> = tasks.iter().map(|t| t.function_id).collect();
        let missing: Vec<FunctionId> = {
            let inner = self.lock();
            wanted
                .iter()
                .filter(|f| !inner.functions.contains_key(f))
                .copied()
                .collect()
        };
        for id in missing {
            if let Some(row) = self.store.read(move |c| registry::function(c, id)).await? {
                self.lock().functions.insert(id, row.spec);
            }
        }
        let mut inner = self.lock();
        let Inner {
            conns, functions, ..
        } = &mut *inner;
        let Some(conn) = conns.get_mut(&endpoint) else {
            // Gone meanwhile: the tasks stay dispatched until the acknowledgement timeout retries them.
            return Ok(());
        };
        let functions: Vec<FunctionDef> = wanted
            .into_iter()
            .filter(|f| conn.sent_functions.insert(*f))
            .filter_map(|f| {
                functions.get(&f).map(|spec| FunctionDef {
                    function_id: f,
                    spec: spec.clone(),
                })
            })
            .collect();
        let message = ToEndpoint::Tasks { functions, tasks };
        if let Ok(text) = serde_json::to_string(&message) {
            let _ = conn.tx.send(text);
        }
        Ok(())
    }

    /// Sends tasks just stored for a connected endpoint.
    pub async fn dispatch(&self, endpoint: EndpointId, tasks: Vec<Assignment>) {
        if let Err(error) = self.send_tasks(endpoint, tasks).await {
            tracing::warn!(%error, %endpoint, "could not dispatch tasks");
        }
    }

    /// Dispatches every task of a connected endpoint waiting in `waiting-for-ep`.
    pub async fn dispatch_waiting(&self, endpoint: EndpointId) -> StoreResult<()> {
        let mut after = 0;
        while self.is_connected(endpoint) {
            let rows = self
                .store
                .read(move |c| {
                    store::tasks_in_states(c, endpoint, &[State::WaitingForEp], after, PAGE)
                })
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            let at = now();
            let assignments = self
                .store
                .write(move |ctx| {
                    let mut out = Vec::new();
                    for row in rows {
                        let outcome = ctx.transition(forwarder_move(
                            row.task.task_id,
                            State::DispatchedToEp,
                            at,
                            None,
                        ))?;
                        if let Outcome::Applied { attempt, .. } = outcome {
                            out.push(assignment(ctx, &row, attempt)?);
                        }
                    }
                    Ok(out)
                })
                .await?;
            self.send_tasks(endpoint, assignments).await?;
        }
        Ok(())
    }

    /// Asks the endpoint to stop these tasks, if it is connected.
    pub fn cancel(&self, endpoint: EndpointId, task_ids: Vec<TaskId>) {
        if let Some(conn) = self.lock().conns.get(&endpoint)
            && let Ok(text) = serde_json::to_string(&ToEndpoint::Cancel { task_ids })
        {
            let _ = conn.tx.send(text);
        }
    }

    /// Retries (or, with no retries left, fails) every unfinished task the endpoint held,
    /// except those in `keep`: after it was lost, nothing is kept; after its agent reconnected,
    /// what the agent still holds.
    async fn retry_in_flight(
        &self,
        endpoint: EndpointId,
        keep: HashSet<TaskId>,
        reason: String,
    ) -> StoreResult<()> {
        let mut after = 0;
        loop {
            let rows = self
                .store
                .read(move |c| store::tasks_in_states(c, endpoint, &at_endpoint(), after, PAGE))
                .await?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.seq;
            let lost: Vec<TaskId> = rows
                .iter()
                .map(|r| r.task.task_id)
                .filter(|id| !keep.contains(id))
                .collect();
            if lost.is_empty() {
                continue;
            }
            let reason = reason.clone();
            let at = now();
            self.store
                .write(move |ctx| {
                    for id in lost {
                        retry_or_fail(ctx, id, at, &reason)?;
                    }
                    Ok(())
                })
                .await?;
        }
    }

    /// Retries dispatches not acknowledged within the timeout.
    async fn sweep_unacknowledged(&self) -> StoreResult<()> {
        let timeout = self.timings.ack_timeout;
        let cutoff = Timestamp::from_micros(now().as_micros() - timeout.as_micros() as i64);
        let rows = self
            .store
            .read(move |c| {
                let sql =
                    "SELECT id FROM tasks WHERE state = ?1 AND since < ?2 ORDER BY seq LIMIT ?3";
                let mut stmt = c.prepare_cached(sql)?;
                let ids = stmt
                    .query_map(
                        rusqlite::params![
                            i64::from(State::DispatchedToEp.storage_code()),
                            cutoff.as_micros(),
                            PAGE as i64
                        ],
                        |r| r.get::<_, Vec<u8>>(0),
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(ids)
            })
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let reason = format!(
            "dispatch not acknowledged by the endpoint within {} s",
            timeout.as_secs_f64()
        );
        let at = now();
        self.store
            .write(move |ctx| {
                for bytes in rows {
                    let Ok(arr) = <[u8; 16]>::try_from(bytes.as_slice()) else {
                        continue;
                    };
                    retry_or_fail(
                        ctx,
                        TaskId::from_u128(u128::from_be_bytes(arr)),
                        at,
                        &reason,
                    )?;
                }
                Ok(())
            })
            .await
    }

    /// Runs until `shutdown` changes: see the module documentation.
    pub async fn monitor(&self, mut shutdown: watch::Receiver<bool>) {
        let tick = (self.timings.heartbeat_period / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "forwarder monitor tick failed");
            }
        }
    }

    async fn tick(&self) -> StoreResult<()> {
        let now_instant = Instant::now();
        let threshold = self.timings.heartbeat_threshold.as_secs_f64();
        let (lost, connected) = {
            let mut inner = self.lock();
            let mut lost = Vec::new();
            let Inner { conns, live, .. } = &mut *inner;
            for (id, l) in live.iter_mut() {
                if now_instant >= l.deadline && !l.swept {
                    l.swept = true;
                    let went_offline = l.online.then(|| {
                        l.online = false;
                        status_of(*id, l)
                    });
                    // Closing the session: a silent endpoint must reconnect.
                    conns.remove(id);
                    lost.push((*id, went_offline));
                }
            }
            (lost, conns.keys().copied().collect::<Vec<_>>())
        };
        for (endpoint, status) in lost {
            if let Some(status) = status {
                tracing::info!(%endpoint, "endpoint lost: no heartbeat within the threshold");
                self.announce(status).await;
            }
            let reason = format!("endpoint lost: no heartbeat for {threshold} s");
            self.retry_in_flight(endpoint, HashSet::new(), reason)
                .await?;
        }
        self.sweep_unacknowledged().await?;
        for endpoint in connected {
            self.dispatch_waiting(endpoint).await?;
        }
        Ok(())
    }

    fn attach(&self, endpoint: EndpointId, tx: mpsc::UnboundedSender<String>) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let conn = Conn {
            id,
            tx,
            sent_functions: HashSet::new(),
        };
        // A second connection replaces the first, whose session then ends.
        self.lock().conns.insert(endpoint, conn);
        id
    }

    fn detach(&self, endpoint: EndpointId, conn_id: u64) {
        let mut inner = self.lock();
        if inner.conns.get(&endpoint).is_some_and(|c| c.id == conn_id) {
            inner.conns.remove(&endpoint);
        }
    }

    fn reply(&self, endpoint: EndpointId, conn_id: u64, message: &ToEndpoint) {
        if let Some(conn) = self.lock().conns.get(&endpoint).filter(|c| c.id == conn_id)
            && let Ok(text) = serde_json::to_string(message)
        {
            let _ = conn.tx.send(text);
        }
    }

    /// Stores a report batch and answers it with an acknowledgement listing what was refused.
    async fn report(
        &self,
        endpoint: EndpointId,
        batch: u64,
        transitions: Vec<Reported>,
    ) -> StoreResult<ToEndpoint> {
        let limit = self.timings.max_result_bytes;
        let rejected = self
            .store
            .write(move |ctx| {
                let mut rejected = Vec::new();
                for r in transitions {
                    let (task_id, state, attempt) = (r.task_id, r.state, r.attempt);
                    let proposal = reported_proposal(endpoint, r, limit);
                    let message = match ctx.transition(proposal)? {
                        Outcome::Applied { .. } | Outcome::Duplicate => continue,
                        Outcome::Illegal(error) => error.to_string(),
                        Outcome::Forbidden => "the task belongs to another endpoint".to_owned(),
                        Outcome::Unknown => "unknown task".to_owned(),
                    };
                    rejected.push(Rejection {
                        task_id,
                        state,
                        attempt,
                        message,
                    });
                }
                Ok(rejected)
            })
            .await?;
        if !rejected.is_empty() {
            self.illegal_reports
                .fetch_add(rejected.len() as u64, Ordering::Relaxed);
            let mut log = self.report_log.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            for r in &rejected {
                match log.check(endpoint, now) {
                    Verdict::Log { suppressed } => {
                        if suppressed > 0 {
                            tracing::warn!(%endpoint, suppressed, "left out of the log: more rejected transitions from this endpoint");
                        }
                        tracing::warn!(%endpoint, task = %r.task_id, state = %r.state, message = %r.message, "rejected a reported transition");
                    }
                    Verdict::Suppress => {}
                }
            }
        }
        Ok(ToEndpoint::Ack { batch, rejected })
    }
}

/// A transition the endpoint reported, as a proposal; an oversized result fails the task.
fn reported_proposal(endpoint: EndpointId, r: Reported, limit: usize) -> Proposal {
    let mut p = Proposal {
        task_id: r.task_id,
        to: r.state,
        actor: r.actor,
        attempt: Some(r.attempt),
        at: r.at,
        reason: r.reason,
        result: r.result.map(|raw| raw.get().to_owned()),
        reporter: Some(endpoint),
    };
    if let Some(result) = p.result.as_ref().filter(|r| r.len() > limit) {
        p.reason = Some(format!(
            "MaxResultSizeExceeded: the result is {} bytes, more than the limit of {limit} bytes",
            result.len()
        ));
        p.to = State::Failed;
        p.result = None;
    }
    p
}

fn status_of(endpoint: EndpointId, l: &Liveness) -> EndpointStatus {
    EndpointStatus {
        endpoint_id: endpoint,
        name: l.name.clone(),
        online: l.online,
        last_heartbeat: l.last_heartbeat,
        report: l.report.clone(),
    }
}

fn forwarder_move(task_id: TaskId, to: State, at: Timestamp, reason: Option<String>) -> Proposal {
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

/// The message that sends a stored task on `attempt`.
pub(crate) fn assignment(ctx: &Ctx<'_>, row: &TaskRow, attempt: u32) -> StoreResult<Assignment> {
    let (args, kwargs) = store::task_payload(ctx.conn(), row.seq)?;
    let raw = |text: String| {
        RawValue::from_string(text).map_err(|e| {
            store::StoreError::Db(rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                e.into(),
            ))
        })
    };
    Ok(Assignment {
        task_id: row.task.task_id,
        function_id: row.task.function_id,
        attempt,
        max_retries: row.task.max_retries,
        args: raw(args)?,
        kwargs: raw(kwargs)?,
    })
}

/// A system failure at the forwarder, decided by the model's one rule: the task waits for the
/// endpoint again (requeued, or retried if it was running), or fails with no retry left.
pub(crate) fn retry_or_fail(
    ctx: &mut Ctx<'_>,
    task: TaskId,
    at: Timestamp,
    reason: &str,
) -> StoreResult<Outcome> {
    let Some(row) = ctx.task(task)? else {
        return Ok(Outcome::Unknown);
    };
    let t = &row.task;
    match system_failure(
        t.state,
        State::WaitingForEp,
        Actor::Forwarder,
        t.attempt,
        t.max_retries,
        reason,
    ) {
        Ok(recovery) => {
            ctx.transition(forwarder_move(task, recovery.to, at, Some(recovery.reason)))
        }
        Err(error) => Ok(Outcome::Illegal(error)),
    }
}

/// The states in which a task is in its endpoint's hands.
fn at_endpoint() -> Vec<State> {
    State::ALL.into_iter().filter(|s| s.at_endpoint()).collect()
}

/// The close frame that answers a read error the endpoint caused (a message over the size
/// limit: 1009), if it was one.
fn refusal(error: &axum::Error) -> Option<CloseFrame> {
    use tokio_tungstenite::tungstenite::Error;
    let inner = std::error::Error::source(error)?;
    match inner.downcast_ref::<Error>()? {
        Error::Capacity(why) => Some(CloseFrame {
            code: axum::extract::ws::close_code::SIZE,
            reason: format!("message too big: {why}").into(),
        }),
        _ => None,
    }
}

/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits for the agent's hello; `None` if the socket closed or said something else first.
async fn hello(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Result<Vec<TaskId>, String> {
    loop {
        let message = match tokio::time::timeout(HELLO_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(_) => return Err(String::new()),
            Err(_) => return Err(format!("no hello within {} s", HELLO_TIMEOUT.as_secs())),
        };
        match message {
            Message::Text(text) => {
                return match serde_json::from_str::<FromEndpoint>(&text) {
                    Ok(FromEndpoint::Hello { tasks }) => Ok(tasks),
                    Ok(_) => Err("the first message must be a hello".into()),
                    Err(error) => Err(format!("not a valid message: {error}")),
                };
            }
            Message::Close(_) => return Err(String::new()),
            Message::Binary(_) | Message::Ping(_) | Message::Pong(_) => continue,
        }
    }
}

/// One endpoint's WebSocket session, until it closes or the service shuts down.
pub(crate) async fn session(
    forwarder: std::sync::Arc<Forwarder>,
    endpoint: EndpointId,
    socket: WebSocket,
    mut shutdown: watch::Receiver<bool>,
) {
    let (mut sink, mut stream) = socket.split();
    let held = match hello(&mut stream).await {
        Ok(held) => held,
        Err(message) => {
            if !message.is_empty() {
                let text =
                    serde_json::to_string(&ToEndpoint::Error { message }).unwrap_or_default();
                let _ = sink.send(Message::Text(text.into())).await;
            }
            let _ = sink.close().await;
            return;
        }
    };
    // Whatever the agent no longer holds (it restarted, say) starts its next attempt.
    let reason = "system failure: the endpoint reconnected without this task".to_owned();
    if let Err(error) = forwarder
        .retry_in_flight(endpoint, held.into_iter().collect(), reason)
        .await
    {
        tracing::error!(%error, %endpoint, "could not reconcile the endpoint's tasks");
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let conn_id = forwarder.attach(endpoint, tx);
    tracing::info!(%endpoint, "endpoint connected");
    let welcome = ToEndpoint::Welcome {
        heartbeat_period_secs: forwarder.timings.heartbeat_period.as_secs_f64(),
    };
    forwarder.reply(endpoint, conn_id, &welcome);
    if let Some(status) = forwarder.heard_from(endpoint, None) {
        forwarder.announce(status).await;
    }
    let writer = async {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    // How the reader ended: the endpoint closed cleanly, or broke the protocol with a frame
    // the service must answer with a close code, or the connection simply dropped.
    enum End {
        Clean,
        Refused(CloseFrame),
        Dropped,
    }
    let reader = async {
        let dispatcher = forwarder.dispatch_waiting(endpoint);
        if let Err(error) = dispatcher.await {
            tracing::warn!(%error, %endpoint, "could not dispatch waiting tasks");
        }
        loop {
            let text = match stream.next().await {
                None => return End::Dropped,
                Some(Err(error)) => return refusal(&error).map_or(End::Dropped, End::Refused),
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) => return End::Clean,
                Some(Ok(Message::Binary(_))) => {
                    let message =
                        "binary frames are not part of the protocol; send JSON text".into();
                    forwarder.reply(endpoint, conn_id, &ToEndpoint::Error { message });
                    continue;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            };
            match serde_json::from_str::<FromEndpoint>(&text) {
                Ok(FromEndpoint::Heartbeat { report }) => {
                    if let Some(status) = forwarder.heard_from(endpoint, Some(report)) {
                        forwarder.announce(status).await;
                    }
                }
                Ok(FromEndpoint::Report { batch, transitions }) => {
                    forwarder.heard_from(endpoint, None);
                    match forwarder.report(endpoint, batch, transitions).await {
                        Ok(ack) => forwarder.reply(endpoint, conn_id, &ack),
                        Err(error) => {
                            tracing::error!(%error, %endpoint, "could not store a report");
                            return End::Dropped;
                        }
                    }
                }
                Ok(FromEndpoint::Hello { .. }) => {
                    let message = "hello is only the first message of a connection".into();
                    forwarder.reply(endpoint, conn_id, &ToEndpoint::Error { message });
                }
                Err(error) => {
                    let message = format!("not a valid message: {error}");
                    forwarder.reply(endpoint, conn_id, &ToEndpoint::Error { message });
                }
            }
        }
    };
    let end = tokio::select! {
        _ = writer => End::Dropped,
        end = reader => end,
        _ = shutdown.changed() => End::Dropped,
    };
    if let End::Refused(frame) = &end {
        tracing::warn!(%endpoint, code = frame.code, reason = %frame.reason, "closing an endpoint's connection");
        let _ = sink.send(Message::Close(Some(frame.clone()))).await;
    }
    forwarder.detach(endpoint, conn_id);
    if matches!(end, End::Clean)
        && let Some(status) = forwarder.closed(endpoint)
    {
        forwarder.announce(status).await;
    }
    tracing::info!(%endpoint, "endpoint disconnected");
}
