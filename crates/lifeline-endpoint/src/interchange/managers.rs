//! Managers: each connects to the interchange's listener and says which block it belongs to
//! with the block's secret; the interchange then keeps a writer and a reader task for it, reads
//! what its lines mean for the tasks it runs, and gives up on one that goes silent (its tasks
//! are retried by the model's rule and its block cancelled, so that a fresh one replaces it).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use lifeline_model::{Actor, BlockState, State, TaskId};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::blocks::BlockId;
use super::{Held, Interchange, Place};
use crate::node::{FromManager, ManagerHello, Outcome, ToManager, write_lines};

/// How often managers report; their silence for [`crate::config::EndpointConfig::manager_timeout`]
/// loses them.
pub(super) const MANAGER_HEARTBEAT: Duration = Duration::from_secs(1);

/// Refused connections logged one by one; after that, one line per hundred.
const REFUSALS_LOGGED: u64 = 10;

pub(super) type ManagerId = u64;

#[derive(Debug)]
pub(super) struct Manager {
    pub(super) executor: usize,
    pub(super) block: BlockId,
    /// The host name it gave.
    node: String,
    pub(super) workers: usize,
    lines: mpsc::UnboundedSender<String>,
    pub(super) tasks: HashSet<TaskId>,
    pub(super) busy: u32,
    last_heard: Instant,
}

/// What the listener and the managers' reader tasks tell the interchange.
#[derive(Debug)]
pub(crate) enum ManagerEvent {
    /// A connection said hello; the interchange decides whether it is a manager of a block.
    Hello {
        hello: ManagerHello,
        stream: TcpStream,
        peer: SocketAddr,
    },
    /// A connection did not say a readable hello in time.
    Refused {
        peer: SocketAddr,
        why: String,
    },
    Line(ManagerId, String),
    Closed(ManagerId, String),
}

impl Interchange {
    pub(super) fn on_manager_event(&mut self, event: ManagerEvent) {
        match event {
            ManagerEvent::Hello {
                hello,
                stream,
                peer,
            } => self.admit(hello, stream, peer),
            ManagerEvent::Refused { peer, why } => self.refuse(peer, &why),
            ManagerEvent::Line(id, line) => self.on_manager_line(id, &line),
            ManagerEvent::Closed(id, why) => self.manager_closed(id, &why),
        }
    }

    fn refuse(&mut self, peer: SocketAddr, why: &str) {
        self.rejected_connections += 1;
        let n = self.rejected_connections;
        if n <= REFUSALS_LOGGED || n.is_multiple_of(100) {
            tracing::warn!(%peer, reason = %why, refused = n, "dropped a connection to the interchange");
        }
    }

    /// A connection that names a live block with its secret becomes one of its managers.
    fn admit(&mut self, hello: ManagerHello, stream: TcpStream, peer: SocketAddr) {
        let Some(block) = self.blocks.get_mut(&hello.block) else {
            return self.refuse(peer, "no such block");
        };
        if !block.admits(&hello.secret) {
            return self.refuse(peer, "wrong block secret");
        }
        if block.state.is_over() {
            return self.refuse(peer, "its block is over");
        }
        if block.managers.len() as u32 >= block.nodes() {
            return self.refuse(peer, "its block has all its managers");
        }
        let id = self.next_manager;
        self.next_manager += 1;
        block.started();
        block.managers.insert(id);
        let executor = block.executor;
        let node: String = hello
            .node
            .chars()
            .filter(|c| !c.is_control())
            .take(253)
            .collect();
        let (reader, writer) = stream.into_split();
        let (lines, outgoing) = mpsc::unbounded_channel::<String>();
        tokio::spawn(write_lines(outgoing, writer));
        let events = self.manager_events.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            let why = loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if events.send(ManagerEvent::Line(id, line)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => break "its connection closed".to_owned(),
                    Err(error) => break format!("its connection failed: {error}"),
                }
            };
            let _ = events.send(ManagerEvent::Closed(id, why));
        });
        tracing::info!(manager = id, block = hello.block, %node, %peer, executor = %self.executors[executor].config.label, "a manager connected");
        let workers = self.executors[executor].config.workers_per_node;
        self.managers.insert(
            id,
            Manager {
                executor,
                block: hello.block,
                node,
                workers,
                lines,
                tasks: HashSet::new(),
                busy: 0,
                last_heard: Instant::now(),
            },
        );
    }

    pub(super) fn tell(&self, manager: ManagerId, message: &ToManager) {
        if let Some(m) = self.managers.get(&manager)
            && let Ok(text) = serde_json::to_string(message)
        {
            let _ = m.lines.send(text);
        }
    }

    /// Where a manager is, as a task's history records it: `executor cpu, manager 3, block 2
    /// (slurm job 4567), node c12`.
    pub(super) fn placement(&self, id: ManagerId) -> String {
        let Some(m) = self.managers.get(&id) else {
            return format!("manager {id}");
        };
        let e = &self.executors[m.executor];
        let block = self
            .blocks
            .get(&m.block)
            .map(|b| b.describe(m.block, e.provider.name()))
            .unwrap_or_else(|| format!("block {}", m.block));
        format!(
            "executor {}, manager {id}, {block}, node {}",
            e.config.label, m.node
        )
    }

    pub(super) fn on_manager_line(&mut self, id: ManagerId, line: &str) {
        let Some(manager) = self.managers.get_mut(&id) else {
            return;
        };
        manager.last_heard = Instant::now();
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
                // Recorded with waiting-for-launch, so that each attempt says where it ran.
                Some(self.placement(id)),
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
                let executor = self.managers.get_mut(&id).map(|m| {
                    m.busy = m.busy.saturating_sub(1);
                    m.executor
                });
                if let (Some(e), Some(task)) = (executor, self.tasks.get(&task_id))
                    && task.view.state == State::Running
                    && matches!(outcome, Outcome::Success { .. } | Outcome::Failed { .. })
                {
                    let secs = at.as_secs_f64() - task.view.since.as_secs_f64();
                    super::placement::observe_run(&mut self.executors[e].run_secs, secs);
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

    /// Declares silent managers lost.
    pub(super) fn check_managers(&mut self) {
        let timeout = self.manager_timeout;
        let silent: Vec<ManagerId> = self
            .managers
            .iter()
            .filter(|(_, m)| m.last_heard.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            let why = format!("no heartbeat for {} s", timeout.as_secs_f64());
            self.manager_lost(id, &why);
        }
    }

    /// A manager went silent: its tasks are retried at once, and its block is cancelled (a
    /// frozen node is not to be trusted with more work); scaling starts a fresh one.
    fn manager_lost(&mut self, id: ManagerId, why: &str) {
        let Some(manager) = self.managers.remove(&id) else {
            return;
        };
        let reason = format!("manager lost: {why} ({})", self.where_was(&manager, id));
        tracing::warn!(manager = id, %reason, "giving up on a manager");
        if let Some(block) = self.blocks.get_mut(&manager.block) {
            block.managers.remove(&id);
        }
        self.retry_all(manager.tasks, &reason);
        self.end_blocks(
            manager.executor,
            vec![manager.block],
            BlockState::Cancelled,
            &format!("manager {id} on node {} stopped answering", manager.node),
        );
    }

    /// A manager's connection closed: usually its block is ending. Its tasks wait for the next
    /// status poll to say why (see `blocks.rs`).
    fn manager_closed(&mut self, id: ManagerId, why: &str) {
        let Some(manager) = self.managers.remove(&id) else {
            return;
        };
        let reason = format!("manager lost: {why} ({})", self.where_was(&manager, id));
        tracing::warn!(manager = id, %reason, "a manager left");
        match self.blocks.get_mut(&manager.block) {
            Some(block) => {
                block.managers.remove(&id);
                block.orphan(manager.tasks, reason);
                self.poll(manager.executor);
            }
            None => self.retry_all(manager.tasks, &reason),
        }
    }

    /// `node c12 of block 2 (slurm job 4567)`.
    fn where_was(&self, manager: &Manager, _id: ManagerId) -> String {
        let provider = self.executors[manager.executor].provider.name();
        let block = self
            .blocks
            .get(&manager.block)
            .map(|b| b.describe(manager.block, provider))
            .unwrap_or_else(|| format!("block {}", manager.block));
        format!("node {} of {block}", manager.node)
    }
}
