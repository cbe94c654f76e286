//! Bearer tokens: one user token created on first start, one token per endpoint. Only their
//! SHA-256 digests are stored.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lifeline_model::EndpointId;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;

/// Who a token belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    User,
    Endpoint(EndpointId),
}

/// The digests of every valid token. Read on every request, written when endpoints come and go;
/// a std lock because it is never held across an await.
#[derive(Debug, Default)]
pub struct Tokens(RwLock<HashMap<String, Principal>>);

impl Tokens {
    pub fn insert(&self, digest: String, who: Principal) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest, who);
    }

    pub fn remove_endpoint(&self, endpoint: EndpointId) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, who| *who != Principal::Endpoint(endpoint));
    }

    pub fn lookup(&self, token: &str) -> Option<Principal> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&digest(token))
            .copied()
    }
}

/// A new random token: 32 bytes as hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    // The scheme is case-insensitive (RFC 7235).
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// The token from the `access_token` query parameter, for clients that cannot set headers
/// (a browser's EventSource).
fn query_token(parts: &Parts) -> Option<String> {
    form_urlencoded::parse(parts.uri.query()?.as_bytes())
        .find(|(name, _)| name == "access_token")
        .map(|(_, value)| value.into_owned())
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let token = bearer(parts)
        .map(str::to_owned)
        .or_else(|| query_token(parts))
        .ok_or_else(|| {
            ApiError::Unauthorized("send a token: `Authorization: Bearer <token>`".into())
        })?;
    state
        .tokens()
        .lookup(&token)
        .ok_or_else(|| ApiError::Unauthorized("the token is not valid".into()))
}

/// A request made with the user token.
#[derive(Debug)]
pub(super) struct User;

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state)? {
            Principal::User => Ok(User),
            Principal::Endpoint(_) => Err(ApiError::Forbidden(
                "an endpoint token cannot use this route".into(),
            )),
        }
    }
}

/// A request made with an endpoint's token.
#[derive(Debug)]
pub(super) struct EndpointAuth(pub(super) EndpointId);

impl FromRequestParts<AppState> for EndpointAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state)? {
            Principal::Endpoint(id) => Ok(EndpointAuth(id)),
            Principal::User => Err(ApiError::Forbidden(
                "this route takes an endpoint's token".into(),
            )),
        }
    }
}
