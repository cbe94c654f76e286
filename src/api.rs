//! Every call the dashboard makes to the service, and the one error type they share.
//!
//! Requests go through `gloo-net`'s fetch wrapper and every answer is read into its type from
//! `lifeline_model::api`, error bodies included, so that a renamed field fails to compile here
//! rather than showing nothing on screen. Query strings are written from the model's query types
//! too. The event stream itself is read by [`crate::event_stream`]; this module only says where
//! it is.

use std::fmt;

use gloo_net::http::{QueryParams, Request, Response};
use lifeline_model::api::{
    ErrorBody, EventsQuery, FunctionInfo, StatsQuery, StatusDocument, StreamTicket, TaskListQuery,
};
use lifeline_model::{EndpointId, EndpointSummary, FunctionId, StatsSummary, TaskId, TaskPage};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A task's status document as the dashboard reads it: the function's result is whatever JSON
/// the function returned, so it stays a JSON value.
pub type TaskStatus = StatusDocument<serde_json::Value>;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiError {
    /// The token was refused: sign in again.
    Unauthorized,
    /// The service answered with an error.
    Http { status: u16, message: String },
    /// The service could not be reached.
    Network(String),
    /// The answer was not what the dashboard expects.
    Decode(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unauthorized => f.write_str("The service refused the token. Sign in again."),
            ApiError::Http { status, message } => {
                write!(f, "The service answered {status}: {message}")
            }
            ApiError::Network(why) => write!(f, "Cannot reach the service ({why})."),
            ApiError::Decode(why) => write!(f, "Unexpected answer from the service: {why}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// Where the service is and the token to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Api {
    /// The service's base URL, empty when it serves this page.
    pub base: String,
    pub token: String,
}

/// A query type's fields as `(name, value)` pairs, absent ones left out. The model's query types
/// are flat structs of strings and numbers, which is all this needs to handle.
fn query_pairs<Q: Serialize>(query: &Q) -> Vec<(String, String)> {
    match serde_json::to_value(query) {
        Ok(serde_json::Value::Object(fields)) => fields
            .into_iter()
            .filter_map(|(name, value)| match value {
                serde_json::Value::String(s) => Some((name, s)),
                serde_json::Value::Number(n) => Some((name, n.to_string())),
                serde_json::Value::Bool(b) => Some((name, b.to_string())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The `endpoint_id` filter of `/v1/tasks` and `/v1/stats`: none for all endpoints.
fn endpoint_filter(endpoints: &[EndpointId]) -> Option<String> {
    (!endpoints.is_empty()).then(|| {
        endpoints
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The error an answer that is not a success stands for.
async fn failure(response: Response) -> ApiError {
    let status = response.status();
    if status == 401 {
        return ApiError::Unauthorized;
    }
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .map(|body| body.message)
        .unwrap_or(text);
    ApiError::Http { status, message }
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The event stream's URL, resuming after sequence number `after`. EventSource cannot send
    /// headers, and a long-lived token must not sit in a URL: the service first hands out a
    /// single-use ticket for this one connection.
    pub async fn events_url(&self, after: u64) -> Result<String, ApiError> {
        let response = Request::post(&self.url("/v1/events/ticket"))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send()
            .await
            .map_err(|e| ApiError::Network(e.to_string()))?;
        if !response.ok() {
            return Err(failure(response).await);
        }
        let text = response
            .text()
            .await
            .map_err(|e| ApiError::Network(e.to_string()))?;
        let ticket: StreamTicket =
            serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()))?;
        let query = EventsQuery {
            after: Some(after),
            ticket: Some(ticket.ticket),
            ..EventsQuery::default()
        };
        let params = QueryParams::new();
        for (name, value) in query_pairs(&query) {
            params.append(&name, &value);
        }
        Ok(self.url(&format!("/v1/events?{params}")))
    }

    /// `GET path` with `query`: the answer's text, or the error it stands for. Not generic, so
    /// that the request's code exists once in the wasm however many answer types there are.
    async fn fetch(&self, path: &str, query: &[(String, String)]) -> Result<String, ApiError> {
        let response = Request::get(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .query(query.iter().map(|(name, value)| (name.as_str(), value)))
            .send()
            .await
            .map_err(|e| ApiError::Network(e.to_string()))?;
        if !response.ok() {
            return Err(failure(response).await);
        }
        response
            .text()
            .await
            .map_err(|e| ApiError::Network(e.to_string()))
    }

    /// `GET path` with `query`, read as `T`.
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: Vec<(String, String)>,
    ) -> Result<T, ApiError> {
        let text = self.fetch(path, &query).await?;
        serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// `GET /v1/stats` for the endpoints (all of them when none is given).
    pub async fn stats(&self, endpoints: &[EndpointId]) -> Result<StatsSummary, ApiError> {
        let query = StatsQuery {
            endpoint_id: endpoint_filter(endpoints),
            mine: None,
        };
        self.get("/v1/stats", query_pairs(&query)).await
    }

    /// One page of `GET /v1/tasks`, newest first, for the endpoints (all when none is given).
    pub async fn tasks(
        &self,
        endpoints: &[EndpointId],
        limit: usize,
        cursor: Option<String>,
    ) -> Result<TaskPage, ApiError> {
        let query = TaskListQuery {
            endpoint_id: endpoint_filter(endpoints),
            cursor,
            limit: Some(limit),
            ..TaskListQuery::default()
        };
        self.get("/v1/tasks", query_pairs(&query)).await
    }

    /// `GET /v1/tasks/{id}`: the task's status document.
    pub async fn task(&self, id: TaskId) -> Result<TaskStatus, ApiError> {
        self.get(&format!("/v1/tasks/{id}"), Vec::new()).await
    }

    /// `GET /v1/functions/{id}`.
    pub async fn function(&self, id: FunctionId) -> Result<FunctionInfo, ApiError> {
        self.get(&format!("/v1/functions/{id}"), Vec::new()).await
    }

    /// `GET /v1/endpoints`.
    pub async fn endpoints(&self) -> Result<Vec<EndpointSummary>, ApiError> {
        self.get("/v1/endpoints", Vec::new()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_written_from_the_model_s_types() {
        let query = TaskListQuery {
            endpoint_id: endpoint_filter(&[EndpointId::from_u128(1), EndpointId::from_u128(2)]),
            limit: Some(5000),
            ..TaskListQuery::default()
        };
        let mut pairs = query_pairs(&query);
        pairs.sort();
        assert_eq!(
            pairs,
            vec![
                (
                    "endpoint_id".to_owned(),
                    "00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002"
                        .to_owned()
                ),
                ("limit".to_owned(), "5000".to_owned()),
            ]
        );
        assert!(query_pairs(&StatsQuery::default()).is_empty());
    }
}
