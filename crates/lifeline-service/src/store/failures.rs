//! Failures and retries, read from the log through the edge index: every transition into
//! `failed`, and every retry or requeue (a system failure that sent a task back to wait), newest
//! first. `GET /v1/failures` groups them by cause; `GET /v1/tasks?failure=` lists a group's
//! tasks.

use lifeline_model::{EdgeKind, ReasonKind, State, TaskPage, Timestamp, failure_signature};
use rusqlite::{Connection, params};

use super::read::{TASK_COLUMNS, task_from_row_at};
use super::{StoreResult, TaskFilter, TaskRow};
use crate::users::UserId;

/// One failure or retry.
#[derive(Debug)]
pub struct FailureRow {
    pub seq: i64,
    pub at: Timestamp,
    /// `failed`, or the state a retry sent the task back to.
    pub to: State,
    pub reason: Option<String>,
    pub task: TaskRow,
}

impl FailureRow {
    /// Whether the task ended here (rather than being retried).
    pub fn is_final(&self) -> bool {
        self.to == State::Failed
    }

    /// The row's cause and signature. An exception's text is the submitter's: for a reader who
    /// may not see it, every exception is one signature, `withheld`.
    pub fn cause(&self, readable: bool) -> (ReasonKind, String) {
        let reason = self.reason.as_deref();
        let kind = if self.is_final() {
            ReasonKind::of_failure(reason)
        } else {
            ReasonKind::of_retry(reason)
        };
        if kind == ReasonKind::Exception && !readable {
            return (kind, "withheld".into());
        }
        (kind, failure_signature(reason.unwrap_or("")))
    }
}

/// The edges a failure or retry takes.
fn failure_edges() -> Vec<(State, State)> {
    lifeline_model::edges()
        .filter(|e| matches!(e.kind, EdgeKind::Fail | EdgeKind::Retry | EdgeKind::Requeue))
        .map(|e| (e.from, e.to))
        .collect()
}

/// Up to `limit` failures and retries with `after < seq < before`, newest first: each edge's
/// index range walked backwards, the walks merged.
pub fn failures(
    conn: &Connection,
    before: i64,
    after: i64,
    limit: usize,
) -> StoreResult<Vec<FailureRow>> {
    let columns = TASK_COLUMNS
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT e.seq, e.at, e.reason, {columns} FROM events e JOIN tasks t ON t.seq = e.task \
         WHERE e.from_state = ?1 AND e.state = ?2 AND e.task IS NOT NULL \
         AND e.seq < ?3 AND e.seq > ?4 ORDER BY e.seq DESC LIMIT ?5"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = Vec::new();
    for (from, to) in failure_edges() {
        let found = stmt.query_map(
            params![
                i64::from(from.storage_code()),
                i64::from(to.storage_code()),
                before,
                after,
                limit as i64
            ],
            |r| {
                Ok(FailureRow {
                    seq: r.get(0)?,
                    at: Timestamp::from_micros(r.get(1)?),
                    reason: r.get(2)?,
                    to,
                    task: task_from_row_at(r, 3)?,
                })
            },
        )?;
        for row in found {
            rows.push(row?);
        }
    }
    rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.seq));
    rows.truncate(limit);
    Ok(rows)
}

/// Failures and retries read per query while listing a group's tasks.
const BATCH: usize = 1000;
/// Most failures and retries read for one page.
const SCAN: usize = 100_000;

/// Which failures a task list keeps: those of one group's key, as `reader` sees them (`None`:
/// an admin, who reads every exception).
#[derive(Clone, Debug)]
pub struct FailureFilter {
    pub key: String,
    pub reader: Option<UserId>,
}

/// The tasks with a failure or retry of `failure`'s group, newest first; the cursor is the
/// sequence number of the last failure read.
pub(super) fn tasks_with_failure(
    conn: &Connection,
    filter: &TaskFilter,
    failure: &FailureFilter,
) -> StoreResult<TaskPage> {
    let mut before = filter.before.unwrap_or(i64::MAX);
    let mut seen = std::collections::HashSet::new();
    let mut tasks = Vec::new();
    let mut scanned = 0;
    loop {
        let rows = failures(conn, before, 0, BATCH)?;
        let read = rows.len();
        for row in rows {
            before = row.seq;
            let readable = failure.reader.is_none_or(|r| r == row.task.owner);
            let (kind, signature) = row.cause(readable);
            if lifeline_model::failure_key(kind, &signature) != failure.key
                || !seen.insert(row.task.task.task_id)
                || !super::read::edge_filter_keeps(filter, &row.task)
            {
                continue;
            }
            tasks.push(row.task.task);
            if tasks.len() == filter.limit {
                break;
            }
        }
        scanned += read;
        if tasks.len() == filter.limit || read < BATCH || scanned >= SCAN {
            let more = tasks.len() == filter.limit || read == BATCH;
            return Ok(TaskPage {
                next_cursor: more.then(|| before.to_string()),
                tasks,
            });
        }
    }
}
