//! The HTTP API: routes, shared state and the static dashboard.

mod audit;
mod auth;
mod endpoints;
mod error;
mod events;
mod failures;
mod functions;
mod listing;
mod metrics;
mod openapi;
mod status;
mod tasks;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::routing::get;
use tokio::sync::watch;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

pub use auth::Tickets;
pub use error::{ApiError, ApiResult};
pub use openapi::openapi;
pub(crate) use users::limits_of;

use crate::access::Directory;
use crate::config::Settings;
use crate::forwarder::Forwarder;
use crate::metrics::Metrics;
use crate::quota::Quotas;
use crate::store::Store;
use crate::users::Tokens;

#[derive(Debug)]
struct Inner {
    settings: Settings,
    store: Store,
    forwarder: Arc<Forwarder>,
    tokens: Tokens,
    directory: Directory,
    quotas: Quotas,
    tickets: Tickets,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
}

/// Who may do what, as loaded from the store at start.
#[derive(Debug, Default)]
pub struct Access {
    pub tokens: Tokens,
    pub directory: Directory,
    pub quotas: Quotas,
}

/// What every handler can reach; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(
        settings: Settings,
        store: Store,
        forwarder: Arc<Forwarder>,
        access: Access,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let Access {
            tokens,
            directory,
            quotas,
        } = access;
        let metrics = Metrics::new(store.writer_metrics());
        Self(Arc::new(Inner {
            settings,
            metrics,
            store,
            forwarder,
            tokens,
            directory,
            quotas,
            tickets: Tickets::default(),
            shutdown,
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn forwarder(&self) -> &Arc<Forwarder> {
        &self.0.forwarder
    }

    pub fn tokens(&self) -> &Tokens {
        &self.0.tokens
    }

    pub fn directory(&self) -> &Directory {
        &self.0.directory
    }

    pub fn quotas(&self) -> &Quotas {
        &self.0.quotas
    }

    pub fn tickets(&self) -> &Tickets {
        &self.0.tickets
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.0.shutdown.clone()
    }
}

/// Every route of the service, the dashboard at `/` included.
pub fn router(state: AppState) -> Router {
    let settings = state.settings().clone();
    let v1 = openapi::v1_routes()
        // Unknown API paths answer in JSON rather than with the dashboard.
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(settings.max_payload_bytes));

    let index = settings.dashboard_dir.join("index.html");
    let dashboard = ServeDir::new(&settings.dashboard_dir).fallback(ServeFile::new(index));
    let mut app = Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics::scrape))
        .nest("/v1", v1)
        .fallback_service(dashboard)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
        .layer(CompressionLayer::new())
        // Every request is logged with its user (recorded once the token is checked), its
        // status and latency; the path only, since a query may hold a stream ticket.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        user = tracing::field::Empty,
                    )
                })
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                ),
        );
    if !settings.cors_origins.is_empty() {
        let origins = if settings.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                settings
                    .cors_origins
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        app = app.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::HeaderName::from_static("last-event-id"),
                ]),
        );
    }
    app
}

/// The metrics alone, without a token, for `metrics_bind`: an address that only the monitoring
/// network should reach.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::open_scrape))
        .fallback(|| async { ApiError::NotFound("only /metrics is served here".into()) })
        .with_state(state)
}

/// A name given to an endpoint or a function: trimmed, 1 to 200 characters, no control
/// characters (they would garble listings, logs and terminals).
fn valid_name(what: &str, raw: &str) -> ApiResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::bad(
            "invalid_name",
            format!("{what}'s name must have 1 to 200 characters"),
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(ApiError::bad(
            "invalid_name",
            format!(
                "{what}'s name must not hold control characters (found U+{:04X})",
                c as u32
            ),
        ));
    }
    Ok(name.to_owned())
}

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::Json<lifeline_model::api::Health> {
    axum::Json(lifeline_model::api::Health {
        status: "ok".into(),
        seq: state.store().head(),
        version: Some(crate::VERSION.into()),
        commit: Some(crate::COMMIT.into()),
    })
}
