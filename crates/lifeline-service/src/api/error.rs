//! One error type for every handler: bad input becomes a 4xx with a JSON body naming the
//! problem; internal failures are logged with their context and answered with a bare 500.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lifeline_model::api::ErrorBody;
use serde::de::DeserializeOwned;

use crate::store::StoreError;

#[derive(Debug)]
pub enum ApiError {
    /// 400, with a machine-readable code.
    BadRequest(&'static str, String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    /// 410: a task past the retention.
    Expired(String),
    Conflict(String),
    PayloadTooLarge(String),
    /// 429, with how many seconds to wait (`Retry-After`).
    TooManyRequests {
        message: String,
        retry_after: u64,
    },
    /// 405, for a route that exists with other methods.
    MethodNotAllowed,
    /// 415: a body that does not say it is JSON.
    UnsupportedMediaType(String),
    /// 503: the service is shutting down.
    Unavailable,
    /// 500; the detail goes to the log, not to the client.
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest(code, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let (status, code, message) = match self {
            ApiError::BadRequest(code, m) => (StatusCode::BAD_REQUEST, code, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::Expired(m) => (StatusCode::GONE, "expired", m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m),
            ApiError::TooManyRequests { message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
            }
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take this method; see /v1/openapi.json".into(),
            ),
            ApiError::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m,
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is shutting down; try again shortly".into(),
            ),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the service log".into(),
                )
            }
        };
        let body = ErrorBody {
            error: code.to_owned(),
            message,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Closed => ApiError::Unavailable,
            StoreError::Db(e) => ApiError::Internal(e.to_string()),
        }
    }
}

/// A JSON request body whose every failure (too large, not JSON, wrong shape) is an [`ApiError`]
/// that says what is wrong.
#[derive(Debug)]
pub(super) struct JsonBody<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            let given = if content_type.is_empty() {
                "none".to_owned()
            } else {
                format!("{content_type:?}")
            };
            return Err(ApiError::UnsupportedMediaType(format!(
                "the request body must be JSON with `Content-Type: application/json` (given: {given})"
            )));
        }
        let bytes =
            axum::body::Bytes::from_request(req, state)
                .await
                .map_err(|e: BytesRejection| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::PayloadTooLarge(format!(
                            "the request body is larger than the service accepts: {e}"
                        ))
                    } else {
                        ApiError::bad("bad_body", e.body_text())
                    }
                })?;
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            let code = if e.is_data() {
                "invalid_request"
            } else {
                "invalid_json"
            };
            ApiError::bad(code, format!("the request body is not valid: {e}"))
        })?;
        Ok(JsonBody(value))
    }
}

/// Whether a content type is JSON: `application/json` or `application/*+json`, with any
/// parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}
