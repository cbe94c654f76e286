//! JSON shapes of the service's API that the dashboard reads back, defined once here so that
//! the service writing them and the dashboard reading them cannot disagree.

use serde::{Deserialize, Serialize};

use crate::ids::{EndpointId, FunctionId, TaskGroupId, TaskId};
use crate::report::{EndpointReport, StateCounts};
use crate::state::State;
use crate::time::Timestamp;

/// A task as the task list shows it: everything but its log, payload and result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskSummary {
    pub task_id: TaskId,
    pub task_group_id: TaskGroupId,
    pub endpoint_id: EndpointId,
    pub function_id: FunctionId,
    pub state: State,
    pub attempt: u32,
    pub max_retries: u32,
    pub created_at: Timestamp,
    /// When the task entered its current state.
    pub since: Timestamp,
}

/// One page of `GET /v1/tasks`, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskPage {
    pub tasks: Vec<TaskSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Whether an endpoint's heartbeats arrive.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    Online,
    Offline,
}

/// An endpoint as `GET /v1/endpoints` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointSummary {
    pub endpoint_id: EndpointId,
    pub name: String,
    /// `online` or `offline`, from heartbeats (as funcX's endpoint status said it).
    pub status: Presence,
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<Timestamp>,
    /// The last heartbeat's report: one entry per executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<EndpointReport>,
    pub created_at: Timestamp,
    /// The user who registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Whether every user may submit to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
}

/// How many transitions took one edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EdgeCount {
    pub from: State,
    pub to: State,
    pub count: u64,
}

/// Seconds tasks spent in a state before leaving it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DwellSummary {
    pub state: State,
    /// How many tasks left the state.
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

/// `GET /v1/stats`: figures for one or more endpoints (or all), as of event `seq`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StatsSummary {
    /// The last event these figures include: stream events after it to stay current.
    pub seq: u64,
    pub tasks: StateCounts,
    pub total: u64,
    pub pending: u64,
    pub edges: Vec<EdgeCount>,
    pub dwell: Vec<DwellSummary>,
    /// Transitions endpoints reported that the model refused, since the service started.
    pub illegal_reports: u64,
    /// When the moment asked for (`at_seq`, `at`) was: the time of its last event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// The window `edges` and `dwell` cover, in seconds (with `window`); otherwise they count
    /// everything since the beginning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<f64>,
}
