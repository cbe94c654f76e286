//! Endpoint registration, status, sharing and the endpoint's WebSocket. An endpoint belongs to
//! the user who registered it; others see it only once it is shared with them (or public).

use axum::Json;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lifeline_model::api::{EndpointRegistered, EndpointShares, RegisterEndpoint, ShareEndpoint};
use lifeline_model::{Actor, EndpointId, EndpointSummary, Presence, State as TaskState};

use super::AppState;
use super::auth::{EndpointAuth, User};
use super::error::{ApiError, ApiResult, JsonBody};
use crate::access::EndpointAccess;
use crate::store::users as stored;
use crate::store::{self, Proposal, registry};
use crate::users::{Caller, Principal, UserId, digest, hex, new_token};
use crate::{new_id, now};

pub(super) fn parse_endpoint_id(text: &str) -> ApiResult<EndpointId> {
    text.parse()
        .map_err(|e: lifeline_model::IdError| ApiError::bad("invalid_id", e.to_string()))
}

fn view(state: &AppState, row: registry::EndpointRow, owner: Option<String>) -> EndpointSummary {
    let live = state.forwarder().liveness(row.id);
    let online = live.as_ref().is_some_and(|l| l.online);
    EndpointSummary {
        endpoint_id: row.id,
        name: row.name,
        status: if online {
            Presence::Online
        } else {
            Presence::Offline
        },
        online,
        last_heartbeat: live.as_ref().and_then(|l| l.last_heartbeat),
        report: live.and_then(|l| l.report),
        created_at: row.created_at,
        owner,
        public: row.public,
    }
}

/// The name of every user, by id (for showing owners).
async fn user_names(state: &AppState) -> ApiResult<std::collections::HashMap<UserId, String>> {
    let users = state.store().read(stored::users).await?;
    Ok(users.into_iter().map(|u| (u.id, u.name)).collect())
}

/// The endpoint `text` names, if `caller` may see it; `404` otherwise.
pub(super) async fn visible_endpoint(
    state: &AppState,
    caller: &Caller,
    text: &str,
) -> ApiResult<registry::EndpointRow> {
    let id = parse_endpoint_id(text)?;
    let unknown = || ApiError::NotFound(format!("unknown endpoint {id}"));
    if !state.directory().may_use(caller, id) {
        return Err(unknown());
    }
    state
        .store()
        .read(move |c| registry::endpoint(c, id))
        .await?
        .ok_or_else(unknown)
}

#[tracing::instrument(skip_all)]
pub(super) async fn register(
    User(caller): User,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RegisterEndpoint>,
) -> ApiResult<(StatusCode, Json<EndpointRegistered>)> {
    let name = super::valid_name("an endpoint", &body.name)?;
    let token = new_token();
    let row = registry::EndpointRow {
        id: EndpointId::from_u128(new_id()),
        name: name.clone(),
        token_digest: hex(&digest(&token)),
        created_at: now(),
        owner: caller.id,
        public: false,
    };
    let stored = row.clone();
    state
        .store()
        .write(move |ctx| registry::insert_endpoint(ctx.conn()?, &stored))
        .await?;
    state.directory().set(
        row.id,
        EndpointAccess {
            owner: Some(caller.id),
            ..EndpointAccess::default()
        },
    );
    state
        .tokens()
        .insert(digest(&token), Principal::Endpoint(row.id), None);
    state.forwarder().register(row.id, name.clone());
    Ok((
        StatusCode::CREATED,
        Json(EndpointRegistered {
            endpoint_id: row.id,
            name,
            token,
        }),
    ))
}

#[tracing::instrument(skip_all)]
pub(super) async fn list(
    User(caller): User,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<EndpointSummary>>> {
    let rows = state.store().read(registry::endpoints).await?;
    let names = user_names(&state).await?;
    Ok(Json(
        rows.into_iter()
            .filter(|r| state.directory().may_use(&caller, r.id))
            .map(|r| {
                let owner = names.get(&r.owner).cloned();
                view(&state, r, owner)
            })
            .collect(),
    ))
}

#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub(super) async fn get_one(
    User(caller): User,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointSummary>> {
    let row = visible_endpoint(&state, &caller, &id).await?;
    let owner = user_names(&state).await?.get(&row.owner).cloned();
    Ok(Json(view(&state, row, owner)))
}

/// Shares an endpoint with a user, or opens it to (or closes it from) everyone. The owner's or
/// admin's to do; audited.
#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub(super) async fn share(
    User(caller): User,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ShareEndpoint>,
) -> ApiResult<Json<EndpointShares>> {
    let row = visible_endpoint(&state, &caller, &id).await?;
    let id = row.id;
    if !state.directory().owns(&caller, id) {
        return Err(ApiError::Forbidden(
            "only the endpoint's owner (or admin) may share it".into(),
        ));
    }
    if body.with.is_none() && body.public.is_none() {
        return Err(ApiError::bad(
            "invalid_request",
            "say whom to share it with (`with`) or whether it is public (`public`)",
        ));
    }
    let with = match &body.with {
        Some(name) => {
            let name = name.clone();
            let user = state
                .store()
                .read(move |c| stored::user_named(c, &name))
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no user named {:?}", body.with)))?;
            Some(user.id)
        }
        None => None,
    };
    let public = body.public;
    let detail = serde_json::to_string(&body).ok();
    let actor = caller.name.clone();
    state
        .store()
        .write(move |ctx| {
            let conn = ctx.conn()?;
            if let Some(user) = with {
                stored::share(conn, id, user)?;
            }
            if let Some(public) = public {
                stored::set_public(conn, id, public)?;
            }
            super::audit::record(conn, &actor, "endpoint.share", &id.to_string(), detail)
        })
        .await?;
    state.directory().update(id, |a| {
        if let Some(user) = with {
            a.shared.insert(user);
        }
        if let Some(public) = public {
            a.public = public;
        }
    });
    let names = user_names(&state).await?;
    let (owner, public, shared) = state.directory().describe(id);
    let name = |u: &UserId| {
        names
            .get(u)
            .cloned()
            .unwrap_or_else(|| format!("user {}", u.0))
    };
    let mut shared_with: Vec<String> = shared.iter().map(name).collect();
    shared_with.sort();
    Ok(Json(EndpointShares {
        owner: owner.as_ref().map(name).unwrap_or_default(),
        public,
        shared_with,
    }))
}

/// Deletes an endpoint: its unfinished tasks are cancelled, its token stops working and its
/// connection is closed. The tasks and their logs stay readable.
#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub(super) async fn delete(
    User(caller): User,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = visible_endpoint(&state, &caller, &id).await?.id;
    if !state.directory().owns(&caller, id) {
        return Err(ApiError::Forbidden(
            "only the endpoint's owner (or admin) may delete it".into(),
        ));
    }
    let at = now();
    let existed = state
        .store()
        .write(move |ctx| registry::delete_endpoint(ctx.conn()?, id, at))
        .await?;
    if !existed {
        return Err(ApiError::NotFound(format!("unknown endpoint {id}")));
    }
    state.tokens().remove_endpoint(id);
    state.directory().remove(id);
    state.forwarder().forget(id);
    let pending: Vec<TaskState> = TaskState::ALL
        .into_iter()
        .filter(|s| s.is_pending())
        .collect();
    loop {
        let states = pending.clone();
        let rows = state
            .store()
            .read(move |c| store::tasks_in_states(c, id, &states, 0, 2000))
            .await?;
        if rows.is_empty() {
            break;
        }
        state
            .store()
            .write(move |ctx| {
                for row in rows {
                    ctx.transition(Proposal {
                        task_id: row.task.task_id,
                        to: TaskState::Cancelled,
                        actor: Actor::WebService,
                        attempt: None,
                        at,
                        reason: Some("its endpoint was deleted".into()),
                        result: None,
                        reporter: None,
                    })?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint agent's WebSocket, authenticated by the endpoint's own token.
#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub(super) async fn connect(
    EndpointAuth(who): EndpointAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let id = parse_endpoint_id(&id)?;
    if who != id {
        return Err(ApiError::Forbidden(format!(
            "this token belongs to endpoint {who}, not {id}"
        )));
    }
    open_session(state, id, upgrade)
}

/// The endpoint agent's WebSocket for the endpoint its token belongs to.
#[tracing::instrument(skip_all)]
pub(super) async fn connect_self(
    EndpointAuth(who): EndpointAuth,
    State(state): State<AppState>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    open_session(state, who, upgrade)
}

fn open_session(state: AppState, id: EndpointId, upgrade: WebSocketUpgrade) -> ApiResult<Response> {
    let limit = state
        .settings()
        .max_payload_bytes
        .max(state.settings().max_result_bytes)
        * 2;
    let forwarder = state.forwarder().clone();
    let shutdown = state.shutdown();
    Ok(upgrade
        .max_message_size(limit)
        .on_upgrade(move |socket| crate::forwarder::session(forwarder, id, socket, shutdown))
        .into_response())
}
