//! Reading tasks' status documents, one or many at a time, optionally waiting for their end
//! (`?wait=`). What a caller may not see is unknown to them; another user's result is withheld
//! from an endpoint's owner.

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::extract::{Path, Query, State};
use lifeline_model::api::{
    BatchEntry, BatchStatus, BatchStatusRequest, ErrorBody, MAX_WAIT_SECS, WaitQuery,
};
use lifeline_model::{Actor, TaskId, Timestamp};
use serde_json::value::RawValue;

use super::AppState;
use super::auth::User;
use super::error::{ApiError, ApiResult, JsonBody};
use super::listing::query_error;
use crate::access::{Directory, may_read_payload};
use crate::store::{self, StoreError};
use crate::users::Caller;

pub(super) fn parse_task_id(text: &str) -> ApiResult<TaskId> {
    text.parse()
        .map_err(|e: lifeline_model::IdError| ApiError::bad("invalid_id", e.to_string()))
}

#[tracing::instrument(skip_all, fields(task_id = %id))]
pub(super) async fn get_one(
    User(caller): User,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Document>> {
    let id = parse_task_id(&id)?;
    let wait = wait_of(query)?;
    let mut docs = read_documents(&state, &caller, vec![id], wait).await?;
    match docs.pop() {
        Some(Lookup::Found(doc)) => Ok(Json(doc)),
        Some(Lookup::Expired) => Err(expired(&state, id)),
        _ => Err(ApiError::NotFound(format!("unknown task {id}"))),
    }
}

/// A task's status as its caller may know it.
#[derive(Debug)]
pub(super) enum Lookup {
    Found(Document),
    /// Past the retention: its data is gone.
    Expired,
    /// Not stored, or not the caller's to see.
    Unknown,
}

impl Lookup {
    fn pending(&self) -> Option<TaskId> {
        match self {
            Lookup::Found(d) if d.pending => Some(d.task_id),
            _ => None,
        }
    }
}

fn expired(state: &AppState, id: TaskId) -> ApiError {
    ApiError::Expired(format!(
        "task {id} finished more than the retention ({}) ago: its result and history are no longer kept",
        state.settings().retention
    ))
}

/// The `wait` of a status request: none, or at most [`MAX_WAIT_SECS`].
fn wait_of(
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Option<std::time::Duration>> {
    let Query(q) = query.map_err(query_error)?;
    match q.wait {
        None => Ok(None),
        Some(secs) if secs.is_finite() && (0.0..=MAX_WAIT_SECS).contains(&secs) => {
            Ok((secs > 0.0).then(|| std::time::Duration::from_secs_f64(secs)))
        }
        Some(secs) => Err(ApiError::bad(
            "invalid_query",
            format!("wait must be 0 to {MAX_WAIT_SECS} seconds, not {secs}"),
        )),
    }
}

/// Most status documents of a request read on the request's thread, and most bytes of text
/// they may carry together: point reads of a few small rows, cheaper than the two thread
/// switches of the blocking pool on the way of every result to a waiting client.
const INLINE_DOCUMENTS: usize = 4;
const INLINE_BYTES: u64 = 64 * 1024;

/// The status documents of `ids` that `caller` may see (`None` for the others). With a `wait`,
/// answers once every one of them is finished or the wait is over, whichever comes first: the
/// request listens to the store's events (subscribed before the first read, so that no end is
/// missed) and reads again when one of its tasks finishes.
pub(super) async fn read_documents(
    state: &AppState,
    caller: &Caller,
    ids: Vec<TaskId>,
    wait: Option<std::time::Duration>,
) -> ApiResult<Vec<Lookup>> {
    let mut events = wait.map(|_| state.store().subscribe());
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    let retention = state.settings().retention();
    loop {
        let (shared, who, asked) = (state.clone(), caller.clone(), ids.clone());
        let cutoff =
            Timestamp::from_micros(crate::now().as_micros() - retention.as_micros() as i64);
        let read = move |c: &rusqlite::Connection| {
            asked
                .iter()
                .map(|id| visible_document(c, shared.directory(), &who, *id, cutoff))
                .collect::<crate::store::StoreResult<Vec<_>>>()
        };
        // A document carries its result, up to `max_result_bytes`: a few small ones are read on
        // this thread (their size checked in the same read transaction), the rest on the
        // blocking pool.
        let inline = if ids.len() <= INLINE_DOCUMENTS {
            let (read, ids) = (read.clone(), ids.clone());
            state.store().lookup(move |c| {
                let tx = c.unchecked_transaction()?;
                let bytes = ids.iter().try_fold(0, |sum, id| {
                    Ok::<_, StoreError>(sum + store::document_bytes(&tx, *id)?)
                })?;
                if bytes > INLINE_BYTES {
                    return Ok(None);
                }
                let docs = read(&tx)?;
                tx.commit()?;
                Ok(Some(docs))
            })?
        } else {
            None
        };
        let docs = match inline {
            Some(docs) => docs,
            None => state.store().read(read).await?,
        };
        let open: HashSet<TaskId> = docs.iter().filter_map(Lookup::pending).collect();
        let (Some(rx), Some(deadline)) = (events.as_mut(), deadline) else {
            return Ok(docs);
        };
        if open.is_empty() {
            return Ok(docs);
        }
        // Sleep until one of the open tasks ends (or the log moved too fast to follow).
        let ended = async {
            loop {
                match rx.recv().await {
                    Ok(event) => {
                        if event
                            .task()
                            .is_some_and(|(task, to)| to.is_terminal() && open.contains(&task))
                        {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await
                    }
                }
            }
        };
        if tokio::time::timeout_at(deadline, ended).await.is_err() {
            return Ok(docs);
        }
    }
}

/// A task's status document if `caller` may see it, without its payload unless they submitted
/// it.
fn visible_document(
    c: &rusqlite::Connection,
    directory: &Directory,
    caller: &Caller,
    id: TaskId,
    cutoff: Timestamp,
) -> crate::store::StoreResult<Lookup> {
    let Some((owner, endpoint)) = store::task_owner(c, id)? else {
        return Ok(Lookup::Unknown);
    };
    if !directory.may_see_task(caller, owner, endpoint) {
        return Ok(Lookup::Unknown);
    }
    if store::is_expired(c, id, cutoff)? {
        return Ok(Lookup::Expired);
    }
    let mut doc = store::status_document(c, id)?;
    if !may_read_payload(caller, owner)
        && let Some(doc) = doc.as_mut()
    {
        doc.result = None;
        doc.exception = doc.exception.as_ref().map(|_| WITHHELD.to_owned());
        for t in &mut doc.details.task_transitions {
            if t.actor == Actor::Worker && t.reason.is_some() {
                t.reason = Some(WITHHELD.to_owned());
            }
        }
    }
    Ok(doc.map_or(Lookup::Unknown, Lookup::Found))
}

/// What an endpoint's owner reads instead of another user's traceback.
const WITHHELD: &str = "withheld: only the user who submitted the task may read its result";

pub(super) type Document = lifeline_model::StatusDocument<Box<RawValue>>;

/// Most ids in one batch status request.
const MAX_BATCH_STATUS: usize = 10_000;

#[tracing::instrument(skip_all)]
pub(super) async fn batch_status(
    User(caller): User,
    State(state): State<AppState>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
    JsonBody(body): JsonBody<BatchStatusRequest>,
) -> ApiResult<Json<BatchStatus<Box<RawValue>>>> {
    if body.task_ids.len() > MAX_BATCH_STATUS {
        return Err(ApiError::PayloadTooLarge(format!(
            "at most {MAX_BATCH_STATUS} task ids per request"
        )));
    }
    let wait = wait_of(query)?;
    let parsed: Vec<Result<TaskId, String>> = body
        .task_ids
        .iter()
        .map(|text| text.parse::<TaskId>().map_err(|e| e.to_string()))
        .collect();
    let ids: Vec<TaskId> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .copied()
        .collect();
    let mut docs = read_documents(&state, &caller, ids, wait)
        .await?
        .into_iter();
    let mut results = BTreeMap::new();
    for (text, parsed) in body.task_ids.into_iter().zip(parsed) {
        let entry = match parsed {
            Err(message) => BatchEntry::Error(ErrorBody {
                error: "invalid_id".into(),
                message,
            }),
            Ok(id) => match docs.next() {
                Some(Lookup::Found(doc)) => BatchEntry::Status(doc),
                Some(Lookup::Expired) => BatchEntry::Error(ErrorBody {
                    error: "expired".into(),
                    message: format!(
                        "task {id} finished more than the retention ({}) ago",
                        state.settings().retention
                    ),
                }),
                _ => BatchEntry::Error(ErrorBody {
                    error: "unknown_task".into(),
                    message: format!("unknown task {id}"),
                }),
            },
        };
        results.insert(text, entry);
    }
    Ok(Json(BatchStatus { results }))
}
