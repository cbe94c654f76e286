//! Function registration. A function belongs to the user who registered it: only they (and
//! admin) may read it or submit calls of it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lifeline_model::FunctionId;
use lifeline_model::api::{FunctionInfo, FunctionRegistered, RegisterFunction};

use super::AppState;
use super::auth::User;
use super::error::{ApiError, ApiResult, JsonBody};
use crate::access::may_use_function;
use crate::store::registry;
use crate::{new_id, now};

#[tracing::instrument(skip_all)]
pub(super) async fn register(
    User(caller): User,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RegisterFunction>,
) -> ApiResult<(StatusCode, Json<FunctionRegistered>)> {
    let name = super::valid_name("a function", &body.name)?;
    let spec = body
        .spec()
        .map_err(|m| ApiError::bad("invalid_request", m))?;
    spec.check()
        .map_err(|m| ApiError::bad("invalid_function", m))?;
    let row = FunctionInfo {
        function_id: FunctionId::from_u128(new_id()),
        name,
        spec,
        created_at: now(),
    };
    let function_id = row.function_id;
    state
        .store()
        .write(move |ctx| registry::insert_function(ctx.conn()?, &row, caller.id))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(FunctionRegistered { function_id }),
    ))
}

/// The caller's functions (admin: everyone's), newest first.
#[tracing::instrument(skip_all)]
pub(super) async fn list(
    User(caller): User,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<FunctionInfo>>> {
    let owner = (!caller.admin).then_some(caller.id);
    let rows = state
        .store()
        .read(move |c| registry::functions(c, owner))
        .await?;
    Ok(Json(rows))
}

#[tracing::instrument(skip_all, fields(function_id = %id))]
pub(super) async fn get_one(
    User(caller): User,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<FunctionInfo>> {
    let id: FunctionId = id
        .parse()
        .map_err(|e: lifeline_model::IdError| ApiError::bad("invalid_id", e.to_string()))?;
    let row = state
        .store()
        .read(move |c| {
            Ok(match registry::function_owner(c, id)? {
                Some(owner) if may_use_function(&caller, owner) => registry::function(c, id)?,
                _ => None,
            })
        })
        .await?;
    row.map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("unknown function {id}")))
}
