//! A task's transition log, and the status document derived by folding it.
//!
//! The log is the truth: a task's state, attempt, completion time and exception text are all
//! computed from it, never stored beside it. [`TaskView::apply`] is the incremental form used by
//! the service and the dashboard as transitions arrive; [`StatusDocument::build`] folds a whole
//! log and checks every step.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{EndpointId, FunctionId, TaskId};
use crate::state::{Actor, State};
use crate::time::Timestamp;
use crate::transition::{Accepted, EdgeKind, TransitionError, validate};

/// One entry of a task's transition log: the state entered, by whom, on which attempt, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TransitionRecord {
    pub state: State,
    pub actor: Actor,
    pub attempt: u32,
    pub at: Timestamp,
    /// Why, when it is worth saying: the system failure behind a retry, the exception behind a
    /// failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TransitionRecord {
    /// The first entry of every log: the web service accepted the task.
    pub fn received(at: Timestamp) -> Self {
        Self {
            state: State::Received,
            actor: Actor::WebService,
            attempt: 1,
            at,
            reason: None,
        }
    }
}

/// What a task is, apart from its log.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMeta {
    pub task_id: TaskId,
    pub endpoint_id: EndpointId,
    pub function_id: FunctionId,
    pub max_retries: u32,
}

/// Where a task stands, folded from its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskView {
    pub state: State,
    pub attempt: u32,
    pub max_retries: u32,
    /// When the task entered its current state.
    pub since: Timestamp,
}

impl TaskView {
    /// A task just received by the web service.
    pub fn received(at: Timestamp, max_retries: u32) -> Self {
        Self {
            state: State::Received,
            attempt: 1,
            max_retries,
            since: at,
        }
    }

    /// Validates `record` as the task's next transition and, if it is legal, applies it.
    pub fn apply(&mut self, record: &TransitionRecord) -> Result<Accepted, TransitionError> {
        let accepted = validate(
            self.state,
            record.state,
            record.actor,
            self.attempt,
            self.max_retries,
        )?;
        if accepted.attempt != record.attempt {
            return Err(TransitionError::AttemptMismatch {
                state: record.state,
                expected: accepted.attempt,
                got: record.attempt,
            });
        }
        self.state = record.state;
        self.attempt = accepted.attempt;
        self.since = record.at;
        Ok(accepted)
    }
}

/// Why a log does not fold into a status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoldError {
    /// A log must start with `received` by the web service on attempt 1.
    BadStart,
    /// Entry `index` is not a legal transition from the entries before it.
    Illegal {
        index: usize,
        error: TransitionError,
    },
}

impl fmt::Display for FoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FoldError::BadStart => {
                f.write_str("a task's log must start with received, by web-service, on attempt 1")
            }
            FoldError::Illegal { index, error } => write!(f, "log entry {index}: {error}"),
        }
    }
}

impl std::error::Error for FoldError {}

/// The answer to "what is my task doing?": funcX's `{pending, status, result | exception,
/// completion_t}` plus the details Lifeline keeps. `R` is the result's JSON representation, left
/// to the caller so that this crate stays free of a JSON library.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "StatusDocument", bound = ""))]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
pub struct StatusDocument<R> {
    pub task_id: TaskId,
    pub pending: bool,
    pub status: State,
    /// The function's return value, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<serde_json::Value>"))]
    pub result: Option<R>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// When the task finished, as epoch seconds in a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_t: Option<String>,
    pub details: StatusDetails,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StatusDetails {
    pub endpoint_id: EndpointId,
    pub function_id: FunctionId,
    pub attempt: u32,
    pub max_retries: u32,
    pub task_transitions: Vec<TransitionRecord>,
}

impl<R> StatusDocument<R> {
    /// Folds `log`, checking every transition, into the task's status document. `result` is
    /// shown only when the task succeeded.
    pub fn build(
        meta: TaskMeta,
        log: Vec<TransitionRecord>,
        result: Option<R>,
    ) -> Result<Self, FoldError> {
        let view = fold(&log, meta.max_retries)?;
        let finished = view.state.is_terminal();
        let exception = (view.state == State::Failed).then(|| exception_text(&log));
        Ok(Self {
            task_id: meta.task_id,
            pending: !finished,
            status: view.state,
            result: if view.state == State::Success {
                result
            } else {
                None
            },
            exception,
            completion_t: finished.then(|| view.since.to_epoch_string()),
            details: StatusDetails {
                endpoint_id: meta.endpoint_id,
                function_id: meta.function_id,
                attempt: view.attempt,
                max_retries: meta.max_retries,
                task_transitions: log,
            },
        })
    }
}

/// Folds a whole log into the task's current view, checking every transition.
pub fn fold(log: &[TransitionRecord], max_retries: u32) -> Result<TaskView, FoldError> {
    let (first, rest) = log.split_first().ok_or(FoldError::BadStart)?;
    if first.state != State::Received || first.actor != Actor::WebService || first.attempt != 1 {
        return Err(FoldError::BadStart);
    }
    let mut view = TaskView::received(first.at, max_retries);
    for (i, record) in rest.iter().enumerate() {
        view.apply(record).map_err(|error| FoldError::Illegal {
            index: i + 1,
            error,
        })?;
    }
    Ok(view)
}

/// The exception of a failed task: the final failure's reason, preceded by the system failure
/// of every earlier attempt when there were retries.
fn exception_text(log: &[TransitionRecord]) -> String {
    let mut failures: Vec<(u32, &str)> = Vec::new();
    let mut previous = State::Received;
    for record in log {
        if let Some(edge) = crate::transition::Edge::find(previous, record.state) {
            let failed_attempt = match edge.kind {
                EdgeKind::Retry => Some(record.attempt - 1),
                EdgeKind::Fail => Some(record.attempt),
                EdgeKind::Forward | EdgeKind::Requeue | EdgeKind::Cancel => None,
            };
            if let Some(attempt) = failed_attempt {
                failures.push((
                    attempt,
                    record.reason.as_deref().unwrap_or("no reason given"),
                ));
            }
        }
        previous = record.state;
    }
    match failures.as_slice() {
        [(_, only)] => (*only).to_owned(),
        all => {
            let mut text = format!("failed after {} attempts", all.len());
            for (attempt, reason) in all {
                text.push_str(&format!("\n\n--- attempt {attempt} ---\n{reason}"));
            }
            text
        }
    }
}
