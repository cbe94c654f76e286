//! Users, their tokens, endpoint shares and the audit log, as stored. Like
//! [`super::registry`], these take a plain connection: writes run inside a writer job, reads on
//! a read connection.

use lifeline_model::{EndpointId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreResult;
use crate::users::UserId;

/// A user as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub id: UserId,
    pub name: String,
    pub admin: bool,
    pub created_at: Timestamp,
    pub max_queued: Option<u64>,
    pub max_submits_per_sec: Option<f64>,
}

const USER_COLUMNS: &str = "id, name, admin, created_at, max_queued, max_submits_per_sec";

fn user_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: UserId(r.get(0)?),
        name: r.get(1)?,
        admin: r.get::<_, i64>(2)? != 0,
        created_at: Timestamp::from_micros(r.get(3)?),
        max_queued: r.get::<_, Option<i64>>(4)?.map(|n| n.max(0) as u64),
        max_submits_per_sec: r.get(5)?,
    })
}

/// Every user not removed, oldest first.
pub fn users(conn: &Connection) -> StoreResult<Vec<UserRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE removed_at IS NULL ORDER BY id"
    ))?;
    Ok(stmt
        .query_map([], user_from)?
        .collect::<rusqlite::Result<_>>()?)
}

pub fn user_named(conn: &Connection, name: &str) -> StoreResult<Option<UserRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE name = ?1 AND removed_at IS NULL"
        ))?
        .query_row([name], user_from)
        .optional()?)
}

/// Whether a user ever had this name (a removed user's name is not given again: their tasks
/// keep it).
pub fn name_taken(conn: &Connection, name: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn insert_user(
    conn: &Connection,
    name: &str,
    admin: bool,
    now: Timestamp,
) -> StoreResult<UserId> {
    conn.prepare_cached("INSERT INTO users (name, admin, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![name, admin as i64, now.as_micros()])?;
    Ok(UserId(conn.last_insert_rowid()))
}

/// Removes a user and revokes their tokens; returns whether they existed.
pub fn remove_user(conn: &Connection, id: UserId, now: Timestamp) -> StoreResult<bool> {
    let n = conn.execute(
        "UPDATE users SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL",
        params![id.0, now.as_micros()],
    )?;
    conn.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![id.0, now.as_micros()],
    )?;
    Ok(n == 1)
}

pub fn set_quotas(
    conn: &Connection,
    id: UserId,
    max_queued: Option<u64>,
    max_submits_per_sec: Option<f64>,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE users SET max_queued = ?2, max_submits_per_sec = ?3 WHERE id = ?1",
        params![id.0, max_queued.map(|n| n as i64), max_submits_per_sec],
    )?;
    Ok(())
}

/// A token as stored (its digest, never the token).
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub id: String,
    pub user: UserId,
    pub user_name: String,
    pub digest: String,
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

const TOKEN_COLUMNS: &str = "t.id, t.user_id, u.name, t.digest, t.name, t.created_at, t.expires_at";

fn token_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        user: UserId(r.get(1)?),
        user_name: r.get(2)?,
        digest: r.get(3)?,
        name: r.get(4)?,
        created_at: Timestamp::from_micros(r.get(5)?),
        expires_at: r.get::<_, Option<i64>>(6)?.map(Timestamp::from_micros),
    })
}

pub fn insert_token(conn: &Connection, row: &TokenRow) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO tokens (id, user_id, digest, name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        row.id,
        row.user.0,
        row.digest,
        row.name,
        row.created_at.as_micros(),
        row.expires_at.map(|t| t.as_micros())
    ])?;
    Ok(())
}

/// Tokens not revoked, of one user or of everyone, oldest first.
pub fn tokens(conn: &Connection, user: Option<UserId>) -> StoreResult<Vec<TokenRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.revoked_at IS NULL AND u.removed_at IS NULL AND (?1 IS NULL OR t.user_id = ?1) \
         ORDER BY t.created_at, t.id"
    ))?;
    Ok(stmt
        .query_map([user.map(|u| u.0)], token_from)?
        .collect::<rusqlite::Result<_>>()?)
}

pub fn token(conn: &Connection, id: &str) -> StoreResult<Option<TokenRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.id = ?1 AND t.revoked_at IS NULL AND u.removed_at IS NULL"
        ))?
        .query_row([id], token_from)
        .optional()?)
}

pub fn revoke_token(conn: &Connection, id: &str, now: Timestamp) -> StoreResult<bool> {
    Ok(conn.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now.as_micros()],
    )? == 1)
}

/// Lets `user` submit to `endpoint`.
pub fn share(conn: &Connection, endpoint: EndpointId, user: UserId) -> StoreResult<()> {
    conn.execute(
        "INSERT OR IGNORE INTO endpoint_shares (endpoint_id, user_id) VALUES (?1, ?2)",
        params![endpoint.as_u128().to_be_bytes(), user.0],
    )?;
    Ok(())
}

pub fn set_public(conn: &Connection, endpoint: EndpointId, public: bool) -> StoreResult<()> {
    conn.execute(
        "UPDATE endpoints SET public = ?2 WHERE id = ?1",
        params![endpoint.as_u128().to_be_bytes(), public as i64],
    )?;
    Ok(())
}

/// Every share: (endpoint, user).
pub fn shares(conn: &Connection) -> StoreResult<Vec<(EndpointId, UserId)>> {
    let mut stmt = conn.prepare_cached("SELECT endpoint_id, user_id FROM endpoint_shares")?;
    Ok(stmt
        .query_map([], |r| {
            Ok((
                EndpointId::from_u128(super::read::id_from(r.get(0)?)?),
                UserId(r.get(1)?),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// One entry of the audit log.
#[derive(Clone, Debug)]
pub struct AuditRow {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
}

pub fn audit(conn: &Connection, row: &AuditRow) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        row.at.as_micros(),
        row.actor,
        row.action,
        row.target,
        row.detail
    ])?;
    Ok(())
}

/// The audit log after `after`, oldest first, at most `limit` entries.
pub fn audit_log(conn: &Connection, after: i64, limit: usize) -> StoreResult<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, actor, action, target, detail FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    Ok(stmt
        .query_map(params![after, limit as i64], |r| {
            Ok(AuditRow {
                seq: r.get(0)?,
                at: Timestamp::from_micros(r.get(1)?),
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                detail: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}
