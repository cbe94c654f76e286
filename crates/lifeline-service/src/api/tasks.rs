//! Submitting, reading, listing and cancelling tasks, and the statistics. A task belongs to the
//! user who submitted it; what a caller may not see answers `404` (see [`crate::access`]).

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use lifeline_model::api::{
    BatchEntry, BatchStatus, BatchStatusRequest, ErrorBody, MAX_WAIT_SECS, StatsQuery,
    SubmitRequest, Submitted, TaskListQuery, WaitQuery,
};
use lifeline_model::{
    Actor, DwellSummary, EdgeCount, EndpointId, FunctionId, MAX_ARGUMENT_DEPTH, State as TaskState,
    StatsSummary, TaskGroupId, TaskId,
};
use serde_json::value::RawValue;

use super::AppState;
use super::auth::User;
use super::endpoints::parse_endpoint_id;
use super::error::{ApiError, ApiResult, JsonBody};
use crate::access::{Directory, Scope, may_read_payload, may_use_function};
use crate::forwarder::assignment;
use crate::store::{self, NewTask, Outcome, Proposal, TaskFilter, registry};
use crate::users::{Caller, UserId};
use crate::{new_id, now};

/// Most retries a submission may ask for.
const MAX_RETRIES_LIMIT: u32 = 100;

/// Most tasks stored by one write job. A large submission is stored in several, so that the
/// single writer serves other requests between them instead of stalling them all.
const TASKS_PER_WRITE: usize = 500;

fn json_kind(
    raw: Option<&RawValue>,
    open: char,
    default: &str,
    what: &str,
    index: usize,
) -> ApiResult<String> {
    match raw {
        None => Ok(default.to_owned()),
        Some(raw) if lifeline_model::json_depth(raw.get()) > MAX_ARGUMENT_DEPTH => {
            Err(ApiError::bad(
                "too_deep",
                format!(
                    "tasks[{index}].{what} nests arrays and objects {} levels deep; the limit is {MAX_ARGUMENT_DEPTH}",
                    lifeline_model::json_depth(raw.get())
                ),
            ))
        }
        Some(raw) if raw.get().trim_start().starts_with(open) => Ok(raw.get().to_owned()),
        Some(raw) => Err(ApiError::bad(
            "invalid_request",
            format!(
                "tasks[{index}].{what} must be a JSON {}, not {}",
                if open == '[' { "array" } else { "object" },
                raw.get()
            ),
        )),
    }
}

#[tracing::instrument(skip_all, fields(endpoint_id = %endpoint, tasks = body.tasks.len()))]
pub(super) async fn submit(
    User(caller): User,
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
    JsonBody(body): JsonBody<SubmitRequest<Box<RawValue>>>,
) -> ApiResult<(StatusCode, Json<Submitted>)> {
    let endpoint = parse_endpoint_id(&endpoint)?;
    if !state.directory().may_use(&caller, endpoint) {
        return Err(ApiError::NotFound(format!("unknown endpoint {endpoint}")));
    }
    let settings = state.settings();
    if body.tasks.is_empty() {
        return Err(ApiError::bad(
            "invalid_request",
            "tasks is empty: submit at least one task",
        ));
    }
    if body.tasks.len() > settings.max_batch_tasks {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} tasks in one submission; the limit is {}",
            body.tasks.len(),
            settings.max_batch_tasks
        )));
    }
    let max_retries = body.max_retries.unwrap_or(settings.default_max_retries);
    if max_retries > MAX_RETRIES_LIMIT {
        return Err(ApiError::bad(
            "invalid_request",
            format!("max_retries is at most {MAX_RETRIES_LIMIT}"),
        ));
    }
    let mut tasks = Vec::with_capacity(body.tasks.len());
    for (i, t) in body.tasks.into_iter().enumerate() {
        tasks.push(NewTask {
            task_id: TaskId::from_u128(new_id()),
            function_id: t.function_id,
            args: json_kind(t.args.as_deref(), '[', "[]", "args", i)?,
            kwargs: json_kind(t.kwargs.as_deref(), '{', "{}", "kwargs", i)?,
        });
    }
    let functions: HashSet<FunctionId> = tasks.iter().map(|t| t.function_id).collect();
    let who = caller.clone();
    let known = state
        .store()
        .read(move |c| {
            let endpoint_known = registry::endpoint(c, endpoint)?.is_some();
            let mut unknown = Vec::new();
            for f in functions {
                // Another user's function does not exist for this one.
                match registry::function_owner(c, f)? {
                    Some(owner) if may_use_function(&who, owner) => {}
                    _ => unknown.push(f),
                }
            }
            Ok((endpoint_known, unknown))
        })
        .await?;
    match known {
        (false, _) => return Err(ApiError::NotFound(format!("unknown endpoint {endpoint}"))),
        (true, unknown) if !unknown.is_empty() => {
            let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
            return Err(ApiError::bad(
                "unknown_function",
                format!("unknown function {}", list.join(", ")),
            ));
        }
        _ => {}
    }

    check_quotas(&state, &caller, tasks.len())?;
    let group = TaskGroupId::from_u128(new_id());
    let task_ids: Vec<TaskId> = tasks.iter().map(|t| t.task_id).collect();
    let mut tasks = tasks.into_iter().peekable();
    while tasks.peek().is_some() {
        let chunk: Vec<NewTask> = tasks.by_ref().take(TASKS_PER_WRITE).collect();
        store_submission(&state, caller.id, group, endpoint, max_retries, chunk).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Submitted {
            task_group_id: group,
            task_ids,
        }),
    ))
}

/// Refuses a submission over the caller's quotas: submissions per second, and unfinished tasks.
fn check_quotas(state: &AppState, caller: &Caller, tasks: usize) -> ApiResult<()> {
    let limits = state.quotas().limits(caller.id);
    if let Err(wait) = state
        .quotas()
        .take_submission(caller.id, std::time::Instant::now())
    {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "more than {} submissions per second; wait a moment",
                limits.max_submits_per_sec
            ),
            retry_after: wait.ceil().max(1.0) as u64,
        });
    }
    let (_, queued) = state.store().with_stats(|book| book.pending_of(caller.id));
    if queued + tasks as u64 > limits.max_queued {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "{queued} of your tasks are unfinished and {tasks} more would pass your limit of {}",
                limits.max_queued
            ),
            retry_after: 10,
        });
    }
    Ok(())
}

/// Stores tasks of a submission in one write job, in `received` and then on their way to the
/// endpoint, and dispatches them if it is connected.
async fn store_submission(
    state: &AppState,
    owner: UserId,
    group: TaskGroupId,
    endpoint: EndpointId,
    max_retries: u32,
    tasks: Vec<NewTask>,
) -> ApiResult<()> {
    let online = state.forwarder().is_connected(endpoint);
    let at = now();
    let assignments = state
        .store()
        .write(move |ctx| {
            ctx.insert_tasks(owner, group, endpoint, max_retries, &tasks, at)?;
            let (to, reason) = if online {
                (TaskState::DispatchedToEp, None)
            } else {
                (
                    TaskState::WaitingForEp,
                    Some("the endpoint is not connected".to_owned()),
                )
            };
            let mut out = Vec::new();
            for t in &tasks {
                let p = Proposal {
                    task_id: t.task_id,
                    to,
                    actor: Actor::Forwarder,
                    attempt: None,
                    at,
                    reason: reason.clone(),
                    result: None,
                    reporter: None,
                };
                if let Outcome::Applied { attempt, .. } = ctx.transition(p)?
                    && online
                    && let Some(row) = ctx.task(t.task_id)?
                {
                    out.push(assignment(ctx, &row, attempt)?);
                }
            }
            Ok(out)
        })
        .await?;
    if online {
        state.forwarder().dispatch(endpoint, assignments).await;
    }
    Ok(())
}

fn parse_task_id(text: &str) -> ApiResult<TaskId> {
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
    Ok(Json(docs.pop().flatten().ok_or_else(|| {
        ApiError::NotFound(format!("unknown task {id}"))
    })?))
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

/// The status documents of `ids` that `caller` may see (`None` for the others). With a `wait`,
/// answers once every one of them is finished or the wait is over, whichever comes first: the
/// request listens to the store's events (subscribed before the first read, so that no end is
/// missed) and reads again when one of its tasks finishes.
async fn read_documents(
    state: &AppState,
    caller: &Caller,
    ids: Vec<TaskId>,
    wait: Option<std::time::Duration>,
) -> ApiResult<Vec<Option<Document>>> {
    let mut events = wait.map(|_| state.store().subscribe());
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    loop {
        let (shared, who, asked) = (state.clone(), caller.clone(), ids.clone());
        let docs = state
            .store()
            .read(move |c| {
                asked
                    .iter()
                    .map(|id| visible_document(c, shared.directory(), &who, *id))
                    .collect::<crate::store::StoreResult<Vec<_>>>()
            })
            .await?;
        let open: HashSet<TaskId> = docs
            .iter()
            .flatten()
            .filter(|d| d.pending)
            .map(|d| d.task_id)
            .collect();
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
                            .task
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
) -> crate::store::StoreResult<Option<Document>> {
    let Some((owner, endpoint)) = store::task_owner(c, id)? else {
        return Ok(None);
    };
    if !directory.may_see_task(caller, owner, endpoint) {
        return Ok(None);
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
    Ok(doc)
}

/// What an endpoint's owner reads instead of another user's traceback.
const WITHHELD: &str = "withheld: only the user who submitted the task may read its result";

type Document = lifeline_model::StatusDocument<Box<RawValue>>;

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
            Ok(id) => match docs.next().flatten() {
                Some(doc) => BatchEntry::Status(doc),
                None => BatchEntry::Error(ErrorBody {
                    error: "unknown_task".into(),
                    message: format!("unknown task {id}"),
                }),
            },
        };
        results.insert(text, entry);
    }
    Ok(Json(BatchStatus { results }))
}

/// The items of a comma-separated query parameter. An empty item (`endpoint_id=`, `a,,b`) is
/// refused rather than read as "no filter".
fn split<'a>(name: &str, list: Option<&'a str>) -> ApiResult<Vec<&'a str>> {
    let items: Vec<&str> = list
        .into_iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .collect();
    if items.iter().any(|s| s.is_empty()) {
        return Err(ApiError::bad(
            "invalid_query",
            format!("{name} has an empty value; leave the parameter out to mean all"),
        ));
    }
    Ok(items)
}

/// `FROM>TO` in wire names, an edge of the life cycle.
fn parse_edge(text: &str) -> ApiResult<(TaskState, TaskState)> {
    let bad = |why: String| ApiError::bad("invalid_edge", why);
    let (from, to) = text.split_once('>').ok_or_else(|| {
        bad(format!(
            "edge {text:?} is not FROM>TO, such as running>success"
        ))
    })?;
    let state = |s: &str| {
        s.parse::<TaskState>()
            .map_err(|e: lifeline_model::UnknownName| bad(e.to_string()))
    };
    let (from, to) = (state(from)?, state(to)?);
    if lifeline_model::Edge::find(from, to).is_none() {
        return Err(bad(format!("the life cycle has no edge {from}>{to}")));
    }
    Ok((from, to))
}

/// Page sizes `GET /v1/tasks` accepts.
const PAGE_SIZES: std::ops::RangeInclusive<usize> = 1..=10_000;

fn query_error(e: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::bad("invalid_query", e.body_text())
}

#[tracing::instrument(skip_all)]
pub(super) async fn list(
    User(caller): User,
    State(state): State<AppState>,
    query: Result<Query<TaskListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<lifeline_model::TaskPage>> {
    let Query(q) = query.map_err(query_error)?;
    let filter = TaskFilter {
        scope: Scope::of(state.directory(), &caller, q.mine.unwrap_or(false)),
        endpoints: split("endpoint_id", q.endpoint_id.as_deref())?
            .into_iter()
            .map(parse_endpoint_id)
            .collect::<ApiResult<_>>()?,
        states: split("state", q.state.as_deref())?
            .into_iter()
            .map(|s| {
                s.parse().map_err(|e: lifeline_model::UnknownName| {
                    ApiError::bad("invalid_state", e.to_string())
                })
            })
            .collect::<ApiResult<_>>()?,
        function: q
            .function_id
            .as_deref()
            .map(|f| {
                f.parse().map_err(|e: lifeline_model::IdError| {
                    ApiError::bad("invalid_id", e.to_string())
                })
            })
            .transpose()?,
        group: q
            .task_group_id
            .as_deref()
            .map(|g| {
                g.parse().map_err(|e: lifeline_model::IdError| {
                    ApiError::bad("invalid_id", e.to_string())
                })
            })
            .transpose()?,
        edge: q.edge.as_deref().map(parse_edge).transpose()?,
        before: q
            .cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    ApiError::bad(
                        "invalid_cursor",
                        format!("{c:?} is not a cursor from a previous page"),
                    )
                })
            })
            .transpose()?,
        limit: match q.limit {
            None => 100,
            Some(n) if PAGE_SIZES.contains(&n) => n,
            Some(n) => {
                return Err(ApiError::bad(
                    "invalid_query",
                    format!(
                        "limit must be {} to {}, not {n}",
                        PAGE_SIZES.start(),
                        PAGE_SIZES.end()
                    ),
                ));
            }
        },
    };
    if filter.endpoints.len() * filter.states.len().max(1) > 200 {
        return Err(ApiError::bad(
            "invalid_query",
            "too many endpoint and state combinations (at most 200)",
        ));
    }
    Ok(Json(
        state
            .store()
            .read(move |c| store::list_tasks(c, &filter))
            .await?,
    ))
}

#[tracing::instrument(skip_all, fields(task_id = %id))]
pub(super) async fn cancel(
    User(caller): User,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Document>> {
    let id = parse_task_id(&id)?;
    let owner = state
        .store()
        .read(move |c| store::task_owner(c, id))
        .await?;
    if !owner
        .is_some_and(|(owner, endpoint)| state.directory().may_see_task(&caller, owner, endpoint))
    {
        return Err(ApiError::NotFound(format!("unknown task {id}")));
    }
    let at = now();
    let outcome = state
        .store()
        .write(move |ctx| {
            ctx.transition(Proposal {
                task_id: id,
                to: TaskState::Cancelled,
                actor: Actor::WebService,
                attempt: None,
                at,
                reason: Some("cancelled by its user".into()),
                result: None,
                reporter: None,
            })
        })
        .await?;
    match outcome {
        Outcome::Applied {
            from, endpoint_id, ..
        } => {
            if from.at_endpoint() {
                state.forwarder().cancel(endpoint_id, vec![id]);
            }
        }
        Outcome::Unknown => return Err(ApiError::NotFound(format!("unknown task {id}"))),
        Outcome::Illegal(_) | Outcome::Duplicate | Outcome::Forbidden => {
            let doc = state
                .store()
                .read(move |c| store::status_document(c, id))
                .await?;
            let status = doc.map(|d| d.status.wire()).unwrap_or("finished");
            return Err(ApiError::Conflict(format!(
                "task {id} is already {status}; only pending tasks can be cancelled"
            )));
        }
    }
    let mut docs = read_documents(&state, &caller, vec![id], None).await?;
    Ok(Json(docs.pop().flatten().ok_or_else(|| {
        ApiError::NotFound(format!("unknown task {id}"))
    })?))
}

#[tracing::instrument(skip_all)]
pub(super) async fn stats(
    User(caller): User,
    State(state): State<AppState>,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<StatsSummary>> {
    let Query(q) = query.map_err(query_error)?;
    let endpoints: Vec<EndpointId> = split("endpoint_id", q.endpoint_id.as_deref())?
        .into_iter()
        .map(parse_endpoint_id)
        .collect::<ApiResult<_>>()?;
    let scope = Scope::of(state.directory(), &caller, q.mine.unwrap_or(false));
    // One read of the book: the figures of several endpoints share one sequence number.
    let (seq, s) = state.store().with_stats(|book| {
        book.sum(|endpoint, owner| {
            scope.sees(owner, endpoint) && (endpoints.is_empty() || endpoints.contains(&endpoint))
        })
    });
    let mut edges = Vec::new();
    for from in TaskState::ALL {
        for to in TaskState::ALL {
            let count = s.edges[from.index()][to.index()];
            if count > 0 {
                edges.push(EdgeCount { from, to, count });
            }
        }
    }
    let dwell = TaskState::ALL
        .into_iter()
        .zip(&s.dwell)
        .filter(|(_, h)| h.count() > 0)
        .map(|(state, h)| DwellSummary {
            state,
            count: h.count(),
            p50: h.quantile(0.5),
            p90: h.quantile(0.9),
            p99: h.quantile(0.99),
        })
        .collect();
    Ok(Json(StatsSummary {
        seq,
        total: s.tasks.total(),
        pending: s.tasks.pending(),
        tasks: s.tasks,
        edges,
        dwell,
        illegal_reports: state
            .forwarder()
            .illegal_reports
            .load(std::sync::atomic::Ordering::Relaxed),
    }))
}
