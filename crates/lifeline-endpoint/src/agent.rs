//! The endpoint agent: its connection to the service and its interchange.
//!
//! The interchange is one task that owns every piece of state: the tasks the endpoint holds,
//! each executor's queue and managers, the outbox. It reacts to messages from the service
//! (through the connection task), to lines from managers (through one reader task per manager)
//! and to timers. Every transition it reports is first applied to the task's
//! [`TaskView`], which validates it with the shared model: the agent never reports a transition
//! the model forbids.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lifeline_model::{
    Actor, EndpointReport, ExecutorReport, FunctionId, State, StateCounts, TaskId, TaskView,
    Timestamp, TransitionError, TransitionRecord, system_failure, validate,
};
use lifeline_protocol::{Assignment, FromEndpoint, FunctionSpec, Reported, ToEndpoint};
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::config::{EndpointConfig, ExecutorConfig};
use crate::node::{FromManager, Outcome, RunTask, ToManager};
use crate::outbox::Outbox;
use crate::provider::{LocalProvider, NodeSpec, Provider};

/// How often managers report; their silence for [`EndpointConfig::manager_timeout`] loses them.
const MANAGER_HEARTBEAT: Duration = Duration::from_secs(1);
/// Transitions wait at most this long to be reported while more events keep arriving.
const FLUSH_DELAY: Duration = Duration::from_millis(3);
/// Least time between two reports sent because the interchange was idle.
const FLUSH_GAP: Duration = Duration::from_millis(1);
/// A batch is reported at once when it reaches this size.
const FLUSH_SIZE: usize = 4000;
/// Heartbeat period until the service says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// How to run the agent.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The service's base URL, such as `http://127.0.0.1:8080`.
    pub service: String,
    /// The endpoint's token (from `POST /v1/endpoints`).
    pub token: String,
    /// The agent's own directory: the outbox lives there.
    pub dir: PathBuf,
    pub config: EndpointConfig,
    /// The `lifeline` binary, which local managers run.
    pub program: PathBuf,
}

type ManagerId = u64;

/// Where a held task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In its executor's queue (waiting-for-nodes).
    Queued,
    /// Sent to a manager (waiting-for-launch once accepted, then running).
    OnManager(ManagerId),
}

#[derive(Debug)]
struct Held {
    view: TaskView,
    assignment: Assignment,
    executor: usize,
    place: Place,
}

#[derive(Debug)]
struct Manager {
    executor: usize,
    workers: usize,
    stdin: mpsc::UnboundedSender<String>,
    tasks: HashSet<TaskId>,
    busy: u32,
    last_heard: Instant,
    child: Child,
}

#[derive(Debug)]
struct Executor {
    config: ExecutorConfig,
    provider: Box<dyn Provider>,
    queue: VecDeque<TaskId>,
}

/// Messages from the connection task to the interchange.
#[derive(Debug)]
enum FromConn {
    /// Connected: answer with the hello to send and the outbox to replay.
    Connected(oneshot::Sender<(String, Vec<String>)>),
    Welcome {
        heartbeat_period: Duration,
    },
    Message(ToEndpoint),
    Disconnected,
}

/// Messages from manager reader tasks.
#[derive(Debug)]
enum ManagerEvent {
    Line(ManagerId, String),
    Exited(ManagerId, String),
}

#[derive(Debug)]
struct Interchange {
    executors: Vec<Executor>,
    managers: HashMap<ManagerId, Manager>,
    next_manager: ManagerId,
    tasks: HashMap<TaskId, Held>,
    functions: HashMap<FunctionId, FunctionSpec>,
    pending: Vec<Reported>,
    flush_at: Option<Instant>,
    last_flush: Instant,
    outbox: Outbox,
    to_conn: mpsc::UnboundedSender<String>,
    connected: bool,
    heartbeat_period: Duration,
    manager_timeout: Duration,
    max_result_bytes: usize,
    events: mpsc::UnboundedSender<ManagerEvent>,
}

/// Runs the agent until `shutdown` completes.
pub async fn run_agent(
    options: AgentOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    options.config.check()?;
    let outbox = Outbox::open(options.dir.join("outbox"))?;
    if outbox.len() > 0 {
        tracing::info!(
            batches = outbox.len(),
            "replaying reports a previous run could not deliver"
        );
    }
    let (conn_tx, conn_rx) = mpsc::unbounded_channel::<FromConn>();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<String>();
    let (events_tx, events_rx) = mpsc::unbounded_channel::<ManagerEvent>();
    let url = connect_url(&options.service)?;
    let connection = tokio::spawn(connection(url, options.token.clone(), conn_tx, out_rx));

    let provider = LocalProvider {
        program: options.program.clone(),
    };
    let executors = options
        .config
        .executors
        .iter()
        .map(|c| Executor {
            config: c.clone(),
            provider: Box::new(provider.clone()) as Box<dyn Provider>,
            queue: VecDeque::new(),
        })
        .collect();
    let mut interchange = Interchange {
        executors,
        managers: HashMap::new(),
        next_manager: 1,
        tasks: HashMap::new(),
        functions: HashMap::new(),
        pending: Vec::new(),
        flush_at: None,
        last_flush: Instant::now(),
        outbox,
        to_conn: out_tx,
        connected: false,
        heartbeat_period: DEFAULT_HEARTBEAT,
        manager_timeout: options.config.manager_timeout(MANAGER_HEARTBEAT),
        max_result_bytes: options.config.max_result_bytes,
        events: events_tx,
    };
    for executor in 0..interchange.executors.len() {
        for _ in 0..interchange.executors[executor].config.nodes {
            interchange.start_manager(executor);
        }
    }
    let result = interchange.run(conn_rx, events_rx, shutdown).await;
    connection.abort();
    for (_, mut m) in interchange.managers.drain() {
        let _ = m.child.start_kill();
    }
    result
}

/// `http://host:port[/prefix]` → `ws://host:port[/prefix]/v1/connect`.
fn connect_url(service: &str) -> anyhow::Result<String> {
    let base = service.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        anyhow::bail!("the service URL {service:?} must start with http:// or https://");
    };
    Ok(format!("{ws}/v1/connect"))
}

/// Keeps a connection to the service, reconnecting with jittered exponential back-off.
async fn connection(
    url: String,
    token: String,
    to_interchange: mpsc::UnboundedSender<FromConn>,
    mut outgoing: mpsc::UnboundedReceiver<String>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match session(&url, &token, &to_interchange, &mut outgoing).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(error) => tracing::warn!(%error, "cannot reach the service"),
        }
        let _ = to_interchange.send(FromConn::Disconnected);
        // Whatever was queued for the old connection is in the outbox or out of date.
        while outgoing.try_recv().is_ok() {}
        let jitter = rand::random_range(0.5..1.5);
        tokio::time::sleep(backoff.mul_f64(jitter)).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// One connection: hello, replay, then relay both ways until it breaks.
async fn session(
    url: &str,
    token: &str,
    to_interchange: &mpsc::UnboundedSender<FromConn>,
    outgoing: &mut mpsc::UnboundedReceiver<String>,
) -> anyhow::Result<()> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_with_config(request, None, true),
    )
    .await??;
    let (mut sink, mut stream) = ws.split();
    let (tx, rx) = oneshot::channel();
    to_interchange.send(FromConn::Connected(tx))?;
    let (hello, replay) = rx.await?;
    sink.send(Message::Text(hello.into())).await?;
    // Wait for the welcome before replaying, so the service has reconciled first.
    loop {
        let Some(message) = stream.next().await else {
            anyhow::bail!("closed before welcome")
        };
        if let Message::Text(text) = message? {
            match serde_json::from_str::<ToEndpoint>(&text)? {
                ToEndpoint::Welcome {
                    heartbeat_period_secs,
                } => {
                    let heartbeat_period =
                        Duration::from_secs_f64(heartbeat_period_secs.clamp(0.05, 3600.0));
                    to_interchange.send(FromConn::Welcome { heartbeat_period })?;
                    break;
                }
                ToEndpoint::Error { message } => {
                    anyhow::bail!("the service refused the connection: {message}")
                }
                other => to_interchange.send(FromConn::Message(other))?,
            }
        }
    }
    tracing::info!(batches = replay.len(), "connected to the service");
    for text in replay {
        sink.send(Message::Text(text.into())).await?;
    }
    loop {
        tokio::select! {
            out = outgoing.recv() => {
                let Some(text) = out else { return Ok(()) };
                sink.send(Message::Text(text.into())).await?;
            }
            message = stream.next() => {
                let Some(message) = message else { return Ok(()) };
                match message? {
                    Message::Text(text) => match serde_json::from_str::<ToEndpoint>(&text) {
                        Ok(message) => to_interchange.send(FromConn::Message(message))?,
                        Err(error) => tracing::warn!(%error, "ignoring an unreadable message from the service"),
                    },
                    Message::Close(_) => return Ok(()),
                    _ => {}
                }
            }
        }
    }
}

impl Interchange {
    async fn run(
        &mut self,
        mut conn: mpsc::UnboundedReceiver<FromConn>,
        mut events: mpsc::UnboundedReceiver<ManagerEvent>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut heartbeat = tokio::time::interval(self.heartbeat_period);
        let mut check = tokio::time::interval(MANAGER_HEARTBEAT);
        loop {
            let flush_at = self.flush_at;
            tokio::select! {
                _ = &mut shutdown => {
                    self.flush()?;
                    return Ok(());
                }
                Some(message) = conn.recv() => match message {
                    FromConn::Connected(reply) => {
                        let _ = reply.send((self.hello()?, self.outbox.pending()));
                    }
                    FromConn::Welcome { heartbeat_period } => {
                        self.connected = true;
                        if heartbeat_period != self.heartbeat_period {
                            self.heartbeat_period = heartbeat_period;
                            heartbeat = tokio::time::interval(heartbeat_period);
                        }
                        self.send_heartbeat();
                    }
                    FromConn::Message(message) => self.on_service_message(message),
                    FromConn::Disconnected => self.connected = false,
                },
                Some(event) = events.recv() => match event {
                    ManagerEvent::Line(id, line) => self.on_manager_line(id, &line),
                    ManagerEvent::Exited(id, why) => self.manager_lost(id, &format!("manager lost: {why}")),
                },
                _ = heartbeat.tick() => self.send_heartbeat(),
                _ = check.tick() => self.check_managers(),
                _ = async move {
                    match flush_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            self.schedule();
            // Report as soon as nothing else is waiting, at most once per FLUSH_GAP: alone, a
            // transition leaves at once (or when the gap ends); under load, everything that
            // arrives within FLUSH_DELAY leaves in one batch.
            let idle = conn.is_empty() && events.is_empty();
            let rested = self.last_flush.elapsed() >= FLUSH_GAP;
            if (idle && rested)
                || self.pending.len() >= FLUSH_SIZE
                || self.flush_at.is_some_and(|at| at <= Instant::now())
            {
                self.flush()?;
            } else if idle && let Some(at) = self.flush_at.as_mut() {
                *at = (*at).min(self.last_flush + FLUSH_GAP);
            }
        }
    }

    /// The hello for a new connection: every task held, and every task whose end waits in
    /// the outbox.
    fn hello(&self) -> anyhow::Result<String> {
        let mut tasks: HashSet<TaskId> = self.tasks.keys().copied().collect();
        tasks.extend(self.outbox.finishing());
        Ok(serde_json::to_string(&FromEndpoint::Hello {
            tasks: tasks.into_iter().collect(),
        })?)
    }

    fn send_heartbeat(&self) {
        if !self.connected {
            return;
        }
        let report = EndpointReport {
            at: crate::now(),
            executors: self.reports(),
        };
        if let Ok(text) = serde_json::to_string(&FromEndpoint::Heartbeat { report }) {
            let _ = self.to_conn.send(text);
        }
    }

    /// One report per executor.
    fn reports(&self) -> Vec<ExecutorReport> {
        let mut reports: Vec<ExecutorReport> = self
            .executors
            .iter()
            .map(|e| ExecutorReport {
                label: e.config.label.clone(),
                provider: e.provider.name().into(),
                ..ExecutorReport::default()
            })
            .collect();
        for m in self.managers.values() {
            let r = &mut reports[m.executor];
            r.managers += 1;
            r.total_workers += m.workers as u32;
            r.busy_workers += m.busy;
        }
        let mut counts: Vec<StateCounts> = vec![StateCounts::default(); self.executors.len()];
        for t in self.tasks.values() {
            counts[t.executor].add(t.view.state, 1);
        }
        for (r, c) in reports.iter_mut().zip(counts) {
            r.idle_workers = r.total_workers.saturating_sub(r.busy_workers);
            r.tasks = c;
        }
        reports
    }

    /// Applies a transition to a held task after checking it with the model, and queues it
    /// for the service. Returns whether it was applied.
    fn transition(
        &mut self,
        id: TaskId,
        to: State,
        actor: Actor,
        at: Timestamp,
        reason: Option<String>,
        result: Option<Box<RawValue>>,
    ) -> Result<u32, TransitionError> {
        let Some(task) = self.tasks.get_mut(&id) else {
            return Err(TransitionError::NoSuchEdge { from: to, to });
        };
        let accepted = validate(
            task.view.state,
            to,
            actor,
            task.view.attempt,
            task.view.max_retries,
        )?;
        let record = TransitionRecord {
            state: to,
            actor,
            attempt: accepted.attempt,
            at,
            reason: reason.clone(),
        };
        task.view.apply(&record)?;
        self.pending.push(Reported {
            task_id: id,
            state: to,
            actor,
            attempt: accepted.attempt,
            at,
            reason,
            result,
        });
        if self.flush_at.is_none() {
            // Under load, a batch gathers for FLUSH_DELAY; an idle interchange flushes sooner.
            self.flush_at = Some(Instant::now() + FLUSH_DELAY);
        }
        if to.is_terminal() {
            self.forget(id);
        }
        Ok(accepted.attempt)
    }

    /// Drops a task from the interchange's books (its manager is told separately).
    fn forget(&mut self, id: TaskId) {
        if let Some(task) = self.tasks.remove(&id) {
            match task.place {
                Place::Queued => self.executors[task.executor].queue.retain(|t| *t != id),
                Place::OnManager(m) => {
                    if let Some(m) = self.managers.get_mut(&m) {
                        m.tasks.remove(&id);
                    }
                }
            }
        }
    }

    /// Reports queued transitions as one durable batch.
    fn flush(&mut self) -> anyhow::Result<()> {
        self.flush_at = None;
        self.last_flush = Instant::now();
        if self.pending.is_empty() {
            return Ok(());
        }
        let text = self.outbox.push(std::mem::take(&mut self.pending))?;
        if self.connected {
            let _ = self.to_conn.send(text);
        }
        Ok(())
    }

    fn on_service_message(&mut self, message: ToEndpoint) {
        match message {
            ToEndpoint::Tasks { functions, tasks } => {
                for f in functions {
                    self.functions.insert(f.function_id, f.spec);
                }
                for assignment in tasks {
                    self.accept(assignment);
                }
            }
            ToEndpoint::Cancel { task_ids } => {
                for id in task_ids {
                    if let Some(task) = self.tasks.get(&id)
                        && let Place::OnManager(m) = task.place
                    {
                        self.tell(m, &ToManager::Cancel { task_id: id });
                    }
                    self.forget(id);
                }
            }
            ToEndpoint::Ack { batch, rejected } => {
                self.outbox.acknowledged(batch);
                for r in rejected {
                    tracing::warn!(task = %r.task_id, state = %r.state, message = %r.message, "the service refused a transition");
                    // The service knows better: stop working on this attempt.
                    if self
                        .tasks
                        .get(&r.task_id)
                        .is_some_and(|t| t.view.attempt == r.attempt)
                    {
                        if let Some(Place::OnManager(m)) =
                            self.tasks.get(&r.task_id).map(|t| t.place)
                        {
                            self.tell(m, &ToManager::Cancel { task_id: r.task_id });
                        }
                        self.forget(r.task_id);
                    }
                }
            }
            ToEndpoint::Welcome { .. } => {}
            ToEndpoint::Error { message } => {
                tracing::warn!(%message, "the service reported an error")
            }
        }
    }

    /// A task from the service: acknowledge it (waiting-for-nodes) and queue it on the least
    /// loaded executor.
    fn accept(&mut self, assignment: Assignment) {
        let id = assignment.task_id;
        if self
            .tasks
            .get(&id)
            .is_some_and(|t| t.view.attempt == assignment.attempt)
        {
            return;
        }
        let known_function = self.functions.contains_key(&assignment.function_id);
        let depth = |raw: &RawValue| lifeline_model::json_depth(raw.get());
        let deepest = depth(&assignment.args).max(depth(&assignment.kwargs));
        let executor = (0..self.executors.len())
            .min_by_key(|&i| {
                let e = &self.executors[i];
                let capacity = (e.config.nodes * e.config.workers_per_node).max(1);
                let placed: usize = self
                    .managers
                    .values()
                    .filter(|m| m.executor == i)
                    .map(|m| m.tasks.len())
                    .sum();
                (e.queue.len() + placed) * 1000 / capacity
            })
            .unwrap_or(0);
        let view = TaskView {
            state: State::DispatchedToEp,
            attempt: assignment.attempt,
            max_retries: assignment.max_retries,
            since: crate::now(),
        };
        // A new attempt of a task still held replaces the old one.
        if let Some(Place::OnManager(m)) = self.tasks.get(&id).map(|t| t.place) {
            self.tell(m, &ToManager::Cancel { task_id: id });
        }
        self.forget(id);
        self.tasks.insert(
            id,
            Held {
                view,
                assignment,
                executor,
                place: Place::Queued,
            },
        );
        if let Err(error) = self.transition(
            id,
            State::WaitingForNodes,
            Actor::Endpoint,
            crate::now(),
            None,
            None,
        ) {
            tracing::warn!(task = %id, %error, "cannot acknowledge a task");
            self.tasks.remove(&id);
            return;
        }
        let rejection = if !known_function {
            Some("the function's definition did not arrive with the task".to_owned())
        } else if deepest > lifeline_model::MAX_ARGUMENT_DEPTH {
            Some(format!(
                "its arguments nest {deepest} levels deep; the limit is {}",
                lifeline_model::MAX_ARGUMENT_DEPTH
            ))
        } else {
            None
        };
        if let Some(why) = rejection {
            let reason = format!("rejected by the endpoint: {why}");
            let _ = self.transition(
                id,
                State::Failed,
                Actor::Endpoint,
                crate::now(),
                Some(reason),
                None,
            );
        } else {
            self.executors[executor].queue.push_back(id);
        }
    }

    /// Places queued tasks on managers with spare capacity. A manager takes up to twice its
    /// workers: the extra tasks wait for a worker (waiting-for-launch) right next to it.
    fn schedule(&mut self) {
        for e in 0..self.executors.len() {
            while let Some(&id) = self.executors[e].queue.front() {
                let target = self
                    .managers
                    .iter()
                    .filter(|(_, m)| m.executor == e && m.tasks.len() < m.workers * 2)
                    .min_by_key(|(_, m)| m.tasks.len())
                    .map(|(id, _)| *id);
                let Some(m) = target else { break };
                self.executors[e].queue.pop_front();
                let Some(task) = self.tasks.get_mut(&id) else {
                    continue;
                };
                let Some(function) = self.functions.get(&task.assignment.function_id).cloned()
                else {
                    continue;
                };
                task.place = Place::OnManager(m);
                let run = RunTask {
                    task_id: id,
                    attempt: task.view.attempt,
                    function_id: task.assignment.function_id,
                    function,
                    args: task.assignment.args.clone(),
                    kwargs: task.assignment.kwargs.clone(),
                    walltime_secs: self.executors[e].config.walltime_secs,
                };
                if let Some(manager) = self.managers.get_mut(&m) {
                    manager.tasks.insert(id);
                }
                self.tell(m, &ToManager::Run(run));
            }
        }
    }

    fn tell(&self, manager: ManagerId, message: &ToManager) {
        if let Some(m) = self.managers.get(&manager)
            && let Ok(text) = serde_json::to_string(message)
        {
            let _ = m.stdin.send(text);
        }
    }

    fn on_manager_line(&mut self, id: ManagerId, line: &str) {
        let Some(manager) = self.managers.get_mut(&id) else {
            return;
        };
        manager.last_heard = Instant::now();
        // Recorded with waiting-for-launch, so that each attempt says where it ran.
        let placement = format!(
            "executor {}, manager {id}",
            self.executors[manager.executor].config.label
        );
        let message = match serde_json::from_str::<FromManager>(line) {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(%error, manager = id, "unreadable line from a manager");
                return;
            }
        };
        // A message about an attempt the interchange no longer holds (cancelled, retried) is stale.
        let current = |tasks: &HashMap<TaskId, Held>, task: TaskId, attempt: u32| {
            tasks
                .get(&task)
                .is_some_and(|t| t.view.attempt == attempt && t.place == Place::OnManager(id))
        };
        let result = match message {
            FromManager::Heartbeat { busy, .. } => {
                manager.busy = busy;
                Ok(0)
            }
            FromManager::Accepted {
                task_id,
                attempt,
                at,
            } if current(&self.tasks, task_id, attempt) => self.transition(
                task_id,
                State::WaitingForLaunch,
                Actor::Manager,
                at,
                Some(placement),
                None,
            ),
            FromManager::Started {
                task_id,
                attempt,
                at,
            } if current(&self.tasks, task_id, attempt) => {
                if let Some(m) = self.managers.get_mut(&id) {
                    m.busy += 1;
                }
                self.transition(task_id, State::Running, Actor::Worker, at, None, None)
            }
            FromManager::Done {
                task_id,
                attempt,
                at,
                outcome,
            } if current(&self.tasks, task_id, attempt) => {
                if let Some(m) = self.managers.get_mut(&id) {
                    m.busy = m.busy.saturating_sub(1);
                }
                match outcome {
                    Outcome::Success { result } => self.transition(
                        task_id,
                        State::Success,
                        Actor::Worker,
                        at,
                        None,
                        Some(result),
                    ),
                    Outcome::Failed { reason } => self.transition(
                        task_id,
                        State::Failed,
                        Actor::Worker,
                        at,
                        Some(reason),
                        None,
                    ),
                    Outcome::Lost { reason } => {
                        if let Some(m) = self.managers.get_mut(&id) {
                            m.tasks.remove(&task_id);
                        }
                        self.retry(task_id, at, reason)
                    }
                    Outcome::Cancelled => Ok(0),
                }
            }
            FromManager::Accepted { .. }
            | FromManager::Started { .. }
            | FromManager::Done { .. } => Ok(0),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "not reporting a transition the life cycle forbids");
        }
    }

    /// A system failure under a task, decided by the model's one rule: back to
    /// waiting-for-nodes (requeued, or retried if it was running), or failed with no retry left.
    fn retry(&mut self, id: TaskId, at: Timestamp, reason: String) -> Result<u32, TransitionError> {
        let Some(view) = self.tasks.get(&id).map(|t| t.view.clone()) else {
            return Ok(0);
        };
        let recovery = system_failure(
            view.state,
            State::WaitingForNodes,
            Actor::Endpoint,
            view.attempt,
            view.max_retries,
            &reason,
        )?;
        let attempt = self.transition(
            id,
            recovery.to,
            Actor::Endpoint,
            at,
            Some(recovery.reason),
            None,
        )?;
        if recovery.to == State::WaitingForNodes
            && let Some(task) = self.tasks.get_mut(&id)
        {
            task.place = Place::Queued;
            self.executors[task.executor].queue.push_back(id);
        }
        Ok(attempt)
    }

    fn start_manager(&mut self, executor: usize) {
        let e = &self.executors[executor];
        let spec = NodeSpec {
            workers: e.config.workers_per_node,
            heartbeat_period: MANAGER_HEARTBEAT,
            max_result_bytes: self.max_result_bytes,
        };
        let mut child = match e.provider.start_node(&spec) {
            Ok(child) => child,
            Err(error) => {
                tracing::error!(%error, executor = %e.config.label, "cannot start a manager");
                return;
            }
        };
        let id = self.next_manager;
        self.next_manager += 1;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return;
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(mut line) = rx.recv().await {
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                if rx.is_empty() && stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        let events = self.events.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if events.send(ManagerEvent::Line(id, line)).is_err() {
                    return;
                }
            }
            let _ = events.send(ManagerEvent::Exited(id, "its process exited".into()));
        });
        tracing::info!(manager = id, executor = %self.executors[executor].config.label, pid = ?child.id(), "started a manager");
        self.managers.insert(
            id,
            Manager {
                executor,
                workers: spec.workers,
                stdin: tx,
                tasks: HashSet::new(),
                busy: 0,
                last_heard: Instant::now(),
                child,
            },
        );
    }

    /// Declares silent managers lost.
    fn check_managers(&mut self) {
        let timeout = self.manager_timeout;
        let silent: Vec<ManagerId> = self
            .managers
            .iter()
            .filter(|(_, m)| m.last_heard.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            self.manager_lost(
                id,
                &format!("manager lost: no heartbeat for {} s", timeout.as_secs_f64()),
            );
        }
    }

    /// A manager died or went silent: its tasks are retried and a new node replaces it.
    fn manager_lost(&mut self, id: ManagerId, reason: &str) {
        let Some(mut manager) = self.managers.remove(&id) else {
            return;
        };
        tracing::warn!(manager = id, %reason, "replacing a lost manager");
        let _ = manager.child.start_kill();
        let at = crate::now();
        for task in manager.tasks {
            let Some(state) = self.tasks.get(&task).map(|t| t.view.state) else {
                continue;
            };
            if state == State::WaitingForNodes {
                // Sent but never accepted: it simply goes back to the queue.
                if let Some(t) = self.tasks.get_mut(&task) {
                    t.place = Place::Queued;
                    self.executors[t.executor].queue.push_front(task);
                }
                continue;
            }
            if let Err(error) = self.retry(task, at, reason.to_owned()) {
                tracing::warn!(%error, "cannot retry a task of a lost manager");
            }
        }
        self.start_manager(manager.executor);
    }
}
