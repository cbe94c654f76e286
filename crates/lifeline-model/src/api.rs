//! Every request and response body of the service's `/v1` HTTP API, defined once: the service
//! writes and reads them, the client crate, the CLI and the dashboard read and write them, and
//! the OpenAPI document is derived from them (with the `schema` feature).
//!
//! Bodies that carry a task's arguments or result are generic over the JSON type `J`: the
//! service passes them through as raw JSON text, clients choose `serde_json::Value` or their own
//! types. The answers the dashboard also reads ([`crate::TaskPage`], [`crate::EndpointSummary`],
//! [`crate::StatsSummary`], [`crate::StatusDocument`], [`crate::Event`]) live beside the types
//! they summarise and are re-exported here.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{EndpointId, FunctionId, TaskGroupId, TaskId};
use crate::state::State;
use crate::status::StatusDetails;
use crate::time::Timestamp;

pub use crate::accounts::{
    AuditEntry, AuditQuery, EndpointShares, MAX_LIFETIME_SECS, NewToken, NewUser, ShareEndpoint,
    StreamTicket, TokenCreated, TokenInfo, TokenListQuery, UserCreated, UserInfo, UserQuotas,
    parse_lifetime, valid_user_name,
};
pub use crate::event::{EndpointStatus, Event, EventBody, TransitionEvent};
pub use crate::status::StatusDocument;
pub use crate::wire::{
    DwellSummary, EdgeCount, EndpointSummary, Presence, StatsSummary, TaskPage, TaskSummary,
};

/// The body of every error answer: a machine-readable code and one sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    /// Such as `invalid_request`, `not_found`, `unauthorized`.
    pub error: String,
    pub message: String,
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    /// Always `ok` when the service answers.
    pub status: String,
    /// The sequence number of the last stored event.
    pub seq: u64,
    /// The service's version, such as `0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The git commit the service was built from (`unknown` outside a git checkout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// Names of endpoints and functions: 1 to 200 characters, not all blank, no control characters.
#[cfg(feature = "schema")]
pub(crate) fn name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
    })
}

/// `POST /v1/endpoints`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterEndpoint {
    #[cfg_attr(feature = "schema", schemars(schema_with = "name_schema"))]
    pub name: String,
}

/// The answer to `POST /v1/endpoints`: the token is shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointRegistered {
    pub endpoint_id: EndpointId,
    pub name: String,
    pub token: String,
}

/// The kinds of function, as named on the wire.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum FunctionKind {
    Python,
    Shell,
}

/// What a function is: Python source with an entry point, or a shell command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FunctionSpec {
    /// `entrypoint` is called with the task's args and kwargs in a warm `python3` worker.
    Python { source: String, entrypoint: String },
    /// Run by `sh`, with `{name}` placeholders filled from the task's kwargs.
    Shell { command: String },
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
        match (kind, source, entrypoint, command) {
            (FunctionKind::Python, Some(source), Some(entrypoint), None) => {
                Ok(FunctionSpec::Python { source, entrypoint })
            }
            (FunctionKind::Python, ..) => {
                Err("a python function has `source` and `entrypoint`, and no `command`".into())
            }
            (FunctionKind::Shell, None, None, Some(command)) => Ok(FunctionSpec::Shell { command }),
            (FunctionKind::Shell, ..) => {
                Err("a shell function has `command`, and no `source` or `entrypoint`".into())
            }
        }
    }

    pub fn kind(&self) -> FunctionKind {
        match self {
            FunctionSpec::Python { .. } => FunctionKind::Python,
            FunctionSpec::Shell { .. } => FunctionKind::Shell,
        }
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

/// `POST /v1/functions`: the name, the kind, and the fields of that kind. Read field by field
/// (not as a tagged enum), so that `kind` must be one of its names and unknown fields are refused.
/// Its schema (one object per kind) is written out in `schema.rs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFunction {
    pub name: String,
    pub kind: FunctionKind,
    /// Python: the source that defines the entry point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Python: the function to call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    /// Shell: the command, with `{name}` placeholders filled from kwargs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl RegisterFunction {
    pub fn new(name: impl Into<String>, spec: FunctionSpec) -> Self {
        let (source, entrypoint, command) = match spec {
            FunctionSpec::Python { source, entrypoint } => (Some(source), Some(entrypoint), None),
            FunctionSpec::Shell { command } => (None, None, Some(command)),
        };
        let kind = if command.is_some() {
            FunctionKind::Shell
        } else {
            FunctionKind::Python
        };
        Self {
            name: name.into(),
            kind,
            source,
            entrypoint,
            command,
        }
    }

    /// The function this registration describes.
    pub fn spec(&self) -> Result<FunctionSpec, String> {
        FunctionSpec::from_parts(
            self.kind,
            self.source.clone(),
            self.entrypoint.clone(),
            self.command.clone(),
        )
    }
}

/// The answer to `POST /v1/functions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FunctionRegistered {
    pub function_id: FunctionId,
}

/// `GET /v1/functions/{id}`. Its spec's fields sit beside the others on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FunctionInfo {
    pub function_id: FunctionId,
    pub name: String,
    #[serde(flatten)]
    pub spec: FunctionSpec,
    pub created_at: Timestamp,
}

/// One call in a submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "TaskSpec", bound = ""))]
#[serde(deny_unknown_fields, bound(deserialize = "J: Deserialize<'de>"))]
pub struct TaskSpec<J> {
    pub function_id: FunctionId,
    /// Positional arguments, a JSON array (default `[]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<serde_json::Value>>"))]
    pub args: Option<J>,
    /// Keyword arguments, a JSON object (default `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")
    )]
    pub kwargs: Option<J>,
}

/// `POST /v1/endpoints/{id}/submit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "SubmitRequest", bound = ""))]
#[serde(deny_unknown_fields, bound(deserialize = "J: Deserialize<'de>"))]
pub struct SubmitRequest<J> {
    /// 1 to `max_batch_tasks` (10,000 by default) calls.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub tasks: Vec<TaskSpec<J>>,
    /// Retries after system failures under a running function (default: the service's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(max = 100)))]
    pub max_retries: Option<u32>,
}

/// The answer to a submission: one id per task, in order, and the submission's group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Submitted {
    pub task_group_id: TaskGroupId,
    pub task_ids: Vec<TaskId>,
}

/// `POST /v1/tasks/batch_status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchStatusRequest {
    /// Up to 10,000 ids; each gets its own answer, malformed ones included.
    #[cfg_attr(feature = "schema", schemars(length(max = 10000)))]
    pub task_ids: Vec<String>,
}

/// One id's answer in a batch status: its status document, or why there is none.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "BatchEntry", bound = ""))]
#[serde(untagged)]
pub enum BatchEntry<R> {
    Status(
        #[cfg_attr(
            feature = "schema",
            schemars(with = "StatusDocument<serde_json::Value>")
        )]
        StatusDocument<R>,
    ),
    Error(ErrorBody),
}

/// The answer to `POST /v1/tasks/batch_status`, keyed by the ids as given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "BatchStatus", bound = ""))]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
pub struct BatchStatus<R> {
    #[cfg_attr(
        feature = "schema",
        schemars(with = "BTreeMap<String, BatchEntry<serde_json::Value>>")
    )]
    pub results: BTreeMap<String, BatchEntry<R>>,
}

/// The query of `GET /v1/tasks`. Lists are comma-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskListQuery {
    /// One endpoint id or several, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    /// One state or several, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Only calls of this function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<FunctionId>"))]
    pub function_id: Option<String>,
    /// Only the tasks of this submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<TaskGroupId>"))]
    pub task_group_id: Option<String>,
    /// Only tasks that took this edge of the life cycle, `FROM>TO` in wire names (such as
    /// `running>success`), newest crossing first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[a-z-]+>[a-z-]+$")))]
    pub edge: Option<String>,
    /// Only tasks that failed or were retried for this cause: a group's `key` from
    /// `GET /v1/failures`, newest failure first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The list as it was right after this event: the tasks that existed then, in the states
    /// they were in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_seq: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 10000)))]
    pub limit: Option<usize>,
    /// Only the caller's own tasks (for admin and endpoint owners, who also see others').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mine: Option<bool>,
}

/// The query of `GET /v1/tasks/{id}` and `POST /v1/tasks/batch_status`: hold the answer until
/// the task (every task asked about) is finished, or this many seconds have passed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds to wait for the end, 0 to 60 (default 0: answer at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 60.0)))]
    pub wait: Option<f64>,
}

/// The longest wait a status request may ask for, in seconds.
pub const MAX_WAIT_SECS: f64 = 60.0;

/// The query of `GET /v1/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Only these endpoints: one id, or several comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    /// Only the caller's own tasks (for admin and endpoint owners, who also see others').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mine: Option<bool>,
    /// The figures as they were right after this event (its sequence number), not now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_seq: Option<u64>,
    /// The figures as they were at this time (epoch seconds), not now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// Edges and stays over this window before the moment (such as `1m`, `15m`, `1h`), instead
    /// of since the beginning; counts stay those of the moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Only the tasks of this submission: their counts and the edges they took (now; not with
    /// `at_seq`, `at` or `window`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_group_id: Option<String>,
}

/// The query of `GET /v1/timeline`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    /// Only these endpoints: one id, or several comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    /// Only the caller's own tasks (for admin and endpoint owners, who also see others').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mine: Option<bool>,
    /// How many points at most (default 200, at most 1,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<usize>,
}

/// `GET /v1/timeline`: points spread over the stored history, oldest first, the last one the
/// newest event. Between two points, the difference of `transitions` over the difference of
/// `at` is the throughput; any `seq` can be asked for with `GET /v1/stats?at_seq=`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Timeline {
    pub points: Vec<TimelinePoint>,
}

/// A moment of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TimelinePoint {
    pub seq: u64,
    pub at: Timestamp,
    /// Transitions (the caller may see) up to this moment, since the beginning.
    pub transitions: u64,
}

/// The query of `GET /v1/groups`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GroupsQuery {
    /// Only these endpoints: one id, or several comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    /// Only the caller's own submissions (for admin and endpoint owners, who also see others').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mine: Option<bool>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size (default 50, at most 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `GET /v1/groups`: submissions (task groups), newest first, each with its tasks per state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GroupPage {
    pub groups: Vec<GroupSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One submission and where its tasks are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GroupSummary {
    pub task_group_id: TaskGroupId,
    pub endpoint_id: EndpointId,
    /// The function of its first task.
    pub function_id: FunctionId,
    pub created_at: Timestamp,
    /// Its tasks.
    pub size: u64,
    /// Its tasks per state, now.
    pub tasks: crate::StateCounts,
}

/// The query of `GET /v1/failures`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FailuresQuery {
    /// Only these endpoints: one id, or several comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    /// Only failures and retries at or after this time (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Only the caller's own tasks (for admin and endpoint owners, who also see others').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mine: Option<bool>,
}

/// `GET /v1/failures`: failed tasks and retried attempts grouped by cause, the largest group
/// first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Failures {
    pub groups: Vec<FailureGroup>,
    /// Failures and retries read (the newest first).
    pub scanned: u64,
    /// Set when there were more than the service reads for one answer: narrow with `since` or
    /// `endpoint_id`.
    pub truncated: bool,
}

/// Failures that share a cause: the same kind of reason and the same signature (the message
/// with ids, addresses and numbers masked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FailureGroup {
    /// `reason:signature`; `GET /v1/tasks?failure=KEY` lists its tasks.
    pub key: String,
    pub reason: crate::ReasonKind,
    pub signature: String,
    /// Final failures and retries together.
    pub count: u64,
    /// Tasks that ended in `failed` for this cause.
    pub final_failures: u64,
    /// Attempts cut short by this cause and retried (or requeued).
    pub retried: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub endpoints: Vec<EndpointId>,
    pub functions: Vec<FunctionId>,
    /// The task of the newest occurrence, and its full reason (a traceback, for an exception).
    pub example_task_id: TaskId,
    pub example: String,
}

/// The data of the event stream's `reset` event: the client resumed from before an event that
/// retention removed, so it missed history it cannot get back. It should reload what it shows
/// (counts, lists, its tasks' status) and go on from this event, which carries the head's id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StreamReset {
    /// Where the client asked to resume.
    pub after: u64,
    /// The highest sequence number retention removed.
    pub purged_through: u64,
    /// The last stored event: the stream goes on after it.
    pub head: u64,
}

/// The query of `GET /v1/events`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this endpoint's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<EndpointId>"))]
    pub endpoint_id: Option<String>,
    /// Only the transitions of these submissions' tasks: one task group id or several,
    /// comma-separated (at most 1,000). Endpoint status events are left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_group_id: Option<String>,
    /// Start after this sequence number (as `Last-Event-ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// A ticket from `POST /v1/events/ticket`, for clients that cannot send headers (a
    /// browser's EventSource): valid once, within a minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Only the caller's own tasks (for admin and endpoint owners, who also see others').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mine: Option<bool>,
}

// `FunctionInfo` and `BatchEntry` are read in one pass over their fields. Derived, they would
// be read twice: serde buffers every field of a flattened or untagged value, then reads the
// buffer, which costs each answer a copy of all it carries (a batch's results included) and
// each reader a second, buffered deserializer of every type inside.

impl<'de> Deserialize<'de> for FunctionInfo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            function_id: FunctionId,
            name: String,
            kind: FunctionKind,
            source: Option<String>,
            entrypoint: Option<String>,
            command: Option<String>,
            created_at: Timestamp,
        }
        let f = Fields::deserialize(deserializer)?;
        let spec = FunctionSpec::from_parts(f.kind, f.source, f.entrypoint, f.command)
            .map_err(D::Error::custom)?;
        Ok(FunctionInfo {
            function_id: f.function_id,
            name: f.name,
            spec,
            created_at: f.created_at,
        })
    }
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for BatchEntry<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(bound(deserialize = "R: Deserialize<'de>"))]
        struct Fields<R> {
            task_id: Option<TaskId>,
            pending: Option<bool>,
            status: Option<State>,
            result: Option<R>,
            exception: Option<String>,
            completion_t: Option<String>,
            details: Option<StatusDetails>,
            error: Option<String>,
            message: Option<String>,
        }
        let f = Fields::<R>::deserialize(deserializer)?;
        let missing = |field: &str| D::Error::custom(format!("a batch entry without `{field}`"));
        match (f.task_id, f.error) {
            (Some(task_id), None) => Ok(BatchEntry::Status(StatusDocument {
                task_id,
                pending: f.pending.ok_or_else(|| missing("pending"))?,
                status: f.status.ok_or_else(|| missing("status"))?,
                result: f.result,
                exception: f.exception,
                completion_t: f.completion_t,
                details: f.details.ok_or_else(|| missing("details"))?,
            })),
            (None, Some(error)) => Ok(BatchEntry::Error(ErrorBody {
                error,
                message: f.message.ok_or_else(|| missing("message"))?,
            })),
            _ => Err(D::Error::custom(
                "a batch entry is a status document (with `task_id`) or an error (with `error`)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Actor;
    use crate::status::TransitionRecord;

    #[test]
    fn a_function_reads_back_as_written_and_its_spec_is_checked() {
        for spec in [
            FunctionSpec::Python {
                source: "def f(): pass".into(),
                entrypoint: "f".into(),
            },
            FunctionSpec::Shell {
                command: "true".into(),
            },
        ] {
            let info = FunctionInfo {
                function_id: FunctionId::from_u128(1),
                name: "f".into(),
                spec,
                created_at: Timestamp::from_micros(1_000_000),
            };
            let text = serde_json::to_string(&info).expect("serializes");
            assert_eq!(
                serde_json::from_str::<FunctionInfo>(&text).expect("reads"),
                info
            );
        }
        let mixed = r#"{"function_id":"00000000-0000-0000-0000-000000000001","name":"f","kind":"shell","command":"true","source":"x","created_at":1.0}"#;
        let error = serde_json::from_str::<FunctionInfo>(mixed).expect_err("both kinds");
        assert!(
            error.to_string().contains("a shell function has `command`"),
            "{error}"
        );
    }

    #[test]
    fn batch_entries_read_back_as_written() {
        let doc = StatusDocument {
            task_id: TaskId::from_u128(9),
            pending: false,
            status: State::Success,
            result: Some(serde_json::json!({"big": [1, 2]})),
            exception: None,
            completion_t: Some("1.000000".into()),
            details: StatusDetails {
                endpoint_id: EndpointId::from_u128(2),
                function_id: FunctionId::from_u128(3),
                attempt: 1,
                max_retries: 0,
                task_transitions: vec![TransitionRecord {
                    state: State::Success,
                    actor: Actor::Worker,
                    attempt: 1,
                    at: Timestamp::from_micros(1_000_000),
                    reason: None,
                }],
            },
        };
        let batch = BatchStatus {
            results: BTreeMap::from([
                ("a".to_owned(), BatchEntry::Status(doc)),
                (
                    "b".to_owned(),
                    BatchEntry::Error(ErrorBody {
                        error: "not_found".into(),
                        message: "no task b".into(),
                    }),
                ),
            ]),
        };
        let text = serde_json::to_string(&batch).expect("serializes");
        let back: BatchStatus<serde_json::Value> = serde_json::from_str(&text).expect("reads");
        assert_eq!(back, batch);
        // A result kept as written (which a buffered, untagged read cannot do).
        let raw: BatchStatus<Box<serde_json::value::RawValue>> =
            serde_json::from_str(&text).expect("reads raw");
        let Some(BatchEntry::Status(doc)) = raw.results.get("a") else {
            panic!("a status document: {text}");
        };
        assert_eq!(
            doc.result.as_ref().map(|r| r.get()),
            Some(r#"{"big":[1,2]}"#)
        );
        let error = serde_json::from_str::<BatchEntry<serde_json::Value>>(r#"{"message":"?"}"#)
            .expect_err("neither");
        assert!(error.to_string().contains("a status document"), "{error}");
    }
}
