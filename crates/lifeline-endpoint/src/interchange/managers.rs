//! Managers: starting them through their executor's provider, the pumps that carry lines to and
//! from them, what their lines mean for the tasks they run, and replacing one that dies or goes
//! silent (its tasks are retried by the model's rule).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use lifeline_model::{Actor, State, TaskId};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Held, Interchange, Place};
use crate::node::{FromManager, Outcome, ToManager};
use crate::provider::NodeSpec;

/// How often managers report; their silence for [`crate::config::EndpointConfig::manager_timeout`]
/// loses them.
pub(super) const MANAGER_HEARTBEAT: Duration = Duration::from_secs(1);

pub(super) type ManagerId = u64;

#[derive(Debug)]
pub(super) struct Manager {
    pub(super) executor: usize,
    pub(super) workers: usize,
    stdin: mpsc::UnboundedSender<String>,
    pub(super) tasks: HashSet<TaskId>,
    pub(super) busy: u32,
    last_heard: Instant,
    child: Child,
}

/// Messages from manager reader tasks.
#[derive(Debug)]
pub(crate) enum ManagerEvent {
    Line(ManagerId, String),
    Exited(ManagerId, String),
}

impl Interchange {
    pub(super) fn tell(&self, manager: ManagerId, message: &ToManager) {
        if let Some(m) = self.managers.get(&manager)
            && let Ok(text) = serde_json::to_string(message)
        {
            let _ = m.stdin.send(text);
        }
    }

    pub(super) fn on_manager_line(&mut self, id: ManagerId, line: &str) {
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

    pub(super) fn start_manager(&mut self, executor: usize) {
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
    pub(super) fn check_managers(&mut self) {
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
    pub(super) fn manager_lost(&mut self, id: ManagerId, reason: &str) {
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

    /// Stops every manager (the agent is shutting down).
    pub(crate) fn stop_managers(&mut self) {
        for (_, mut m) in self.managers.drain() {
            let _ = m.child.start_kill();
        }
    }
}
