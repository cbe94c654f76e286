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

/// The part of a failure's reason that names what went wrong, with its volatile parts (ids,
/// hexadecimal values, numbers, addresses) masked, so that failures that differ only in those
/// share a signature: `ValueError: sample 17 of 0190a1b2-...` → `ValueError: sample <n> of <id>`.
/// A Python traceback is named by its last line (the exception); other reasons by their first.
pub fn failure_signature(reason: &str) -> String {
    let mut lines = reason.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = if reason.starts_with("Traceback (most recent call last)") {
        lines.next_back()
    } else {
        lines.next()
    }
    .unwrap_or("");
    let mut out = String::with_capacity(line.len());
    let mut token = String::new();
    for c in line.chars().chain(std::iter::once('\n')) {
        if c.is_ascii_alphanumeric() || c == '-' {
            token.push(c);
            continue;
        }
        out.push_str(&mask(&token));
        token.clear();
        if c != '\n' {
            out.push(c);
        }
    }
    // Long reasons are cut at a character boundary: a signature is a name, not a record.
    match out.char_indices().nth(MAX_SIGNATURE) {
        Some((cut, _)) => out[..cut].to_owned(),
        None => out,
    }
}

/// Longest signature, in characters.
const MAX_SIGNATURE: usize = 200;

fn mask(token: &str) -> String {
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = token.split('-').collect();
    let uuid = parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| hex(p));
    if uuid {
        return "<id>".into();
    }
    if token.len() >= 8 && hex(token) && token.chars().any(|c| c.is_ascii_digit()) {
        return "<hex>".into();
    }
    let mut out = String::with_capacity(token.len());
    let mut in_number = false;
    for c in token.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push_str("<n>");
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// The key of a failure group: the reason's kind and signature.
pub fn failure_key(kind: ReasonKind, signature: &str) -> String {
    format!("{}:{signature}", kind.wire())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_mask_what_changes_from_run_to_run() {
        let traceback = "Traceback (most recent call last):\n  File \"<lifeline>\", line 3, in run\nValueError: sample 17 of 0190a1b2-0000-7000-8000-00000000002a failed\n";
        assert_eq!(
            failure_signature(traceback),
            "ValueError: sample <n> of <id> failed"
        );
        assert_eq!(
            failure_signature("manager lost: no heartbeat for 4 s (10.0.0.5:9464, block 12)"),
            "manager lost: no heartbeat for <n> s (<n>.<n>.<n>.<n>:<n>, block <n>)"
        );
        assert_eq!(
            failure_signature("KeyError: 'deadbeef0123'"),
            "KeyError: '<hex>'"
        );
        assert_eq!(
            failure_signature("the command failed with exit code 3; stderr ends with:\nboom 7\n"),
            "the command failed with exit code <n>; stderr ends with:"
        );
        assert_eq!(failure_signature("x86_64 sm80"), "x<n>_<n> sm<n>");
        assert_eq!(failure_signature(&"é".repeat(500)).chars().count(), 200);
        assert_eq!(
            failure_key(ReasonKind::Walltime, "walltime exceeded"),
            "walltime:walltime exceeded"
        );
    }

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
