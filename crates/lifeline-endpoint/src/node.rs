//! The messages between the interchange and a manager, one JSON object per line on the TCP
//! connection the manager opens to the interchange. The first line is the manager's
//! [`ManagerHello`]; a connection whose hello does not name a live block with its secret is
//! dropped.

use lifeline_model::{FunctionId, TaskId, Timestamp};
use lifeline_protocol::FunctionSpec;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

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

/// How many bytes of queued lines one write gathers at most.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// Writes each line `lines` receives to `out`, ended by a newline, until `lines` closes or a
/// write fails. The lines queued while a write was on its way leave together in the next one:
/// under load a burst of messages costs one system call, not one per line.
pub(crate) async fn write_lines(
    mut lines: mpsc::UnboundedReceiver<String>,
    mut out: impl AsyncWrite + Unpin,
) {
    let mut buf = Vec::new();
    while let Some(line) = lines.recv().await {
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        while buf.len() < WRITE_BATCH_BYTES
            && let Ok(line) = lines.try_recv()
        {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
        if out.write_all(&buf).await.is_err() || out.flush().await.is_err() {
            return;
        }
        buf.clear();
        // A large result passed through once is not kept for the connection's lifetime.
        buf.shrink_to(WRITE_BATCH_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// An output that records each write it is given.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl AsyncWrite for Writes {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.0.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn queued_lines_leave_in_one_write_in_order() {
        let (tx, rx) = mpsc::unbounded_channel();
        for i in 0..100 {
            tx.send(format!("line {i}")).expect("open");
        }
        drop(tx);
        let mut out = Writes::default();
        write_lines(rx, &mut out).await;
        assert_eq!(out.0.len(), 1, "one write for what was queued");
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(out.0.concat()).expect("utf-8"), expected);
    }

    #[tokio::test]
    async fn a_large_backlog_is_split_and_nothing_is_lost() {
        let (tx, rx) = mpsc::unbounded_channel();
        let line = "x".repeat(10_000);
        for _ in 0..20 {
            tx.send(line.clone()).expect("open");
        }
        drop(tx);
        let mut out = Writes::default();
        write_lines(rx, &mut out).await;
        assert!(
            out.0.len() > 1,
            "a write gathers at most {WRITE_BATCH_BYTES} bytes"
        );
        assert!(
            out.0
                .iter()
                .all(|w| w.len() < WRITE_BATCH_BYTES + line.len() + 1)
        );
        assert_eq!(out.0.concat().len(), 20 * (line.len() + 1));
    }
}
