//! Blocks: allocations asked of an executor's provider (one Slurm job, one local process), each
//! with its own secret that its managers must present. This file submits them, follows them
//! with batched status polls, scales them between `min_blocks` and `max_blocks` as tasks wait
//! for nodes, releases idle ones, and retries the tasks of a block that ends under them.
//!
//! A block that ends while its managers run tasks is a system failure for each task: back to
//! waiting-for-nodes with attempt + 1 and a reason naming the job and the scheduler's state.
//! When a manager's connection drops first, its tasks wait (at most [`ORPHAN_GRACE`]) for the
//! next status poll to say why, so that the reason is the scheduler's, not a guess.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use lifeline_model::{BlockReport, BlockState, TaskId, Timestamp};
use tokio::time::Instant;

use super::{Interchange, ManagerId};
use crate::provider::{BlockLaunch, JobStatus};

pub(super) type BlockId = u64;

/// How often the scheduler is asked about live blocks.
const STATUS_INTERVAL: Duration = Duration::from_secs(2);
/// How long the tasks of a manager whose connection dropped wait to learn why.
const ORPHAN_GRACE: Duration = Duration::from_secs(5);
/// A job the scheduler does not list this long after its submission has ended.
const FORGOTTEN_AFTER: Duration = Duration::from_secs(10);
/// Ended blocks kept in the report, per executor.
const ENDED_KEPT: usize = 8;
/// Longest wait between two submissions after failed ones.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What providers answer, through tasks the interchange spawns.
#[derive(Debug)]
pub(crate) enum BlockEvent {
    Submitted {
        block: BlockId,
        result: Result<String, String>,
    },
    Status {
        executor: usize,
        result: Result<HashMap<String, JobStatus>, String>,
    },
}

#[derive(Debug)]
pub(super) struct Block {
    pub(super) executor: usize,
    secret: String,
    job_id: Option<String>,
    pub(super) state: BlockState,
    reason: Option<String>,
    nodes: u32,
    submitted: Instant,
    submitted_at: Timestamp,
    /// When it started running (its first manager connected, or the scheduler said so).
    started: Option<(Instant, Timestamp)>,
    /// Since when none of its managers has held a task.
    idle_since: Instant,
    pub(super) managers: HashSet<ManagerId>,
    /// Tasks of managers whose connection dropped, waiting to learn why; and until when.
    orphans: Vec<(TaskId, String)>,
    orphans_until: Option<Instant>,
    ended: Option<Instant>,
}

impl Block {
    /// Whether `secret` is this block's, compared in constant time.
    pub(super) fn admits(&self, secret: &str) -> bool {
        let (a, b) = (self.secret.as_bytes(), secret.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    pub(super) fn nodes(&self) -> u32 {
        self.nodes
    }

    /// The block as a task's history names it: `block 3 (slurm job 4567)`.
    pub(super) fn describe(&self, id: BlockId, provider: &str) -> String {
        match &self.job_id {
            Some(job) => format!("block {id} ({provider} job {job})"),
            None => format!("block {id} ({provider}, not submitted yet)"),
        }
    }

    /// A manager of it connected.
    pub(super) fn started(&mut self) {
        if self.state == BlockState::Pending {
            self.state = BlockState::Running;
            self.reason = None;
        }
        if self.started.is_none() {
            self.started = Some((Instant::now(), crate::now()));
        }
    }

    /// Time left before the scheduler ends it; `None` when unlimited.
    pub(super) fn remaining(&self, walltime: Option<Duration>) -> Option<Duration> {
        let walltime = walltime?;
        let since = self.started.map_or(self.submitted, |(at, _)| at);
        Some(walltime.saturating_sub(since.elapsed()))
    }

    /// Keeps the tasks of a manager that dropped until the scheduler says why.
    pub(super) fn orphan(&mut self, tasks: impl IntoIterator<Item = TaskId>, why: String) {
        self.orphans
            .extend(tasks.into_iter().map(|t| (t, why.clone())));
        self.orphans_until
            .get_or_insert(Instant::now() + ORPHAN_GRACE);
    }
}

impl Interchange {
    /// Asks the executor's provider for a new block.
    pub(super) fn submit_block(&mut self, executor: usize) {
        let id = self.next_block;
        self.next_block += 1;
        let e = &self.executors[executor];
        let secret = new_secret();
        let launch = BlockLaunch {
            block_id: id,
            executor: e.config.label.clone(),
            interchange: self.address.clone(),
            secret: secret.clone(),
            workers: e.config.workers_per_node,
            heartbeat_period: super::MANAGER_HEARTBEAT,
            max_result_bytes: self.max_result_bytes,
        };
        self.blocks.insert(
            id,
            Block {
                executor,
                secret,
                job_id: None,
                state: BlockState::Pending,
                reason: None,
                nodes: e.scaling.nodes_per_block,
                submitted: Instant::now(),
                submitted_at: crate::now(),
                started: None,
                idle_since: Instant::now(),
                managers: HashSet::new(),
                orphans: Vec::new(),
                orphans_until: None,
                ended: None,
            },
        );
        let provider = e.provider.clone();
        let events = self.block_events.clone();
        tokio::spawn(async move {
            let result = provider.submit(&launch).await;
            let _ = events.send(BlockEvent::Submitted { block: id, result });
        });
        tracing::info!(block = id, executor = %self.executors[executor].config.label, "asked for a block");
    }

    pub(super) fn on_block_event(&mut self, event: BlockEvent) {
        match event {
            BlockEvent::Submitted { block, result } => {
                let Some(b) = self.blocks.get_mut(&block) else {
                    return;
                };
                let e = &mut self.executors[b.executor];
                match result {
                    Ok(job) => {
                        e.failures = 0;
                        e.backoff_until = None;
                        e.provider_error = None;
                        tracing::info!(block, job = %job, "block submitted");
                        b.job_id = Some(job);
                        if b.state.is_over() {
                            // Released before the scheduler even answered.
                            let executor = b.executor;
                            self.cancel_jobs(executor, vec![block]);
                        }
                    }
                    Err(why) => {
                        e.failures += 1;
                        let wait = (Duration::from_secs(2) * 2u32.saturating_pow(e.failures - 1))
                            .min(MAX_BACKOFF);
                        e.backoff_until = Some(Instant::now() + wait);
                        tracing::warn!(block, reason = %why, "the provider could not start a block");
                        self.block_over(block, BlockState::Failed, Some(why));
                    }
                }
            }
            BlockEvent::Status { executor, result } => {
                self.executors[executor].polling = false;
                match result {
                    Err(why) => {
                        tracing::warn!(executor = %self.executors[executor].config.label, reason = %why, "cannot follow the executor's blocks");
                        self.executors[executor].provider_error = Some(why);
                    }
                    Ok(statuses) => {
                        self.executors[executor].provider_error = None;
                        self.apply_statuses(executor, &statuses);
                    }
                }
            }
        }
    }

    fn apply_statuses(&mut self, executor: usize, statuses: &HashMap<String, JobStatus>) {
        let live: Vec<BlockId> = self
            .blocks
            .iter()
            .filter(|(_, b)| b.executor == executor && !b.state.is_over() && b.job_id.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in live {
            let Some(b) = self.blocks.get_mut(&id) else {
                continue;
            };
            let job = b.job_id.clone().unwrap_or_default();
            match statuses.get(&job) {
                Some(status) if status.state.is_over() => {
                    self.block_over(id, status.state, status.reason.clone());
                }
                Some(status) => {
                    if status.state == BlockState::Running {
                        b.started();
                    } else if b.managers.is_empty() {
                        b.reason = status.reason.clone();
                    }
                }
                None if b.submitted.elapsed() > FORGOTTEN_AFTER => {
                    let reason = Some("no longer known to the scheduler".to_owned());
                    self.block_over(id, BlockState::Completed, reason);
                }
                None => {}
            }
        }
    }

    /// A block ended: whatever its managers still held is retried, naming why.
    pub(super) fn block_over(&mut self, id: BlockId, state: BlockState, reason: Option<String>) {
        let Some(b) = self.blocks.get_mut(&id) else {
            return;
        };
        if b.state.is_over() {
            return;
        }
        b.state = state;
        b.reason = reason;
        b.ended = Some(Instant::now());
        let provider = self.executors[b.executor].provider.name();
        let why = match &b.reason {
            // Slurm's reason often only repeats the state (`CANCELLED`).
            Some(r) if !r.eq_ignore_ascii_case(state.wire()) => {
                format!("{} ended: {state}: {r}", b.describe(id, provider))
            }
            _ => format!("{} ended: {state}", b.describe(id, provider)),
        };
        tracing::info!(block = id, %why, "block over");
        let orphans: Vec<TaskId> = b.orphans.drain(..).map(|(t, _)| t).collect();
        b.orphans_until = None;
        let managers: Vec<ManagerId> = b.managers.drain().collect();
        let mut lost = orphans;
        for m in managers {
            if let Some(manager) = self.managers.remove(&m) {
                lost.extend(manager.tasks);
            }
        }
        self.retry_all(lost, &why);
        self.keep_few_ended(self.blocks[&id].executor);
    }

    /// Drops the oldest ended blocks of an executor beyond [`ENDED_KEPT`].
    fn keep_few_ended(&mut self, executor: usize) {
        let mut ended: Vec<(Instant, BlockId)> = self
            .blocks
            .iter()
            .filter(|(_, b)| b.executor == executor)
            .filter_map(|(id, b)| b.ended.map(|at| (at, *id)))
            .collect();
        if ended.len() > ENDED_KEPT {
            ended.sort();
            for (_, id) in &ended[..ended.len() - ENDED_KEPT] {
                self.blocks.remove(id);
            }
        }
    }

    /// Every second: status polls, and orphans whose grace is over.
    pub(super) fn check_blocks(&mut self) {
        let now = Instant::now();
        let expired: Vec<BlockId> = self
            .blocks
            .iter()
            .filter(|(_, b)| b.orphans_until.is_some_and(|until| until <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let Some(b) = self.blocks.get_mut(&id) else {
                continue;
            };
            b.orphans_until = None;
            let orphans = std::mem::take(&mut b.orphans);
            for (task, why) in orphans {
                self.retry_or_warn(task, why);
            }
        }
        for executor in 0..self.executors.len() {
            let e = &self.executors[executor];
            let waiting = self
                .blocks
                .values()
                .any(|b| b.executor == executor && b.orphans_until.is_some());
            let due = e.last_poll.is_none_or(|at| at.elapsed() >= STATUS_INTERVAL);
            if !e.polling && (due || waiting) {
                self.poll(executor);
            }
        }
    }

    /// The scheduler's ids of the executor's live blocks.
    fn live_jobs(&self, executor: usize) -> Vec<String> {
        self.blocks
            .values()
            .filter(|b| b.executor == executor && !b.state.is_over())
            .filter_map(|b| b.job_id.clone())
            .collect()
    }

    /// Asks the provider about the executor's live blocks.
    pub(super) fn poll(&mut self, executor: usize) {
        let jobs = self.live_jobs(executor);
        let e = &mut self.executors[executor];
        e.last_poll = Some(Instant::now());
        if jobs.is_empty() || e.polling {
            return;
        }
        e.polling = true;
        let provider = e.provider.clone();
        let events = self.block_events.clone();
        tokio::spawn(async move {
            let result = provider.status(&jobs).await;
            let _ = events.send(BlockEvent::Status { executor, result });
        });
    }

    /// Ends blocks by the agent's decision (released when idle, or broken): they are over at
    /// once, and the provider is asked to cancel their jobs.
    pub(super) fn end_blocks(
        &mut self,
        executor: usize,
        ids: Vec<BlockId>,
        state: BlockState,
        reason: &str,
    ) {
        for id in &ids {
            self.block_over(*id, state, Some(reason.to_owned()));
        }
        self.cancel_jobs(executor, ids);
    }

    fn cancel_jobs(&mut self, executor: usize, ids: Vec<BlockId>) {
        let jobs: Vec<String> = ids
            .iter()
            .filter_map(|id| self.blocks.get(id).and_then(|b| b.job_id.clone()))
            .collect();
        if jobs.is_empty() {
            return;
        }
        let provider = self.executors[executor].provider.clone();
        tokio::spawn(async move {
            if let Err(why) = provider.cancel(&jobs).await {
                tracing::warn!(reason = %why, ?jobs, "cannot cancel blocks");
            }
        });
    }

    /// Keeps each executor's blocks between its minimum and maximum: more when tasks wait for
    /// nodes beyond what live blocks will hold, fewer when blocks stay idle.
    pub(super) fn scale(&mut self) {
        for executor in 0..self.executors.len() {
            let e = &self.executors[executor];
            let scaling = e.scaling;
            let per_block = (scaling.nodes_per_block as usize * e.config.workers_per_node).max(1);
            let mut live = 0u32;
            let mut idle = Vec::new();
            let idle_timeout = scaling.idle_timeout;
            for (id, b) in self.blocks.iter_mut() {
                if b.executor != executor || b.state.is_over() {
                    continue;
                }
                live += 1;
                let busy = b
                    .managers
                    .iter()
                    .any(|m| self.managers.get(m).is_some_and(|m| !m.tasks.is_empty()));
                if busy || b.state == BlockState::Pending {
                    b.idle_since = Instant::now();
                } else if idle_timeout.is_some_and(|t| b.idle_since.elapsed() >= t) {
                    idle.push(*id);
                }
            }
            let placed: usize = self
                .managers
                .values()
                .filter(|m| m.executor == executor)
                .map(|m| m.tasks.len())
                .sum();
            let queued = e.queue.len();
            let demand = queued + placed;
            let supply = live as usize * per_block;
            let backing_off = e.backoff_until.is_some_and(|until| until > Instant::now());
            let mut wanted = scaling.min_blocks.saturating_sub(live);
            if demand > supply {
                let more = (demand - supply).div_ceil(per_block) as u32;
                wanted = wanted.max(more.min(scaling.max_blocks.saturating_sub(live)));
            }
            if !backing_off {
                for _ in 0..wanted {
                    self.submit_block(executor);
                }
            }
            if wanted == 0 && queued == 0 && !idle.is_empty() {
                let spare = live.saturating_sub(scaling.min_blocks) as usize;
                idle.truncate(spare);
                if !idle.is_empty() {
                    let secs = idle_timeout.unwrap_or_default().as_secs();
                    let reason = format!("released after {secs} s without a task");
                    self.end_blocks(executor, idle, BlockState::Completed, &reason);
                }
            }
        }
    }

    /// The executor's blocks for its report: the live ones and the last few that ended.
    pub(super) fn block_reports(&self, executor: usize) -> Vec<BlockReport> {
        let walltime = self.executors[executor].scaling.block_walltime;
        self.blocks
            .iter()
            .filter(|(_, b)| b.executor == executor)
            .map(|(id, b)| BlockReport {
                block_id: *id,
                job_id: b.job_id.clone(),
                state: b.state,
                reason: b.reason.clone(),
                nodes: b.nodes,
                managers: b.managers.len() as u32,
                submitted_at: b.submitted_at,
                started_at: b.started.map(|(_, at)| at),
                walltime_secs: walltime.map(|w| w.as_secs()),
                tasks: b
                    .managers
                    .iter()
                    .filter_map(|m| self.managers.get(m))
                    .map(|m| m.tasks.len() as u32)
                    .sum(),
            })
            .collect()
    }

    /// Cancels every live block (the agent is stopping), waiting a little for the provider.
    pub(crate) async fn stop_blocks(&mut self) {
        let mut calls = Vec::new();
        for (executor, e) in self.executors.iter().enumerate() {
            let jobs = self.live_jobs(executor);
            if !jobs.is_empty() {
                let provider = e.provider.clone();
                calls.push(async move { provider.cancel(&jobs).await });
            }
        }
        for call in calls {
            if let Ok(Err(why)) = tokio::time::timeout(Duration::from_secs(10), call).await {
                tracing::warn!(reason = %why, "cannot cancel the blocks");
            }
        }
    }
}

/// A block's secret: 128 random bits, hex.
fn new_secret() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}
