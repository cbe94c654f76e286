//! The writer thread and the operations it runs inside a batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use lifeline_model::{
    Actor, EndpointId, EndpointStatus, Event, EventBody, FunctionId, State, TaskGroupId, TaskId,
    TaskView, Timestamp, TransitionError, TransitionEvent, validate,
};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;

use super::{Job, Reply, Shared, StoreError, StoreResult, StoredEvent, TaskRow, checkpoints, read};
use crate::metrics::Counted;
use crate::stats::StatsBook;
use crate::users::UserId;

/// Most jobs folded into one transaction.
const MAX_BATCH: usize = 4096;

/// A task about to be stored.
#[derive(Debug)]
pub struct NewTask {
    pub task_id: TaskId,
    pub function_id: FunctionId,
    /// JSON text of an array.
    pub args: String,
    /// JSON text of an object.
    pub kwargs: String,
}

/// A transition someone wants to make.
#[derive(Debug)]
pub struct Proposal {
    pub task_id: TaskId,
    pub to: State,
    pub actor: Actor,
    /// The attempt the reporter believes the task is on after the transition; `None` lets the
    /// rule decide (the service's own transitions).
    pub attempt: Option<u32>,
    pub at: Timestamp,
    pub reason: Option<String>,
    /// JSON text of the result, with `success`.
    pub result: Option<String>,
    /// Set when an endpoint reports: the task must be one of its own.
    pub reporter: Option<EndpointId>,
}

/// What became of a proposal.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied {
        from: State,
        to: State,
        attempt: u32,
        endpoint_id: EndpointId,
    },
    /// The same transition is already in the log (a replay); nothing changed.
    Duplicate,
    /// The model forbids it; nothing changed.
    Illegal(TransitionError),
    /// The task belongs to another endpoint.
    Forbidden,
    Unknown,
}

/// A task left a state for another after so many microseconds.
type Move = (State, State, u64);

/// One job's view of the batch: the open transaction and the events it has recorded.
#[derive(Debug)]
pub struct Ctx<'a> {
    conn: &'a Connection,
    events: Vec<StoredEvent>,
    /// Stats changes, applied only if the job's savepoint is kept.
    moves: Vec<((EndpointId, UserId), Option<Move>)>,
    /// Retries and failures, counted only if the job's savepoint is kept.
    counted: Vec<Counted>,
    /// The task rows this job inserted or moved, as they stand in it. A moved row reaches the
    /// table once, when the job ends ([`Ctx::write_rows`], called by [`super::Store::write_then`]
    /// inside the job), however many transitions it took:
    /// an endpoint's report often carries several of one task, and a submission moves each
    /// task it inserts.
    rows: HashMap<TaskId, JobRow>,
}

/// A task row as a job left it.
#[derive(Debug)]
struct JobRow {
    row: TaskRow,
    /// Whether the job moved the task: its state, attempt and time are still to be written.
    moved: bool,
    /// The result to store with it.
    result: Option<String>,
}

/// When the writer last took a checkpoint of the statistics.
struct Checkpointed {
    seq: u64,
    when: std::time::Instant,
}

impl Checkpointed {
    /// Whether the book after event `head` is due for a checkpoint.
    fn due(&self, head: u64) -> bool {
        head > self.seq
            && (head - self.seq >= checkpoints::EVERY_EVENTS
                || self.when.elapsed() >= checkpoints::EVERY)
    }
}

pub(super) fn run(mut conn: Connection, mut jobs: mpsc::Receiver<Job>, shared: &Shared) {
    let mut stats = shared
        .stats
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .1
        .clone();
    let mut checkpointed = Checkpointed {
        seq: checkpoints::last(&conn).unwrap_or(0),
        when: std::time::Instant::now(),
    };
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (jobs_in_batch, started) = (batch.len(), std::time::Instant::now());
        match run_batch(&mut conn, batch, &mut stats, &mut checkpointed) {
            Ok((events, replies, counted)) => {
                shared
                    .metrics
                    .committed(jobs_in_batch, started.elapsed(), &counted);
                if let Some(last) = events.last() {
                    let mut guard = shared.stats.write().unwrap_or_else(|e| e.into_inner());
                    shared.head.store(last.seq(), Ordering::Release);
                    *guard = (last.seq(), stats.clone());
                }
                for event in events {
                    // No subscriber is fine: the log keeps everything.
                    let _ = shared.bus.send(Arc::new(event));
                }
                for reply in replies {
                    reply();
                }
                if shared.log.due() {
                    super::wal::restart(&conn, &shared.log);
                }
            }
            Err(error) => {
                // The batch is rolled back and its callers see the store as closed for this
                // request; the statistics go back to what is committed.
                tracing::error!(%error, "a write batch failed and was rolled back");
                stats = read::load_stats(&conn).unwrap_or_default();
            }
        }
    }
    tracing::debug!("the store's writer stopped");
}

fn run_batch(
    conn: &mut Connection,
    batch: Vec<Job>,
    stats: &mut StatsBook,
    checkpointed: &mut Checkpointed,
) -> rusqlite::Result<(Vec<StoredEvent>, Vec<Reply>, Vec<Counted>)> {
    let mut tx = conn.transaction()?;
    let mut events = Vec::new();
    let mut counted = Vec::new();
    let mut replies = Vec::with_capacity(batch.len());
    let mut touched = std::collections::HashSet::new();
    for job in batch {
        let sp = tx.savepoint()?;
        let mut ctx = Ctx {
            conn: &sp,
            events: Vec::new(),
            moves: Vec::new(),
            counted: Vec::new(),
            rows: HashMap::new(),
        };
        let (keep, reply) = job(&mut ctx);
        let Ctx {
            events: job_events,
            moves,
            counted: job_counted,
            ..
        } = ctx;
        if keep {
            sp.commit()?;
            for (key, step) in moves {
                touched.insert(key);
                match step {
                    None => stats.received(key),
                    Some((from, to, dwell)) => stats.moved(key, from, to, dwell),
                }
            }
            events.extend(job_events);
            counted.extend(job_counted);
        }
        replies.push(reply);
    }
    for key in touched {
        if let Some(s) = stats.get(key) {
            let body = serde_json::to_string(&checkpoints::Figures::of(s))
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO stats_by_owner (endpoint_id, owner, body) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![key.0.as_u128().to_be_bytes(), key.1.0, body])?;
        }
    }
    let head = events.last().map(|e| e.seq());
    let checkpoint = head.filter(|h| checkpointed.due(*h));
    if let Some(head) = checkpoint {
        checkpoints::take(&tx, head, crate::now(), stats)?;
    }
    tx.commit()?;
    if let Some(head) = checkpoint {
        *checkpointed = Checkpointed {
            seq: head,
            when: std::time::Instant::now(),
        };
    }
    Ok((events, replies, counted))
}

fn id_bytes(id: u128) -> [u8; 16] {
    id.to_be_bytes()
}

impl Ctx<'_> {
    /// The open transaction, for reads and writes that have no helper here; the job's moves
    /// are in the tables first.
    pub fn conn(&mut self) -> StoreResult<&Connection> {
        self.write_rows()?;
        Ok(self.conn)
    }

    /// Writes the rows of the tasks this job moved; the job forgets them only once all are
    /// written.
    pub(super) fn write_rows(&mut self) -> StoreResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut update = self.conn.prepare_cached(
            "UPDATE tasks SET state = ?2, attempt = ?3, since = ?4, result = coalesce(?5, result) \
             WHERE seq = ?1",
        )?;
        for JobRow { row, result, .. } in self.rows.values().filter(|r| r.moved) {
            let t = &row.task;
            update.execute(params![
                row.seq,
                i64::from(t.state.storage_code()),
                t.attempt,
                t.since.as_micros(),
                result
            ])?;
        }
        self.rows.clear();
        Ok(())
    }

    /// A task's arguments and keyword arguments (JSON text); no job changes them.
    pub fn payload(&self, row: &TaskRow) -> StoreResult<(String, String)> {
        read::task_payload(self.conn, row.seq)
    }

    fn push_event(
        &mut self,
        endpoint_id: EndpointId,
        owner: Option<UserId>,
        seq: i64,
        body: EventBody,
    ) {
        let event = Event {
            seq: seq as u64,
            body,
        };
        self.events
            .push(StoredEvent::new(endpoint_id, owner, event));
    }

    /// Stores new tasks in `received`, each with its first log entry.
    pub fn insert_tasks(
        &mut self,
        owner: UserId,
        group: TaskGroupId,
        endpoint_id: EndpointId,
        max_retries: u32,
        tasks: &[NewTask],
        now: Timestamp,
    ) -> StoreResult<()> {
        if let Some(first) = tasks.first() {
            // A submission stored in several jobs adds to its group's row.
            self.conn
                .prepare_cached(
                    "INSERT INTO task_groups (id, owner, endpoint_id, function_id, created_at, size) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (id) DO UPDATE SET size = size + excluded.size",
                )?
                .execute(params![
                    id_bytes(group.as_u128()),
                    owner.0,
                    id_bytes(endpoint_id.as_u128()),
                    id_bytes(first.function_id.as_u128()),
                    now.as_micros(),
                    tasks.len() as i64,
                ])?;
        }
        for task in tasks {
            let task_seq = {
                let mut stmt = self.conn.prepare_cached(
                    "INSERT INTO tasks (id, group_id, endpoint_id, function_id, state, attempt, max_retries, \
                     created_at, since, args, kwargs, owner) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?7, ?8, ?9, ?10)",
                )?;
                stmt.execute(params![
                    id_bytes(task.task_id.as_u128()),
                    id_bytes(group.as_u128()),
                    id_bytes(endpoint_id.as_u128()),
                    id_bytes(task.function_id.as_u128()),
                    i64::from(State::Received.storage_code()),
                    max_retries,
                    now.as_micros(),
                    task.args,
                    task.kwargs,
                    owner.0,
                ])?;
                self.conn.last_insert_rowid()
            };
            let row = TaskRow {
                seq: task_seq,
                task: lifeline_model::TaskSummary {
                    task_id: task.task_id,
                    task_group_id: group,
                    endpoint_id,
                    function_id: task.function_id,
                    state: State::Received,
                    attempt: 1,
                    max_retries,
                    created_at: now,
                    since: now,
                },
                owner,
            };
            self.rows.insert(
                task.task_id,
                JobRow {
                    row,
                    moved: false,
                    result: None,
                },
            );
            let first = lifeline_model::TransitionRecord {
                state: State::Received,
                actor: Actor::WebService,
                attempt: 1,
                at: now,
                reason: None,
            };
            let seq = self.insert_transition(task_seq, endpoint_id, None, &first)?;
            self.moves.push(((endpoint_id, owner), None));
            let event = TransitionEvent {
                task_id: task.task_id,
                task_group_id: Some(group),
                endpoint_id,
                function_id: task.function_id,
                from: None,
                to: State::Received,
                actor: Actor::WebService,
                attempt: 1,
                max_retries,
                at: now,
                reason: None,
            };
            self.push_event(endpoint_id, Some(owner), seq, EventBody::Transition(event));
        }
        Ok(())
    }

    /// Appends a transition to the log, with the state it left (what the edge index reads).
    fn insert_transition(
        &self,
        task_seq: i64,
        endpoint_id: EndpointId,
        from: Option<(State, u64)>,
        record: &lifeline_model::TransitionRecord,
    ) -> StoreResult<i64> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO events (task, endpoint_id, state, actor, attempt, at, reason, from_state, dwell_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        stmt.execute(params![
            task_seq,
            id_bytes(endpoint_id.as_u128()),
            i64::from(record.state.storage_code()),
            i64::from(record.actor.storage_code()),
            record.attempt,
            record.at.as_micros(),
            record.reason,
            from.map(|(f, _)| i64::from(f.storage_code())),
            from.map(|(_, dwell)| dwell as i64),
        ])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The stored task with this id, as this job left it.
    pub fn task(&self, id: TaskId) -> StoreResult<Option<TaskRow>> {
        match self.rows.get(&id) {
            Some(job_row) => Ok(Some(job_row.row.clone())),
            None => Ok(read::task_row(self.conn, id)?),
        }
    }

    /// Validates a proposed transition with the model and, if legal, applies it: the task row,
    /// its log, its result and the statistics change together.
    pub fn transition(&mut self, p: Proposal) -> StoreResult<Outcome> {
        let Some(row) = self.task(p.task_id)? else {
            return Ok(Outcome::Unknown);
        };
        let task = &row.task;
        if p.reporter.is_some_and(|e| e != task.endpoint_id) {
            return Ok(Outcome::Forbidden);
        }
        // A transition timed no later than the task entered its current state is, if its log
        // holds it, one applied before and sent again (an endpoint replays the reports it was
        // not acknowledged for). A legal edge would otherwise take it a second time and move the
        // task back to a state it has left: after a requeue on the same attempt, a replayed
        // launch or requeue is such an edge. New transitions come later and skip the lookup.
        if p.at <= task.since && self.already_logged(&row, &p)? {
            return Ok(Outcome::Duplicate);
        }
        let accepted = match validate(task.state, p.to, p.actor, task.attempt, task.max_retries) {
            Ok(accepted) => accepted,
            Err(error) => {
                return Ok(if self.already_logged(&row, &p)? {
                    Outcome::Duplicate
                } else {
                    Outcome::Illegal(error)
                });
            }
        };
        if let Some(claimed) = p.attempt
            && claimed != accepted.attempt
        {
            if self.already_logged(&row, &p)? {
                return Ok(Outcome::Duplicate);
            }
            return Ok(Outcome::Illegal(TransitionError::AttemptMismatch {
                state: p.to,
                expected: accepted.attempt,
                got: claimed,
            }));
        }
        let mut view = TaskView {
            state: task.state,
            attempt: task.attempt,
            max_retries: task.max_retries,
            since: task.since,
        };
        let record = lifeline_model::TransitionRecord {
            state: p.to,
            actor: p.actor,
            attempt: accepted.attempt,
            at: p.at,
            reason: p.reason.clone(),
        };
        view.apply(&record)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;

        let mut moved = row.clone();
        moved.task.state = p.to;
        moved.task.attempt = accepted.attempt;
        moved.task.since = p.at;
        // The latest result wins, as `coalesce` does with the stored one.
        let earlier = self.rows.remove(&p.task_id).and_then(|r| r.result);
        let result = p.result.or(earlier);
        self.rows.insert(
            p.task_id,
            JobRow {
                row: moved,
                moved: true,
                result,
            },
        );
        let dwell = p.at.micros_since(task.since);
        let seq = self.insert_transition(
            row.seq,
            task.endpoint_id,
            Some((task.state, dwell)),
            &record,
        )?;
        self.moves.push((
            (task.endpoint_id, row.owner),
            Some((task.state, p.to, dwell)),
        ));
        self.counted
            .extend(Counted::of(task.state, p.to, p.reason.as_deref()));
        let event = TransitionEvent {
            task_id: task.task_id,
            task_group_id: None,
            endpoint_id: task.endpoint_id,
            function_id: task.function_id,
            from: Some(task.state),
            to: p.to,
            actor: p.actor,
            attempt: accepted.attempt,
            max_retries: task.max_retries,
            at: p.at,
            reason: p.reason,
        };
        self.push_event(
            task.endpoint_id,
            Some(row.owner),
            seq,
            EventBody::Transition(event),
        );
        Ok(Outcome::Applied {
            from: task.state,
            to: p.to,
            attempt: accepted.attempt,
            endpoint_id: task.endpoint_id,
        })
    }

    /// Whether the task's log already holds this very transition (same state, attempt and time).
    fn already_logged(&self, task: &TaskRow, p: &Proposal) -> StoreResult<bool> {
        let found: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT seq FROM events WHERE task = ?1 AND state = ?2 AND at = ?3 AND (?4 IS NULL OR attempt = ?4) LIMIT 1",
            )?
            .query_row(params![task.seq, i64::from(p.to.storage_code()), p.at.as_micros(), p.attempt], |r| r.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    /// Records an endpoint's status change in the event log.
    pub fn endpoint_event(&mut self, status: EndpointStatus, at: Timestamp) -> StoreResult<()> {
        let endpoint_id = status.endpoint_id;
        let body = EventBody::Endpoint(status);
        let json = serde_json::to_string(&body)
            .map_err(|e| StoreError::Db(rusqlite::Error::ToSqlConversionFailure(e.into())))?;
        self.conn
            .prepare_cached("INSERT INTO events (endpoint_id, at, body) VALUES (?1, ?2, ?3)")?
            .execute(params![
                id_bytes(endpoint_id.as_u128()),
                at.as_micros(),
                json
            ])?;
        let seq = self.conn.last_insert_rowid();
        self.push_event(endpoint_id, None, seq, body);
        Ok(())
    }
}
