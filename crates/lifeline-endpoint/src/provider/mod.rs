//! Providers supply blocks: a block is one allocation of `nodes` nodes (one Slurm job, or one
//! local process), each running a manager that connects to the interchange over TCP with the
//! block's secret. A provider only submits, reports on and cancels blocks; what runs on them,
//! how many there are and when they are released is the interchange's business.
//!
//! Adding a provider (PBS, Kubernetes, ...) means one file here implementing [`Provider`], a
//! variant in [`crate::config::ProviderKind`] with its settings, and a line in [`for_executor`].

mod local;
mod slurm;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lifeline_model::BlockState;

use crate::config::{ExecutorConfig, ProviderKind};

pub use local::LocalProvider;
pub use slurm::SlurmProvider;

/// A future a provider returns; boxed so that providers can be chosen at run time.
pub type ProviderFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// What a new block must run: a manager on each of its nodes, told where the interchange is.
#[derive(Clone, Debug)]
pub struct BlockLaunch {
    pub block_id: u64,
    /// The executor's label (Slurm's job name shows it).
    pub executor: String,
    /// The interchange's `host:port`, as managers must dial it.
    pub interchange: String,
    /// The block's secret, handed to its managers in their environment.
    pub secret: String,
    pub workers: usize,
    pub heartbeat_period: Duration,
    pub max_result_bytes: usize,
}

impl BlockLaunch {
    /// The manager's command line (the secret is not on it).
    pub fn manager_args(&self, program: &Path) -> Vec<String> {
        vec![
            program.display().to_string(),
            "endpoint".into(),
            "manager".into(),
            "--interchange".into(),
            self.interchange.clone(),
            "--block".into(),
            self.block_id.to_string(),
            "--workers".into(),
            self.workers.to_string(),
            "--heartbeat-period".into(),
            self.heartbeat_period.as_secs_f64().to_string(),
            "--max-result-bytes".into(),
            self.max_result_bytes.to_string(),
        ]
    }
}

/// What the scheduler says about one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatus {
    pub state: BlockState,
    /// The scheduler's reason (why it waits, why it ended), when it gives one.
    pub reason: Option<String>,
}

/// A source of blocks.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The provider's name in reports, such as `slurm`.
    fn name(&self) -> &'static str;

    /// Asks for a block; answers the scheduler's job id.
    fn submit<'a>(&'a self, launch: &'a BlockLaunch) -> ProviderFuture<'a, String>;

    /// The status of these jobs, in one call. A job missing from the answer is one the
    /// scheduler no longer knows.
    fn status<'a>(&'a self, jobs: &'a [String]) -> ProviderFuture<'a, HashMap<String, JobStatus>>;

    /// Ends these jobs.
    fn cancel<'a>(&'a self, jobs: &'a [String]) -> ProviderFuture<'a, ()>;
}

/// The provider an executor's configuration asks for. `program` is the `lifeline` binary the
/// managers run; `dir` the agent's directory (Slurm's job scripts are kept there).
pub fn for_executor(config: &ExecutorConfig, program: &Path, dir: &Path) -> Arc<dyn Provider> {
    match (config.provider, &config.slurm) {
        (ProviderKind::Slurm, Some(slurm)) => Arc::new(SlurmProvider::new(
            slurm.clone(),
            program.to_path_buf(),
            dir.join("blocks"),
        )),
        _ => Arc::new(LocalProvider::new(PathBuf::from(program))),
    }
}
