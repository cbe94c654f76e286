//! The transition table, and [`validate`], the one rule every part of Lifeline applies.
//!
//! The table is [`edges_from`]: one exhaustive `match` on the source state, so a new state does
//! not compile until its way out is decided. Everything else (the list of all edges, the diagram,
//! the Mermaid text, the tests' expectations of labels) is derived from it.

use std::fmt;

use crate::state::{Actor, State};

/// What an edge does to a task's attempt and why it exists.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// A step along the normal path; the attempt is unchanged.
    Forward,
    /// A system failure after the function started (worker, manager or endpoint lost under a
    /// running task): the next attempt (attempt + 1), while attempts remain.
    Retry,
    /// A system failure before the function started (endpoint or manager lost, dispatch not
    /// acknowledged): the task goes back in line on the same attempt. Nothing of the user's ran,
    /// so no retry is used up: `max_retries` guards against functions that crash their workers,
    /// not against restarts of Lifeline's own parts.
    Requeue,
    /// The task ends in `failed`: user exception, walltime, rejection, or retries exhausted.
    Fail,
    /// The user cancelled the task.
    Cancel,
}

impl EdgeKind {
    /// A short human label.
    pub const fn label(self) -> &'static str {
        match self {
            EdgeKind::Forward => "forward",
            EdgeKind::Retry => "retry",
            EdgeKind::Requeue => "requeue",
            EdgeKind::Fail => "failure",
            EdgeKind::Cancel => "cancel",
        }
    }
}

/// One allowed transition: from a state to another, by one of the listed actors.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: State,
    pub to: State,
    /// The actors allowed to make this transition (usually exactly one).
    pub actors: &'static [Actor],
    pub kind: EdgeKind,
    /// A few words naming the cause, drawn on the diagram.
    pub label: &'static str,
    /// One line explaining when this transition happens.
    pub description: &'static str,
}

const fn edge(
    from: State,
    to: State,
    actors: &'static [Actor],
    kind: EdgeKind,
    label: &'static str,
    description: &'static str,
) -> Edge {
    Edge {
        from,
        to,
        actors,
        kind,
        label,
        description,
    }
}

use Actor::{Endpoint, Forwarder, Manager, WebService, Worker};
use EdgeKind::{Cancel, Fail, Forward, Requeue, Retry};
use State::{
    Cancelled, DispatchedToEp, Failed, Received, Running, Success, WaitingForEp, WaitingForLaunch,
    WaitingForNodes,
};

const CANCEL_TEXT: &str = "Its user cancelled the task before it finished.";
const REQUEUE_EP_TEXT: &str = "System failure before the function started: the endpoint was lost or did not acknowledge in time. The task waits for it again on the same attempt.";
const RETRY_EP_TEXT: &str = "System failure under the running function: the endpoint was lost. The next attempt waits for it.";
const REQUEUE_MANAGER_TEXT: &str = "System failure before the function started: the manager was lost. The task waits for a node again on the same attempt.";
const RETRY_WORKER_TEXT: &str = "System failure under the running function: the manager or worker was lost. The next attempt waits for a node.";
const EXHAUSTED_EP_TEXT: &str = "The forwarder failed the task before the endpoint acknowledged it (written by stores from before requeues; a requeue never runs out).";

const FROM_RECEIVED: &[Edge] = &[
    edge(
        Received,
        WaitingForEp,
        &[Forwarder],
        Forward,
        "endpoint offline or full",
        "The endpoint is not connected, or holds as many tasks as it takes at once, so the forwarder queues the task for it.",
    ),
    edge(
        Received,
        DispatchedToEp,
        &[Forwarder],
        Forward,
        "dispatch",
        "The endpoint is connected and the forwarder sends it the task.",
    ),
    edge(
        Received,
        Cancelled,
        &[WebService],
        Cancel,
        "cancel",
        CANCEL_TEXT,
    ),
];

const FROM_WAITING_FOR_EP: &[Edge] = &[
    edge(
        WaitingForEp,
        DispatchedToEp,
        &[Forwarder],
        Forward,
        "endpoint connected",
        "The endpoint connected and the forwarder sends it the queued task.",
    ),
    edge(
        WaitingForEp,
        Cancelled,
        &[WebService],
        Cancel,
        "cancel",
        CANCEL_TEXT,
    ),
];

const FROM_DISPATCHED_TO_EP: &[Edge] = &[
    edge(
        DispatchedToEp,
        WaitingForNodes,
        &[Endpoint],
        Forward,
        "acknowledged",
        "The endpoint's interchange acknowledged the task and queued it for an executor.",
    ),
    edge(
        DispatchedToEp,
        WaitingForEp,
        &[Forwarder],
        Requeue,
        "endpoint lost",
        REQUEUE_EP_TEXT,
    ),
    edge(
        DispatchedToEp,
        Failed,
        &[Forwarder],
        Fail,
        "retries exhausted",
        EXHAUSTED_EP_TEXT,
    ),
    edge(
        DispatchedToEp,
        Cancelled,
        &[WebService],
        Cancel,
        "cancel",
        CANCEL_TEXT,
    ),
];

const FROM_WAITING_FOR_NODES: &[Edge] = &[
    edge(
        WaitingForNodes,
        WaitingForLaunch,
        &[Manager],
        Forward,
        "placed on manager",
        "A manager with spare capacity took the task.",
    ),
    edge(
        WaitingForNodes,
        WaitingForEp,
        &[Forwarder],
        Requeue,
        "endpoint lost",
        REQUEUE_EP_TEXT,
    ),
    edge(
        WaitingForNodes,
        Failed,
        &[Endpoint, Forwarder],
        Fail,
        "rejected",
        "The endpoint rejected the task (unknown function, arguments too deep); stores from before requeues also hold the endpoint lost on the last attempt.",
    ),
    edge(
        WaitingForNodes,
        Cancelled,
        &[WebService],
        Cancel,
        "cancel",
        CANCEL_TEXT,
    ),
];

const FROM_WAITING_FOR_LAUNCH: &[Edge] = &[
    edge(
        WaitingForLaunch,
        Running,
        &[Worker],
        Forward,
        "started",
        "A worker started executing the function.",
    ),
    edge(
        WaitingForLaunch,
        WaitingForEp,
        &[Forwarder],
        Requeue,
        "endpoint lost",
        REQUEUE_EP_TEXT,
    ),
    edge(
        WaitingForLaunch,
        WaitingForNodes,
        &[Endpoint],
        Requeue,
        "manager lost",
        REQUEUE_MANAGER_TEXT,
    ),
    edge(
        WaitingForLaunch,
        Failed,
        &[Endpoint, Forwarder],
        Fail,
        "rejected",
        "The endpoint rejected the task; stores from before requeues also hold its manager or endpoint lost on the last attempt.",
    ),
    edge(
        WaitingForLaunch,
        Cancelled,
        &[WebService],
        Cancel,
        "cancel",
        CANCEL_TEXT,
    ),
];

const FROM_RUNNING: &[Edge] = &[
    edge(
        Running,
        Success,
        &[Worker],
        Forward,
        "returned",
        "The function returned a result.",
    ),
    edge(
        Running,
        WaitingForEp,
        &[Forwarder],
        Retry,
        "endpoint lost",
        RETRY_EP_TEXT,
    ),
    edge(
        Running,
        WaitingForNodes,
        &[Endpoint],
        Retry,
        "worker lost",
        RETRY_WORKER_TEXT,
    ),
    edge(
        Running,
        Failed,
        &[Worker, Endpoint, Forwarder],
        Fail,
        "exception",
        "The function raised an exception or exceeded its walltime, or a system failure hit the last attempt.",
    ),
    edge(
        Running,
        Cancelled,
        &[WebService],
        Cancel,
        "cancel",
        CANCEL_TEXT,
    ),
];

/// The transitions out of `from`. This is the transition table.
pub const fn edges_from(from: State) -> &'static [Edge] {
    match from {
        State::Received => FROM_RECEIVED,
        State::WaitingForEp => FROM_WAITING_FOR_EP,
        State::DispatchedToEp => FROM_DISPATCHED_TO_EP,
        State::WaitingForNodes => FROM_WAITING_FOR_NODES,
        State::WaitingForLaunch => FROM_WAITING_FOR_LAUNCH,
        State::Running => FROM_RUNNING,
        State::Success | State::Failed | State::Cancelled => &[],
    }
}

/// Every edge of the life cycle, grouped by source state in [`State::ALL`] order.
pub fn edges() -> impl Iterator<Item = &'static Edge> {
    State::ALL.into_iter().flat_map(|s| edges_from(s).iter())
}

impl Edge {
    /// The edge from `from` to `to`, if the life cycle has one.
    pub fn find(from: State, to: State) -> Option<&'static Edge> {
        edges_from(from).iter().find(|e| e.to == to)
    }

    /// The attempt a task was on before taking this edge, given the attempt it is on after.
    pub fn attempt_before(&self, after: u32) -> u32 {
        match self.kind {
            EdgeKind::Retry => after.saturating_sub(1),
            EdgeKind::Forward | EdgeKind::Requeue | EdgeKind::Fail | EdgeKind::Cancel => after,
        }
    }
}

/// A transition that [`validate`] accepted.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub edge: &'static Edge,
    /// The task's attempt once the transition is made: one more after a retry.
    pub attempt: u32,
}

/// Why a proposed transition is illegal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransitionError {
    /// The task already finished; terminal states absorb.
    FromTerminal { from: State, to: State },
    /// The life cycle has no edge between these states.
    NoSuchEdge { from: State, to: State },
    /// The edge exists, but this actor may not make it.
    WrongActor {
        from: State,
        to: State,
        actor: Actor,
        allowed: &'static [Actor],
    },
    /// A retry was proposed after the last allowed attempt; the task must fail instead.
    RetriesExhausted {
        from: State,
        to: State,
        attempt: u32,
        max_retries: u32,
    },
    /// The current attempt is outside `1..=max_retries + 1`.
    AttemptOutOfRange { attempt: u32, max_retries: u32 },
    /// A reported transition carries a different attempt number than the rule gives.
    AttemptMismatch {
        state: State,
        expected: u32,
        got: u32,
    },
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionError::FromTerminal { from, to } => {
                write!(
                    f,
                    "{from} → {to}: the task is already {from}, and terminal states are final"
                )
            }
            TransitionError::NoSuchEdge { from, to } => {
                write!(f, "{from} → {to}: the life cycle has no such transition")
            }
            TransitionError::WrongActor {
                from,
                to,
                actor,
                allowed,
            } => {
                let allowed: Vec<&str> = allowed.iter().map(|a| a.wire()).collect();
                write!(
                    f,
                    "{from} → {to}: made by {actor}, but only {} may make it",
                    allowed.join(" or ")
                )
            }
            TransitionError::RetriesExhausted {
                from,
                to,
                attempt,
                max_retries,
            } => write!(
                f,
                "{from} → {to}: attempt {attempt} was the last one allowed ({max_retries} retries), \
                 so the task must fail instead of retrying"
            ),
            TransitionError::AttemptOutOfRange {
                attempt,
                max_retries,
            } => write!(
                f,
                "attempt {attempt} is outside 1..={} allowed by {max_retries} retries",
                max_retries + 1
            ),
            TransitionError::AttemptMismatch {
                state,
                expected,
                got,
            } => {
                write!(
                    f,
                    "→ {state}: reported as attempt {got}, but it is attempt {expected}"
                )
            }
        }
    }
}

impl std::error::Error for TransitionError {}

/// Checks a proposed transition of a task currently in `from`, on attempt `attempt` (counted
/// from 1) of at most `max_retries + 1`.
///
/// Returns the matching edge and the task's attempt afterwards, or why the transition is illegal.
pub fn validate(
    from: State,
    to: State,
    actor: Actor,
    attempt: u32,
    max_retries: u32,
) -> Result<Accepted, TransitionError> {
    if from.is_terminal() {
        return Err(TransitionError::FromTerminal { from, to });
    }
    let edge = Edge::find(from, to).ok_or(TransitionError::NoSuchEdge { from, to })?;
    if !edge.actors.contains(&actor) {
        return Err(TransitionError::WrongActor {
            from,
            to,
            actor,
            allowed: edge.actors,
        });
    }
    let last_attempt = max_retries.saturating_add(1);
    if attempt == 0 || attempt > last_attempt {
        return Err(TransitionError::AttemptOutOfRange {
            attempt,
            max_retries,
        });
    }
    let attempt = match edge.kind {
        EdgeKind::Retry if attempt == last_attempt => {
            return Err(TransitionError::RetriesExhausted {
                from,
                to,
                attempt,
                max_retries,
            });
        }
        EdgeKind::Retry => attempt + 1,
        EdgeKind::Forward | EdgeKind::Requeue | EdgeKind::Fail | EdgeKind::Cancel => attempt,
    };
    Ok(Accepted { edge, attempt })
}

/// What a system failure does to a task: see [`system_failure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// `back_to` (a requeue or a retry), or `failed` when a retry was needed and none is left.
    pub to: State,
    /// The task's attempt afterwards.
    pub attempt: u32,
    /// The reason to record: the failure's, plus the exhausted retries when it ends the task.
    pub reason: String,
}

/// The one rule for a system failure (endpoint, manager or worker lost, dispatch not
/// acknowledged) under a task in `from` on `attempt`: it goes back to `back_to`
/// (`waiting-for-ep` at the forwarder, `waiting-for-nodes` at the endpoint), requeued on the same
/// attempt if its function had not started, retried on the next one if it had; with no retry
/// left it fails, and the reason says so.
pub fn system_failure(
    from: State,
    back_to: State,
    actor: Actor,
    attempt: u32,
    max_retries: u32,
    reason: &str,
) -> Result<Recovery, TransitionError> {
    match validate(from, back_to, actor, attempt, max_retries) {
        Ok(accepted) => Ok(Recovery {
            to: back_to,
            attempt: accepted.attempt,
            reason: reason.to_owned(),
        }),
        Err(TransitionError::RetriesExhausted { attempt, .. }) => {
            let accepted = validate(from, State::Failed, actor, attempt, max_retries)?;
            Ok(Recovery {
                to: State::Failed,
                attempt: accepted.attempt,
                reason: format!("{reason} (attempt {attempt}, no retries left)"),
            })
        }
        Err(error) => Err(error),
    }
}
