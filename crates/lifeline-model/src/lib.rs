//! The life cycle of a Lifeline task, as data and rules, with no I/O.
//!
//! Every other part of Lifeline leans on this crate: the service validates each transition it
//! stores or forwards with [`validate`], the endpoint agent validates each transition before it
//! reports it, and the dashboard (compiled to WebAssembly) validates each transition it receives
//! before drawing it. Because all three run the same code, a transition means the same thing
//! everywhere it is seen.
//!
//! The crate holds:
//! - [`State`] and [`Actor`], with their wire values, labels and descriptions;
//! - the transition table ([`edges_from`], [`Edge`]) and [`validate`];
//! - the task status document ([`StatusDocument`]), derived by folding a task's transition log;
//! - the endpoint report ([`EndpointReport`]) with one [`ExecutorReport`] per executor;
//! - the event stream's wire type ([`Event`]) and the API's shapes the dashboard reads back
//!   ([`TaskSummary`], [`EndpointSummary`], [`StatsSummary`]);
//! - the causes a failure or retry is counted by ([`ReasonKind`]);
//! - the limits on what a task may carry ([`MAX_ARGUMENT_DEPTH`], [`json_depth`]);
//! - the lifecycle diagram as data ([`diagram`]), rendered to SVG and Mermaid text.
//!
//! - every body of the service's `/v1` API ([`api`]), with their JSON Schemas when the `schema`
//!   feature is on (the service builds its OpenAPI document from them).
//!
//! It depends on `serde` (and, with `schema`, on `schemars` to describe its types) and knows
//! nothing of sockets, files, clocks or threads: time enters as [`Timestamp`] values chosen by
//! the caller.

mod accounts;
pub mod api;
mod event;
mod ids;
mod limits;
mod reason;
mod report;
#[cfg(feature = "schema")]
mod schema;
mod state;
mod status;
mod time;
mod transition;
mod wire;

pub mod diagram;

pub use event::{EndpointStatus, Event, EventBody, TransitionEvent};
pub use ids::{EndpointId, FunctionId, IdError, TaskGroupId, TaskId};
pub use limits::{MAX_ARGUMENT_DEPTH, json_depth};
pub use reason::{ReasonKind, failure_key, failure_signature};
pub use report::{BlockReport, BlockState, EndpointReport, ExecutorReport, StateCounts};
pub use state::{Actor, State, UnknownName};
pub use status::{
    FoldError, StatusDetails, StatusDocument, TaskMeta, TaskView, TransitionRecord, fold,
};
pub use time::{Timestamp, TimestampError, human_duration};
pub use transition::{
    Accepted, Edge, EdgeKind, Recovery, TransitionError, edges, edges_from, system_failure,
    validate,
};
pub use wire::{
    DwellSummary, EdgeCount, EndpointSummary, Presence, StatsSummary, TaskPage, TaskSummary,
};
