//! The messages between the interchange and a manager, one JSON object per line on the TCP
//! connection the manager opens to the interchange. The first line is the manager's
//! [`ManagerHello`]; a connection whose hello does not name a live block with its secret is
//! dropped.

use lifeline_model::{FunctionId, TaskId, Timestamp};
use lifeline_protocol::FunctionSpec;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What a manager says first: which block it belongs to, the block's secret, and its node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManagerHello {
    pub(crate) block: u64,
    pub(crate) secret: String,
    /// The node's host name.
    pub(crate) node: String,
}

/// The environment variable that carries a block's secret to its managers (never an argument:
/// process listings show arguments to every user of the machine).
pub(crate) const SECRET_ENV: &str = "LIFELINE_BLOCK_SECRET";

/// A task for a manager to run.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunTask {
    pub(crate) task_id: TaskId,
    pub(crate) attempt: u32,
    pub(crate) function_id: FunctionId,
    pub(crate) function: FunctionSpec,
    pub(crate) args: Box<RawValue>,
    pub(crate) kwargs: Box<RawValue>,
    /// Kill the worker and fail the task after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) walltime_secs: Option<f64>,
}

/// Interchange → manager.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ToManager {
    Run(RunTask),
    /// Stop the task: drop it if queued, SIGTERM then SIGKILL its worker if running.
    Cancel {
        task_id: TaskId,
    },
}

/// How a task ended on a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Outcome {
    /// The function returned; `result` is its JSON value.
    Success {
        result: Box<RawValue>,
    },
    /// The function failed: an exception, a non-zero exit code, a walltime, a result too large.
    Failed {
        reason: String,
    },
    /// The worker died under the task: a system failure, retried.
    Lost {
        reason: String,
    },
    Cancelled,
}

/// Manager → interchange.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FromManager {
    /// The manager took the task (waiting-for-launch).
    Accepted {
        task_id: TaskId,
        attempt: u32,
        at: Timestamp,
    },
    /// A worker started it (running).
    Started {
        task_id: TaskId,
        attempt: u32,
        at: Timestamp,
    },
    Done {
        task_id: TaskId,
        attempt: u32,
        at: Timestamp,
        outcome: Outcome,
    },
    /// Sent every heartbeat period.
    Heartbeat { busy: u32, idle: u32, queued: u32 },
}
