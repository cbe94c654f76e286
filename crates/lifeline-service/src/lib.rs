//! Lifeline's service: the web service and the forwarder of the task life cycle.
//!
//! It accepts functions and tasks over a JSON API, keeps every task and every transition in a
//! SQLite store ([`store`]), routes tasks to endpoints over WebSockets ([`forwarder`]), retries
//! what system failures interrupt, and streams every change as Server-Sent Events. Every
//! transition it stores is validated by `lifeline_model` first.
//!
//! [`run`] serves on a listener until a shutdown signal; `lifeline serve` calls it, and so do the
//! tests, on port 0.

pub mod access;
pub mod api;
pub mod config;
pub mod forwarder;
pub mod log_limit;
pub mod metrics;
pub mod quota;
pub mod stats;
pub mod store;
pub mod tls;
pub mod users;

use std::sync::Arc;

use anyhow::Context;
use lifeline_model::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::access::EndpointAccess;
use crate::api::{Access, AppState};
use crate::config::Settings;
use crate::forwarder::{Forwarder, Timings};
use crate::store::{Store, registry};
use crate::users::{
    Caller, Principal, UserId, digest, digest_from_hex, hex, new_token, new_token_id,
};

/// This build's version, from the workspace's `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this build comes from (`unknown` when built outside a git checkout).
pub const COMMIT: &str = env!("LIFELINE_COMMIT");

/// What `lifeline --version` prints after the program's name: `0.1.0 (commit 1a2b3c4d5e6f)`.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LIFELINE_COMMIT"),
    ")"
);

/// The current time.
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_micros(since_epoch.as_micros() as i64)
}

/// A new time-ordered identifier: a version 7 UUID (milliseconds first, then randomness), so
/// that ids sort by creation and index well.
pub fn new_id() -> u128 {
    uuid::Uuid::now_v7().as_u128()
}

/// A service ready to serve: its store is open and its tokens loaded.
#[derive(Debug)]
pub struct Service {
    pub state: AppState,
    /// Set when this start created the user token (it is also in `DATA_DIR/token`).
    pub new_user_token: Option<String>,
    /// Serves `GET /metrics` without a token, when `metrics_bind` is set.
    metrics_listener: Option<TcpListener>,
    /// HTTPS and WSS instead of HTTP and WS, when `tls_cert` and `tls_key` are set.
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: watch::Sender<bool>,
}

impl Service {
    /// Opens the store in the data directory (creating both on first start) and prepares the
    /// forwarder. On first start it creates admin's token and writes it to `DATA_DIR/token`.
    pub async fn open(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::open(&settings.data_dir)
            .with_context(|| format!("cannot open the store in {}", settings.data_dir.display()))?;
        let (new_user_token, access) = load_access(&store, &settings).await?;
        let timings = Timings {
            heartbeat_period: settings.heartbeat_period(),
            heartbeat_threshold: settings.heartbeat_threshold(),
            ack_timeout: settings.dispatch_ack_timeout(),
            max_result_bytes: settings.max_result_bytes,
        };
        let tls = settings.tls()?;
        let metrics_listener = match settings.metrics_address()? {
            Some(address) => Some(TcpListener::bind(address).await.with_context(|| {
                format!("cannot listen on {address} for the metrics (metrics_bind)")
            })?),
            None => None,
        };
        let forwarder = Arc::new(Forwarder::new(store.clone(), timings).await?);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = AppState::new(settings, store, forwarder, access, shutdown_rx);
        Ok(Self {
            state,
            new_user_token,
            metrics_listener,
            tls,
            shutdown,
        })
    }

    /// Whether the service speaks HTTPS (and WSS).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Where `GET /metrics` is served without a token, if `metrics_bind` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves on `listener` until `signal` completes, then stops cleanly: open streams and
    /// endpoint sessions end, in-flight requests finish and the store commits what it holds.
    pub async fn run(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Service {
            state,
            shutdown,
            metrics_listener,
            tls,
            ..
        } = self;
        let metrics = metrics_listener.map(|listener| {
            let app = api::metrics_router(state.clone());
            let mut stop = state.shutdown();
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            })
        });
        let monitor = {
            let forwarder = state.forwarder().clone();
            let rx = state.shutdown();
            tokio::spawn(async move { forwarder.monitor(rx).await })
        };
        let store = state.store().clone();
        let retention = tokio::spawn(keep_retention(
            store.clone(),
            state.settings().retention(),
            state.shutdown(),
        ));
        let app = api::router(state);
        let stop = async move {
            signal.await;
            let _ = shutdown.send(true);
        };
        match tls {
            Some(config) => {
                let listener = tls::TlsListener::new(listener, config)?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await?;
            }
            None => {
                // Small messages (acknowledgements, dispatches, events) must not wait for
                // Nagle's algorithm.
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    if let Err(error) = tcp.set_nodelay(true) {
                        tracing::debug!(%error, "cannot set TCP_NODELAY");
                    }
                });
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await?;
            }
        }
        let _ = monitor.await;
        let _ = retention.await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        store.close().await;
        Ok(())
    }
}

/// Expires finished tasks past the retention, in small writes, until shutdown. A task is seen
/// as expired by every request the moment it passes the retention; this only frees its space,
/// checking twice per retention period and at least every 30 seconds.
async fn keep_retention(
    store: Store,
    retention: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = (retention / 2).clamp(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(30),
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let cutoff = Timestamp::from_micros(now().as_micros() - retention.as_micros() as i64);
        loop {
            match store.expire_finished(cutoff, store::EXPIRE_BATCH).await {
                // A full batch: more are due; let other writes in between.
                Ok(n) if n == store::EXPIRE_BATCH => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "cannot expire finished tasks");
                    break;
                }
            }
        }
    }
}

/// Loads users, tokens, endpoints and shares from the store. When admin has no token (a new
/// store), creates one and writes it to `DATA_DIR/token`; returns it then.
async fn load_access(
    store: &Store,
    settings: &Settings,
) -> anyhow::Result<(Option<String>, Access)> {
    use crate::store::users as stored;
    let (users, tokens, endpoints, shares) = store
        .read(|c| {
            Ok((
                stored::users(c)?,
                stored::tokens(c, None)?,
                registry::endpoints(c)?,
                stored::shares(c)?,
            ))
        })
        .await?;
    let access = Access::default();
    let mut new_user_token = None;
    if !tokens.iter().any(|t| t.user == UserId::ADMIN) {
        let token = new_token();
        // Written only where there is none: an existing file is never replaced.
        write_token_file(&settings.data_dir.join("token"), &token)?;
        let row = stored::TokenRow {
            id: new_token_id(),
            user: UserId::ADMIN,
            user_name: "admin".into(),
            digest: hex(&digest(&token)),
            name: Some("initial".into()),
            created_at: now(),
            expires_at: None,
        };
        let kept = row.clone();
        store
            .write(move |ctx| stored::insert_token(ctx.conn()?, &kept))
            .await?;
        add_token(&access, &users, &row);
        new_user_token = Some(token);
    }
    for t in &tokens {
        add_token(&access, &users, t);
    }
    for u in &users {
        access.quotas.set(u.id, api::limits_of(u));
    }
    for e in endpoints {
        if let Some(d) = digest_from_hex(&e.token_digest) {
            access.tokens.insert(d, Principal::Endpoint(e.id), None);
        }
        access.directory.set(
            e.id,
            EndpointAccess {
                owner: Some(e.owner),
                public: e.public,
                shared: Default::default(),
            },
        );
    }
    for (endpoint, user) in shares {
        access
            .directory
            .update(endpoint, |a| _ = a.shared.insert(user));
    }
    Ok((new_user_token, access))
}

fn add_token(
    access: &Access,
    users: &[crate::store::users::UserRow],
    t: &crate::store::users::TokenRow,
) {
    let (Some(user), Some(d)) = (
        users.iter().find(|u| u.id == t.user),
        digest_from_hex(&t.digest),
    ) else {
        return;
    };
    let caller = Caller {
        id: user.id,
        name: user.name.clone(),
        admin: user.admin,
        token_id: t.id.clone(),
    };
    access
        .tokens
        .insert(d, Principal::User(caller), t.expires_at);
}

fn write_token_file(path: &std::path::Path, token: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} exists, but the store holds no token of admin's: the token file belongs to \
                 another store. Restore that store from a backup, or move the token file away to \
                 create a new token",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
        }
    })?;
    writeln!(file, "{token}")?;
    Ok(())
}
