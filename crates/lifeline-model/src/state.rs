//! The states a task passes through and the actors that move it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a task is in its life cycle. The serde names are the wire values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "TaskState"))]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Received,
    WaitingForEp,
    DispatchedToEp,
    WaitingForNodes,
    WaitingForLaunch,
    Running,
    Success,
    Failed,
    Cancelled,
}

/// Who makes a transition. The serde names are the wire values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Actor {
    WebService,
    Forwarder,
    Endpoint,
    Manager,
    Worker,
}

/// A name that is not the wire value of any state or actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.kind, self.name)
    }
}

impl std::error::Error for UnknownName {}

impl State {
    /// Every state, in the order of the forward path (terminal states last).
    pub const ALL: [State; 9] = [
        State::Received,
        State::WaitingForEp,
        State::DispatchedToEp,
        State::WaitingForNodes,
        State::WaitingForLaunch,
        State::Running,
        State::Success,
        State::Failed,
        State::Cancelled,
    ];

    /// The number of states; [`State::index`] is below it.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`State::ALL`], for dense per-state tables.
    pub const fn index(self) -> usize {
        match self {
            State::Received => 0,
            State::WaitingForEp => 1,
            State::DispatchedToEp => 2,
            State::WaitingForNodes => 3,
            State::WaitingForLaunch => 4,
            State::Running => 5,
            State::Success => 6,
            State::Failed => 7,
            State::Cancelled => 8,
        }
    }

    /// Whether a task in this state is in its endpoint's hands, or on its way there: what a
    /// cancellation must tell the endpoint, and what losing the endpoint interrupts.
    pub const fn at_endpoint(self) -> bool {
        match self {
            State::DispatchedToEp
            | State::WaitingForNodes
            | State::WaitingForLaunch
            | State::Running => true,
            State::Received
            | State::WaitingForEp
            | State::Success
            | State::Failed
            | State::Cancelled => false,
        }
    }

    /// The state's code in stores (SQLite rows). Fixed forever, whatever the order of
    /// [`State::ALL`]: a new state takes a new code, and a test fails if one changes.
    pub const fn storage_code(self) -> u8 {
        match self {
            State::Received => 0,
            State::WaitingForEp => 1,
            State::DispatchedToEp => 2,
            State::WaitingForNodes => 3,
            State::WaitingForLaunch => 4,
            State::Running => 5,
            State::Success => 6,
            State::Failed => 7,
            State::Cancelled => 8,
        }
    }

    /// The state stored under `code`, if any.
    pub fn from_storage_code(code: i64) -> Option<State> {
        State::ALL
            .into_iter()
            .find(|s| i64::from(s.storage_code()) == code)
    }

    /// The wire value, as it appears in JSON, URLs and `data-state` attributes.
    pub const fn wire(self) -> &'static str {
        match self {
            State::Received => "received",
            State::WaitingForEp => "waiting-for-ep",
            State::DispatchedToEp => "dispatched-to-ep",
            State::WaitingForNodes => "waiting-for-nodes",
            State::WaitingForLaunch => "waiting-for-launch",
            State::Running => "running",
            State::Success => "success",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    /// A short human label.
    pub const fn label(self) -> &'static str {
        match self {
            State::Received => "Received",
            State::WaitingForEp => "Waiting for endpoint",
            State::DispatchedToEp => "Dispatched to endpoint",
            State::WaitingForNodes => "Waiting for nodes",
            State::WaitingForLaunch => "Waiting for launch",
            State::Running => "Running",
            State::Success => "Success",
            State::Failed => "Failed",
            State::Cancelled => "Cancelled",
        }
    }

    /// One line saying what being in this state means.
    pub const fn description(self) -> &'static str {
        match self {
            State::Received => "The web service accepted and stored the submission.",
            State::WaitingForEp => {
                "The endpoint is not connected, or holds as many tasks as it takes at once; the task waits in the forwarder's queue."
            }
            State::DispatchedToEp => "Sent to the endpoint, not yet acknowledged.",
            State::WaitingForNodes => {
                "Acknowledged by the endpoint; waiting for a node (manager) with free capacity."
            }
            State::WaitingForLaunch => "Placed on a manager; waiting for a free worker.",
            State::Running => "Being executed by a worker.",
            State::Success => "Returned a result.",
            State::Failed => {
                "User exception, walltime, rejected by the endpoint, or system failure after the last retry."
            }
            State::Cancelled => "Cancelled by its user.",
        }
    }

    /// The actor whose swimlane this state sits in: the one that normally enters it.
    pub const fn lane(self) -> Actor {
        match self {
            State::Received | State::Cancelled => Actor::WebService,
            State::WaitingForEp | State::DispatchedToEp => Actor::Forwarder,
            State::WaitingForNodes => Actor::Endpoint,
            State::WaitingForLaunch => Actor::Manager,
            State::Running | State::Success | State::Failed => Actor::Worker,
        }
    }

    /// Terminal states absorb: nothing leaves them.
    pub const fn is_terminal(self) -> bool {
        match self {
            State::Success | State::Failed | State::Cancelled => true,
            State::Received
            | State::WaitingForEp
            | State::DispatchedToEp
            | State::WaitingForNodes
            | State::WaitingForLaunch
            | State::Running => false,
        }
    }

    /// `pending` in the status document: the task is not finished yet.
    pub const fn is_pending(self) -> bool {
        !self.is_terminal()
    }
}

impl Actor {
    /// Every actor, from the user-facing service down to the worker.
    pub const ALL: [Actor; 5] = [
        Actor::WebService,
        Actor::Forwarder,
        Actor::Endpoint,
        Actor::Manager,
        Actor::Worker,
    ];

    /// Position in [`Actor::ALL`], also the swimlane's row in the diagram.
    pub const fn index(self) -> usize {
        match self {
            Actor::WebService => 0,
            Actor::Forwarder => 1,
            Actor::Endpoint => 2,
            Actor::Manager => 3,
            Actor::Worker => 4,
        }
    }

    /// The actor's code in stores, fixed forever like [`State::storage_code`].
    pub const fn storage_code(self) -> u8 {
        match self {
            Actor::WebService => 0,
            Actor::Forwarder => 1,
            Actor::Endpoint => 2,
            Actor::Manager => 3,
            Actor::Worker => 4,
        }
    }

    /// The actor stored under `code`, if any.
    pub fn from_storage_code(code: i64) -> Option<Actor> {
        Actor::ALL
            .into_iter()
            .find(|a| i64::from(a.storage_code()) == code)
    }

    /// The wire value.
    pub const fn wire(self) -> &'static str {
        match self {
            Actor::WebService => "web-service",
            Actor::Forwarder => "forwarder",
            Actor::Endpoint => "endpoint",
            Actor::Manager => "manager",
            Actor::Worker => "worker",
        }
    }

    /// A short human label.
    pub const fn label(self) -> &'static str {
        match self {
            Actor::WebService => "Web service",
            Actor::Forwarder => "Forwarder",
            Actor::Endpoint => "Endpoint",
            Actor::Manager => "Manager",
            Actor::Worker => "Worker",
        }
    }

    /// One line saying what this actor is.
    pub const fn description(self) -> &'static str {
        match self {
            Actor::WebService => "Accepts submissions and cancellations; stores every task.",
            Actor::Forwarder => {
                "Queues tasks per endpoint and dispatches them when it is connected."
            }
            Actor::Endpoint => {
                "The endpoint's interchange: acknowledges tasks and queues them for executors."
            }
            Actor::Manager => "Runs on a node and places tasks on its workers.",
            Actor::Worker => "A process that executes one function at a time.",
        }
    }
}

macro_rules! wire_name {
    ($ty:ty, $kind:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.wire())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.wire() == s)
                    .ok_or_else(|| UnknownName {
                        kind: $kind,
                        name: s.to_owned(),
                    })
            }
        }
    };
}

wire_name!(State, "state");
wire_name!(Actor, "actor");
