//! A typed async client of Lifeline's `/v1` HTTP API and its event stream.
//!
//! Every request and answer is a type of [`lifeline_model::api`], the same types the service
//! serves, so a renamed field is a compile error here rather than a `null` at run time. The
//! command line, `lifeline up`, the end-to-end tests and the benchmarks all talk to the service
//! through it.
//!
//! ```no_run
//! # async fn run() -> Result<(), lifeline_client::Error> {
//! use lifeline_client::Client;
//! let client = Client::new("http://127.0.0.1:8080", "TOKEN");
//! for endpoint in client.endpoints().await? {
//!     println!("{} is {:?}", endpoint.name, endpoint.status);
//! }
//! # Ok(())
//! # }
//! ```

mod events;

use lifeline_model::api::{
    AuditEntry, AuditQuery, BatchStatus, BatchStatusRequest, EndpointRegistered, EndpointShares,
    EndpointSummary, ErrorBody, EventsQuery, FunctionInfo, FunctionRegistered, Health, NewToken,
    NewUser, RegisterEndpoint, RegisterFunction, ShareEndpoint, StatsQuery, StatsSummary,
    StatusDocument, StreamTicket, SubmitRequest, Submitted, TaskListQuery, TaskPage, TokenCreated,
    TokenInfo, TokenListQuery, UserCreated, UserInfo, UserQuotas,
};
use std::sync::{Arc, OnceLock};

use lifeline_model::{EndpointId, FunctionId, TaskId};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use events::EventStream;

/// Why a call did not give its answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing answered at the service's address (refused, timed out, cut off).
    #[error("cannot reach the Lifeline service at {url} ({why})")]
    Unreachable { url: String, why: String },
    /// The service answered with an error: its status and its body.
    #[error("the service answered {status}: {}", .body.message)]
    Api { status: u16, body: ErrorBody },
    /// The service answered something this client cannot read.
    #[error("unexpected answer from the service: {0}")]
    Protocol(String),
}

impl Error {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Unreachable { .. } | Error::Protocol(_) => None,
        }
    }

    /// The service's machine-readable error code, such as `not_found`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { body, .. } => Some(&body.error),
            Error::Unreachable { .. } | Error::Protocol(_) => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A status document with the result as a JSON value.
pub type TaskStatus = StatusDocument<Value>;

fn http_client(tls: &Arc<rustls::ClientConfig>) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls((**tls).clone())
        .build()
}

/// A client of one service with one token; cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// What an `https://` service's certificate must chain to when nothing else is said: the
/// system's roots, loaded once.
fn system_trust() -> Option<Arc<rustls::ClientConfig>> {
    static TRUST: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    TRUST
        .get_or_init(|| lifeline_tls::client_config(None).ok())
        .clone()
}

impl Client {
    /// A client of the service at `base` (such as `http://127.0.0.1:8080`); an `https://`
    /// service must have a certificate the system trusts.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Self {
        let http = system_trust()
            .and_then(|tls| http_client(&tls).ok())
            .unwrap_or_default();
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            http,
        }
    }

    /// A client that also trusts the CA certificates (PEM) in `ca_cert`, for a service whose
    /// certificate a site's own CA signed.
    pub fn with_ca_cert(
        base: impl Into<String>,
        token: impl Into<String>,
        ca_cert: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let tls = lifeline_tls::client_config(Some(ca_cert))?;
        Ok(Self {
            base: base.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            http: http_client(&tls)?,
        })
    }

    /// The service's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub(crate) fn unreachable(&self, error: &reqwest::Error) -> Error {
        let why = if let Some(why) = lifeline_tls::explain(error) {
            why
        } else if error.is_connect() {
            "nothing answers there".to_owned()
        } else if error.is_timeout() {
            "it did not answer in time".to_owned()
        } else {
            error.to_string()
        };
        Error::Unreachable {
            url: self.base.clone(),
            why,
        }
    }

    /// Sends a request and reads its answer: `T` on success, [`Error::Api`] otherwise.
    async fn call<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        let text = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes
        };
        serde_json::from_slice(text).map_err(|e| {
            Error::Protocol(format!(
                "{e} in {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ))
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(self.request(Method::GET, path)).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.call(self.request(Method::POST, path).json(body)).await
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<Health> {
        self.get("/healthz").await
    }

    /// `POST /v1/endpoints`: the answer holds the endpoint's token, shown this once.
    pub async fn register_endpoint(&self, name: &str) -> Result<EndpointRegistered> {
        let body = RegisterEndpoint {
            name: name.to_owned(),
        };
        self.post("/v1/endpoints", &body).await
    }

    /// `GET /v1/endpoints`.
    pub async fn endpoints(&self) -> Result<Vec<EndpointSummary>> {
        self.get("/v1/endpoints").await
    }

    /// `GET /v1/endpoints/{id}`.
    pub async fn endpoint(&self, id: EndpointId) -> Result<EndpointSummary> {
        self.get(&format!("/v1/endpoints/{id}")).await
    }

    /// `DELETE /v1/endpoints/{id}`.
    pub async fn delete_endpoint(&self, id: EndpointId) -> Result<()> {
        let path = format!("/v1/endpoints/{id}");
        self.call::<Value>(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// `POST /v1/functions`.
    pub async fn register_function(&self, function: &RegisterFunction) -> Result<FunctionId> {
        let answer: FunctionRegistered = self.post("/v1/functions", function).await?;
        Ok(answer.function_id)
    }

    /// `GET /v1/functions`: the caller's functions (admin: everyone's), newest first.
    pub async fn functions(&self) -> Result<Vec<FunctionInfo>> {
        self.get("/v1/functions").await
    }

    /// `GET /v1/functions/{id}`.
    pub async fn function(&self, id: FunctionId) -> Result<FunctionInfo> {
        self.get(&format!("/v1/functions/{id}")).await
    }

    /// `POST /v1/endpoints/{id}/submit`.
    pub async fn submit<J: Serialize>(
        &self,
        endpoint: EndpointId,
        request: &SubmitRequest<J>,
    ) -> Result<Submitted> {
        self.post(&format!("/v1/endpoints/{endpoint}/submit"), request)
            .await
    }

    /// `GET /v1/tasks/{id}`.
    pub async fn task(&self, id: TaskId) -> Result<TaskStatus> {
        self.get(&format!("/v1/tasks/{id}")).await
    }

    /// `GET /v1/tasks/{id}?wait=`: the status document once the task is finished, or when
    /// `wait` (at most a minute) has passed, whichever comes first.
    pub async fn wait_for_task(&self, id: TaskId, wait: std::time::Duration) -> Result<TaskStatus> {
        let secs = wait.as_secs_f64().min(lifeline_model::api::MAX_WAIT_SECS);
        let request = self
            .request(Method::GET, &format!("/v1/tasks/{id}"))
            .query(&[("wait", format!("{secs:.3}"))]);
        self.call(request).await
    }

    /// `POST /v1/tasks/batch_status`: one answer per id as given (malformed ones included).
    pub async fn batch_status(&self, ids: &[String]) -> Result<BatchStatus<Value>> {
        let body = BatchStatusRequest {
            task_ids: ids.to_vec(),
        };
        self.post("/v1/tasks/batch_status", &body).await
    }

    /// `POST /v1/tasks/{id}/cancel`.
    pub async fn cancel(&self, id: TaskId) -> Result<TaskStatus> {
        self.call(self.request(Method::POST, &format!("/v1/tasks/{id}/cancel")))
            .await
    }

    /// `GET /v1/tasks`: one page.
    pub async fn tasks(&self, query: &TaskListQuery) -> Result<TaskPage> {
        self.call(self.request(Method::GET, "/v1/tasks").query(query))
            .await
    }

    /// `GET /v1/stats`.
    pub async fn stats(&self, query: &StatsQuery) -> Result<StatsSummary> {
        self.call(self.request(Method::GET, "/v1/stats").query(query))
            .await
    }

    /// `POST /v1/endpoints/{id}/share`.
    pub async fn share_endpoint(
        &self,
        id: EndpointId,
        share: &ShareEndpoint,
    ) -> Result<EndpointShares> {
        self.post(&format!("/v1/endpoints/{id}/share"), share).await
    }

    /// `GET /v1/me`: who this client's token belongs to.
    pub async fn me(&self) -> Result<UserInfo> {
        self.get("/v1/me").await
    }

    /// `POST /v1/users` (admin): the answer holds the user's first token, shown this once.
    pub async fn add_user(&self, user: &NewUser) -> Result<UserCreated> {
        self.post("/v1/users", user).await
    }

    /// `GET /v1/users` (admin).
    pub async fn users(&self) -> Result<Vec<UserInfo>> {
        self.get("/v1/users").await
    }

    /// `DELETE /v1/users/{name}` (admin).
    pub async fn remove_user(&self, name: &str) -> Result<()> {
        let path = format!("/v1/users/{name}");
        self.call::<Value>(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// `PATCH /v1/users/{name}` (admin): the user's quotas.
    pub async fn set_quotas(&self, name: &str, quotas: &UserQuotas) -> Result<UserInfo> {
        let path = format!("/v1/users/{name}");
        self.call(self.request(Method::PATCH, &path).json(quotas))
            .await
    }

    /// `POST /v1/tokens`: the answer holds the token, shown this once.
    pub async fn create_token(&self, token: &NewToken) -> Result<TokenCreated> {
        self.post("/v1/tokens", token).await
    }

    /// `GET /v1/tokens`.
    pub async fn tokens(&self, query: &TokenListQuery) -> Result<Vec<TokenInfo>> {
        self.call(self.request(Method::GET, "/v1/tokens").query(query))
            .await
    }

    /// `DELETE /v1/tokens/{id}`.
    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        let path = format!("/v1/tokens/{id}");
        self.call::<Value>(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// `POST /v1/events/ticket`: a single-use ticket for one event stream connection.
    pub async fn stream_ticket(&self) -> Result<StreamTicket> {
        self.post("/v1/events/ticket", &()).await
    }

    /// `GET /v1/audit` (admin).
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.call(self.request(Method::GET, "/v1/audit").query(query))
            .await
    }

    /// `GET /v1/events`, as a stream that reconnects by itself and resumes after the last
    /// event it gave (`Last-Event-ID`), so it neither skips nor repeats an event.
    pub fn events(&self, query: EventsQuery) -> EventStream {
        EventStream::new(self.clone(), query)
    }
}

/// The error of a non-success answer: the service's JSON body, or the status alone.
fn api_error(status: StatusCode, bytes: &[u8]) -> Error {
    let body = serde_json::from_slice::<ErrorBody>(bytes).unwrap_or_else(|_| ErrorBody {
        error: "http".into(),
        message: status
            .canonical_reason()
            .unwrap_or("no explanation given")
            .to_lowercase(),
    });
    Error::Api {
        status: status.as_u16(),
        body,
    }
}
