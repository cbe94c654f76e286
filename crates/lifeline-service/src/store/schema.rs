//! The SQLite schema and its migrations. `PRAGMA user_version` records which have run.

use rusqlite::Connection;

/// Each entry moves the schema one version up; never edit one that has shipped, add another.
const MIGRATIONS: &[&str] = &[
    // 1: endpoints, functions, tasks, the event log (transitions and endpoint changes, numbered
    // by the global sequence), per-endpoint statistics and service metadata.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE endpoints (
        id BLOB PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        deleted_at INTEGER
    ) STRICT;
    CREATE TABLE functions (
        id BLOB PRIMARY KEY,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE tasks (
        seq INTEGER PRIMARY KEY,
        id BLOB NOT NULL UNIQUE,
        group_id BLOB NOT NULL,
        endpoint_id BLOB NOT NULL,
        function_id BLOB NOT NULL,
        state INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        max_retries INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        since INTEGER NOT NULL,
        args TEXT NOT NULL,
        kwargs TEXT NOT NULL,
        result TEXT
    ) STRICT;
    CREATE INDEX tasks_by_endpoint_state ON tasks (endpoint_id, state, seq);
    CREATE INDEX tasks_by_endpoint ON tasks (endpoint_id, seq);
    CREATE INDEX tasks_by_state ON tasks (state, seq);
    CREATE INDEX tasks_by_function ON tasks (function_id, seq);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        task INTEGER,
        endpoint_id BLOB NOT NULL,
        state INTEGER,
        actor INTEGER,
        attempt INTEGER,
        at INTEGER NOT NULL,
        reason TEXT,
        body TEXT
    ) STRICT;
    CREATE INDEX events_by_task ON events (task, seq) WHERE task IS NOT NULL;
    CREATE INDEX events_by_endpoint ON events (endpoint_id, seq);
    CREATE TABLE stats (endpoint_id BLOB PRIMARY KEY, body TEXT NOT NULL) STRICT;
    "#,
    // 2: listing a submission's tasks.
    "CREATE INDEX tasks_by_group ON tasks (group_id, seq);",
];

/// Sets the connection options every connection uses.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // With WAL, NORMAL loses no committed transaction on a process crash; only a power cut can
    // drop the last ones.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Brings the schema up to date, each migration in its own transaction.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Options for read-only connections (the journal mode belongs to the database file).
pub(crate) fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}
