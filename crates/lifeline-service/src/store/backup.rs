//! Backups of a running service's store, taken with SQLite's online backup API while ingest goes
//! on: the copy is one consistent moment of the store (every page copied in one step, under one
//! read transaction), checked before it is called done.

use std::path::Path;

use anyhow::{Context, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::FILE_NAME;

/// What a backup holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    pub tasks: u64,
    pub events: u64,
}

/// Copies the store in `data_dir` to `dest` (a new file, mode 0600), consistently, while the
/// service keeps writing. `serve --data-dir` on a directory holding the copy (named
/// `lifeline.sqlite3`) comes up with every task and event of that moment.
pub fn backup(data_dir: &Path, dest: &Path) -> anyhow::Result<BackupSummary> {
    let source_path = data_dir.join(FILE_NAME);
    if !source_path.is_file() {
        bail!("there is no store at {}", source_path.display());
    }
    let source = Connection::open_with_flags(
        &source_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", source_path.display()))?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    // A new file only, private from the start: it holds every task's arguments and results.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(dest).with_context(|| {
        format!(
            "cannot create {} (a backup never overwrites a file)",
            dest.display()
        )
    })?;
    let mut copy = Connection::open(dest)?;
    {
        let backup = Backup::new(&source, &mut copy)?;
        // Every page in one step (-1): one read transaction, so the copy is one moment of the
        // store. A writer holding a lock only delays the step.
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    }
    let check: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        bail!(
            "the copy at {} fails its integrity check: {check}",
            dest.display()
        );
    }
    let count = |table: &str| -> rusqlite::Result<u64> {
        copy.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n.max(0) as u64)
    };
    Ok(BackupSummary {
        tasks: count("tasks")?,
        events: count("events")?,
    })
}
