//! Authentication. Every route but the health check takes a bearer token; the event stream also
//! takes a one-minute, single-use ticket (`POST /v1/events/ticket`), because a browser's
//! EventSource cannot send headers and a long-lived token must never sit in a URL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lifeline_model::EndpointId;

use super::AppState;
use super::error::ApiError;
use crate::users::{Caller, Principal, new_token};

pub(super) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    // The scheme is case-insensitive (RFC 7235).
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let token = bearer(&parts.headers).ok_or_else(|| {
        ApiError::Unauthorized("send a token: `Authorization: Bearer <token>`".into())
    })?;
    state.tokens().lookup(token, crate::now()).ok_or_else(|| {
        ApiError::Unauthorized("the token is not valid (unknown, revoked or expired)".into())
    })
}

/// A request made with a user's token.
#[derive(Debug)]
pub(super) struct User(pub(super) Caller);

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state)? {
            Principal::User(caller) => {
                tracing::Span::current().record("user", caller.name.as_str());
                Ok(User(caller))
            }
            Principal::Endpoint(_) => Err(ApiError::Unauthorized(
                "an endpoint token cannot use this route: send a user's token".into(),
            )),
        }
    }
}

/// A request made with an admin's token.
#[derive(Debug)]
pub(super) struct Admin(pub(super) Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let User(caller) = User::from_request_parts(parts, state).await?;
        if caller.admin {
            Ok(Admin(caller))
        } else {
            Err(ApiError::Forbidden("only an admin may do this".into()))
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
            Principal::User(_) => Err(ApiError::Forbidden(
                "this route takes an endpoint's token".into(),
            )),
        }
    }
}

/// The event stream's caller: a bearer token, or a ticket in the query.
#[derive(Debug)]
pub(super) struct StreamUser(pub(super) Caller);

impl FromRequestParts<AppState> for StreamUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ticket = parts.uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(name, _)| name == "ticket")
                .map(|(_, value)| value.into_owned())
        });
        match ticket {
            Some(ticket) => {
                let caller = state.tickets().redeem(&ticket).ok_or_else(|| {
                    ApiError::Unauthorized(
                        "the ticket is not valid (unknown, used or older than a minute): ask POST /v1/events/ticket for another".into(),
                    )
                })?;
                // The token behind the ticket must still work.
                if !state
                    .tokens()
                    .user_token_valid(&caller.token_id, crate::now())
                {
                    return Err(ApiError::Unauthorized("the token is not valid".into()));
                }
                Ok(StreamUser(caller))
            }
            None => Ok(StreamUser(User::from_request_parts(parts, state).await?.0)),
        }
    }
}

/// How long a stream ticket may wait to be used.
const TICKET_LIFE: Duration = Duration::from_secs(60);

/// Stream tickets not used yet. A std mutex: held for map updates only.
#[derive(Debug, Default)]
pub struct Tickets(Mutex<HashMap<String, (Caller, Instant)>>);

impl Tickets {
    /// A new ticket for `caller`, valid once within a minute.
    pub fn issue(&self, caller: Caller) -> String {
        let ticket = new_token();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, at)| now.duration_since(*at) < TICKET_LIFE);
        map.insert(ticket.clone(), (caller, now));
        ticket
    }

    /// The caller a ticket was issued to, once.
    fn redeem(&self, ticket: &str) -> Option<Caller> {
        let (caller, at) = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(ticket)?;
        (at.elapsed() < TICKET_LIFE).then_some(caller)
    }
}
