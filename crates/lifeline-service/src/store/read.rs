//! Queries. They run on read connections (or inside a write job through [`super::Ctx::conn`]).

use lifeline_model::{
    Actor, EndpointId, FunctionId, State, StatusDocument, TaskGroupId, TaskId, TaskMeta, TaskPage,
    TaskSummary, Timestamp, TransitionRecord,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::value::RawValue;

use super::{StoreError, StoreResult, StoredEvent, TaskRow};
use crate::access::Scope;
use crate::stats::{Stats, StatsBook};
use crate::users::UserId;

pub(super) fn id_from(bytes: Vec<u8>) -> rusqlite::Result<u128> {
    let arr: [u8; 16] = bytes.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Blob)
    })?;
    Ok(u128::from_be_bytes(arr))
}

pub(super) fn state_from(i: i64) -> rusqlite::Result<State> {
    State::from_storage_code(i).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, i))
}

fn actor_from(i: i64) -> rusqlite::Result<Actor> {
    Actor::from_storage_code(i).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, i))
}

/// The columns [`task_from_row_at`] reads, as a macro so that queries can be spelled with
/// `concat!` and need no formatting each time they run.
macro_rules! task_columns {
    () => {
        "seq, id, group_id, endpoint_id, function_id, state, attempt, max_retries, created_at, since, owner"
    };
}
pub(super) const TASK_COLUMNS: &str = task_columns!();

fn task_from_row(r: &Row<'_>) -> rusqlite::Result<TaskRow> {
    task_from_row_at(r, 0)
}

/// A task row whose [`TASK_COLUMNS`] start at column `at`.
pub(super) fn task_from_row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        seq: r.get(at)?,
        task: TaskSummary {
            task_id: TaskId::from_u128(id_from(r.get(at + 1)?)?),
            task_group_id: TaskGroupId::from_u128(id_from(r.get(at + 2)?)?),
            endpoint_id: EndpointId::from_u128(id_from(r.get(at + 3)?)?),
            function_id: FunctionId::from_u128(id_from(r.get(at + 4)?)?),
            state: state_from(r.get(at + 5)?)?,
            attempt: r.get(at + 6)?,
            max_retries: r.get(at + 7)?,
            created_at: Timestamp::from_micros(r.get(at + 8)?),
            since: Timestamp::from_micros(r.get(at + 9)?),
        },
        owner: UserId(r.get(at + 10)?),
    })
}

pub(crate) fn task_row(conn: &Connection, id: TaskId) -> rusqlite::Result<Option<TaskRow>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        task_columns!(),
        " FROM tasks WHERE id = ?1"
    ))?
    .query_row([id.as_u128().to_be_bytes()], task_from_row)
    .optional()
}

pub(super) fn head(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
}

pub(super) fn load_stats(conn: &Connection) -> rusqlite::Result<StatsBook> {
    let mut stmt = conn.prepare("SELECT endpoint_id, owner, body FROM stats_by_owner")?;
    let rows = stmt.query_map([], |r| {
        let id = EndpointId::from_u128(id_from(r.get(0)?)?);
        let owner = UserId(r.get(1)?);
        let body: String = r.get(2)?;
        // Compact figures; a row no batch has written since an older version stays in the
        // full form that version wrote.
        let stats = serde_json::from_str::<super::checkpoints::Figures>(&body)
            .map(super::checkpoints::Figures::into_stats)
            .or_else(|_| serde_json::from_str::<Stats>(&body))
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
            })?;
        Ok(((id, owner), stats))
    })?;
    Ok(StatsBook::from_parts(
        rows.collect::<rusqlite::Result<Vec<_>>>()?,
    ))
}

/// Who submitted a task and where it runs.
pub fn task_owner(conn: &Connection, id: TaskId) -> StoreResult<Option<(UserId, EndpointId)>> {
    Ok(conn
        .prepare_cached("SELECT owner, endpoint_id FROM tasks WHERE id = ?1")?
        .query_row([id.as_u128().to_be_bytes()], |r| {
            Ok((
                UserId(r.get(0)?),
                EndpointId::from_u128(id_from(r.get(1)?)?),
            ))
        })
        .optional()?)
}

/// How many bytes of text a task's status document carries (its result and the reasons of its
/// log), from the stored lengths without reading the texts; 0 for an unknown task.
pub fn document_bytes(conn: &Connection, id: TaskId) -> StoreResult<u64> {
    let bytes: Option<i64> = conn
        .prepare_cached(
            "SELECT coalesce(octet_length(t.result), 0) + coalesce((SELECT \
             sum(octet_length(e.reason)) FROM events e WHERE e.task = t.seq), 0) \
             FROM tasks t WHERE t.id = ?1",
        )?
        .query_row([id.as_u128().to_be_bytes()], |r| r.get(0))
        .optional()?;
    Ok(bytes.unwrap_or(0).max(0) as u64)
}

/// A task's status document, folded from its log.
pub fn status_document(
    conn: &Connection,
    id: TaskId,
) -> StoreResult<Option<StatusDocument<Box<RawValue>>>> {
    let Some(row) = task_row(conn, id)? else {
        return Ok(None);
    };
    let task = &row.task;
    let log = conn
        .prepare_cached(
            "SELECT state, actor, attempt, at, reason FROM events WHERE task = ?1 ORDER BY seq",
        )?
        .query_map([row.seq], |r| {
            Ok(TransitionRecord {
                state: state_from(r.get(0)?)?,
                actor: actor_from(r.get(1)?)?,
                attempt: r.get(2)?,
                at: Timestamp::from_micros(r.get(3)?),
                reason: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let result: Option<String> = if task.state == State::Success {
        conn.prepare_cached("SELECT result FROM tasks WHERE seq = ?1")?
            .query_row([row.seq], |r| r.get(0))?
    } else {
        None
    };
    let result = result.map(RawValue::from_string).transpose().map_err(|e| {
        StoreError::Db(rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            e.into(),
        ))
    })?;
    let meta = TaskMeta {
        task_id: task.task_id,
        endpoint_id: task.endpoint_id,
        function_id: task.function_id,
        max_retries: task.max_retries,
    };
    let doc = StatusDocument::build(meta, log, result).map_err(|e| {
        StoreError::Conflict(format!("the stored log of task {id} does not fold: {e}"))
    })?;
    Ok(Some(doc))
}

/// Filters of the task list. Each list holds alternatives; empty means any.
#[derive(Clone, Debug)]
pub struct TaskFilter {
    /// Whose tasks.
    pub scope: Scope,
    pub endpoints: Vec<EndpointId>,
    pub states: Vec<State>,
    pub function: Option<FunctionId>,
    pub group: Option<TaskGroupId>,
    /// Only tasks that took this edge (then the list is newest edge first, and the cursor an
    /// event's sequence number).
    pub edge: Option<(State, State)>,
    /// Only tasks that failed or were retried for this group's cause (then the list is newest
    /// failure first, and the cursor an event's sequence number).
    pub failure: Option<super::FailureFilter>,
    /// Only tasks older (smaller sequence) than this.
    pub before: Option<i64>,
    pub limit: usize,
}

/// Newest-first tasks matching `filter`. Each (endpoint, state) alternative walks its own index
/// range backwards from the cursor and the walks are merged, so a page costs O(limit x
/// alternatives) whatever the number of stored tasks.
pub fn list_tasks(conn: &Connection, filter: &TaskFilter) -> StoreResult<TaskPage> {
    if let Some(failure) = &filter.failure {
        return super::failures::tasks_with_failure(conn, filter, failure);
    }
    if let Some(edge) = filter.edge {
        return tasks_on_edge(conn, filter, edge);
    }
    let endpoints: Vec<Option<EndpointId>> = if filter.endpoints.is_empty() {
        vec![None]
    } else {
        filter.endpoints.iter().copied().map(Some).collect()
    };
    // Each lane is one index walk: (endpoint, owner). A user's scope is their own tasks plus
    // every task on the endpoints they own, each walked on its own index and merged.
    let mut lanes: Vec<(Option<EndpointId>, Option<UserId>)> = Vec::new();
    for endpoint in &endpoints {
        match &filter.scope {
            Scope::All => lanes.push((*endpoint, None)),
            Scope::Mine(user) => lanes.push((*endpoint, Some(*user))),
            Scope::Visible { user, owned } => {
                lanes.push((*endpoint, Some(*user)));
                for o in owned {
                    if endpoint.is_none_or(|e| e == *o) {
                        lanes.push((Some(*o), None));
                    }
                }
            }
        }
    }
    let states: Vec<Option<State>> = if filter.states.is_empty() {
        vec![None]
    } else {
        filter.states.iter().copied().map(Some).collect()
    };
    let before = filter.before.unwrap_or(i64::MAX);
    let want = filter.limit + 1;
    let mut rows: Vec<TaskRow> = Vec::new();
    for (endpoint, owner) in &lanes {
        for state in &states {
            let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE seq < ?1");
            if endpoint.is_some() {
                sql.push_str(" AND endpoint_id = ?2");
            }
            if state.is_some() {
                sql.push_str(" AND state = ?3");
            }
            if filter.function.is_some() {
                sql.push_str(" AND function_id = ?4");
            }
            if filter.group.is_some() {
                sql.push_str(" AND group_id = ?5");
            }
            // ?7 is always in the text (a constant test when no owner is wanted), so that all
            // seven parameters can be bound.
            sql.push_str(if owner.is_some() {
                " AND owner = ?7"
            } else {
                " AND ?7 IS NULL"
            });
            sql.push_str(" ORDER BY seq DESC LIMIT ?6");
            let mut stmt = conn.prepare_cached(&sql)?;
            // Every statement ends with ?6 and holds ?7; parameters absent from the text are
            // ignored.
            let mut query = stmt.query(params![
                before,
                endpoint.map(|e| e.as_u128().to_be_bytes()),
                state.map(|s| i64::from(s.storage_code())),
                filter.function.map(|f| f.as_u128().to_be_bytes()),
                filter.group.map(|g| g.as_u128().to_be_bytes()),
                want as i64,
                owner.map(|o| o.0),
            ])?;
            while let Some(row) = query.next()? {
                rows.push(task_from_row(row)?);
            }
        }
    }
    // A user's task on their own endpoint is found by two lanes.
    rows.sort_unstable_by_key(|t| std::cmp::Reverse(t.seq));
    rows.dedup_by_key(|t| t.seq);
    rows.truncate(want);
    let next_cursor = if rows.len() > filter.limit {
        rows.truncate(filter.limit);
        rows.last().map(|t| t.seq.to_string())
    } else {
        None
    };
    Ok(TaskPage {
        tasks: rows.into_iter().map(|r| r.task).collect(),
        next_cursor,
    })
}

/// The tasks that took `edge`, newest crossing first: the edge index walked backwards from the
/// cursor, each crossing joined to its task and kept when the task passes the other filters. A
/// task that took the edge several times is listed once per page, at its newest crossing. The
/// walk reads
/// at most [`EDGE_SCAN`] crossings per page, so a page costs the same with any number of tasks;
/// a page cut short by that bound still has a cursor to go on from.
fn tasks_on_edge(
    conn: &Connection,
    filter: &TaskFilter,
    (from, to): (State, State),
) -> StoreResult<TaskPage> {
    let mut sql = format!(
        "SELECT e.seq, {} FROM events e JOIN tasks t ON t.seq = e.task \
         WHERE e.from_state = ?1 AND e.state = ?2 AND e.task IS NOT NULL AND e.seq < ?3",
        TASK_COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    sql.push_str(" ORDER BY e.seq DESC LIMIT ?4");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut before = filter.before.unwrap_or(i64::MAX);
    let mut seen = std::collections::HashSet::new();
    let mut tasks = Vec::new();
    let mut scanned = 0;
    loop {
        let mut rows = stmt.query(params![
            i64::from(from.storage_code()),
            i64::from(to.storage_code()),
            before,
            EDGE_BATCH as i64,
        ])?;
        let mut read = 0;
        while let Some(row) = rows.next()? {
            read += 1;
            before = row.get(0)?;
            let task = task_from_row_at(row, 1)?;
            if !seen.insert(task.task.task_id) || !edge_filter_keeps(filter, &task) {
                continue;
            }
            tasks.push(task);
            if tasks.len() == filter.limit {
                break;
            }
        }
        drop(rows);
        scanned += read;
        if tasks.len() == filter.limit || read < EDGE_BATCH || scanned >= EDGE_SCAN {
            let more = tasks.len() == filter.limit || read == EDGE_BATCH;
            return Ok(TaskPage {
                next_cursor: more.then(|| before.to_string()),
                tasks: tasks.into_iter().map(|r| r.task).collect(),
            });
        }
    }
}

/// Crossings read per query while listing an edge's tasks.
const EDGE_BATCH: usize = 1000;
/// Most crossings read for one page.
const EDGE_SCAN: usize = 100_000;

/// Whether a task found on an edge passes the list's other filters.
pub(super) fn edge_filter_keeps(filter: &TaskFilter, row: &TaskRow) -> bool {
    let t = &row.task;
    filter.scope.sees(row.owner, t.endpoint_id)
        && (filter.endpoints.is_empty() || filter.endpoints.contains(&t.endpoint_id))
        && (filter.states.is_empty() || filter.states.contains(&t.state))
        && filter.function.is_none_or(|f| f == t.function_id)
        && filter.group.is_none_or(|g| g == t.task_group_id)
}

/// Up to `limit` events after `after`, for one endpoint or all, in sequence order.
pub fn events_after(
    conn: &Connection,
    after: u64,
    endpoint: Option<EndpointId>,
    limit: usize,
) -> StoreResult<Vec<StoredEvent>> {
    let sql = "SELECT e.seq, e.endpoint_id, e.state, e.actor, e.attempt, e.at, e.reason, e.body, \
               t.id, t.function_id, t.max_retries, \
               (SELECT p.state FROM events p WHERE p.task = e.task AND p.seq < e.seq ORDER BY p.seq DESC LIMIT 1), \
               t.group_id, t.owner \
               FROM events e LEFT JOIN tasks t ON t.seq = e.task \
               WHERE e.seq > ?1 AND (?2 IS NULL OR e.endpoint_id = ?2) ORDER BY e.seq LIMIT ?3";
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(
        params![
            after as i64,
            endpoint.map(|e| e.as_u128().to_be_bytes()),
            limit as i64
        ],
        |r| {
            let seq: i64 = r.get(0)?;
            let endpoint_id = EndpointId::from_u128(id_from(r.get(1)?)?);
            let body: Option<String> = r.get(7)?;
            let body = match body {
                Some(json) => serde_json::from_str(&json).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        7,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })?,
                None => lifeline_model::EventBody::Transition(lifeline_model::TransitionEvent {
                    task_id: TaskId::from_u128(id_from(r.get(8)?)?),
                    task_group_id: match r.get::<_, Option<i64>>(11)? {
                        None => Some(TaskGroupId::from_u128(id_from(r.get(12)?)?)),
                        Some(_) => None,
                    },
                    endpoint_id,
                    function_id: FunctionId::from_u128(id_from(r.get(9)?)?),
                    from: r.get::<_, Option<i64>>(11)?.map(state_from).transpose()?,
                    to: state_from(r.get(2)?)?,
                    actor: actor_from(r.get(3)?)?,
                    attempt: r.get(4)?,
                    max_retries: r.get(10)?,
                    at: Timestamp::from_micros(r.get(5)?),
                    reason: r.get(6)?,
                }),
            };
            let event = lifeline_model::Event {
                seq: seq as u64,
                body,
            };
            let owner = r.get::<_, Option<i64>>(13)?.map(UserId);
            Ok(StoredEvent::new(endpoint_id, owner, event))
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Up to `limit` of an endpoint's tasks in any of `states`, oldest first, after sequence `after`.
pub fn tasks_in_states(
    conn: &Connection,
    endpoint: EndpointId,
    states: &[State],
    after: i64,
    limit: usize,
) -> StoreResult<Vec<TaskRow>> {
    let mut rows = Vec::new();
    for state in states {
        let mut stmt = conn.prepare_cached(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE endpoint_id = ?1 AND state = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4"
        ))?;
        let found = stmt
            .query_map(
                params![
                    endpoint.as_u128().to_be_bytes(),
                    i64::from(state.storage_code()),
                    after,
                    limit as i64
                ],
                task_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.extend(found);
    }
    rows.sort_unstable_by_key(|t| t.seq);
    rows.truncate(limit);
    Ok(rows)
}

/// Up to `limit` tasks (of every endpoint) that have been in `state` since before `cutoff`,
/// oldest first.
pub fn tasks_since(
    conn: &Connection,
    state: State,
    cutoff: Timestamp,
    limit: usize,
) -> StoreResult<Vec<TaskId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM tasks WHERE state = ?1 AND since < ?2 ORDER BY seq LIMIT ?3",
    )?;
    let ids = stmt
        .query_map(
            params![
                i64::from(state.storage_code()),
                cutoff.as_micros(),
                limit as i64
            ],
            |r| Ok(TaskId::from_u128(id_from(r.get(0)?)?)),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids)
}

/// Args and kwargs of a stored task, as JSON text.
pub fn task_payload(conn: &Connection, seq: i64) -> StoreResult<(String, String)> {
    Ok(conn
        .prepare_cached("SELECT args, kwargs FROM tasks WHERE seq = ?1")?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))?)
}
