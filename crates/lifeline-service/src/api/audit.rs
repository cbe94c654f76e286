//! The audit log: every admin action (users, tokens, shares, quotas) with who did it and when,
//! written in the same transaction as the change, and readable by admin at `GET /v1/audit`.

use axum::Json;
use axum::extract::{Query, State};
use lifeline_model::api::{AuditEntry, AuditQuery};
use rusqlite::Connection;

use super::AppState;
use super::auth::Admin;
use super::error::{ApiError, ApiResult};
use crate::store::StoreResult;
use crate::store::users::{self as stored, AuditRow};

/// Records an action inside the write job that makes it.
pub(super) fn record(
    conn: &Connection,
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<String>,
) -> StoreResult<()> {
    tracing::info!(actor, action, target, "audit");
    stored::audit(
        conn,
        &AuditRow {
            seq: 0,
            at: crate::now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
        },
    )
}

#[tracing::instrument(skip_all)]
pub(super) async fn list(
    _: Admin,
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let Query(q) = query.map_err(|e| ApiError::bad("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad(
            "invalid_query",
            format!("limit must be 1 to 10000, not {limit}"),
        ));
    }
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::bad("invalid_query", "after must not be negative"));
    }
    let rows = state
        .store()
        .read(move |c| stored::audit_log(c, after, limit))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| AuditEntry {
                seq: r.seq,
                at: r.at,
                actor: r.actor,
                action: r.action,
                target: r.target,
                detail: r.detail,
            })
            .collect(),
    ))
}
