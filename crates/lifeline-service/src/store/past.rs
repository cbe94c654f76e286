//! The past beyond the statistics: the task list as it was after an event, and the timeline of
//! the log (from the checkpoints) that the dashboard's replay moves along.

use lifeline_model::api::{Timeline, TimelinePoint};
use lifeline_model::{EndpointId, TaskPage, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::read::{list_tasks, state_from};
use super::{StoreResult, TaskFilter, book_at, time_of};
use crate::users::UserId;

/// Tasks read per query while listing the past.
const BATCH: usize = 500;
/// Most tasks read for one page of the past.
const SCAN: usize = 20_000;

/// The tasks `filter` asks for as they were right after event `at_seq`: only tasks that existed
/// then, each in the state (and attempt) it was in, newest first.
pub fn tasks_at(conn: &Connection, filter: &TaskFilter, at_seq: u64) -> StoreResult<TaskPage> {
    // The newest task that existed then: the task of the last `received` at or before the moment.
    let newest: Option<i64> = conn
        .prepare_cached(
            "SELECT task FROM events WHERE seq <= ?1 AND from_state IS NULL AND task IS NOT NULL \
             AND state = 0 ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([at_seq as i64], |r| r.get(0))
        .optional()?;
    let Some(newest) = newest else {
        return Ok(TaskPage {
            tasks: Vec::new(),
            next_cursor: None,
        });
    };
    let mut walk = TaskFilter {
        states: Vec::new(),
        before: Some(filter.before.unwrap_or(i64::MAX).min(newest + 1)),
        limit: BATCH,
        ..filter.clone()
    };
    let mut state_then = conn.prepare_cached(
        "SELECT state, attempt FROM events WHERE task = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1",
    )?;
    let mut tasks = Vec::new();
    let mut scanned = 0;
    loop {
        let page = list_tasks(conn, &walk)?;
        scanned += page.tasks.len();
        for mut task in page.tasks {
            let seq: i64 = conn
                .prepare_cached("SELECT seq FROM tasks WHERE id = ?1")?
                .query_row([task.task_id.as_u128().to_be_bytes()], |r| r.get(0))?;
            walk.before = Some(seq);
            let then: Option<(i64, u32)> = state_then
                .query_row(params![seq, at_seq as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((code, attempt)) = then else {
                continue;
            };
            task.state = state_from(code)?;
            task.attempt = attempt;
            if filter.states.is_empty() || filter.states.contains(&task.state) {
                tasks.push(task);
                if tasks.len() == filter.limit {
                    break;
                }
            }
        }
        let done = page.next_cursor.is_none();
        if tasks.len() == filter.limit || done || scanned >= SCAN {
            let more = tasks.len() == filter.limit || !done;
            return Ok(TaskPage {
                tasks,
                next_cursor: more.then(|| walk.before.unwrap_or(0).to_string()),
            });
        }
    }
}

/// Points added between the first event and the head when checkpoints are few (a young or
/// quiet store), so that the throughput strip has a shape.
const SAMPLES: u64 = 24;

/// The log's timeline: up to `points` checkpoints spread over it, and the head, each with the
/// number of transitions `keep` accepts up to it (their differences are the throughput). When
/// there are few checkpoints, the first stored event and evenly spaced moments are added.
pub fn timeline(
    conn: &Connection,
    head: u64,
    points: usize,
    keep: impl Fn(EndpointId, UserId) -> bool,
) -> StoreResult<Timeline> {
    let count: i64 = conn.query_row("SELECT count(*) FROM checkpoints", [], |r| r.get(0))?;
    let step = (count as usize).div_ceil(points.max(1)).max(1);
    let mut seqs: Vec<u64> = conn
        .prepare_cached("SELECT seq FROM checkpoints ORDER BY seq")?
        .query_map([], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0)
        .map(|(_, seq)| seq as u64)
        .collect();
    let first: Option<i64> = conn.query_row("SELECT min(seq) FROM events", [], |r| r.get(0))?;
    if let Some(first) = first.map(|f| f as u64)
        && (seqs.len() as u64) < SAMPLES
    {
        let span = head.saturating_sub(first);
        seqs.extend((0..SAMPLES).map(|i| first + span * i / SAMPLES));
    }
    seqs.push(head);
    seqs.sort_unstable();
    seqs.dedup();
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs.into_iter().filter(|s| *s > 0) {
        let at = time_of(conn, seq)?;
        out.push(point(conn, seq, at, &keep)?);
    }
    Ok(Timeline { points: out })
}

fn point(
    conn: &Connection,
    seq: u64,
    at: Option<Timestamp>,
    keep: &impl Fn(EndpointId, UserId) -> bool,
) -> StoreResult<TimelinePoint> {
    let stats = book_at(conn, seq)?.sum(keep);
    let transitions = stats.edges.iter().flatten().sum::<u64>() + stats.tasks.total();
    Ok(TimelinePoint {
        seq,
        at: at.unwrap_or_default(),
        transitions,
    })
}
