//! Lifeline's endpoint agent: the process that runs at a compute site, receives tasks from the
//! service, places them on nodes and workers, runs them and reports every transition with the
//! time it happened.
//!
//! `lifeline endpoint start --service URL --token TOKEN [--config endpoint.toml]` runs
//! [`run_agent`]; the managers it starts run `lifeline endpoint manager`, that is
//! [`run_manager`].

mod agent;
pub mod config;
mod connection;
mod interchange;
mod manager;
mod metrics;
mod node;
mod outbox;
pub mod provider;

pub use agent::{AgentOptions, run_agent};
pub use manager::{ManagerOptions, run_manager};

/// The current time.
pub(crate) fn now() -> lifeline_model::Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    lifeline_model::Timestamp::from_micros(since_epoch.as_micros() as i64)
}
