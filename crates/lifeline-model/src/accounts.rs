//! The bodies of the `/v1` routes about users, tokens, endpoint shares, stream tickets and the
//! audit log (re-exported from [`crate::api`]).

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// User names: 1 to 64 letters, digits, `.`, `_` or `-`.
#[cfg(feature = "schema")]
fn user_name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 64,
        "pattern": "^[A-Za-z0-9._-]+$",
    })
}

/// Whether `name` is a valid user name (see [`NewUser::name`]).
pub fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `POST /v1/users` (admin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1 to 64 letters, digits, `.`, `_` or `-`.
    #[cfg_attr(feature = "schema", schemars(schema_with = "user_name_schema"))]
    pub name: String,
    #[serde(default)]
    pub admin: bool,
}

/// The answer to `POST /v1/users`: the new user's first token, shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserCreated {
    pub user: String,
    pub token: String,
}

/// A user, as `GET /v1/users` and `GET /v1/me` show them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserInfo {
    pub user: String,
    pub admin: bool,
    pub created_at: Timestamp,
    /// Unfinished tasks the user may have.
    pub max_queued: u64,
    /// Submissions the user may make per second.
    pub max_submits_per_sec: f64,
}

/// `PATCH /v1/users/{name}` (admin): the user's quotas; an absent field stays as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UserQuotas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queued: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.001, max = 1000000.0)))]
    pub max_submits_per_sec: Option<f64>,
}

/// `POST /v1/tokens`: a new token for the caller (or, for admin, for `user`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A label to recognise it by, such as `laptop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 200)))]
    pub name: Option<String>,
    /// How long it lives: a number and a unit, `30d`, `12h`, `45m` or `90s` (at most ten
    /// years); forever if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[0-9]{1,9}[dhms]$")))]
    pub expires: Option<String>,
    /// Whose token (admin only); the caller's if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "optional_user_name_schema")
    )]
    pub user: Option<String>,
}

#[cfg(feature = "schema")]
fn optional_user_name_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    user_name_schema(g)
}

/// Parses a lifetime such as `30d`, `12h`, `45m`, `90s` into seconds; `None` for anything else,
/// or for longer than [`MAX_LIFETIME_SECS`].
pub fn parse_lifetime(text: &str) -> Option<u64> {
    let (number, unit) = text.split_at(text.len().checked_sub(1)?);
    if number.is_empty() || number.len() > 9 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    let scale = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return None,
    };
    let secs = n.checked_mul(scale)?;
    (n > 0 && secs <= MAX_LIFETIME_SECS).then_some(secs)
}

/// The longest a token may live: ten years.
pub const MAX_LIFETIME_SECS: u64 = 10 * 366 * 86_400;

/// The answer to `POST /v1/tokens`: the token is shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenCreated {
    pub id: String,
    pub token: String,
    #[serde(default)]
    pub name: Option<String>,
    /// When it stops working; never if absent.
    #[serde(default)]
    pub expires: Option<Timestamp>,
}

/// A token as `GET /v1/tokens` lists it (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenInfo {
    pub id: String,
    pub user: String,
    #[serde(default)]
    pub name: Option<String>,
    pub created_at: Timestamp,
    #[serde(default)]
    pub expires: Option<Timestamp>,
}

/// The query of `GET /v1/tokens`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenListQuery {
    /// Whose tokens (admin only; `*` for everyone's); the caller's if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The answer to `POST /v1/events/ticket`: use it once, within a minute, as
/// `GET /v1/events?ticket=...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StreamTicket {
    pub ticket: String,
}

/// `POST /v1/endpoints/{id}/share`: let one user, or everyone, submit to the endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ShareEndpoint {
    /// The user to share it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "optional_user_name_schema")
    )]
    pub with: Option<String>,
    /// Open it to every user (`true`) or close it again (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
}

/// The answer to a share: who may use the endpoint now, besides its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointShares {
    pub owner: String,
    pub public: bool,
    pub shared_with: Vec<String>,
}

/// One entry of the audit log (`GET /v1/audit`, admin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    pub seq: i64,
    pub at: Timestamp,
    /// The user who acted.
    pub actor: String,
    /// Such as `user.add`, `token.revoke`, `endpoint.share`.
    pub action: String,
    /// What it acted on: a user's name, a token's id, an endpoint's id.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The query of `GET /v1/audit`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries after this sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub after: Option<i64>,
    /// At most this many (1 to 10,000; default 1,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 10000)))]
    pub limit: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_and_names() {
        assert_eq!(parse_lifetime("30d"), Some(30 * 86_400));
        assert_eq!(parse_lifetime("90s"), Some(90));
        for bad in [
            "",
            "d",
            "0d",
            "3w",
            "-1d",
            "1.5h",
            "1234567890s",
            "999999999d",
            "3661d",
        ] {
            assert_eq!(parse_lifetime(bad), None, "{bad}");
        }
        assert!(valid_user_name("ada.lovelace-2"));
        for bad in ["", "a b", "é", "x\n", &"a".repeat(65)] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }
}
