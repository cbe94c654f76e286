//! Retention: a finished task past the retention loses its arguments, result and events, a few
//! hundred tasks per write so that ingest never waits long behind a purge. Its row stays, so
//! that its state still counts in the statistics and a request for it answers 410 Gone rather
//! than 404; SQLite reuses the freed pages for new tasks.
//!
//! Event-stream clients resuming from before a removed event are told to reload: the store
//! keeps the highest sequence number it ever removed (`purged_through`).

use std::sync::atomic::Ordering;

use lifeline_model::{State, TaskId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreResult, registry};

/// The `meta` key of the highest removed event's sequence number.
pub(super) const PURGED_THROUGH: &str = "purged_through";

/// Tasks expired per write.
pub const EXPIRE_BATCH: usize = 200;

/// Finished tasks that ended before `cutoff` and still hold their data, oldest end first.
fn due(conn: &Connection, cutoff: Timestamp, limit: usize) -> StoreResult<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM tasks WHERE state BETWEEN 6 AND 8 AND expired = 0 AND since < ?1 \
         ORDER BY since LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![cutoff.as_micros(), limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
}

/// Whether a task is past the retention: expired already, or finished before `cutoff`.
pub fn is_expired(conn: &Connection, id: TaskId, cutoff: Timestamp) -> StoreResult<bool> {
    let row: Option<(bool, i64, i64)> = conn
        .prepare_cached("SELECT expired, state, since FROM tasks WHERE id = ?1")?
        .query_row([id.as_u128().to_be_bytes()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    Ok(row.is_some_and(|(expired, code, since)| {
        expired
            || (State::from_storage_code(code).is_some_and(State::is_terminal)
                && since < cutoff.as_micros())
    }))
}

pub(super) fn load_purged_through(conn: &Connection) -> StoreResult<u64> {
    Ok(registry::meta(conn, PURGED_THROUGH)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

impl Store {
    /// The highest sequence number of an event retention removed (0: none).
    pub fn purged_through(&self) -> u64 {
        self.shared.purged_through.load(Ordering::Acquire)
    }

    /// Removes the arguments, result and events of up to `limit` tasks that finished before
    /// `cutoff`; returns how many it expired.
    pub async fn expire_finished(&self, cutoff: Timestamp, limit: usize) -> StoreResult<usize> {
        let tasks = self.read(move |c| due(c, cutoff, limit)).await?;
        if tasks.is_empty() {
            return Ok(0);
        }
        let shared = self.shared.clone();
        self.write(move |ctx| {
            let conn = ctx.conn()?;
            let mut removed = 0u64;
            let mut events =
                conn.prepare_cached("DELETE FROM events WHERE task = ?1 RETURNING seq")?;
            let mut clear = conn.prepare_cached(
                "UPDATE tasks SET args = '[]', kwargs = '{}', result = NULL, expired = 1 \
                 WHERE seq = ?1 AND state BETWEEN 6 AND 8",
            )?;
            for seq in &tasks {
                let seqs = events.query_map([seq], |r| r.get::<_, i64>(0))?;
                for s in seqs {
                    removed = removed.max(s? as u64);
                }
                clear.execute([seq])?;
            }
            let through = load_purged_through(conn)?.max(removed);
            registry::set_meta(conn, PURGED_THROUGH, &through.to_string())?;
            // Raised before the commit: a stream resuming meanwhile is told to reload once too
            // often rather than miss a removed event.
            shared.purged_through.fetch_max(through, Ordering::AcqRel);
            Ok(tasks.len())
        })
        .await
    }
}
