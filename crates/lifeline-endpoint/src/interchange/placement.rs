//! Placement: which executor takes a task the service sends, and which manager runs it.
//!
//! A task goes to the least loaded executor (queued and placed tasks per worker), then to the
//! manager of that executor with the fewest tasks. A manager takes up to its workers plus the
//! executor's `prefetch`, so that the next task already waits next to a worker when one frees
//! up. Without a `prefetch` in the configuration, a manager holds as many again as its workers,
//! or more while the executor's tasks run shorter than a refill takes (see [`auto_prefetch`]).

use std::time::Duration;

use lifeline_model::{Actor, State, TaskView};
use lifeline_protocol::Assignment;
use serde_json::value::RawValue;

use super::{Held, Interchange, Place};
use crate::node::{RunTask, ToManager};

/// About how long it takes a manager, once a task of its ends, to be sent the next: its report
/// to the interchange and the interchange's answer. Measured against the no-op benchmark, 1 ms
/// deepens the prefetch for Python no-ops (about 0.2 ms each: 14 to 27 tasks beyond 4 workers)
/// and leaves it as it was for a started program (about 1 ms); 2 ms and 4 ms also deepened it for
/// programs, which cost them 3 to 5 % of their throughput on a saturated machine.
const REFILL_SECS: f64 = 0.001;

/// The deepest a manager's automatic prefetch goes (unless it has more workers than this).
const AUTO_PREFETCH_MAX: usize = 64;

/// Tasks a manager of `workers` holds beyond them when its executor sets no `prefetch`: as
/// many as its workers, or, while the executor's tasks run for `run_secs` (the longest seen
/// lately) and that is shorter than a refill takes, enough to keep every worker busy through
/// one refill, up to [`AUTO_PREFETCH_MAX`]. A node's backlog so never lasts much longer than a
/// refill: the depth that keeps workers busy with tiny tasks does not hold long tasks back from
/// a node that frees up sooner.
fn auto_prefetch(workers: usize, run_secs: Option<f64>) -> usize {
    let Some(run) = run_secs else {
        return workers;
    };
    let needed = (workers as f64 * REFILL_SECS / run.max(1e-6)).ceil();
    // A float cast saturates: an absurd ratio is the cap, not a wrap.
    (needed as usize).clamp(workers, deepest_auto_prefetch(workers))
}

/// The most a manager of `workers` holds beyond them when its executor sets no `prefetch`.
pub(crate) fn deepest_auto_prefetch(workers: usize) -> usize {
    workers.max(AUTO_PREFETCH_MAX)
}

/// Folds a task's run into an executor's estimate: a longer run counts at once, a shorter one
/// pulls the estimate down a tenth of the way, so that a single quick task among long ones
/// does not deepen the prefetch, while a stream of quick ones soon does.
pub(super) fn observe_run(estimate: &mut Option<f64>, secs: f64) {
    if !secs.is_finite() {
        return;
    }
    let secs = secs.max(0.0);
    *estimate = Some(match *estimate {
        Some(e) if secs < e => e + (secs - e) * 0.1,
        _ => secs,
    });
}

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
    /// plus its prefetch: the extra tasks wait for a worker (waiting-for-launch) right next to
    /// it.
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
                let run_secs = self.executors[e].run_secs;
                let target = self
                    .managers
                    .iter()
                    .filter(|(_, m)| {
                        let extra = prefetch.unwrap_or_else(|| auto_prefetch(m.workers, run_secs));
                        m.executor == e && m.tasks.len() < m.workers + extra
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefetch_deepens_only_for_tasks_shorter_than_a_refill() {
        assert_eq!(
            auto_prefetch(4, None),
            4,
            "as many as the workers until a task ends"
        );
        assert_eq!(auto_prefetch(4, Some(1.0)), 4, "long tasks");
        assert_eq!(
            auto_prefetch(4, Some(REFILL_SECS)),
            4,
            "tasks as long as a refill"
        );
        assert_eq!(auto_prefetch(4, Some(REFILL_SECS / 4.0)), 16);
        assert_eq!(auto_prefetch(4, Some(0.000_2)), 20, "no-op tasks");
        assert_eq!(auto_prefetch(4, Some(0.000_01)), AUTO_PREFETCH_MAX);
        assert_eq!(auto_prefetch(4, Some(0.0)), AUTO_PREFETCH_MAX);
        assert_eq!(
            auto_prefetch(128, Some(0.0)),
            128,
            "never below the workers"
        );
    }

    #[test]
    fn a_long_run_counts_at_once_and_short_ones_pull_down_gradually() {
        let mut estimate = None;
        observe_run(&mut estimate, 0.000_2);
        assert_eq!(estimate, Some(0.000_2));
        observe_run(&mut estimate, 2.0);
        assert_eq!(estimate, Some(2.0), "a long task deepens nothing");
        observe_run(&mut estimate, 0.000_2);
        assert!(estimate.is_some_and(|e| e > 1.7), "{estimate:?}");
        for _ in 0..100 {
            observe_run(&mut estimate, 0.000_2);
        }
        assert!(estimate.is_some_and(|e| e < 0.001), "{estimate:?}");
        observe_run(&mut estimate, f64::NAN);
        observe_run(&mut estimate, -1.0);
        assert!(
            estimate.is_some_and(|e| (0.0..0.001).contains(&e)),
            "{estimate:?}"
        );
    }
}
