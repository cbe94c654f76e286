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
