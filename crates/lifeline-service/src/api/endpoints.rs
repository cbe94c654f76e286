//! Endpoint registration, status and the endpoint's WebSocket.

use axum::Json;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lifeline_model::api::{EndpointRegistered, RegisterEndpoint};
use lifeline_model::{Actor, EndpointId, EndpointSummary, Presence, State as TaskState};

use super::AppState;
use super::auth::{EndpointAuth, Principal, User, digest, new_token};
use super::error::{ApiError, ApiResult, JsonBody};
use crate::store::{self, Proposal, registry};
use crate::{new_id, now};

pub(super) fn parse_endpoint_id(text: &str) -> ApiResult<EndpointId> {
    text.parse()
        .map_err(|e: lifeline_model::IdError| ApiError::bad("invalid_id", e.to_string()))
}

fn view(state: &AppState, row: registry::EndpointRow) -> EndpointSummary {
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
    }
}

#[tracing::instrument(skip_all)]
pub(super) async fn register(
    _: User,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RegisterEndpoint>,
) -> ApiResult<(StatusCode, Json<EndpointRegistered>)> {
    let name = super::valid_name("an endpoint", &body.name)?;
    let token = new_token();
    let row = registry::EndpointRow {
        id: EndpointId::from_u128(new_id()),
        name: name.clone(),
        token_digest: digest(&token),
        created_at: now(),
    };
    let stored = row.clone();
    state
        .store()
        .write(move |ctx| registry::insert_endpoint(ctx.conn(), &stored))
        .await?;
    state
        .tokens()
        .insert(row.token_digest, Principal::Endpoint(row.id));
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
    _: User,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<EndpointSummary>>> {
    let rows = state.store().read(registry::endpoints).await?;
    Ok(Json(rows.into_iter().map(|r| view(&state, r)).collect()))
}

#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub(super) async fn get_one(
    _: User,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointSummary>> {
    let id = parse_endpoint_id(&id)?;
    let row = state
        .store()
        .read(move |c| registry::endpoint(c, id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("unknown endpoint {id}")))?;
    Ok(Json(view(&state, row)))
}

/// Deletes an endpoint: its unfinished tasks are cancelled, its token stops working and its
/// connection is closed. The tasks and their logs stay readable.
#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub(super) async fn delete(
    _: User,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_endpoint_id(&id)?;
    let at = now();
    let existed = state
        .store()
        .write(move |ctx| registry::delete_endpoint(ctx.conn(), id, at))
        .await?;
    if !existed {
        return Err(ApiError::NotFound(format!("unknown endpoint {id}")));
    }
    state.tokens().remove_endpoint(id);
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
