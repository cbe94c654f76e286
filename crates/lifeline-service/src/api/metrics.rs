//! `GET /metrics` and the middleware that times every request for it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::metrics::CONTENT_TYPE;
use crate::users::Principal;

/// The metrics, for the scrape token (`metrics_token`) or an admin's token.
pub(super) async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match allowed(&state, &headers) {
        Ok(()) => exposition(&state),
        Err(error) => error.into_response(),
    }
}

/// The metrics without a token: served only on `metrics_bind`, an address of its own.
pub(super) async fn open_scrape(State(state): State<AppState>) -> Response {
    exposition(&state)
}

fn exposition(state: &AppState) -> Response {
    let text = state.metrics().render(state);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

fn allowed(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = super::auth::bearer(headers).ok_or_else(|| {
        ApiError::Unauthorized(
            "send the scrape token (`metrics_token`) or an admin's token: `Authorization: Bearer <token>`"
                .into(),
        )
    })?;
    let scrape_token = state.settings().metrics_token.as_bytes();
    if !scrape_token.is_empty() && bool::from(scrape_token.ct_eq(token.as_bytes())) {
        return Ok(());
    }
    match state.tokens().lookup(token, crate::now()) {
        Some(Principal::User(caller)) if caller.admin => Ok(()),
        Some(Principal::User(_)) => Err(ApiError::Forbidden(
            "only the scrape token or an admin's token may read the metrics".into(),
        )),
        _ => Err(ApiError::Unauthorized(
            "the token is not valid for the metrics (unknown, revoked or expired)".into(),
        )),
    }
}

/// Times a request and counts it by route (the route's pattern, so that ids do not make a
/// series each), method and status.
pub(super) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || unmatched(request.uri().path()),
        |p| p.as_str().to_owned(),
    );
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = vec![
        ("route", route),
        ("method", method),
        ("status", response.status().as_u16().to_string()),
    ];
    state
        .metrics()
        .http
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// A label for a path no route matched: the dashboard's files are one series, anything else
/// another, so that a scan of random paths cannot grow the metrics.
fn unmatched(path: &str) -> String {
    if path.starts_with("/v1/") {
        "/v1/(unknown)".into()
    } else {
        "(dashboard)".into()
    }
}
