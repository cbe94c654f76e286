//! Providers supply nodes: each node is a manager process the interchange talks to over its
//! stdin and stdout. `local` starts managers as child processes of the agent; a batch-scheduler
//! provider would start them as jobs.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// What a node should run.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub workers: usize,
    pub heartbeat_period: Duration,
    pub max_result_bytes: usize,
}

/// A source of nodes.
pub trait Provider: Send + std::fmt::Debug {
    fn name(&self) -> &'static str;

    /// Starts a manager for a new node, with piped stdin and stdout.
    fn start_node(&self, spec: &NodeSpec) -> std::io::Result<Child>;
}

/// Managers as child processes on this machine: `PROGRAM endpoint manager ...`.
#[derive(Clone, Debug)]
pub struct LocalProvider {
    /// The `lifeline` binary.
    pub program: PathBuf,
}

impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn start_node(&self, spec: &NodeSpec) -> std::io::Result<Child> {
        Command::new(&self.program)
            .args(["endpoint", "manager", "--workers"])
            .arg(spec.workers.to_string())
            .arg("--heartbeat-period")
            .arg(spec.heartbeat_period.as_secs_f64().to_string())
            .arg("--max-result-bytes")
            .arg(spec.max_result_bytes.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Its own process group: a Ctrl-C meant for the agent must not kill the managers
            // behind its back (the agent stops them itself; they also stop when their stdin
            // closes).
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
    }
}
