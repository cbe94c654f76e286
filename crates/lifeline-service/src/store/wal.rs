//! Moving the write-ahead log into the database file off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so every few
//! dozen commits one of them would copy the log into the file and sync it: a stall of
//! milliseconds for whichever request waited on that commit. The writer's connection turns it
//! off, and this thread checkpoints instead, several times a second (`PASSIVE`: it never waits
//! for the writer or a reader, and copies what no reader still needs; the writer starts the log
//! over once all of it is copied).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often the log is checkpointed.
const EVERY: Duration = Duration::from_millis(200);

/// Copies the whole log into the store file and empties it (at shutdown: waits for readers).
pub(super) fn checkpoint_all(path: &Path) {
    let done = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|conn| {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    });
    if let Err(error) = done {
        tracing::warn!(%error, "could not copy the store's log into its file");
    }
}

/// Starts the checkpointing thread for the store at `path`; it ends when `stop`'s sender is
/// dropped (the writer stopped).
pub(super) fn spawn(path: &Path, stop: mpsc::Receiver<()>) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    std::thread::Builder::new()
        .name("lifeline-wal".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(EVERY) {
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(%error, "could not checkpoint the store's log");
                }
            }
        })?;
    Ok(())
}
