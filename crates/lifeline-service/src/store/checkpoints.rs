//! The statistics as they were at any point of the log: checkpoints of the whole book, taken by
//! the writer every [`EVERY_EVENTS`] events or [`EVERY`] (whichever comes first), and the events
//! after the nearest one replayed on top. Reading the past therefore costs at most a
//! checkpoint's decoding and [`EVERY_EVENTS`] events, whatever the length of the log.

use std::time::Duration;

use lifeline_model::{EndpointId, State, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::StoreResult;
use super::read::{id_from, state_from};
use crate::stats::{Histogram, Stats, StatsBook};
use crate::users::UserId;

/// Most events between two checkpoints.
pub(super) const EVERY_EVENTS: u64 = 10_000;
/// Longest time between two checkpoints while events arrive.
pub(super) const EVERY: Duration = Duration::from_secs(60);

/// One state's stays: its state index, its nonzero buckets and the longest stay.
type Stays = (u8, Vec<(u16, u64)>, u64);

/// One (endpoint, owner) pair's statistics, compactly: counts, nonzero edges and nonzero
/// dwell-time buckets. The figures written with each batch (`stats_by_owner`) have this form;
/// a checkpoint holds one per pair, with the pair.
#[derive(Serialize, Deserialize)]
pub(super) struct Figures {
    /// Tasks per state, by state index.
    t: Vec<u64>,
    /// (from, to, count) by state index.
    g: Vec<(u8, u8, u64)>,
    d: Vec<Stays>,
}

impl Figures {
    pub(super) fn of(s: &Stats) -> Self {
        Self {
            t: State::ALL.iter().map(|st| s.tasks.get(*st)).collect(),
            g: s.edges
                .iter()
                .enumerate()
                .flat_map(|(f, row)| {
                    row.iter()
                        .enumerate()
                        .filter(|(_, n)| **n > 0)
                        .map(move |(t, n)| (f as u8, t as u8, *n))
                })
                .collect(),
            d: s.dwell
                .iter()
                .enumerate()
                .filter(|(_, h)| h.count() > 0)
                .map(|(i, h)| (i as u8, h.sparse(), h.max_micros()))
                .collect(),
        }
    }

    /// The statistics again; cells outside the model's states are left out.
    pub(super) fn into_stats(self) -> Stats {
        let mut s = Stats::default();
        for (state, n) in State::ALL.iter().zip(&self.t) {
            s.tasks.add(*state, *n as i64);
        }
        for (f, t, n) in self.g {
            if let Some(cell) = s
                .edges
                .get_mut(usize::from(f))
                .and_then(|row| row.get_mut(usize::from(t)))
            {
                *cell = n;
            }
        }
        for (i, buckets, max) in self.d {
            if let Some(h) = s.dwell.get_mut(usize::from(i)) {
                *h = Histogram::from_sparse(&buckets, max);
            }
        }
        s
    }
}

/// One pair's figures in a checkpoint: the pair beside the fields of [`Figures`], flat, as
/// checkpoints have always been stored (a nested `Figures` would change the stored form, and
/// serde's `flatten` would buffer every entry of a checkpoint on reading).
#[derive(Serialize, Deserialize)]
struct Entry {
    e: String,
    o: i64,
    t: Vec<u64>,
    g: Vec<(u8, u8, u64)>,
    d: Vec<Stays>,
}

fn encode(book: &StatsBook) -> serde_json::Result<String> {
    let entries: Vec<Entry> = book
        .iter()
        .map(|((endpoint, owner), s)| {
            let Figures { t, g, d } = Figures::of(s);
            Entry {
                e: endpoint.to_string(),
                o: owner.0,
                t,
                g,
                d,
            }
        })
        .collect();
    serde_json::to_string(&entries)
}

fn decode(text: &str) -> serde_json::Result<StatsBook> {
    let entries: Vec<Entry> = serde_json::from_str(text)?;
    let parts = entries.into_iter().filter_map(|Entry { e, o, t, g, d }| {
        let endpoint: EndpointId = e.parse().ok()?;
        Some(((endpoint, UserId(o)), Figures { t, g, d }.into_stats()))
    });
    Ok(StatsBook::from_parts(parts))
}

fn corrupt(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
}

/// Records the book as it is after event `seq`, inside the writer's transaction.
pub(super) fn take(
    conn: &Connection,
    seq: u64,
    at: Timestamp,
    book: &StatsBook,
) -> rusqlite::Result<()> {
    let body = encode(book).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    conn.prepare_cached("INSERT OR REPLACE INTO checkpoints (seq, at, body) VALUES (?1, ?2, ?3)")?
        .execute(params![seq as i64, at.as_micros(), body.into_bytes()])?;
    Ok(())
}

/// The last checkpoint's sequence number (0 when there is none).
pub(super) fn last(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT coalesce(max(seq), 0) FROM checkpoints", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
}

/// The statistics as they were right after event `seq`.
pub fn book_at(conn: &Connection, seq: u64) -> StoreResult<StatsBook> {
    let base: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT seq, body FROM checkpoints WHERE seq <= ?1 ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([seq as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (from, mut book) = match base {
        Some((at, body)) => {
            let text = String::from_utf8_lossy(&body);
            (at as u64, decode(&text).map_err(corrupt)?)
        }
        // Before the first checkpoint (a store older than checkpoints): from the beginning.
        None => (0, StatsBook::default()),
    };
    replay(conn, &mut book, from, seq)?;
    Ok(book)
}

/// Applies the task transitions of events `after < seq <= through` to `book`.
fn replay(conn: &Connection, book: &mut StatsBook, after: u64, through: u64) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.endpoint_id, t.owner, e.from_state, e.state, e.dwell_us FROM events e \
         JOIN tasks t ON t.seq = e.task \
         WHERE e.seq > ?1 AND e.seq <= ?2 AND e.task IS NOT NULL ORDER BY e.seq",
    )?;
    let mut rows = stmt.query(params![after as i64, through as i64])?;
    while let Some(row) = rows.next()? {
        let endpoint = EndpointId::from_u128(id_from(row.get(0)?)?);
        let key = (endpoint, UserId(row.get(1)?));
        let from: Option<i64> = row.get(2)?;
        let to = state_from(row.get(3)?)?;
        let dwell: Option<i64> = row.get(4)?;
        match (from.map(state_from).transpose()?, dwell) {
            (None, _) => book.received(key),
            (Some(from), Some(dwell)) => book.moved(key, from, to, dwell.max(0) as u64),
            (Some(from), None) => book.shifted(key, from, to),
        }
    }
    Ok(())
}

/// The last event at or before `at` (0 when none): found between the checkpoints around `at`.
pub fn seq_at_time(conn: &Connection, at: Timestamp) -> StoreResult<u64> {
    let t = at.as_micros();
    let after: i64 = conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM checkpoints WHERE at <= ?1")?
        .query_row([t], |r| r.get(0))?;
    let before: Option<i64> = conn
        .prepare_cached("SELECT min(seq) FROM checkpoints WHERE at > ?1")?
        .query_row([t], |r| r.get(0))?;
    let found: Option<i64> = conn
        .prepare_cached("SELECT max(seq) FROM events WHERE seq >= ?1 AND seq <= ?2 AND at <= ?3")?
        .query_row(params![after, before.unwrap_or(i64::MAX), t], |r| r.get(0))?;
    Ok(found.unwrap_or(after).max(0) as u64)
}

/// When event `seq` (or the last one before it) happened.
pub fn time_of(conn: &Connection, seq: u64) -> StoreResult<Option<Timestamp>> {
    Ok(conn
        .prepare_cached("SELECT at FROM events WHERE seq <= ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row([seq as i64], |r| r.get(0))
        .optional()?
        .map(Timestamp::from_micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_keep_every_count_edge_and_stay() {
        let key = (EndpointId::from_u128(7), UserId(2));
        let mut book = StatsBook::default();
        for dwell in [0, 1, 900, 45_000, 3_600_000_000] {
            book.received(key);
            book.moved(key, State::Received, State::DispatchedToEp, dwell);
            book.moved(key, State::DispatchedToEp, State::Running, dwell / 2);
        }
        book.shifted(key, State::Running, State::Failed);
        let stats = book.get(key).expect("stats").clone();

        let text = serde_json::to_string(&Figures::of(&stats)).expect("json");
        let back = serde_json::from_str::<Figures>(&text)
            .expect("figures")
            .into_stats();
        assert_eq!(back, stats);
        // A full row, as older versions wrote them, is not taken for compact figures.
        let full = serde_json::to_string(&stats).expect("json");
        assert!(serde_json::from_str::<Figures>(&full).is_err());
        assert!(
            text.len() * 4 < full.len(),
            "{} bytes against {}",
            text.len(),
            full.len()
        );

        // Rows of either form are read back as the same statistics.
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(
            "CREATE TABLE stats_by_owner (endpoint_id BLOB NOT NULL, owner INTEGER NOT NULL, \
             body TEXT NOT NULL, PRIMARY KEY (endpoint_id, owner)) STRICT;",
        )
        .expect("table");
        let other = (EndpointId::from_u128(8), UserId(2));
        for ((endpoint, owner), body) in [(key, &full), (other, &text)] {
            conn.execute(
                "INSERT INTO stats_by_owner (endpoint_id, owner, body) VALUES (?1, ?2, ?3)",
                params![endpoint.as_u128().to_be_bytes(), owner.0, body],
            )
            .expect("row");
        }
        let read = super::super::read::load_stats(&conn).expect("read");
        assert_eq!(read.get(key), Some(&stats));
        assert_eq!(read.get(other), Some(&stats));
    }
}
