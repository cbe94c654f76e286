//! The durable store: SQLite in WAL mode, written by one thread that batches many changes per
//! transaction, read by a small pool of connections.
//!
//! Every write is a closure run on the writer thread inside a savepoint of the current batch's
//! transaction ([`Store::write`]). Events the closure records get their global sequence numbers
//! from the event log's primary key, so they are gap-free and in commit order; they are published
//! to subscribers only after the batch commits, and callers hear back only then.

mod backup;
mod checkpoints;
mod failures;
mod groups;
mod past;
mod read;
pub mod registry;
mod retention;
mod schema;
pub mod users;
mod wal;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use lifeline_model::EndpointId;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::metrics::WriterMetrics;
use crate::stats::StatsBook;
use crate::users::UserId;

/// The name of the thread that owns the store's one writing connection (what `top -H` and
/// `/proc/PID/task/*/comm` show; the end-to-end benchmark finds it by it).
pub const WRITER_THREAD: &str = "lifeline-writer";

pub use backup::{BackupSummary, backup};
pub use checkpoints::{book_at, seq_at_time, time_of};
pub use failures::{FailureFilter, FailureRow, failures};
pub use groups::{GroupFigures, group_figures, list_groups};
pub use past::{tasks_at, timeline};
pub(crate) use read::task_row;
pub use read::{
    TaskFilter, document_bytes, events_after, list_tasks, status_document, task_owner,
    task_payload, tasks_in_states, tasks_since,
};
pub use retention::{EXPIRE_BATCH, is_expired};
pub use writer::{Ctx, NewTask, Outcome, Proposal};

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("the store is shutting down")]
    Closed,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A task as stored: its summary, and its place in insertion order (the list's cursor).
#[derive(Clone, Debug)]
pub struct TaskRow {
    pub seq: i64,
    pub task: lifeline_model::TaskSummary,
    /// The user who submitted it.
    pub owner: UserId,
}

/// An event of the log, written as JSON once for every subscriber, by the first that sends it:
/// the writer, the service's one serial stage, never spends time on text nobody may read.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub endpoint_id: EndpointId,
    /// The owner of the task a transition is about; `None` for an endpoint's status change.
    pub owner: Option<UserId>,
    pub event: lifeline_model::Event,
    json: std::sync::OnceLock<Box<str>>,
}

impl StoredEvent {
    pub(crate) fn new(
        endpoint_id: EndpointId,
        owner: Option<UserId>,
        event: lifeline_model::Event,
    ) -> Self {
        Self {
            endpoint_id,
            owner,
            event,
            json: std::sync::OnceLock::new(),
        }
    }

    /// The event's sequence number.
    pub fn seq(&self) -> u64 {
        self.event.seq
    }

    /// The task a transition moved and the state it entered.
    pub fn task(&self) -> Option<(lifeline_model::TaskId, lifeline_model::State)> {
        match &self.event.body {
            lifeline_model::EventBody::Transition(t) => Some((t.task_id, t.to)),
            lifeline_model::EventBody::Endpoint(_) => None,
        }
    }

    /// The event as JSON.
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            serde_json::to_string(&self.event)
                // An event holds ids, numbers and strings only: nothing that fails to serialise.
                .unwrap_or_else(|error| {
                    tracing::error!(%error, seq = self.event.seq, "an event could not be written as JSON");
                    String::from("{}")
                })
                .into()
        })
    }
}

type Reply = Box<dyn FnOnce() + Send>;
type Job = Box<dyn FnOnce(&mut Ctx<'_>) -> (bool, Reply) + Send>;

/// What the writer and the readers share.
#[derive(Debug)]
struct Shared {
    /// The sequence number of the last committed event.
    head: AtomicU64,
    bus: broadcast::Sender<Arc<StoredEvent>>,
    /// The statistics and the sequence number of the last event they include, changed together.
    stats: RwLock<(u64, StatsBook)>,
    metrics: WriterMetrics,
    /// The highest sequence number of an event retention removed.
    purged_through: AtomicU64,
    /// How long the write-ahead log has grown.
    log: Arc<wal::LogLength>,
}

/// A handle on the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: Arc<Path>,
    shared: Arc<Shared>,
}

/// The store's file in the data directory.
pub const FILE_NAME: &str = "lifeline.sqlite3";

/// Opens the store's file, creating it (mode 0600, in a directory made 0700) only when there is
/// none, and checks an existing one before anything is written to it.
fn open_file(dir: &Path, path: &Path) -> anyhow::Result<Connection> {
    use anyhow::Context;
    let restore = "restore it from a backup (copy the backup to this path while the service is \
                   stopped), or move it away to start an empty store";
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let existing = match std::fs::metadata(path) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    match existing {
        Some(meta) if meta.len() == 0 => anyhow::bail!(
            "the store {} is empty (0 bytes), so it holds no Lifeline data: {restore}",
            path.display()
        ),
        Some(_) => {}
        None => {
            // Task arguments and results are private: the file (and with it the WAL and shared
            // memory files, which SQLite creates with the database's mode) is the owner's only.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options
                .open(path)
                .with_context(|| format!("cannot create the store {}", path.display()))?;
        }
    }
    // Never SQLITE_OPEN_CREATE: the file exists now, and if it vanished, starting empty in its
    // place would hide that.
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the store {}", path.display()))?;
    let check: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
    match check {
        Ok(lines) if lines == ["ok"] => {}
        Ok(lines) => anyhow::bail!(
            "the store {} is damaged (SQLite's integrity check says: {}): {restore}",
            path.display(),
            lines.into_iter().take(3).collect::<Vec<_>>().join("; ")
        ),
        Err(e) => anyhow::bail!(
            "the store {} cannot be read as a Lifeline store ({e}): {restore}",
            path.display()
        ),
    }
    schema::configure(&conn)?;
    schema::migrate(&mut conn)
        .with_context(|| format!("cannot bring the store {} up to date", path.display()))?;
    Ok(conn)
}

/// How many events a subscriber may fall behind before it is sent back to the log.
const BUS_CAPACITY: usize = 16_384;

impl Store {
    /// Opens (creating if needed) the store in `dir`, migrates it and starts its writer thread.
    ///
    /// An existing file must be a sound store: one that is empty, is not SQLite, or fails
    /// SQLite's integrity check stops the start with a message, and is never replaced.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path: Arc<Path> = dir.join(FILE_NAME).into();
        let conn = open_file(dir, &path)?;
        let stats = read::load_stats(&conn)?;
        let head = read::head(&conn)?;
        let purged_through = retention::load_purged_through(&conn)?;
        let (bus, _) = broadcast::channel(BUS_CAPACITY);
        let shared = Arc::new(Shared {
            head: AtomicU64::new(head),
            bus,
            stats: RwLock::new((head, stats)),
            metrics: WriterMetrics::default(),
            purged_through: AtomicU64::new(purged_through),
            log: Arc::default(),
        });
        let (jobs, rx) = mpsc::channel(4096);
        let writer_shared = shared.clone();
        // The writer never checkpoints the log itself (see `wal.rs`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // A statement that changes many rows keeps a journal of its own, to undo just that
        // statement; past 64 KiB SQLite spills it to a file it creates and deletes in the
        // system's temporary directory, about a hundred a second under load. In memory, it costs
        // no file system work (and no task data lands in a shared directory); it holds the pages
        // one job changes, and jobs are bounded (500 submitted, 2,000 dispatched or 200 expired
        // tasks at most).
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        let (writer_running, writer_stopped) = std::sync::mpsc::channel::<()>();
        wal::spawn(&path, writer_stopped, shared.log.clone())?;
        std::thread::Builder::new()
            .name(WRITER_THREAD.into())
            .spawn(move || {
                writer::run(conn, rx, &writer_shared);
                drop(writer_running);
            })?;
        Ok(Self {
            jobs,
            readers: Arc::default(),
            path,
            shared,
        })
    }

    /// Runs `f` on the writer thread inside the current batch. Its changes, and the events it
    /// records, are kept only if it returns `Ok`; the answer arrives once the batch is durable.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.write_then(f, |t| t).await
    }

    /// [`Store::write`], with `then` run on the writer thread on `f`'s answer once the batch is
    /// durable, before the caller hears back: for a quick step that must follow the commit as
    /// closely as possible (such as sending a stored task on), without the switch to the
    /// caller's thread in between. `then` must be brief: the writer's next batch waits for it.
    pub async fn write_then<T, U, F, G>(&self, f: F, then: G) -> StoreResult<U>
    where
        T: Send + 'static,
        U: Send + 'static,
        F: FnOnce(&mut Ctx<'_>) -> StoreResult<T> + Send + 'static,
        G: FnOnce(T) -> U + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |ctx| {
            // The rows the job moved are written inside it: a failure fails this job alone.
            let result = f(ctx).and_then(|t| ctx.write_rows().map(|()| t));
            let keep = result.is_ok();
            (keep, Box::new(move || drop(tx.send(result.map(then)))))
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` with a read connection on the blocking pool. Readers see committed data only.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = store.take_reader()?;
            let result = f(&conn);
            store
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Runs a point read (a few indexed lookups of small rows: microseconds) with a read
    /// connection on the calling thread. Handing such a read to the blocking pool costs two thread switches, more
    /// than the read itself, on the path of every submission and status request. Scans and
    /// anything that grows with the data go through [`Store::read`].
    pub fn lookup<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.take_reader()?;
        let result = f(&conn);
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        result
    }

    fn take_reader(&self) -> StoreResult<Connection> {
        // A std mutex, held only to pop or push a connection, never across an await.
        if let Some(conn) = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        schema::configure_reader(&conn)?;
        Ok(conn)
    }

    /// The sequence number of the last committed event.
    pub fn head(&self) -> u64 {
        self.shared.head.load(Ordering::Acquire)
    }

    /// Events as they commit. Subscribe before reading the log to miss nothing in between.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.shared.bus.subscribe()
    }

    /// Reads the statistics under their lock, with the sequence number of the last event they
    /// include.
    pub fn with_stats<T>(&self, f: impl FnOnce(&StatsBook) -> T) -> (u64, T) {
        let guard = self.shared.stats.read().unwrap_or_else(|e| e.into_inner());
        (guard.0, f(&guard.1))
    }

    /// What the writer counts, for the metrics.
    pub fn writer_metrics(&self) -> &WriterMetrics {
        &self.shared.metrics
    }

    /// Waits until every write sent so far is committed, then copies the whole log into the
    /// store file, so that a stopped service leaves one self-contained file.
    pub async fn close(self) {
        let _ = self.write(|_| Ok(())).await;
        let path = self.path.clone();
        let _ = tokio::task::spawn_blocking(move || wal::checkpoint_all(&path)).await;
    }
}
