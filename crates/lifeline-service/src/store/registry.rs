//! Endpoints, functions and service metadata. These functions take a plain connection: writes
//! run inside a writer job (through [`super::Ctx::conn`]), reads on a read connection.

use lifeline_model::api::FunctionInfo;
use lifeline_model::{EndpointId, FunctionId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreResult;
use crate::users::UserId;

/// A registered endpoint as stored.
#[derive(Clone, Debug)]
pub struct EndpointRow {
    pub id: EndpointId,
    pub name: String,
    pub token_digest: String,
    pub created_at: Timestamp,
    /// The user who registered it.
    pub owner: UserId,
    /// Whether every user may submit to it.
    pub public: bool,
}

fn endpoint_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<EndpointRow> {
    let id: Vec<u8> = r.get(0)?;
    Ok(EndpointRow {
        id: EndpointId::from_u128(super::read::id_from(id)?),
        name: r.get(1)?,
        token_digest: r.get(2)?,
        created_at: Timestamp::from_micros(r.get(3)?),
        owner: UserId(r.get(4)?),
        public: r.get::<_, i64>(5)? != 0,
    })
}

pub fn insert_endpoint(conn: &Connection, row: &EndpointRow) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO endpoints (id, name, token_hash, created_at, owner, public) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            row.id.as_u128().to_be_bytes(),
            row.name,
            row.token_digest,
            row.created_at.as_micros(),
            row.owner.0,
            row.public as i64,
        ],
    )?;
    Ok(())
}

/// Marks an endpoint deleted; returns whether it existed.
pub fn delete_endpoint(conn: &Connection, id: EndpointId, now: Timestamp) -> StoreResult<bool> {
    let n = conn.execute(
        "UPDATE endpoints SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
        params![id.as_u128().to_be_bytes(), now.as_micros()],
    )?;
    Ok(n == 1)
}

/// Every endpoint not deleted, oldest first.
pub fn endpoints(conn: &Connection) -> StoreResult<Vec<EndpointRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, token_hash, created_at, owner, public FROM endpoints WHERE deleted_at IS NULL ORDER BY created_at, id",
    )?;
    let rows = stmt
        .query_map([], endpoint_from)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn endpoint(conn: &Connection, id: EndpointId) -> StoreResult<Option<EndpointRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, name, token_hash, created_at, owner, public FROM endpoints WHERE id = ?1 AND deleted_at IS NULL",
        )?
        .query_row([id.as_u128().to_be_bytes()], endpoint_from)
        .optional()?)
}

pub fn insert_function(conn: &Connection, row: &FunctionInfo, owner: UserId) -> StoreResult<()> {
    let spec = serde_json::to_string(&row.spec)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    conn.execute(
        "INSERT INTO functions (id, name, spec, created_at, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            row.function_id.as_u128().to_be_bytes(),
            row.name,
            spec,
            row.created_at.as_micros(),
            owner.0,
        ],
    )?;
    Ok(())
}

pub fn function(conn: &Connection, id: FunctionId) -> StoreResult<Option<FunctionInfo>> {
    Ok(conn
        .prepare_cached("SELECT name, spec, created_at FROM functions WHERE id = ?1")?
        .query_row([id.as_u128().to_be_bytes()], |r| {
            let spec: String = r.get(1)?;
            let spec = serde_json::from_str(&spec).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
            })?;
            Ok(FunctionInfo {
                function_id: id,
                name: r.get(0)?,
                spec,
                created_at: Timestamp::from_micros(r.get(2)?),
            })
        })
        .optional()?)
}

/// Functions, newest first: `owner`'s, or everyone's when `None`.
pub fn functions(conn: &Connection, owner: Option<UserId>) -> StoreResult<Vec<FunctionInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, spec, created_at FROM functions WHERE ?1 IS NULL OR owner = ?1 \
         ORDER BY created_at DESC, id DESC",
    )?;
    let rows = stmt.query_map([owner.map(|o| o.0)], |r| {
        let spec: String = r.get(2)?;
        let spec = serde_json::from_str(&spec).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
        })?;
        Ok(FunctionInfo {
            function_id: FunctionId::from_u128(super::read::id_from(r.get(0)?)?),
            name: r.get(1)?,
            spec,
            created_at: Timestamp::from_micros(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The user who registered a function.
pub fn function_owner(conn: &Connection, id: FunctionId) -> StoreResult<Option<UserId>> {
    Ok(conn
        .prepare_cached("SELECT owner FROM functions WHERE id = ?1")?
        .query_row([id.as_u128().to_be_bytes()], |r| Ok(UserId(r.get(0)?)))
        .optional()?)
}

pub fn meta(conn: &Connection, key: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> StoreResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        [key, value],
    )?;
    Ok(())
}
