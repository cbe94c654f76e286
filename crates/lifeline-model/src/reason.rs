//! Why a task failed or was retried, in a few kinds: the reason a transition carries is free
//! text (an exception's message, a lost manager's address), but metrics, alerts and the failures
//! view need a small, fixed set of causes to count by.

use serde::{Deserialize, Serialize};

/// The cause a transition's reason names. The serde names are the wire values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ReasonKind {
    /// The function raised, or the command exited with an error: the user's code failed.
    Exception,
    /// The task ran longer than its walltime.
    Walltime,
    /// The block (batch job) holding the task ended under it.
    BlockEnded,
    /// The worker process running the task died or stopped answering.
    WorkerLost,
    /// The manager holding the task was lost.
    ManagerLost,
    /// The endpoint stopped sending heartbeats.
    EndpointLost,
    /// The endpoint's agent reconnected without the task.
    EndpointReconnected,
    /// The endpoint did not acknowledge the dispatch in time.
    AckTimeout,
    /// The endpoint refused the task (for example arguments it cannot run).
    Rejected,
    /// The result was larger than the service accepts.
    ResultTooLarge,
    /// No reason, or one of no kind above.
    Other,
}

impl ReasonKind {
    pub const ALL: [ReasonKind; 11] = [
        ReasonKind::Exception,
        ReasonKind::Walltime,
        ReasonKind::BlockEnded,
        ReasonKind::WorkerLost,
        ReasonKind::ManagerLost,
        ReasonKind::EndpointLost,
        ReasonKind::EndpointReconnected,
        ReasonKind::AckTimeout,
        ReasonKind::Rejected,
        ReasonKind::ResultTooLarge,
        ReasonKind::Other,
    ];

    /// The kind of a failure's reason. A reason naming none of the system's causes is the
    /// user's code failing ([`ReasonKind::Exception`]).
    pub fn of_failure(reason: Option<&str>) -> Self {
        match reason {
            None => ReasonKind::Other,
            Some(text) => Self::system(text).unwrap_or(ReasonKind::Exception),
        }
    }

    /// The kind of a retry's reason: retries come from system failures only.
    pub fn of_retry(reason: Option<&str>) -> Self {
        reason.and_then(Self::system).unwrap_or(ReasonKind::Other)
    }

    /// The system cause a reason names, if any. These are the reasons Lifeline's own parts
    /// write; a model-level retry suffix such as `(attempt 2, no retries left)` does not matter.
    fn system(text: &str) -> Option<Self> {
        let text = text.strip_prefix("system failure: ").unwrap_or(text);
        let starts = |prefix: &str| text.starts_with(prefix);
        Some(if starts("walltime exceeded") {
            ReasonKind::Walltime
        } else if starts("block ") && text.contains(" ended") {
            if text.contains("ended: timeout") {
                ReasonKind::Walltime
            } else {
                ReasonKind::BlockEnded
            }
        } else if starts("worker lost") {
            ReasonKind::WorkerLost
        } else if starts("manager lost") || starts("the manager failed") {
            ReasonKind::ManagerLost
        } else if starts("endpoint lost") {
            ReasonKind::EndpointLost
        } else if starts("the endpoint reconnected") || starts("the endpoint dropped") {
            ReasonKind::EndpointReconnected
        } else if starts("dispatch not acknowledged") {
            ReasonKind::AckTimeout
        } else if starts("rejected by the endpoint") || starts("the task cannot be sent") {
            ReasonKind::Rejected
        } else if starts("MaxResultSizeExceeded") {
            ReasonKind::ResultTooLarge
        } else {
            return None;
        })
    }

    /// The wire value, such as `manager-lost`.
    pub const fn wire(self) -> &'static str {
        match self {
            ReasonKind::Exception => "exception",
            ReasonKind::Walltime => "walltime",
            ReasonKind::BlockEnded => "block-ended",
            ReasonKind::WorkerLost => "worker-lost",
            ReasonKind::ManagerLost => "manager-lost",
            ReasonKind::EndpointLost => "endpoint-lost",
            ReasonKind::EndpointReconnected => "endpoint-reconnected",
            ReasonKind::AckTimeout => "ack-timeout",
            ReasonKind::Rejected => "rejected",
            ReasonKind::ResultTooLarge => "result-too-large",
            ReasonKind::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_written_by_lifeline_have_their_kind() {
        let cases = [
            ("ZeroDivisionError: division by zero", ReasonKind::Exception),
            ("walltime exceeded: 2 s", ReasonKind::Walltime),
            (
                "block 1 (slurm job 12) ended: timeout",
                ReasonKind::Walltime,
            ),
            (
                "block 1 (slurm job 12) ended: cancelled",
                ReasonKind::BlockEnded,
            ),
            (
                "worker lost: the python3 worker died with signal 9",
                ReasonKind::WorkerLost,
            ),
            (
                "manager lost: connection closed (block 2)",
                ReasonKind::ManagerLost,
            ),
            (
                "endpoint lost: no heartbeat for 30 s (attempt 4, no retries left)",
                ReasonKind::EndpointLost,
            ),
            (
                "system failure: the endpoint reconnected without this task",
                ReasonKind::EndpointReconnected,
            ),
            (
                "dispatch not acknowledged by the endpoint within 30 s",
                ReasonKind::AckTimeout,
            ),
            (
                "rejected by the endpoint: arguments nested too deep",
                ReasonKind::Rejected,
            ),
            (
                "MaxResultSizeExceeded: the result is 11 bytes",
                ReasonKind::ResultTooLarge,
            ),
        ];
        for (reason, kind) in cases {
            assert_eq!(ReasonKind::of_failure(Some(reason)), kind, "{reason}");
        }
        assert_eq!(ReasonKind::of_failure(None), ReasonKind::Other);
        assert_eq!(
            ReasonKind::of_retry(Some("a user's words")),
            ReasonKind::Other
        );
        assert_eq!(
            ReasonKind::of_retry(Some("manager lost: heartbeat")),
            ReasonKind::ManagerLost
        );
    }

    #[test]
    fn wire_values_are_the_serde_names() {
        for kind in ReasonKind::ALL {
            let json = serde_json::to_string(&kind).expect("serialises");
            assert_eq!(json, format!("\"{}\"", kind.wire()));
        }
    }
}
