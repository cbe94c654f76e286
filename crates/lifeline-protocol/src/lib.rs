//! The messages Lifeline's service and its endpoint agents exchange over the endpoint's
//! WebSocket, and the function definitions both sides understand.
//!
//! Every message is one JSON text frame holding an object with a single key, the message's kind
//! (`{"report": {...}}`); the service sends [`ToEndpoint`], the agent sends [`FromEndpoint`]. This
//! external tagging lets task arguments and results pass through as raw JSON, unparsed. Transitions travel in batches with the time the agent saw them,
//! and each report batch is acknowledged once it is stored, so an agent knows which results it may
//! forget.

pub use lifeline_model::api::{FunctionKind, FunctionSpec};
use lifeline_model::{Actor, EndpointReport, FunctionId, State, TaskId, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A function sent along with the first batch of tasks that needs it on a connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FunctionDef {
    pub function_id: FunctionId,
    #[serde(flatten)]
    pub spec: FunctionSpec,
}

/// One task for the endpoint to run, on the given attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Assignment {
    pub task_id: TaskId,
    pub function_id: FunctionId,
    pub attempt: u32,
    pub max_retries: u32,
    /// A JSON array.
    pub args: Box<RawValue>,
    /// A JSON object.
    pub kwargs: Box<RawValue>,
}

/// A transition the service refused, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub task_id: TaskId,
    pub state: State,
    pub attempt: u32,
    pub message: String,
}

/// Service → endpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToEndpoint {
    /// The answer to hello: the connection is registered and tasks may follow. The agent sends
    /// heartbeats every `heartbeat_period_secs`.
    Welcome { heartbeat_period_secs: f64 },
    /// Tasks to run; `functions` defines those not sent before on this connection.
    Tasks {
        functions: Vec<FunctionDef>,
        tasks: Vec<Assignment>,
    },
    /// Stop these tasks: drop them if queued, kill them if running.
    Cancel { task_ids: Vec<TaskId> },
    /// Report `batch` is stored (minus the rejected transitions); its results may be forgotten.
    Ack {
        batch: u64,
        rejected: Vec<Rejection>,
    },
    /// A frame the service could not understand. Nothing was stored from it.
    Error { message: String },
}

/// One transition seen at the endpoint, with the time it happened there.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reported {
    pub task_id: TaskId,
    pub state: State,
    pub actor: Actor,
    /// The task's attempt after the transition.
    pub attempt: u32,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The function's return value, with `success`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
}

/// Endpoint → service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FromEndpoint {
    /// The first message of every connection: the tasks the agent still holds. The service
    /// retries the endpoint's unfinished tasks missing from it (an agent that restarted lost
    /// them), and dispatches nothing before it. `window` is the most tasks the agent takes at
    /// once (sent and not finished); the service keeps the rest waiting (`waiting-for-ep`) and
    /// sends them as earlier ones finish. No window: no bound.
    Hello {
        tasks: Vec<TaskId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<u32>,
    },
    /// Transitions in the order they happened; acknowledged by [`ToEndpoint::Ack`] with the
    /// same `batch`.
    Report {
        batch: u64,
        transitions: Vec<Reported>,
    },
    /// Sent every heartbeat period: one report per executor.
    Heartbeat { report: EndpointReport },
}
