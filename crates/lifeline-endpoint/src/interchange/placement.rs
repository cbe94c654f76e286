//! Placement: which executor takes a task the service sends, and which manager runs it.
//!
//! A task goes to the least loaded executor (queued and placed tasks per worker), then to the
//! manager of that executor with the fewest tasks. A manager takes up to its workers plus the
//! executor's `prefetch` (by default as many again), so that the next task already waits next
//! to a worker when one frees up.

use std::time::Duration;

use lifeline_model::{Actor, State, TaskView};
use lifeline_protocol::Assignment;
use serde_json::value::RawValue;

use super::{Held, Interchange, Place};
use crate::node::{RunTask, ToManager};

impl Interchange {
    /// A task from the service: acknowledge it (waiting-for-nodes) and queue it on the least
    /// loaded executor.
    pub(super) fn accept(&mut self, assignment: Assignment) {
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
        let executor = self.least_loaded_executor();
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
                first_batch: self.outbox.next_batch(),
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

    /// The executor with the fewest tasks (queued or placed) per worker.
    fn least_loaded_executor(&self) -> usize {
        (0..self.executors.len())
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
            .unwrap_or(0)
    }

    /// Places queued tasks on managers with spare capacity. A manager takes up to its workers
    /// plus `prefetch`: the extra tasks wait for a worker (waiting-for-launch) right next to it.
    pub(super) fn schedule(&mut self) {
        for e in 0..self.executors.len() {
            while let Some(&id) = self.executors[e].queue.front() {
                // A block whose walltime ends before the task's could would cut it short.
                let needs = self.executors[e]
                    .config
                    .walltime_secs
                    .map(Duration::from_secs_f64);
                let walltime = self.executors[e].scaling.block_walltime;
                let blocks = &self.blocks;
                let lasts = |block: &u64| {
                    let Some(needs) = needs else { return true };
                    blocks
                        .get(block)
                        .and_then(|b| b.remaining(walltime))
                        .is_none_or(|left| left >= needs)
                };
                let prefetch = self.executors[e].config.prefetch;
                let target = self
                    .managers
                    .iter()
                    .filter(|(_, m)| {
                        m.executor == e && m.tasks.len() < m.workers + prefetch.unwrap_or(m.workers)
                    })
                    .filter(|(_, m)| lasts(&m.block))
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
}
