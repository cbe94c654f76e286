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
use crate::interchange::{Executor, Interchange, ManagerEvent};
use crate::outbox::Outbox;
use crate::provider::{LocalProvider, Provider};

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
    /// The `lifeline` binary, which local managers run.
    pub program: PathBuf,
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
    let (conn_tx, conn_rx) = mpsc::unbounded_channel::<FromConn>();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<String>();
    let (events_tx, events_rx) = mpsc::unbounded_channel::<ManagerEvent>();
    let url = connect_url(&options.service)?;
    let connection = tokio::spawn(connection(url, options.token.clone(), conn_tx, out_rx));

    let provider = LocalProvider {
        program: options.program.clone(),
    };
    let executors = options
        .config
        .executors
        .iter()
        .map(|c| Executor::new(c.clone(), Box::new(provider.clone()) as Box<dyn Provider>))
        .collect();
    let mut interchange = Interchange::start(&options.config, executors, outbox, out_tx, events_tx);
    let result = interchange.run(conn_rx, events_rx, shutdown).await;
    connection.abort();
    interchange.stop_managers();
    result
}
