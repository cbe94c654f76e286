//! Submitting and cancelling tasks (reading them is `status.rs`, listing them `listing.rs`). A task belongs to the
//! user who submitted it; what a caller may not see answers `404` (see [`crate::access`]).

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lifeline_model::api::{SubmitRequest, Submitted};
use lifeline_model::{
    Actor, EndpointId, FunctionId, MAX_ARGUMENT_DEPTH, State as TaskState, TaskGroupId, TaskId,
};
use serde_json::value::RawValue;

use super::AppState;
use super::auth::User;
use super::endpoints::parse_endpoint_id;
use super::error::{ApiError, ApiResult, JsonBody};
use super::status::{Document, Lookup, parse_task_id, read_documents};
use crate::access::may_use_function;
use crate::forwarder::{Queue, assignment, forwarder_move};
use crate::store::{self, NewTask, Outcome, Proposal, registry};
use crate::users::{Caller, UserId};
use crate::{new_id, now};

/// Most retries a submission may ask for.
const MAX_RETRIES_LIMIT: u32 = 100;

/// Most tasks stored by one write job. A large submission is stored in several, so that the
/// single writer serves other requests between them instead of stalling them all.
const TASKS_PER_WRITE: usize = 500;
/// Functions of a submission checked on the request's own thread; more go to the blocking pool.
const LOOKUP_FUNCTIONS: usize = 4;

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
    let few_functions = functions.len() <= LOOKUP_FUNCTIONS;
    let who = caller.clone();
    let check = move |c: &rusqlite::Connection| {
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
    };
    // A few functions are a point read, done here; many go to the blocking pool.
    let known = if few_functions {
        state.store().lookup(check)?
    } else {
        state.store().read(check).await?
    };
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

/// Most tasks of a submission sent on by the writer thread itself, and most bytes of arguments
/// they may carry together.
const SEND_FROM_WRITER: usize = 16;
const SEND_FROM_WRITER_BYTES: usize = 64 * 1024;

/// Stores tasks of a submission in one write job, in `received` and then on their way to the
/// endpoint: dispatched if it is connected and its window has room (and no older task waits),
/// waiting for it otherwise.
async fn store_submission(
    state: &AppState,
    owner: UserId,
    group: TaskGroupId,
    endpoint: EndpointId,
    max_retries: u32,
    tasks: Vec<NewTask>,
) -> ApiResult<()> {
    let forwarder = state.forwarder();
    let reservation = forwarder.reserve(endpoint, tasks.len(), Queue::Behind);
    let left_waiting = reservation.as_ref().is_some_and(|r| r.room < tasks.len());
    let (room, queued) = match &reservation {
        None => (0, "the endpoint is not connected".to_owned()),
        Some(r) => (
            r.room,
            r.window.map_or_else(
                || "queued at the service behind older tasks".to_owned(),
                |w| format!("queued at the service: the endpoint takes {w} tasks at once"),
            ),
        ),
    };
    let at = now();
    // A few tasks are sent on by the writer thread the moment they are durable; serialising
    // many there would hold up its next batch, so they are sent from here.
    let bytes: usize = tasks.iter().map(|t| t.args.len() + t.kwargs.len()).sum();
    let sender = (tasks.len() <= SEND_FROM_WRITER && bytes <= SEND_FROM_WRITER_BYTES)
        .then(|| forwarder.clone());
    let assignments = state
        .store()
        .write_then(
            move |ctx| {
                ctx.insert_tasks(owner, group, endpoint, max_retries, &tasks, at)?;
                let mut out = Vec::new();
                for (i, t) in tasks.iter().enumerate() {
                    let dispatch = i < room;
                    let (to, reason) = if dispatch {
                        (TaskState::DispatchedToEp, None)
                    } else {
                        (TaskState::WaitingForEp, Some(queued.clone()))
                    };
                    if let Outcome::Applied { attempt, .. } =
                        ctx.transition(forwarder_move(t.task_id, to, at, reason))?
                        && dispatch
                        && let Some(row) = ctx.task(t.task_id)?
                    {
                        out.push(assignment(ctx, &row, attempt)?);
                    }
                }
                Ok(out)
            },
            move |out| match sender {
                Some(forwarder) => forwarder.send_now(endpoint, out),
                None => Some(out),
            },
        )
        .await?;
    drop(reservation);
    if let Some(assignments) = assignments {
        forwarder.dispatch(endpoint, assignments).await;
    }
    if left_waiting {
        // Older tasks were waiting, or the window filled up meanwhile: whatever room there is
        // goes to the oldest.
        if let Err(error) = forwarder.dispatch_waiting(endpoint).await {
            tracing::warn!(%error, %endpoint, "could not dispatch waiting tasks");
        }
    }
    Ok(())
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
            let row = state
                .store()
                .read(move |c| Ok(store::task_row(c, id)?))
                .await?;
            let status = row.map_or("finished", |r| r.task.state.wire());
            return Err(ApiError::Conflict(format!(
                "task {id} is already {status}; only pending tasks can be cancelled"
            )));
        }
    }
    match read_documents(&state, &caller, vec![id], None).await?.pop() {
        Some(Lookup::Found(doc)) => Ok(Json(doc)),
        _ => Err(ApiError::NotFound(format!("unknown task {id}"))),
    }
}
