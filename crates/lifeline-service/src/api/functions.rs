//! Function registration.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lifeline_model::FunctionId;
use lifeline_protocol::{FunctionKind, FunctionSpec};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::User;
use super::error::{ApiError, ApiResult, JsonBody};
use crate::store::registry::{self, FunctionRow};
use crate::{new_id, now};

/// A registration: the name, the kind, and the fields of that kind. Parsed field by field (no
/// tagged enum), so that `kind` must be one of its names and unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterFunction {
    name: String,
    kind: FunctionKind,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    entrypoint: Option<String>,
    #[serde(default)]
    command: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Registered {
    function_id: FunctionId,
}

pub(super) async fn register(
    _: User,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RegisterFunction>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    let name = super::valid_name("a function", &body.name)?;
    let spec = FunctionSpec::from_parts(body.kind, body.source, body.entrypoint, body.command)
        .map_err(|m| ApiError::bad("invalid_request", m))?;
    spec.check()
        .map_err(|m| ApiError::bad("invalid_function", m))?;
    let row = FunctionRow {
        function_id: FunctionId::from_u128(new_id()),
        name,
        spec,
        created_at: now(),
    };
    let function_id = row.function_id;
    state
        .store()
        .write(move |ctx| registry::insert_function(ctx.conn(), &row))
        .await?;
    Ok((StatusCode::CREATED, Json(Registered { function_id })))
}

pub(super) async fn get_one(
    _: User,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<FunctionRow>> {
    let id: FunctionId = id
        .parse()
        .map_err(|e: lifeline_model::IdError| ApiError::bad("invalid_id", e.to_string()))?;
    let row = state
        .store()
        .read(move |c| registry::function(c, id))
        .await?;
    row.map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("unknown function {id}")))
}
