//! What an endpoint says about itself in each heartbeat: one report per executor.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

use crate::state::State;
use crate::time::Timestamp;

/// A count per state. On the wire, an object keyed by state wire value, listing non-zero counts.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StateCounts([u64; State::COUNT]);

impl StateCounts {
    pub fn get(&self, state: State) -> u64 {
        self.0[state.index()]
    }

    pub fn set(&mut self, state: State, count: u64) {
        self.0[state.index()] = count;
    }

    pub fn add(&mut self, state: State, delta: i64) {
        let slot = &mut self.0[state.index()];
        *slot = slot.saturating_add_signed(delta);
    }

    /// Moves one task from `from` to `to`.
    pub fn shift(&mut self, from: State, to: State) {
        self.add(from, -1);
        self.add(to, 1);
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Tasks not yet in a terminal state.
    pub fn pending(&self) -> u64 {
        self.iter()
            .filter(|(s, _)| s.is_pending())
            .map(|(_, n)| n)
            .sum()
    }

    /// `(state, count)` for every state, in [`State::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (State, u64)> + '_ {
        State::ALL.into_iter().map(|s| (s, self.get(s)))
    }

    pub fn merge(&mut self, other: &StateCounts) {
        for (slot, n) in self.0.iter_mut().zip(other.0) {
            *slot += n;
        }
    }
}

impl FromIterator<(State, u64)> for StateCounts {
    fn from_iter<I: IntoIterator<Item = (State, u64)>>(iter: I) -> Self {
        let mut counts = Self::default();
        for (state, n) in iter {
            counts.0[state.index()] += n;
        }
        counts
    }
}

impl Serialize for StateCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = self.0.iter().filter(|&&n| n > 0).count();
        let mut map = serializer.serialize_map(Some(len))?;
        for (state, n) in self.iter().filter(|&(_, n)| n > 0) {
            map.serialize_entry(state.wire(), &n)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for StateCounts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountsVisitor;

        impl<'de> Visitor<'de> for CountsVisitor {
            type Value = StateCounts;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of counts keyed by task state")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StateCounts, A::Error> {
                let mut counts = StateCounts::default();
                while let Some((state, n)) = map.next_entry::<State, u64>()? {
                    counts.set(state, n);
                }
                Ok(counts)
            }
        }

        deserializer.deserialize_map(CountsVisitor)
    }
}

/// One executor's view of its resources and tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExecutorReport {
    /// The executor's label from the endpoint's configuration.
    pub label: String,
    /// The provider that supplies its nodes, such as `local`.
    pub provider: String,
    /// Managers (one per node) currently connected.
    pub managers: u32,
    pub total_workers: u32,
    pub idle_workers: u32,
    pub busy_workers: u32,
    /// Tasks this executor holds, by state.
    pub tasks: StateCounts,
    /// The provider's last failed command (a scheduler that does not answer), until one works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_error: Option<String>,
    /// Its blocks (allocations from the provider): every live one, and the last few that ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<BlockReport>,
}

/// Where a block (one allocation from a provider, such as one Slurm job) is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum BlockState {
    /// Asked for; the scheduler has not started it yet.
    Pending,
    /// Its nodes are allocated (its managers connect, or have connected).
    Running,
    /// It ended on its own or was released when idle.
    Completed,
    /// It could not be submitted, or ended with an error.
    Failed,
    /// Its walltime ran out (or the scheduler preempted it).
    Timeout,
    /// It was cancelled (by the agent, or by someone with `scancel`).
    Cancelled,
}

impl BlockState {
    pub const ALL: [BlockState; 6] = [
        BlockState::Pending,
        BlockState::Running,
        BlockState::Completed,
        BlockState::Failed,
        BlockState::Timeout,
        BlockState::Cancelled,
    ];

    /// The wire value, such as `pending`.
    pub fn wire(self) -> &'static str {
        match self {
            BlockState::Pending => "pending",
            BlockState::Running => "running",
            BlockState::Completed => "completed",
            BlockState::Failed => "failed",
            BlockState::Timeout => "timeout",
            BlockState::Cancelled => "cancelled",
        }
    }

    /// Whether the block is over: no manager of it will ever run a task again.
    pub fn is_over(self) -> bool {
        match self {
            BlockState::Pending | BlockState::Running => false,
            BlockState::Completed
            | BlockState::Failed
            | BlockState::Timeout
            | BlockState::Cancelled => true,
        }
    }
}

impl std::fmt::Display for BlockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.wire())
    }
}

/// One block of an executor, as its endpoint reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BlockReport {
    /// The block's number within its endpoint agent's run, such as `3`.
    pub block_id: u64,
    /// The scheduler's id for it (a Slurm job id, a local process id); absent until submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub state: BlockState,
    /// What the scheduler says about it: why it is pending, why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Nodes it asked for.
    pub nodes: u32,
    /// Managers of it connected now.
    pub managers: u32,
    /// When it was submitted, by the endpoint's clock.
    pub submitted_at: Timestamp,
    /// When its first manager connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// Its walltime in seconds, when the provider limits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walltime_secs: Option<u64>,
    /// Tasks placed on its managers now.
    pub tasks: u32,
}

/// An endpoint's heartbeat report: one entry per executor, never numbers summed across them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointReport {
    /// When the endpoint made the report, by its own clock.
    pub at: Timestamp,
    pub executors: Vec<ExecutorReport>,
    /// Connections to the interchange dropped because they did not authenticate as a manager
    /// of a live block, since the agent started.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected_connections: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl EndpointReport {
    /// Totals over all executors, for a one-line summary.
    pub fn totals(&self) -> ExecutorReport {
        let mut total = ExecutorReport {
            label: "all".into(),
            ..ExecutorReport::default()
        };
        for e in &self.executors {
            total.managers += e.managers;
            total.total_workers += e.total_workers;
            total.idle_workers += e.idle_workers;
            total.busy_workers += e.busy_workers;
            total.tasks.merge(&e.tasks);
        }
        total
    }
}
