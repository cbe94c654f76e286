//! The SQLite schema and its migrations. `PRAGMA user_version` records which have run.

use lifeline_model::{Edge, State};
use rusqlite::{Connection, Transaction, params};

/// One step of the schema: SQL, or code for what SQL cannot say.
enum Migration {
    Sql(&'static str),
    Code(fn(&Transaction<'_>) -> rusqlite::Result<()>),
}

use Migration::{Code, Sql};

/// Each entry moves the schema one version up; never edit one that has shipped, add another.
const MIGRATIONS: &[Migration] = &[
    // 1: endpoints, functions, tasks, the event log (transitions and endpoint changes, numbered
    // by the global sequence), per-endpoint statistics and service metadata.
    Sql(r#"
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
    "#),
    // 2: listing a submission's tasks.
    Sql("CREATE INDEX tasks_by_group ON tasks (group_id, seq);"),
    // 3: a task lost before its function started is requeued on the same attempt (it used to
    // take the next one): renumber the attempts of logs written under the old rule.
    Code(renumber_attempts),
    // 4: users and their tokens; everything made before belongs to `admin` (user 1), whose token
    // is the single user token of earlier versions. Endpoints can be shared; statistics are kept
    // per endpoint and owner, so that each user's counts add up to the tasks they may see; admin
    // actions are audited.
    Sql(r#"
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        admin INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        removed_at INTEGER,
        max_queued INTEGER,
        max_submits_per_sec REAL
    ) STRICT;
    INSERT INTO users (id, name, admin, created_at) VALUES (1, 'admin', 1, unixepoch() * 1000000);
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id),
        digest TEXT NOT NULL UNIQUE,
        name TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER
    ) STRICT;
    CREATE INDEX tokens_by_user ON tokens (user_id);
    INSERT INTO tokens (id, user_id, digest, name, created_at)
        SELECT lower(hex(randomblob(8))), 1, value, 'initial', unixepoch() * 1000000
        FROM meta WHERE key = 'user_token_digest';
    DELETE FROM meta WHERE key = 'user_token_digest';
    ALTER TABLE endpoints ADD COLUMN owner INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE endpoints ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE endpoint_shares (
        endpoint_id BLOB NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users (id),
        PRIMARY KEY (endpoint_id, user_id)
    ) STRICT, WITHOUT ROWID;
    ALTER TABLE functions ADD COLUMN owner INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE tasks ADD COLUMN owner INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX tasks_by_owner ON tasks (owner, seq);
    CREATE TABLE stats_by_owner (
        endpoint_id BLOB NOT NULL,
        owner INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (endpoint_id, owner)
    ) STRICT;
    INSERT INTO stats_by_owner (endpoint_id, owner, body) SELECT endpoint_id, 1, body FROM stats;
    DROP TABLE stats;
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT
    ) STRICT;
    "#),
    // 5 to 7: each transition records the state it left, so that the tasks that took an edge
    // are found through an index (`GET /v1/tasks?edge=`).
    Sql(r#"
    ALTER TABLE events ADD COLUMN from_state INTEGER;
    "#),
    Code(fill_from_states),
    Sql(r#"
    CREATE INDEX events_by_edge ON events (from_state, state, seq) WHERE task IS NOT NULL;
    "#),
    // 8: retention. A finished task past it keeps its row (its state stays in the counts and
    // it answers 410 Gone) but loses its arguments, result and events; `expired` marks it.
    // The partial index lists finished tasks (success, failed, cancelled: codes 6, 7, 8) not
    // expired yet, oldest end first.
    Sql(r#"
    ALTER TABLE tasks ADD COLUMN expired INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX tasks_to_expire ON tasks (since) WHERE state IN (6, 7, 8) AND expired = 0;
    "#),
    // 9: the past. Each transition records how long its task stayed in the state it left;
    // checkpoints of the statistics (every 10,000 events or every minute) let the counts at any
    // sequence number be read without replaying the log from the start; each submission is a
    // row of `task_groups`.
    Sql(r#"
    ALTER TABLE events ADD COLUMN dwell_us INTEGER;
    CREATE TABLE checkpoints (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        body BLOB NOT NULL
    ) STRICT;
    CREATE INDEX checkpoints_by_time ON checkpoints (at);
    CREATE TABLE task_groups (
        seq INTEGER PRIMARY KEY,
        id BLOB NOT NULL UNIQUE,
        owner INTEGER NOT NULL,
        endpoint_id BLOB NOT NULL,
        function_id BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        size INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX task_groups_by_endpoint ON task_groups (endpoint_id, seq);
    CREATE INDEX task_groups_by_owner ON task_groups (owner, seq);
    INSERT INTO task_groups (id, owner, endpoint_id, function_id, created_at, size)
        SELECT group_id, min(owner), min(endpoint_id), min(function_id), min(created_at), count(*)
        FROM tasks GROUP BY group_id ORDER BY min(seq);
    "#),
    // 10: cheaper transitions. The log by endpoint was never read through its index (a stream
    // filtered to one endpoint walks the log from where it resumes, by sequence number), yet
    // every transition paid for an entry in it. The index of finished tasks names their codes
    // as a range: with an `IN` list, every change of a task's state built two temporary b-trees
    // to test the old and the new row against it.
    Sql(r#"
    DROP INDEX IF EXISTS events_by_endpoint;
    DROP INDEX IF EXISTS tasks_to_expire;
    CREATE INDEX tasks_to_expire ON tasks (since) WHERE state BETWEEN 6 AND 8 AND expired = 0;
    "#),
];

/// Gives every task transition already in the log the state it left: the state of the task's
/// previous transition.
fn fill_from_states(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut fill = tx.prepare("UPDATE events SET from_state = ?2 WHERE seq = ?1")?;
    let mut rows = tx
        .prepare("SELECT seq, task, state FROM events WHERE task IS NOT NULL ORDER BY task, seq")?;
    let mut rows = rows.query([])?;
    let mut previous: Option<(i64, i64)> = None;
    while let Some(row) = rows.next()? {
        let (seq, task, state): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        if let Some((t, from)) = previous
            && t == task
        {
            fill.execute(params![seq, from])?;
        }
        previous = Some((task, state));
    }
    Ok(())
}

/// Walks every task's log in order and gives each transition the attempt the current rule
/// gives it; the task's own attempt follows its last transition.
fn renumber_attempts(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut fix_event = tx.prepare("UPDATE events SET attempt = ?2 WHERE seq = ?1")?;
    let mut fix_task =
        tx.prepare("UPDATE tasks SET attempt = ?2 WHERE seq = ?1 AND attempt != ?2")?;
    let mut rows = tx.prepare(
        "SELECT seq, task, state, attempt FROM events WHERE task IS NOT NULL ORDER BY task, seq",
    )?;
    let mut rows = rows.query([])?;
    // (task, its previous state, its attempt so far)
    let mut current: Option<(i64, Option<State>, u32)> = None;
    while let Some(row) = rows.next()? {
        let (seq, task, code, stored): (i64, i64, Option<i64>, Option<u32>) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        if current.is_some_and(|(t, ..)| t != task) {
            if let Some((t, _, attempt)) = current {
                fix_task.execute(params![t, attempt])?;
            }
            current = None;
        }
        let to = code.and_then(State::from_storage_code);
        let (previous, attempt) = match current {
            Some((_, previous, attempt)) => (previous, attempt),
            None => (None, 1),
        };
        let attempt = match (previous, to) {
            (Some(from), Some(to)) => {
                Edge::find(from, to).map_or(attempt, |edge| match edge.kind {
                    lifeline_model::EdgeKind::Retry => attempt + 1,
                    _ => attempt,
                })
            }
            _ => attempt,
        };
        if stored != Some(attempt) {
            fix_event.execute(params![seq, attempt])?;
        }
        current = Some((task, to, attempt));
    }
    if let Some((t, _, attempt)) = current {
        fix_task.execute(params![t, attempt])?;
    }
    Ok(())
}

/// How long a connection waits for a lock another holds.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Sets the connection options every connection uses.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // With WAL, NORMAL loses no committed transaction on a process crash; only a power cut can
    // drop the last ones.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Brings the schema up to date, each migration in its own transaction.
pub(crate) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        anyhow::bail!(
            "the store has schema version {version}, written by a newer Lifeline; this one knows \
             versions up to {}: run the newer version, or restore a backup made by this one",
            MIGRATIONS.len()
        );
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        match migration {
            Sql(sql) => tx.execute_batch(sql)?,
            Code(step) => step(&tx)?,
        }
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Options for read-only connections (the journal mode belongs to the database file).
pub(crate) fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}
