//! Every call the dashboard makes to the service, and the one error type they share.
//!
//! Requests go through `gloo-net`'s fetch wrapper and every answer is read into its type from
//! `lifeline_model::api`, error bodies included, so that a renamed field fails to compile here
//! rather than showing nothing on screen. Query strings are written from the model's query types
//! too. The event stream itself is read by [`crate::event_stream`]; this module only says where
//! it is.
//!
//! Every call also reports how it went to the [`Api`]'s observer, if it has one: the session
//! learns from that one place that a token was refused (whatever call met the refusal) and
//! whether the service can be reached, instead of each caller deciding for itself.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use gloo_net::http::{QueryParams, Request, RequestBuilder, Response};
use lifeline_model::api::{
    BatchStatus, BatchStatusRequest, ErrorBody, EventsQuery, Failures, FailuresQuery, FunctionInfo,
    GroupPage, GroupsQuery, Health, StatsQuery, StatusDocument, StreamTicket, TaskListQuery,
    Timeline, TimelineQuery, UserInfo,
};
use lifeline_model::{
    EndpointId, EndpointSummary, FunctionId, State, StatsSummary, TaskId, TaskPage,
};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::value::RawValue;

/// A task's status document as the dashboard reads it: the function's result is whatever JSON
/// the function returned, kept as the service wrote it (the dashboard only shows it, so it is
/// never taken apart, and its numbers keep every digit).
pub type TaskStatus = StatusDocument<Box<RawValue>>;

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
    /// One sentence for a person: never a response body or a browser's internal error text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unauthorized => f.write_str(REFUSED),
            ApiError::Http { status, message } if !message.is_empty() => {
                write!(f, "The service answered {status}: {message}")
            }
            ApiError::Http { status: 404, .. } => f.write_str(
                "No Lifeline service answers at this address (it answered 404): check the service URL.",
            ),
            ApiError::Http { status, .. } if *status >= 500 => write!(
                f,
                "The service failed to answer ({status}); it may be starting or overloaded."
            ),
            ApiError::Http { status, .. } => {
                write!(f, "The service refused the request ({status}).")
            }
            ApiError::Network(_) => f.write_str(
                "Cannot reach the service: check the service URL and that it is running.",
            ),
            ApiError::Decode(_) => f.write_str(
                "The answer was not what a Lifeline service sends: check the service URL.",
            ),
        }
    }
}

/// What a refused token means to the person holding it.
pub const REFUSED: &str =
    "The service refused the token: it was revoked or has expired. Sign in again.";

/// The message of a service's error body, cut to its first sentence and a readable length, so
/// that what is shown stays one sentence whatever the body holds.
fn first_sentence(message: &str) -> String {
    const MAX: usize = 160;
    let line = message.lines().next().unwrap_or_default().trim();
    let end = line
        .char_indices()
        .find(|&(i, c)| c == '.' && line[i + 1..].starts_with(' '))
        .map_or(line.len(), |(i, _)| i);
    let sentence = line[..end].trim_end_matches('.');
    if sentence.chars().count() > MAX {
        let cut: String = sentence.chars().take(MAX).collect();
        format!("{}…", cut.trim_end())
    } else {
        format!("{sentence}.")
    }
}

impl std::error::Error for ApiError {}

/// How a call went, as the [`Api`]'s observer hears it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The service answered (whatever it said, other than refusing the token).
    Answered,
    /// The service refused the token.
    Refused,
    /// The service could not be reached.
    Unreachable,
}

/// Hears how every call went: the token it was made with, and the outcome.
pub type Observer = Arc<dyn Fn(&str, Outcome) + Send + Sync>;

/// Where the service is and the token to send.
#[derive(Clone)]
pub struct Api {
    /// The service's base URL, empty when it serves this page.
    pub base: String,
    pub token: String,
    observer: Option<Observer>,
}

impl PartialEq for Api {
    /// Two handles are the same session when they name the same service and token.
    fn eq(&self, other: &Self) -> bool {
        self.base == other.base && self.token == other.token
    }
}

impl fmt::Debug for Api {
    /// Leaves the token out: it must not reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A service URL as typed: blank for this page's own origin, otherwise without a trailing `/`.
pub fn normalize_base(base: &str) -> String {
    base.trim().trim_end_matches('/').to_owned()
}

/// A query type's fields as `(name, value)` pairs, absent ones left out. The model's query types
/// are flat structs of strings, numbers and booleans, which is all this needs to handle: each
/// field's JSON is read as written, and only strings are decoded.
fn query_pairs<Q: Serialize>(query: &Q) -> Vec<(String, String)> {
    let fields = serde_json::to_string(query)
        .and_then(|json| serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(&json));
    let Ok(fields) = fields else {
        return Vec::new();
    };
    fields
        .into_iter()
        .filter_map(|(name, value)| match value.get() {
            "null" => None,
            text if text.starts_with('"') => serde_json::from_str(text).ok().map(|s| (name, s)),
            text if text.starts_with(['[', '{']) => None,
            text => Some((name, text.to_owned())),
        })
        .collect()
}

/// The `endpoint_id` filter of `/v1/tasks` and `/v1/stats`: none for all endpoints.
pub fn endpoint_filter(endpoints: &[EndpointId]) -> Option<String> {
    (!endpoints.is_empty()).then(|| {
        endpoints
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The `edge` filter of `/v1/tasks`: `FROM>TO` in wire names (the query string encodes `>`).
fn edge_filter(from: State, to: State) -> String {
    format!("{}>{}", from.wire(), to.wire())
}

/// A sent request's answer: its text, or the error it stands for (one place for every call).
async fn text_of(sent: Result<Response, gloo_net::Error>) -> Result<String, ApiError> {
    let response = sent.map_err(|e| ApiError::Network(e.to_string()))?;
    if !response.ok() {
        return Err(failure(response).await);
    }
    response
        .text()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))
}

/// The error an answer that is not a success stands for. Only a service's own error body is
/// shown (its first sentence); any other body (a proxy's HTML page, say) is left out.
async fn failure(response: Response) -> ApiError {
    let status = response.status();
    if status == 401 {
        return ApiError::Unauthorized;
    }
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .map(|body| first_sentence(&body.message))
        .unwrap_or_default();
    ApiError::Http { status, message }
}

impl Api {
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            base: normalize_base(base),
            token: token.to_owned(),
            observer: None,
        }
    }

    /// The same service and token, reporting every call's outcome to `observer`.
    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    fn tell(&self, outcome: Outcome) {
        if let Some(observer) = &self.observer {
            observer(&self.token, outcome);
        }
    }

    /// Reports a call's result to the observer and passes it on.
    fn observe<T>(&self, result: Result<T, ApiError>) -> Result<T, ApiError> {
        match &result {
            Err(ApiError::Unauthorized) => self.tell(Outcome::Refused),
            Err(ApiError::Network(_)) => self.tell(Outcome::Unreachable),
            Ok(_) | Err(ApiError::Http { .. } | ApiError::Decode(_)) => {
                self.tell(Outcome::Answered)
            }
        }
        result
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The event stream's URL, resuming after sequence number `after` (`mine`: only the
    /// caller's own tasks). EventSource cannot send headers, and a long-lived token must not sit
    /// in a URL: the service first hands out a single-use ticket for this one connection.
    pub async fn events_url(&self, after: u64, mine: bool) -> Result<String, ApiError> {
        let ticket = self.observe(self.ticket().await)?;
        let query = EventsQuery {
            after: Some(after),
            ticket: Some(ticket.ticket),
            mine: mine.then_some(true),
            ..EventsQuery::default()
        };
        let params = QueryParams::new();
        for (name, value) in query_pairs(&query) {
            params.append(&name, &value);
        }
        Ok(self.url(&format!("/v1/events?{params}")))
    }

    async fn ticket(&self) -> Result<StreamTicket, ApiError> {
        let sent = self
            .authorized(Request::post(&self.url("/v1/events/ticket")))
            .send()
            .await;
        let text = text_of(sent).await?;
        serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// The request with this session's token.
    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        request.header("Authorization", &format!("Bearer {}", self.token))
    }

    /// `GET path` with `query`: the answer's text, or the error it stands for. Not generic, so
    /// that the request's code exists once in the wasm however many answer types there are.
    async fn fetch(&self, path: &str, query: &[(String, String)]) -> Result<String, ApiError> {
        let sent = self
            .authorized(Request::get(&self.url(path)))
            .query(query.iter().map(|(name, value)| (name.as_str(), value)))
            .send()
            .await;
        text_of(sent).await
    }

    /// `GET path` with `query`, read as `T`.
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: Vec<(String, String)>,
    ) -> Result<T, ApiError> {
        let text = self.observe(self.fetch(path, &query).await)?;
        serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// `GET /v1/me`: who the token belongs to.
    pub async fn me(&self) -> Result<UserInfo, ApiError> {
        self.get("/v1/me", Vec::new()).await
    }

    /// `GET /v1/stats` for the endpoints (all of them when none is given; `mine`: only the
    /// caller's own tasks).
    pub async fn stats(
        &self,
        endpoints: &[EndpointId],
        mine: bool,
    ) -> Result<StatsSummary, ApiError> {
        let query = StatsQuery {
            endpoint_id: endpoint_filter(endpoints),
            mine: mine.then_some(true),
            ..StatsQuery::default()
        };
        self.stats_of(&query).await
    }

    /// `GET /v1/stats` with a whole query: a moment of the past (`at_seq`, `at`), a window.
    pub async fn stats_of(&self, query: &StatsQuery) -> Result<StatsSummary, ApiError> {
        self.get("/v1/stats", query_pairs(query)).await
    }

    /// `GET /v1/timeline`: points over the stored history for the endpoints (all when none is
    /// given; `mine`: only the caller's own tasks).
    pub async fn timeline(
        &self,
        endpoints: &[EndpointId],
        mine: bool,
        points: usize,
    ) -> Result<Timeline, ApiError> {
        let query = TimelineQuery {
            endpoint_id: endpoint_filter(endpoints),
            mine: mine.then_some(true),
            points: Some(points),
        };
        self.get("/v1/timeline", query_pairs(&query)).await
    }

    /// One page of `GET /v1/tasks` for the endpoints (all when none is given; `mine`: only the
    /// caller's own tasks), narrowed by the list's `query`: newest first, or newest crossing
    /// first with an edge filter. `cursor` is a sequence number: only tasks stored before it.
    pub async fn tasks(
        &self,
        endpoints: &[EndpointId],
        mine: bool,
        query: &crate::window::Query,
        limit: usize,
        cursor: Option<i64>,
    ) -> Result<TaskPage, ApiError> {
        let states = query
            .states
            .iter()
            .map(|s| s.wire())
            .collect::<Vec<_>>()
            .join(",");
        let query = TaskListQuery {
            endpoint_id: endpoint_filter(endpoints),
            state: (!states.is_empty()).then_some(states),
            function_id: query.function.map(|f| f.to_string()),
            edge: query.edge.map(|(from, to)| edge_filter(from, to)),
            at_seq: query.at_seq,
            failure: query.failure.clone(),
            task_group_id: query.group.map(|g| g.to_string()),
            cursor: cursor.map(|c| c.to_string()),
            limit: Some(limit),
            mine: mine.then_some(true),
        };
        self.get("/v1/tasks", query_pairs(&query)).await
    }

    /// `GET /v1/failures`: failures and retries grouped by cause, for the endpoints (all when
    /// none is given; `mine`: only the caller's own tasks).
    pub async fn failures(
        &self,
        endpoints: &[EndpointId],
        mine: bool,
    ) -> Result<Failures, ApiError> {
        let query = FailuresQuery {
            endpoint_id: endpoint_filter(endpoints),
            mine: mine.then_some(true),
            ..FailuresQuery::default()
        };
        self.get("/v1/failures", query_pairs(&query)).await
    }

    /// `GET /v1/groups`: the newest `limit` submissions with their tasks per state, for the
    /// endpoints (all when none is given; `mine`: only the caller's own).
    pub async fn groups(
        &self,
        endpoints: &[EndpointId],
        mine: bool,
        limit: usize,
    ) -> Result<GroupPage, ApiError> {
        let query = GroupsQuery {
            endpoint_id: endpoint_filter(endpoints),
            mine: mine.then_some(true),
            limit: Some(limit),
            ..GroupsQuery::default()
        };
        self.get("/v1/groups", query_pairs(&query)).await
    }

    /// `GET /v1/tasks/{id}`: the task's status document.
    pub async fn task(&self, id: TaskId) -> Result<TaskStatus, ApiError> {
        self.get(&format!("/v1/tasks/{id}"), Vec::new()).await
    }

    /// `POST /v1/tasks/batch_status`: the status documents of several tasks at once, for their
    /// exceptions (results are skipped unread).
    pub async fn batch_status(&self, ids: &[TaskId]) -> Result<BatchStatus<IgnoredAny>, ApiError> {
        let body = BatchStatusRequest {
            task_ids: ids.iter().map(ToString::to_string).collect(),
        };
        let text = self.observe(self.post("/v1/tasks/batch_status", &body).await)?;
        serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// `POST path` with a JSON body: the answer's text, or the error it stands for.
    async fn post<B: Serialize>(&self, path: &str, body: &B) -> Result<String, ApiError> {
        let body = serde_json::to_string(body).map_err(|e| ApiError::Decode(e.to_string()))?;
        let sent = self
            .authorized(Request::post(&self.url(path)))
            .header("Content-Type", "application/json")
            .body(body)
            .map_err(|e| ApiError::Network(e.to_string()))?
            .send()
            .await;
        text_of(sent).await
    }

    /// `GET /v1/functions/{id}`.
    pub async fn function(&self, id: FunctionId) -> Result<FunctionInfo, ApiError> {
        self.get(&format!("/v1/functions/{id}"), Vec::new()).await
    }

    /// `GET /v1/endpoints`.
    pub async fn endpoints(&self) -> Result<Vec<EndpointSummary>, ApiError> {
        self.get("/v1/endpoints", Vec::new()).await
    }

    /// `GET /healthz`: the service's version and the commit it was built from.
    pub async fn health(&self) -> Result<Health, ApiError> {
        self.get("/healthz", Vec::new()).await
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
        let edge = TaskListQuery {
            edge: Some(edge_filter(State::Running, State::Success)),
            ..TaskListQuery::default()
        };
        assert_eq!(
            query_pairs(&edge),
            vec![("edge".into(), "running>success".into())]
        );
        let mine = StatsQuery {
            mine: Some(true),
            ..StatsQuery::default()
        };
        assert_eq!(query_pairs(&mine), vec![("mine".into(), "true".into())]);
        let failure = TaskListQuery {
            failure: Some("exception:KeyError: 'a\\b' \"c\"".into()),
            ..TaskListQuery::default()
        };
        assert_eq!(
            query_pairs(&failure),
            vec![("failure".into(), "exception:KeyError: 'a\\b' \"c\"".into())]
        );
    }

    #[test]
    fn errors_read_as_one_sentence_without_bodies() {
        assert_eq!(
            first_sentence("unknown task. It may be someone else's.\nmore"),
            "unknown task."
        );
        assert_eq!(
            first_sentence("version 1.2 is too old"),
            "version 1.2 is too old."
        );
        let long = "x".repeat(400);
        assert!(first_sentence(&long).chars().count() <= 161);
        let cases = [
            ApiError::Unauthorized,
            ApiError::Http {
                status: 404,
                message: String::new(),
            },
            ApiError::Http {
                status: 502,
                message: String::new(),
            },
            ApiError::Http {
                status: 400,
                message: "bad limit.".into(),
            },
            ApiError::Network("TypeError: Failed to fetch {}".into()),
            ApiError::Decode("expected value at line 1 column 1".into()),
        ];
        for error in cases {
            let text = error.to_string();
            assert!(!text.contains('{') && !text.contains('<'), "{text}");
            assert!(!text.contains("line 1"), "no parser internals: {text}");
            assert!(text.ends_with('.'), "{text}");
        }
        assert!(
            ApiError::Unauthorized
                .to_string()
                .contains("revoked or has expired")
        );
    }

    #[test]
    fn service_urls_lose_blanks_and_trailing_slashes() {
        assert_eq!(normalize_base(" http://h:8080/ "), "http://h:8080");
        assert_eq!(normalize_base(""), "");
        let a = Api::new("http://h/", "secret-token");
        assert_eq!(a, Api::new("http://h", "secret-token"));
        assert!(!format!("{a:?}").contains("secret-token"), "{a:?}");
    }
}
