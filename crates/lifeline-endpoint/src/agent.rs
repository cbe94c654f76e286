//! The endpoint agent: it opens the outbox, starts the connection task and the interchange,
//! and runs them until shutdown.
//!
//! ```text
//! service ⇄ connection (connection.rs) ⇄ interchange (interchange/) ⇄ managers ⇄ workers
//! ```

use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::config::EndpointConfig;
use crate::connection::{FromConn, connect_url, connection};
use crate::interchange::{Executor, Interchange, Listener};
use crate::metrics::AgentMetrics;
use crate::outbox::Outbox;

/// How to run the agent.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The service's base URL, such as `http://127.0.0.1:8080`.
    pub service: String,
    /// The endpoint's token (from `POST /v1/endpoints`).
    pub token: String,
    /// The agent's own directory: the outbox lives there.
    pub dir: PathBuf,
    pub config: EndpointConfig,
    /// The `lifeline` binary, which managers run.
    pub program: PathBuf,
    /// CA certificates (PEM) to trust beside the system's, for an `https://` service.
    pub ca_cert: Option<PathBuf>,
}

/// Runs the agent until `shutdown` completes.
pub async fn run_agent(
    options: AgentOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    options.config.check()?;
    let outbox = Outbox::open(options.dir.join("outbox"))?;
    if outbox.len() > 0 {
        tracing::info!(
            batches = outbox.len(),
            "replaying reports a previous run could not deliver"
        );
    }
    let metrics = AgentMetrics::new();
    if let Some(bind) = options.config.metrics_address()? {
        let address = crate::metrics::serve(bind, metrics.clone()).await?;
        tracing::info!(%address, "serving the agent's metrics at /metrics");
    }
    // Listen for managers before asking for any block, so that none dials in vain.
    let listener = Listener::bind(&options.config.interchange).await?;
    let (conn_tx, conn_rx) = mpsc::unbounded_channel::<FromConn>();
    let url = connect_url(&options.service)?;
    // Checked before anything starts, so that a bad file stops the agent with its name.
    let tls = lifeline_tls::client_config(options.ca_cert.as_deref())?;
    let connection = tokio::spawn(connection(url, options.token.clone(), tls, conn_tx));

    let executors = options
        .config
        .executors
        .iter()
        .map(|c| {
            let provider = crate::provider::for_executor(c, &options.program, &options.dir);
            Executor::new(c.clone(), provider)
        })
        .collect();
    let (mut interchange, inbox) =
        Interchange::start(&options.config, executors, outbox, listener, metrics);
    let result = interchange.run(conn_rx, inbox, shutdown).await;
    connection.abort();
    interchange.stop_blocks().await;
    result
}
