//! Users and their tokens. Admin adds, lists and removes users and sets their quotas; every user
//! manages their own tokens (admin anyone's). Tokens are shown once, when made, and kept only as
//! digests; revoking one (or removing its user) refuses it at once, on open streams too.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use lifeline_model::Timestamp;
use lifeline_model::api::{
    NewToken, NewUser, StreamTicket, TokenCreated, TokenInfo, TokenListQuery, UserCreated,
    UserInfo, UserQuotas, parse_lifetime, valid_user_name,
};

use super::AppState;
use super::audit::record;
use super::auth::{Admin, User};
use super::error::{ApiError, ApiResult, JsonBody};
use crate::quota::{DEFAULT_MAX_QUEUED, DEFAULT_MAX_SUBMITS_PER_SEC, Limits};
use crate::store::users::{self as stored, TokenRow, UserRow};
use crate::users::{Caller, Principal, UserId, digest, hex, new_token, new_token_id};

/// A user's quotas, as set or by default.
pub(crate) fn limits_of(u: &UserRow) -> Limits {
    Limits {
        max_queued: u.max_queued.unwrap_or(DEFAULT_MAX_QUEUED),
        max_submits_per_sec: u.max_submits_per_sec.unwrap_or(DEFAULT_MAX_SUBMITS_PER_SEC),
    }
}

fn info(u: &UserRow) -> UserInfo {
    let limits = limits_of(u);
    UserInfo {
        user: u.name.clone(),
        admin: u.admin,
        created_at: u.created_at,
        max_queued: limits.max_queued,
        max_submits_per_sec: limits.max_submits_per_sec,
    }
}

async fn user_named(state: &AppState, name: &str) -> ApiResult<UserRow> {
    let wanted = name.to_owned();
    state
        .store()
        .read(move |c| stored::user_named(c, &wanted))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user named {name:?}")))
}

/// Makes a token for `user`, stores it and makes it valid; returns the token.
async fn issue_token(
    state: &AppState,
    user: &UserRow,
    name: Option<String>,
    expires: Option<Timestamp>,
    actor: &Caller,
) -> ApiResult<TokenCreated> {
    let token = new_token();
    let row = TokenRow {
        id: new_token_id(),
        user: user.id,
        user_name: user.name.clone(),
        digest: hex(&digest(&token)),
        name,
        created_at: crate::now(),
        expires_at: expires,
    };
    let kept = row.clone();
    let who = actor.name.clone();
    state
        .store()
        .write(move |ctx| {
            let conn = ctx.conn()?;
            stored::insert_token(conn, &kept)?;
            record(
                conn,
                &who,
                "token.create",
                &kept.id,
                Some(kept.user_name.clone()),
            )
        })
        .await?;
    let caller = Caller {
        id: user.id,
        name: user.name.clone(),
        admin: user.admin,
        token_id: row.id.clone(),
    };
    state
        .tokens()
        .insert(digest(&token), Principal::User(caller), expires);
    Ok(TokenCreated {
        id: row.id,
        token,
        name: row.name,
        expires,
    })
}

#[tracing::instrument(skip_all)]
pub(super) async fn add(
    Admin(admin): Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewUser>,
) -> ApiResult<(StatusCode, Json<UserCreated>)> {
    if !valid_user_name(&body.name) {
        return Err(ApiError::bad(
            "invalid_name",
            "a user's name has 1 to 64 letters, digits, `.`, `_` or `-`",
        ));
    }
    let (name, is_admin, actor) = (body.name.clone(), body.admin, admin.name.clone());
    let id = state
        .store()
        .write(move |ctx| {
            let conn = ctx.conn()?;
            if stored::name_taken(conn, &name)? {
                return Err(crate::store::StoreError::Conflict(format!(
                    "a user named {name:?} exists or existed"
                )));
            }
            let id = stored::insert_user(conn, &name, is_admin, crate::now())?;
            let detail = is_admin.then(|| "admin".to_owned());
            record(conn, &actor, "user.add", &name, detail)?;
            Ok(id)
        })
        .await?;
    let user = UserRow {
        id,
        name: body.name.clone(),
        admin: body.admin,
        created_at: crate::now(),
        max_queued: None,
        max_submits_per_sec: None,
    };
    state.quotas().set(id, limits_of(&user));
    let created = issue_token(&state, &user, Some("first".into()), None, &admin).await?;
    Ok((
        StatusCode::CREATED,
        Json(UserCreated {
            user: user.name,
            token: created.token,
        }),
    ))
}

#[tracing::instrument(skip_all)]
pub(super) async fn list(
    _: Admin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<UserInfo>>> {
    let users = state.store().read(stored::users).await?;
    Ok(Json(users.iter().map(info).collect()))
}

#[tracing::instrument(skip_all)]
pub(super) async fn me(
    User(caller): User,
    State(state): State<AppState>,
) -> ApiResult<Json<UserInfo>> {
    Ok(Json(info(&user_named(&state, &caller.name).await?)))
}

#[tracing::instrument(skip_all, fields(user = %name))]
pub(super) async fn remove(
    Admin(admin): Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let user = user_named(&state, &name).await?;
    if user.id == UserId::ADMIN {
        return Err(ApiError::Conflict(
            "the admin user cannot be removed".into(),
        ));
    }
    let (id, actor) = (user.id, admin.name.clone());
    state
        .store()
        .write(move |ctx| {
            let conn = ctx.conn()?;
            stored::remove_user(conn, id, crate::now())?;
            record(conn, &actor, "user.remove", &name, None)
        })
        .await?;
    state
        .tokens()
        .remove(|p| matches!(p, Principal::User(c) if c.id == id));
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all, fields(user = %name))]
pub(super) async fn set_quotas(
    Admin(admin): Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<UserQuotas>,
) -> ApiResult<Json<UserInfo>> {
    if body
        .max_submits_per_sec
        .is_some_and(|r| !(r.is_finite() && (0.001..=1_000_000.0).contains(&r)))
    {
        return Err(ApiError::bad(
            "invalid_request",
            "max_submits_per_sec must be 0.001 to 1000000",
        ));
    }
    let mut user = user_named(&state, &name).await?;
    user.max_queued = body.max_queued.or(user.max_queued);
    user.max_submits_per_sec = body.max_submits_per_sec.or(user.max_submits_per_sec);
    let (id, queued, rate, actor) = (
        user.id,
        user.max_queued,
        user.max_submits_per_sec,
        admin.name.clone(),
    );
    let detail = serde_json::to_string(&body).ok();
    state
        .store()
        .write(move |ctx| {
            let conn = ctx.conn()?;
            stored::set_quotas(conn, id, queued, rate)?;
            record(conn, &actor, "user.quotas", &name, detail)
        })
        .await?;
    state.quotas().set(user.id, limits_of(&user));
    Ok(Json(info(&user)))
}

#[tracing::instrument(skip_all)]
pub(super) async fn create_token(
    User(caller): User,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let user = match &body.user {
        Some(name) if *name != caller.name => {
            if !caller.admin {
                return Err(ApiError::Forbidden(
                    "only an admin may make tokens for other users".into(),
                ));
            }
            user_named(&state, name).await?
        }
        _ => user_named(&state, &caller.name).await?,
    };
    let expires = match &body.expires {
        None => None,
        Some(text) => {
            let secs = parse_lifetime(text).ok_or_else(|| {
                ApiError::bad(
                    "invalid_request",
                    format!(
                        "expires {text:?} is not a lifetime such as 30d, 12h, 45m or 90s (at most ten years)"
                    ),
                )
            })?;
            // At most ten years (parse_lifetime): far from overflowing microseconds.
            Some(Timestamp::from_micros(
                crate::now()
                    .as_micros()
                    .saturating_add(secs as i64 * 1_000_000),
            ))
        }
    };
    if let Some(name) = &body.name {
        super::valid_name("a token", name)?;
    }
    let created = issue_token(&state, &user, body.name.clone(), expires, &caller).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[tracing::instrument(skip_all)]
pub(super) async fn list_tokens(
    User(caller): User,
    State(state): State<AppState>,
    query: Result<Query<TokenListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    let Query(q) = query.map_err(|e| ApiError::bad("invalid_query", e.body_text()))?;
    let whose = match q.user.as_deref() {
        None => Some(caller.id),
        Some(name) if name == caller.name => Some(caller.id),
        Some(_) if !caller.admin => {
            return Err(ApiError::Forbidden(
                "only an admin may list other users' tokens".into(),
            ));
        }
        Some("*") => None,
        Some(name) => Some(user_named(&state, name).await?.id),
    };
    let rows = state
        .store()
        .read(move |c| stored::tokens(c, whose))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|t| TokenInfo {
                id: t.id,
                user: t.user_name,
                name: t.name,
                created_at: t.created_at,
                expires: t.expires_at,
            })
            .collect(),
    ))
}

#[tracing::instrument(skip_all, fields(token_id = %id))]
pub(super) async fn revoke_token(
    User(caller): User,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let wanted = id.clone();
    let row = state
        .store()
        .read(move |c| stored::token(c, &wanted))
        .await?
        // Another user's token does not exist for this one.
        .filter(|t| caller.admin || t.user == caller.id)
        .ok_or_else(|| ApiError::NotFound(format!("no token {id}")))?;
    let actor = caller.name.clone();
    let target = row.id.clone();
    state
        .store()
        .write(move |ctx| {
            let conn = ctx.conn()?;
            stored::revoke_token(conn, &target, crate::now())?;
            record(
                conn,
                &actor,
                "token.revoke",
                &target,
                Some(row.user_name.clone()),
            )
        })
        .await?;
    state
        .tokens()
        .remove(|p| matches!(p, Principal::User(c) if c.token_id == id));
    Ok(StatusCode::NO_CONTENT)
}

/// A one-minute, single-use ticket for `GET /v1/events?ticket=...`.
#[tracing::instrument(skip_all)]
pub(super) async fn ticket(
    User(caller): User,
    State(state): State<AppState>,
) -> Json<StreamTicket> {
    Json(StreamTicket {
        ticket: state.tickets().issue(caller),
    })
}
