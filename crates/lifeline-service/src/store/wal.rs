//! Moving the write-ahead log into the database file off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so every few
//! dozen commits one of them would copy the log into the file and sync it: a stall of
//! milliseconds for whichever request waited on that commit. The writer's connection turns it
//! off, and this thread checkpoints instead, several times a second (`PASSIVE`: it never waits
//! for the writer or a reader, and copies what no reader still needs).
//!
//! Under a steady stream of commits a passive checkpoint never catches up with the last one, and
//! SQLite starts the log over only when it has: the log would grow without bound (gigabytes
//! after a hundred thousand tasks), every commit appending to fresh blocks of the file, which the
//! kernel must zero first. So this thread also publishes how long the log is, and once it passes
//! [`RESTART_FRAMES`] the writer itself, between two batches, copies the rest and starts the log
//! over ([`restart`]): a pause of a millisecond or so every few thousand commits, and a log file
//! that stays about that size, its blocks written over rather than new.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often the log is checkpointed.
const EVERY: Duration = Duration::from_millis(200);

/// Pages in the log past which the writer starts it over (32 MiB of 4 KiB pages).
const RESTART_FRAMES: u64 = 8192;
/// Longest the writer waits for readers to leave the log it starts over.
const RESTART_WAIT: Duration = Duration::from_millis(50);

/// Pages in the log at the last checkpoint, shared by the checkpointing thread and the writer.
#[derive(Debug, Default)]
pub(super) struct LogLength(AtomicU64);

impl LogLength {
    /// Whether the log is long enough to be started over.
    pub(super) fn due(&self) -> bool {
        self.0.load(Ordering::Relaxed) >= RESTART_FRAMES
    }
}

/// Copies the rest of the log into the store file and starts it over, on the writer's
/// connection between two batches (no other write can come in meanwhile); waits for readers
/// still reading the log.
pub(super) fn restart(conn: &Connection, length: &LogLength) {
    // A reader that holds on longer than this makes it give up until the next checkpoint's
    // measure: the writer never waits long.
    let done = conn.busy_timeout(RESTART_WAIT).and_then(|()| {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
    });
    let reset = conn.busy_timeout(super::schema::BUSY_TIMEOUT);
    match done.and_then(|busy| reset.map(|()| busy)) {
        Ok(0) => {}
        // Another checkpoint ran, or a reader stayed in the log: tried again after the next
        // measure, not at every batch meanwhile.
        Ok(_) => tracing::debug!("the store's log could not be started over yet"),
        Err(error) => tracing::warn!(%error, "could not start the store's log over"),
    }
    length.0.store(0, Ordering::Relaxed);
}

/// Copies the whole log into the store file and empties it (at shutdown: waits for readers).
pub(super) fn checkpoint_all(path: &Path) {
    let done = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|conn| {
        conn.busy_timeout(super::schema::BUSY_TIMEOUT)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    });
    if let Err(error) = done {
        tracing::warn!(%error, "could not copy the store's log into its file");
    }
}

/// Starts the checkpointing thread for the store at `path`; it ends when `stop`'s sender is
/// dropped (the writer stopped).
pub(super) fn spawn(
    path: &Path,
    stop: mpsc::Receiver<()>,
    length: Arc<LogLength>,
) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(super::schema::BUSY_TIMEOUT)?;
    std::thread::Builder::new()
        .name("lifeline-wal".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(EVERY) {
                // The second column: pages in the log.
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
                    Ok(pages) => length.0.store(pages.max(0) as u64, Ordering::Relaxed),
                    Err(error) => tracing::warn!(%error, "could not checkpoint the store's log"),
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages in the log, after a passive checkpoint.
    fn log_pages(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .expect("checkpoint")
    }

    fn commit(conn: &Connection) {
        conn.execute("INSERT INTO t (body) VALUES (zeroblob(8000))", [])
            .expect("insert");
    }

    #[test]
    fn a_restart_starts_a_log_the_checkpoint_never_caught_up_with_over() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store");
        let writer = Connection::open(&path).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (body BLOB);",
            )
            .expect("schema");
        let reader = Connection::open(&path).expect("open");
        for _ in 0..100 {
            commit(&writer);
        }
        // A reader holds on to that moment while more commits come, so that the checkpoint
        // cannot copy them all: the log goes on growing after it, as under a steady load.
        reader
            .execute_batch("BEGIN; SELECT count(*) FROM t;")
            .expect("read");
        for _ in 0..100 {
            commit(&writer);
        }
        let before = log_pages(&writer);
        reader.execute_batch("COMMIT").expect("end read");
        commit(&writer);
        assert!(log_pages(&writer) > before, "the log kept growing");

        let length = LogLength::default();
        length.0.store(RESTART_FRAMES, Ordering::Relaxed);
        assert!(length.due());
        restart(&writer, &length);
        assert!(!length.due());
        commit(&writer);
        let after = log_pages(&writer);
        assert!(
            after < 10,
            "the log started over: {after} pages, {before} before"
        );
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 202);
    }
}
