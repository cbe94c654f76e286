//! The endpoint's configuration: its executors, each with a provider of nodes.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// One executor: a pool of nodes from one provider, each running a manager with workers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorConfig {
    pub label: String,
    /// Where nodes come from; `local` runs managers as child processes on this machine.
    #[serde(default = "local")]
    pub provider: String,
    #[serde(default = "one")]
    pub nodes: usize,
    pub workers_per_node: usize,
    /// Seconds a task may run before its worker is killed and the task fails.
    #[serde(default)]
    pub walltime_secs: Option<f64>,
}

fn local() -> String {
    "local".into()
}

fn one() -> usize {
    1
}

/// The endpoint agent's configuration file (`endpoint.toml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    #[serde(rename = "executor")]
    pub executors: Vec<ExecutorConfig>,
    /// Seconds a manager may stay silent before it is declared lost; default: three heartbeat
    /// periods plus one second.
    #[serde(default)]
    pub manager_timeout_secs: Option<f64>,
    /// Largest result a task may return, in bytes.
    #[serde(default = "ten_mib")]
    pub max_result_bytes: usize,
}

fn ten_mib() -> usize {
    10 * 1024 * 1024
}

impl EndpointConfig {
    /// One local executor sized to this machine.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            executors: vec![ExecutorConfig {
                label: "default".into(),
                provider: local(),
                nodes: 1,
                workers_per_node: cores,
                walltime_secs: None,
            }],
            manager_timeout_secs: None,
            max_result_bytes: ten_mib(),
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let config: Self = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid endpoint configuration", path.display()))?;
        config.check()?;
        Ok(config)
    }

    pub fn check(&self) -> anyhow::Result<()> {
        if self.executors.is_empty() {
            bail!("the configuration has no [[executor]]");
        }
        let mut labels = std::collections::HashSet::new();
        for e in &self.executors {
            if !labels.insert(&e.label) {
                bail!("two executors are labelled {:?}", e.label);
            }
            if e.provider != "local" {
                bail!(
                    "executor {:?}: unknown provider {:?} (available: local)",
                    e.label,
                    e.provider
                );
            }
            if e.nodes == 0 || e.workers_per_node == 0 {
                bail!(
                    "executor {:?}: nodes and workers_per_node must be at least 1",
                    e.label
                );
            }
            if e.walltime_secs.is_some_and(|w| !(w.is_finite() && w > 0.0)) {
                bail!(
                    "executor {:?}: walltime_secs must be a positive number",
                    e.label
                );
            }
        }
        Ok(())
    }

    pub fn manager_timeout(&self, heartbeat: Duration) -> Duration {
        self.manager_timeout_secs.map_or(
            heartbeat * 3 + Duration::from_secs(1),
            Duration::from_secs_f64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_executors_and_rejects_nonsense() {
        let config: EndpointConfig = toml::from_str(
            "[[executor]]\nlabel = \"cpu\"\nnodes = 2\nworkers_per_node = 4\n\n[[executor]]\nlabel = \"long\"\nworkers_per_node = 1\nwalltime_secs = 60\n",
        )
        .expect("parses");
        config.check().expect("valid");
        assert_eq!(config.executors[0].nodes, 2);
        assert_eq!(config.executors[1].provider, "local");
        assert_eq!(config.executors[1].walltime_secs, Some(60.0));

        let bad: EndpointConfig = toml::from_str(
            "[[executor]]\nlabel = \"x\"\nprovider = \"slurm\"\nworkers_per_node = 1\n",
        )
        .expect("parses");
        assert!(
            bad.check()
                .expect_err("unknown provider")
                .to_string()
                .contains("unknown provider")
        );
    }
}
