//! The live event stream's wire type, shared by the service that sends it and the dashboard that
//! reads it.

use serde::{Deserialize, Serialize};

use crate::ids::{EndpointId, FunctionId, TaskGroupId, TaskId};
use crate::report::EndpointReport;
use crate::state::{Actor, State};
use crate::status::TransitionRecord;
use crate::time::Timestamp;

/// One change, numbered by the service's global, gap-free sequence. A client that has seen
/// event `seq` has seen every event before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Event {
    pub seq: u64,
    #[serde(flatten)]
    pub body: EventBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EventBody {
    Transition(TransitionEvent),
    Endpoint(EndpointStatus),
}

/// A task moved from one state to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TransitionEvent {
    pub task_id: TaskId,
    /// The submission the task belongs to; given with its first event, `received`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_group_id: Option<TaskGroupId>,
    pub endpoint_id: EndpointId,
    pub function_id: FunctionId,
    /// The state the task left; absent for its first entry, `received`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<State>,
    pub to: State,
    pub actor: Actor,
    /// The task's attempt after the transition.
    pub attempt: u32,
    pub max_retries: u32,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TransitionEvent {
    /// The entry this event adds to the task's log.
    pub fn record(&self) -> TransitionRecord {
        TransitionRecord {
            state: self.to,
            actor: self.actor,
            attempt: self.attempt,
            at: self.at,
            reason: self.reason.clone(),
        }
    }
}

/// An endpoint came online, went offline, or sent a heartbeat report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointStatus {
    pub endpoint_id: EndpointId,
    pub name: String,
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<EndpointReport>,
}
