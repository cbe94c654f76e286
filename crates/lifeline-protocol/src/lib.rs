//! The messages Lifeline's service and its endpoint agents exchange over the endpoint's
//! WebSocket, and the function definitions both sides understand.
//!
//! Every message is one JSON text frame holding an object with a single key, the message's kind
//! (`{"report": {...}}`); the service sends [`ToEndpoint`], the agent sends [`FromEndpoint`]. This
//! external tagging lets task arguments and results pass through as raw JSON, unparsed. Transitions travel in batches with the time the agent saw them,
//! and each report batch is acknowledged once it is stored, so an agent knows which results it may
//! forget.

use lifeline_model::{Actor, EndpointReport, FunctionId, State, TaskId, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What a function is: Python source with an entry point, or a shell command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FunctionSpec {
    /// `entrypoint` is called with the task's args and kwargs in a warm `python3` worker.
    Python { source: String, entrypoint: String },
    /// Run by `sh`, with `{name}` placeholders filled from the task's kwargs.
    Shell { command: String },
}

/// The kinds of function, as named on the wire (`"python"`, `"shell"`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FunctionKind {
    Python,
    Shell,
}

impl FunctionSpec {
    /// Builds a function from the fields of a registration, naming what is missing or does
    /// not belong to its kind. The values themselves are for [`FunctionSpec::check`].
    pub fn from_parts(
        kind: FunctionKind,
        source: Option<String>,
        entrypoint: Option<String>,
        command: Option<String>,
    ) -> Result<Self, String> {
        let spec = match (kind, source, entrypoint, command) {
            (FunctionKind::Python, Some(source), Some(entrypoint), None) => {
                FunctionSpec::Python { source, entrypoint }
            }
            (FunctionKind::Python, ..) => {
                return Err(
                    "a python function has `source` and `entrypoint`, and no `command`".into(),
                );
            }
            (FunctionKind::Shell, None, None, Some(command)) => FunctionSpec::Shell { command },
            (FunctionKind::Shell, ..) => {
                return Err(
                    "a shell function has `command`, and no `source` or `entrypoint`".into(),
                );
            }
        };
        Ok(spec)
    }

    /// Checks what serde cannot: non-empty fields, and an entry point that is a Python name.
    pub fn check(&self) -> Result<(), String> {
        match self {
            FunctionSpec::Python { source, entrypoint } => {
                if source.trim().is_empty() {
                    return Err("source is empty".into());
                }
                let mut chars = entrypoint.chars();
                let starts_well = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
                if !starts_well || !chars.all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(format!(
                        "entrypoint {entrypoint:?} is not a Python function name"
                    ));
                }
                Ok(())
            }
            FunctionSpec::Shell { command } if command.trim().is_empty() => {
                Err("command is empty".into())
            }
            FunctionSpec::Shell { .. } => Ok(()),
        }
    }
}

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
    /// them), and dispatches nothing before it.
    Hello { tasks: Vec<TaskId> },
    /// Transitions in the order they happened; acknowledged by [`ToEndpoint::Ack`] with the
    /// same `batch`.
    Report {
        batch: u64,
        transitions: Vec<Reported>,
    },
    /// Sent every heartbeat period: one report per executor.
    Heartbeat { report: EndpointReport },
}
