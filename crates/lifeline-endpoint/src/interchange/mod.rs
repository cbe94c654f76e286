//! The interchange: one task that owns every piece of an endpoint's state, the tasks it holds,
//! each executor's queue, blocks and managers, and the outbox.
//!
//! It reacts to messages from the service (through the connection task), to managers (the
//! listener hands it each new connection; one reader task per manager forwards its lines), to
//! providers (submissions and status polls run as tasks and answer with [`BlockEvent`]s) and to
//! timers. Every transition it reports is first applied to the task's [`TaskView`], which
//! validates it with the shared model: the agent never reports a transition the model forbids.
//!
//! The concerns live in their own files: `listener.rs` accepts managers' connections,
//! `blocks.rs` asks providers for blocks and scales them, `placement.rs` decides where a task
//! goes, `managers.rs` hears from managers and replaces lost ones, `reports.rs` says what the
//! endpoint holds. This file holds the loop and the bookkeeping they share.

mod blocks;
mod listener;
mod managers;
mod placement;
mod reports;

pub(crate) use placement::deepest_auto_prefetch;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use lifeline_model::{
    Actor, FunctionId, State, TaskId, TaskView, Timestamp, TransitionError, TransitionRecord,
    system_failure, validate,
};
use lifeline_protocol::{Assignment, FunctionSpec, Reported, ToEndpoint};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{EndpointConfig, ExecutorConfig, Scaling};
use crate::connection::FromConn;
use crate::metrics::AgentMetrics;
use crate::node::ToManager;
use crate::outbox::Outbox;
use crate::provider::Provider;

pub(crate) use blocks::BlockEvent;
use blocks::{Block, BlockId};
pub(crate) use listener::Listener;
pub(crate) use managers::ManagerEvent;
use managers::{MANAGER_HEARTBEAT, Manager, ManagerId};

/// Transitions wait at most this long to be reported while more events keep arriving.
const FLUSH_DELAY: Duration = Duration::from_millis(3);
/// A batch is reported at once when it reaches this size.
const FLUSH_SIZE: usize = 4000;
/// Heartbeat period until the service says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

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
    /// The first report batch that can carry this run's transitions. A requeue keeps the
    /// attempt, so a task sent again has the attempt of its previous run here: a refusal of an
    /// older batch is about that run, not this one.
    first_batch: u64,
}

/// One executor of `endpoint.toml`: its configuration, the provider of its blocks and the
/// tasks waiting for one of its managers.
#[derive(Debug)]
pub(crate) struct Executor {
    config: ExecutorConfig,
    scaling: Scaling,
    provider: Arc<dyn Provider>,
    queue: VecDeque<TaskId>,
    /// No block is submitted before this (after submissions failed).
    backoff_until: Option<Instant>,
    /// Submissions that failed in a row.
    failures: u32,
    /// A status poll is out.
    polling: bool,
    /// When the last status poll went out.
    last_poll: Option<Instant>,
    /// The last scheduler command that failed, until one succeeds.
    provider_error: Option<String>,
    /// How long its tasks run, from their functions' starts to their ends: the longest seen
    /// lately (see [`placement::observe_run`]); `None` until one has finished.
    run_secs: Option<f64>,
}

impl Executor {
    pub(crate) fn new(config: ExecutorConfig, provider: Arc<dyn Provider>) -> Self {
        Self {
            scaling: config.scaling(),
            config,
            provider,
            queue: VecDeque::new(),
            backoff_until: None,
            failures: 0,
            polling: false,
            last_poll: None,
            provider_error: None,
            run_secs: None,
        }
    }
}

/// The channels the interchange's helpers answer on.
#[derive(Debug)]
pub(crate) struct Inbox {
    managers: mpsc::UnboundedReceiver<ManagerEvent>,
    blocks: mpsc::UnboundedReceiver<BlockEvent>,
}

#[derive(Debug)]
pub(crate) struct Interchange {
    executors: Vec<Executor>,
    blocks: BTreeMap<BlockId, Block>,
    next_block: BlockId,
    managers: HashMap<ManagerId, Manager>,
    next_manager: ManagerId,
    tasks: HashMap<TaskId, Held>,
    functions: HashMap<FunctionId, FunctionSpec>,
    pending: Vec<Reported>,
    flush_at: Option<Instant>,
    outbox: Outbox,
    /// The channel of the current connection, from its welcome until it breaks.
    to_service: Option<mpsc::UnboundedSender<String>>,
    heartbeat_period: Duration,
    manager_timeout: Duration,
    max_result_bytes: usize,
    /// The most tasks the service sends at once (the hello's `window`).
    window: u32,
    /// The interchange's `host:port`, as managers dial it.
    address: String,
    metrics: Arc<AgentMetrics>,
    /// When each report batch not acknowledged yet left, for the metrics.
    sent: HashMap<u64, Instant>,
    /// Connections dropped because they did not authenticate.
    rejected_connections: u64,
    manager_events: mpsc::UnboundedSender<ManagerEvent>,
    block_events: mpsc::UnboundedSender<BlockEvent>,
}

impl Interchange {
    /// An interchange for `executors` that takes managers from `listener`; it asks each
    /// executor's provider for its first blocks at once.
    pub(crate) fn start(
        config: &EndpointConfig,
        executors: Vec<Executor>,
        outbox: Outbox,
        listener: Listener,
        metrics: Arc<AgentMetrics>,
    ) -> (Self, Inbox) {
        let (manager_events, managers) = mpsc::unbounded_channel();
        let (block_events, blocks) = mpsc::unbounded_channel();
        let address = listener.address().to_owned();
        listener.spawn(manager_events.clone());
        let mut interchange = Interchange {
            executors,
            blocks: BTreeMap::new(),
            next_block: 1,
            managers: HashMap::new(),
            next_manager: 1,
            tasks: HashMap::new(),
            functions: HashMap::new(),
            pending: Vec::new(),
            flush_at: None,
            outbox,
            to_service: None,
            heartbeat_period: DEFAULT_HEARTBEAT,
            manager_timeout: config.manager_timeout(MANAGER_HEARTBEAT),
            max_result_bytes: config.max_result_bytes,
            window: config.window(),
            address,
            metrics,
            sent: HashMap::new(),
            rejected_connections: 0,
            manager_events,
            block_events,
        };
        for executor in 0..interchange.executors.len() {
            for _ in 0..interchange.executors[executor].scaling.init_blocks {
                interchange.submit_block(executor);
            }
        }
        (interchange, Inbox { managers, blocks })
    }

    /// Runs the loop until `shutdown` completes; reports still pending are flushed first.
    pub(crate) async fn run(
        &mut self,
        mut conn: mpsc::UnboundedReceiver<FromConn>,
        inbox: Inbox,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Inbox {
            managers: mut events,
            blocks: mut block_events,
        } = inbox;
        tokio::pin!(shutdown);
        let mut heartbeat = tokio::time::interval(self.heartbeat_period);
        let mut check = tokio::time::interval(MANAGER_HEARTBEAT);
        // One timer for the whole loop, moved only when the flush deadline changes: a timer
        // made anew on every turn is registered anew with the runtime's clock, and each time
        // that wakes the runtime's poller through a system call (one or two per task at full
        // speed).
        let flush_timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(flush_timer);
        loop {
            if let Some(at) = self.flush_at
                && flush_timer.deadline() != at
            {
                flush_timer.as_mut().reset(at);
            }
            let flushing = self.flush_at.is_some();
            tokio::select! {
                _ = &mut shutdown => {
                    self.flush()?;
                    return Ok(());
                }
                Some(message) = conn.recv() => match message {
                    FromConn::Connected(reply) => {
                        // A task that just ended is no longer held, and its end is in no
                        // batch yet: flushed first, the outbox answers for it in the hello.
                        self.flush()?;
                        let _ = reply.send(self.hello()?);
                    }
                    FromConn::Welcome { heartbeat_period, outgoing } => {
                        self.welcomed(outgoing);
                        if heartbeat_period != self.heartbeat_period {
                            self.heartbeat_period = heartbeat_period;
                            heartbeat = tokio::time::interval(heartbeat_period);
                        }
                        self.send_heartbeat();
                    }
                    FromConn::Message(message) => self.on_service_message(message)?,
                    FromConn::Disconnected => {
                        self.to_service = None;
                        self.metrics.connected.set(0);
                    }
                },
                Some(event) = events.recv() => self.on_manager_event(event),
                Some(event) = block_events.recv() => self.on_block_event(event),
                _ = heartbeat.tick() => self.send_heartbeat(),
                _ = check.tick() => {
                    self.check_managers();
                    self.check_blocks();
                    self.metrics.executors_seen(self.reports());
                }
                () = &mut flush_timer, if flushing => {}
            }
            self.scale();
            self.schedule();
            // Report as soon as nothing else is waiting: alone, a transition leaves at once
            // (a result waits for no timer). Under load, everything that arrives within
            // FLUSH_DELAY leaves in one batch, since each batch costs the service a commit
            // whatever its size: while the interchange is busy, and while tasks wait in a queue
            // for a worker (a result a few milliseconds later then delays nothing).
            let idle = conn.is_empty() && events.is_empty() && block_events.is_empty();
            if (idle && !self.backlogged())
                || self.pending.len() >= FLUSH_SIZE
                || self.flush_at.is_some_and(|at| at <= Instant::now())
            {
                self.flush()?;
            }
        }
    }

    /// Applies a transition to a held task after checking it with the model, and queues it
    /// for the service. Returns the attempt it was applied to.
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
            // Under load, a batch gathers for at most FLUSH_DELAY; an idle interchange flushes
            // at once.
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

    /// Whether tasks wait for a worker in some executor's queue.
    fn backlogged(&self) -> bool {
        self.executors.iter().any(|e| !e.queue.is_empty())
    }

    /// Reports queued transitions as one durable batch.
    fn flush(&mut self) -> anyhow::Result<()> {
        self.flush_at = None;
        if self.pending.is_empty() {
            return Ok(());
        }
        self.sent.insert(self.outbox.next_batch(), Instant::now());
        let text = self.outbox.push(std::mem::take(&mut self.pending))?;
        if let Some(to_service) = &self.to_service {
            let _ = to_service.send(text);
        }
        Ok(())
    }

    /// The service welcomed a new connection: it gets every unacknowledged batch, oldest first,
    /// before any report written after this moment. The replay is taken here, not when the
    /// connection opened, because the interchange goes on reporting while the service
    /// reconciles: a batch written in between would otherwise reach it only after newer ones,
    /// whose transitions it would then refuse.
    fn welcomed(&mut self, outgoing: mpsc::UnboundedSender<String>) {
        let replay = self.outbox.pending();
        tracing::info!(batches = replay.len(), "connected to the service");
        for text in replay {
            let _ = outgoing.send(text);
        }
        self.to_service = Some(outgoing);
        self.metrics.connected.set(1);
    }

    fn on_service_message(&mut self, message: ToEndpoint) -> anyhow::Result<()> {
        match message {
            ToEndpoint::Tasks { functions, tasks } => {
                // What is gathered so far leaves first, so that the reports of a task's new
                // run never share a batch with the end of its previous one (see `Held`).
                self.flush()?;
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
                if let Some(sent) = self.sent.remove(&batch) {
                    self.metrics
                        .report_seconds
                        .observe(sent.elapsed().as_secs_f64());
                }
                for r in rejected {
                    tracing::warn!(task = %r.task_id, state = %r.state, message = %r.message, "the service refused a transition");
                    // The service knows better: stop working on this run of the task (the
                    // service sends it again). A refusal of an earlier run's report, sent
                    // before the task came back, leaves this run alone.
                    if self
                        .tasks
                        .get(&r.task_id)
                        .is_some_and(|t| t.view.attempt == r.attempt && t.first_batch <= batch)
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
        Ok(())
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

    /// Tasks whose manager is gone: those it never accepted go back to the front of their
    /// queue; the others are retried (or failed, with no retry left) by the model's rule.
    fn retry_all(&mut self, tasks: impl IntoIterator<Item = TaskId>, reason: &str) {
        let at = crate::now();
        for task in tasks {
            let Some(held) = self.tasks.get_mut(&task) else {
                continue;
            };
            if held.view.state == State::WaitingForNodes {
                held.place = Place::Queued;
                self.executors[held.executor].queue.push_front(task);
                continue;
            }
            if let Err(error) = self.retry(task, at, reason.to_owned()) {
                tracing::warn!(%error, task = %task, "cannot retry a task of a lost manager");
            }
        }
    }

    fn retry_or_warn(&mut self, task: TaskId, reason: String) {
        self.retry_all([task], &reason);
    }
}
