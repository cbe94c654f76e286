//! Task groups (one per submission), newest first, with where their tasks are.

use lifeline_model::api::{GroupPage, GroupSummary};
use lifeline_model::{EndpointId, FunctionId, StateCounts, TaskGroupId, Timestamp};
use rusqlite::{Connection, params};

use super::StoreResult;
use super::read::{id_from, state_from};
use crate::users::UserId;

/// Groups read per query while filling a page.
const BATCH: usize = 500;
/// Most groups read for one page.
const SCAN: usize = 20_000;

/// A page of the groups of the (endpoint, owner) pairs `keep` accepts, older than `before`.
pub fn list_groups(
    conn: &Connection,
    keep: impl Fn(EndpointId, UserId) -> bool,
    before: Option<i64>,
    limit: usize,
) -> StoreResult<GroupPage> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, owner, endpoint_id, function_id, created_at, size FROM task_groups \
         WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let mut before = before.unwrap_or(i64::MAX);
    let mut groups = Vec::new();
    let mut scanned = 0;
    loop {
        let rows = stmt
            .query_map(params![before, BATCH as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    GroupSummary {
                        task_group_id: TaskGroupId::from_u128(id_from(r.get(1)?)?),
                        endpoint_id: EndpointId::from_u128(id_from(r.get(3)?)?),
                        function_id: FunctionId::from_u128(id_from(r.get(4)?)?),
                        created_at: Timestamp::from_micros(r.get(5)?),
                        size: r.get::<_, i64>(6)?.max(0) as u64,
                        tasks: StateCounts::default(),
                    },
                    UserId(r.get(2)?),
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let read = rows.len();
        for (seq, group, owner) in rows {
            before = seq;
            if !keep(group.endpoint_id, owner) {
                continue;
            }
            groups.push(group);
            if groups.len() == limit {
                break;
            }
        }
        scanned += read;
        if groups.len() == limit || read < BATCH || scanned >= SCAN {
            let more = groups.len() == limit || read == BATCH;
            for g in &mut groups {
                g.tasks = counts(conn, g.task_group_id)?;
            }
            return Ok(GroupPage {
                groups,
                next_cursor: more.then(|| before.to_string()),
            });
        }
    }
}

/// A group's tasks per state, counted along the group index.
fn counts(conn: &Connection, group: TaskGroupId) -> StoreResult<StateCounts> {
    let mut stmt = conn
        .prepare_cached("SELECT state, count(*) FROM tasks WHERE group_id = ?1 GROUP BY state")?;
    let rows = stmt.query_map([group.as_u128().to_be_bytes()], |r| {
        Ok((state_from(r.get(0)?)?, r.get::<_, i64>(1)?.max(0) as u64))
    })?;
    Ok(rows.collect::<rusqlite::Result<StateCounts>>()?)
}

/// A group's figures now: its owner and endpoint (for access), the last event they include,
/// its tasks per state and the edges they took (`edges[from][to]`).
#[derive(Debug)]
pub struct GroupFigures {
    pub owner: UserId,
    pub endpoint: EndpointId,
    pub seq: u64,
    pub tasks: StateCounts,
    pub edges: Vec<(lifeline_model::State, lifeline_model::State, u64)>,
}

/// A group's figures, read in one snapshot; `None` for an unknown group.
pub fn group_figures(conn: &Connection, group: TaskGroupId) -> StoreResult<Option<GroupFigures>> {
    use rusqlite::OptionalExtension;
    let id = group.as_u128().to_be_bytes();
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT owner, endpoint_id FROM task_groups WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((owner, endpoint)) = row else {
        return Ok(None);
    };
    let seq: i64 = conn.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(
        "SELECT e.from_state, e.state, count(*) FROM tasks t JOIN events e ON e.task = t.seq \
         WHERE t.group_id = ?1 AND e.from_state IS NOT NULL AND e.seq <= ?2 GROUP BY 1, 2",
    )?;
    let edges = stmt
        .query_map(params![id, seq], |r| {
            Ok((
                state_from(r.get(0)?)?,
                state_from(r.get(1)?)?,
                r.get::<_, i64>(2)?.max(0) as u64,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(GroupFigures {
        owner: UserId(owner),
        endpoint: EndpointId::from_u128(id_from(endpoint)?),
        seq: seq.max(0) as u64,
        tasks: counts(conn, group)?,
        edges,
    }))
}
