//! The endpoint's configuration (`endpoint.toml`): its executors, each with a provider of
//! blocks of nodes, and where the interchange listens for managers.
//!
//! Every key is checked: an unknown key, an unknown provider or a malformed time stops
//! `lifeline endpoint start` with a message naming it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Where nodes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Managers as child processes on the agent's own machine.
    Local,
    /// Managers on nodes of Slurm jobs (`sbatch`, `squeue`, `scancel`).
    Slurm,
}

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::Slurm => "slurm",
        }
    }
}

/// The most tasks a manager may hold beyond its workers (`prefetch`).
pub const MAX_PREFETCH: usize = 10_000;

/// One executor: a pool of nodes from one provider, each running a manager with workers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorConfig {
    pub label: String,
    /// Where nodes come from: `local` (child processes on this machine) or `slurm`.
    #[serde(default = "local")]
    pub provider: ProviderKind,
    /// Local managers to keep running (the `local` provider only).
    #[serde(default = "one")]
    pub nodes: usize,
    pub workers_per_node: usize,
    /// Tasks a manager holds beyond its workers, each waiting next to a worker
    /// (`waiting-for-launch`) so that it starts the moment one frees up. More keeps workers
    /// busier with many short tasks; fewer leaves tasks at the endpoint (`waiting-for-nodes`) for
    /// whichever node frees up first, better for long ones. Default: as many as its workers, and
    /// deeper (up to 64) while the executor's tasks run for less than a millisecond.
    #[serde(default)]
    pub prefetch: Option<usize>,
    /// Seconds a task may run before its worker is killed and the task fails.
    #[serde(default)]
    pub walltime_secs: Option<f64>,
    /// The `slurm` provider's settings.
    #[serde(default)]
    pub slurm: Option<SlurmConfig>,
}

/// How an executor's blocks come from Slurm: one job per block, one manager per node.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    #[serde(default)]
    pub partition: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub qos: Option<String>,
    #[serde(default)]
    pub constraint: Option<String>,
    /// Whether a block's nodes are its alone (`--exclusive`).
    #[serde(default = "yes")]
    pub exclusive: bool,
    #[serde(default = "one_u32")]
    pub nodes_per_block: u32,
    /// The block's walltime in Slurm's format (`MM`, `HH:MM:SS`, `D-HH:MM:SS`, ...).
    #[serde(default = "half_an_hour")]
    pub block_walltime: String,
    #[serde(default = "one_u32")]
    pub init_blocks: u32,
    #[serde(default)]
    pub min_blocks: u32,
    #[serde(default = "one_u32")]
    pub max_blocks: u32,
    /// A block with no task for this long is released (Slurm's time format, or seconds).
    #[serde(default = "two_minutes")]
    pub idle_timeout: SlurmTime,
    /// Shell lines run in the job before the managers start (`module load python`).
    #[serde(default)]
    pub worker_init: String,
    /// Extra lines for the job script's header (`#SBATCH --mem=4G`).
    #[serde(default)]
    pub scheduler_options: String,
    /// How managers start on the block's nodes.
    #[serde(default)]
    pub launcher: Launcher,
}

/// How a block's managers start on its nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    /// `srun`: one manager on each node of the block.
    #[default]
    Srun,
    /// The job script runs one manager itself (single-node blocks).
    Single,
}

/// A duration as Slurm writes it (`"00:30:00"`, `"1-00:00"`) or as seconds (`600`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum SlurmTime {
    Seconds(u64),
    Text(String),
}

impl SlurmTime {
    pub fn duration(&self) -> Option<Duration> {
        match self {
            SlurmTime::Seconds(secs) => Some(Duration::from_secs(*secs)),
            SlurmTime::Text(text) => parse_slurm_time(text),
        }
    }
}

/// Parses Slurm's time formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`.
pub fn parse_slurm_time(text: &str) -> Option<Duration> {
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (days, rest) = match text.split_once('-') {
        Some((d, rest)) => (number(d)?, Some(rest)),
        None => (0, None),
    };
    let parts: Vec<u64> = rest
        .unwrap_or(text)
        .split(':')
        .map(number)
        .collect::<Option<_>>()?;
    let secs = match (rest.is_some(), parts.as_slice()) {
        (false, [m]) => m * 60,
        (false, [m, s]) => m * 60 + s,
        (_, [h, m, s]) => h * 3600 + m * 60 + s,
        (true, [h]) => h * 3600,
        (true, [h, m]) => h * 3600 + m * 60,
        _ => return None,
    };
    Some(Duration::from_secs(days * 86_400 + secs))
}

/// Where the interchange listens for managers.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterchangeConfig {
    /// The address managers connect to (and the interchange listens on); default: this
    /// host's address, as its name resolves.
    #[serde(default)]
    pub address: Option<String>,
    /// The port; 0 (the default) picks a free one.
    #[serde(default)]
    pub port: u16,
}

fn local() -> ProviderKind {
    ProviderKind::Local
}

fn one() -> usize {
    1
}

fn one_u32() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn half_an_hour() -> String {
    "00:30:00".into()
}

fn two_minutes() -> SlurmTime {
    SlurmTime::Seconds(120)
}

/// The endpoint agent's configuration file (`endpoint.toml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    #[serde(rename = "executor")]
    pub executors: Vec<ExecutorConfig>,
    #[serde(default)]
    pub interchange: InterchangeConfig,
    /// Seconds a manager may stay silent before it is declared lost; default: three heartbeat
    /// periods plus one second.
    #[serde(default)]
    pub manager_timeout_secs: Option<f64>,
    /// Largest result a task may return, in bytes.
    #[serde(default = "ten_mib")]
    pub max_result_bytes: usize,
    /// An address serving the agent's Prometheus metrics at `/metrics`, such as
    /// `127.0.0.1:9465`; none when unset.
    #[serde(default)]
    pub metrics_bind: Option<String>,
    /// The most tasks the endpoint holds at once, sent to it and not finished; the service keeps
    /// the rest waiting for the endpoint (`waiting-for-ep`) and sends them, a quarter window at a
    /// time, as earlier ones finish. Default: twice what every executor's nodes hold at its largest
    /// (workers plus prefetch, the automatic prefetch at its deepest when none is set), and at
    /// least [`MIN_DEFAULT_WINDOW`].
    #[serde(default)]
    pub task_window: Option<u32>,
}

/// The smallest default task window: enough for the service to stay ahead of small endpoints.
pub const MIN_DEFAULT_WINDOW: u32 = 1_000;
/// The largest task window.
pub const MAX_WINDOW: u32 = 1_000_000;

fn ten_mib() -> usize {
    10 * 1024 * 1024
}

/// How many blocks an executor keeps, and how big they are: what scaling works with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scaling {
    pub nodes_per_block: u32,
    pub init_blocks: u32,
    pub min_blocks: u32,
    pub max_blocks: u32,
    /// Idle blocks are released after this long; never when `None`.
    pub idle_timeout: Option<Duration>,
    /// How long a block lives; unlimited when `None`.
    pub block_walltime: Option<Duration>,
}

impl ExecutorConfig {
    /// The executor's scaling rules: a local executor keeps `nodes` one-node blocks.
    pub fn scaling(&self) -> Scaling {
        match (&self.provider, &self.slurm) {
            (ProviderKind::Slurm, Some(s)) => Scaling {
                nodes_per_block: s.nodes_per_block,
                init_blocks: s.init_blocks,
                min_blocks: s.min_blocks,
                max_blocks: s.max_blocks,
                idle_timeout: s.idle_timeout.duration(),
                block_walltime: parse_slurm_time(&s.block_walltime),
            },
            _ => {
                let n = self.nodes as u32;
                Scaling {
                    nodes_per_block: 1,
                    init_blocks: n,
                    min_blocks: n,
                    max_blocks: n,
                    idle_timeout: None,
                    block_walltime: None,
                }
            }
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        let label = &self.label;
        if self.nodes == 0 || self.workers_per_node == 0 {
            bail!("executor {label:?}: nodes and workers_per_node must be at least 1");
        }
        if self.prefetch.is_some_and(|p| p > MAX_PREFETCH) {
            bail!("executor {label:?}: prefetch is at most {MAX_PREFETCH} tasks per node");
        }
        if self
            .walltime_secs
            .is_some_and(|w| !(w.is_finite() && w > 0.0))
        {
            bail!("executor {label:?}: walltime_secs must be a positive number");
        }
        match (self.provider, &self.slurm) {
            (ProviderKind::Local, None) => Ok(()),
            (ProviderKind::Local, Some(_)) => {
                bail!("executor {label:?}: [executor.slurm] is only for provider = \"slurm\"")
            }
            (ProviderKind::Slurm, None) => {
                bail!("executor {label:?}: provider = \"slurm\" needs an [executor.slurm] table")
            }
            (ProviderKind::Slurm, Some(s)) => {
                let Some(walltime) = parse_slurm_time(&s.block_walltime) else {
                    bail!(
                        "executor {label:?}: slurm.block_walltime {:?} is not a Slurm time (such as \"00:30:00\" or \"1-00:00:00\")",
                        s.block_walltime
                    );
                };
                if walltime.is_zero() {
                    bail!("executor {label:?}: slurm.block_walltime must be longer than zero");
                }
                if s.idle_timeout.duration().is_none() {
                    bail!(
                        "executor {label:?}: slurm.idle_timeout is not a Slurm time or a number of seconds"
                    );
                }
                if s.nodes_per_block == 0 || s.max_blocks == 0 {
                    bail!(
                        "executor {label:?}: slurm.nodes_per_block and slurm.max_blocks must be at least 1"
                    );
                }
                if s.min_blocks > s.max_blocks || s.init_blocks > s.max_blocks {
                    bail!(
                        "executor {label:?}: slurm.min_blocks and slurm.init_blocks must not exceed slurm.max_blocks ({})",
                        s.max_blocks
                    );
                }
                if self
                    .walltime_secs
                    .is_some_and(|w| w > walltime.as_secs_f64())
                {
                    bail!(
                        "executor {label:?}: walltime_secs is longer than slurm.block_walltime, so no block could ever run its tasks"
                    );
                }
                for (key, value) in [
                    ("partition", &s.partition),
                    ("account", &s.account),
                    ("qos", &s.qos),
                    ("constraint", &s.constraint),
                ] {
                    if value.as_deref().is_some_and(|v| {
                        v.is_empty() || v.chars().any(|c| c.is_control() || c.is_whitespace())
                    }) {
                        bail!("executor {label:?}: slurm.{key} must be one word without spaces");
                    }
                }
                Ok(())
            }
        }
    }
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
                prefetch: None,
                walltime_secs: None,
                slurm: None,
            }],
            interchange: InterchangeConfig::default(),
            manager_timeout_secs: None,
            max_result_bytes: ten_mib(),
            metrics_bind: None,
            task_window: None,
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
            e.check()?;
        }
        self.metrics_address()?;
        if self.task_window.is_some_and(|w| w == 0 || w > MAX_WINDOW) {
            bail!("task_window must be between 1 and {MAX_WINDOW} tasks");
        }
        Ok(())
    }

    /// The task window the agent asks the service for (see `task_window`).
    pub fn window(&self) -> u32 {
        self.task_window.unwrap_or_else(|| {
            let held: u64 = self
                .executors
                .iter()
                .map(|e| {
                    let s = e.scaling();
                    // Without a `prefetch`, a node holds up to the automatic prefetch's depth.
                    let prefetch = e.prefetch.unwrap_or_else(|| {
                        crate::interchange::deepest_auto_prefetch(e.workers_per_node)
                    });
                    let per_node = e.workers_per_node.saturating_add(prefetch);
                    u64::from(s.max_blocks)
                        .saturating_mul(u64::from(s.nodes_per_block))
                        .saturating_mul(per_node as u64)
                })
                .fold(0, u64::saturating_add);
            held.saturating_mul(2)
                .clamp(u64::from(MIN_DEFAULT_WINDOW), u64::from(MAX_WINDOW)) as u32
        })
    }

    /// Where the agent serves its metrics, if anywhere.
    pub fn metrics_address(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        self.metrics_bind
            .as_deref()
            .map(|text| {
                text.trim().parse().map_err(|e| {
                    anyhow::anyhow!(
                        "metrics_bind must be an address such as 127.0.0.1:9465, not {text:?} ({e})"
                    )
                })
            })
            .transpose()
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

    fn parse(text: &str) -> anyhow::Result<EndpointConfig> {
        let config: EndpointConfig = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    #[test]
    fn metrics_bind_is_an_address() {
        let executor = "[[executor]]\nlabel = \"a\"\nworkers_per_node = 1\n";
        let config = parse(&format!("metrics_bind = \"127.0.0.1:9465\"\n{executor}")).expect("ok");
        assert_eq!(
            config.metrics_address().expect("valid").map(|a| a.port()),
            Some(9465)
        );
        let err = parse(&format!("metrics_bind = \"localhost\"\n{executor}")).expect_err("bad");
        assert!(format!("{err:#}").contains("metrics_bind"), "{err:#}");
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).expect_err(text))
    }

    #[test]
    fn parses_executors_and_rejects_nonsense() {
        let config = parse(
            "[[executor]]\nlabel = \"cpu\"\nnodes = 2\nworkers_per_node = 4\n\n[[executor]]\nlabel = \"long\"\nworkers_per_node = 1\nwalltime_secs = 60\n",
        )
        .expect("valid");
        assert_eq!(config.executors[0].nodes, 2);
        assert_eq!(config.executors[1].provider, ProviderKind::Local);
        assert_eq!(config.executors[1].walltime_secs, Some(60.0));
        assert_eq!(config.executors[0].scaling().max_blocks, 2);

        assert_eq!(config.executors[0].prefetch, None);
        let deep = parse("[[executor]]\nlabel = \"a\"\nworkers_per_node = 4\nprefetch = 28\n");
        assert_eq!(deep.expect("valid").executors[0].prefetch, Some(28));
        let bad = error("[[executor]]\nlabel = \"a\"\nworkers_per_node = 4\nprefetch = 10001\n");
        assert!(bad.contains("prefetch is at most 10000"), "{bad}");
        let bad = error("[[executor]]\nlabel = \"a\"\nworkers_per_node = 4\nprefetch = -1\n");
        assert!(bad.contains("prefetch"), "{bad}");

        let bad = error("[[executor]]\nlabel = \"x\"\nprovider = \"pbs\"\nworkers_per_node = 1\n");
        assert!(bad.contains("unknown variant `pbs`"), "{bad}");
        assert!(bad.contains("provider"), "{bad}");
    }

    #[test]
    fn the_task_window_is_twice_what_the_nodes_hold_at_most_unless_set() {
        let small = parse("[[executor]]\nlabel = \"a\"\nnodes = 2\nworkers_per_node = 4\n");
        assert_eq!(small.expect("valid").window(), MIN_DEFAULT_WINDOW);
        // 40 blocks of 2 nodes, each node 16 workers and up to 64 more tasks (the automatic
        // prefetch at its deepest): 6,400 held, 12,800 asked.
        let big = parse(
            "[[executor]]\nlabel = \"cpu\"\nprovider = \"slurm\"\nworkers_per_node = 16\n[executor.slurm]\nnodes_per_block = 2\nmax_blocks = 40\n",
        );
        assert_eq!(big.expect("valid").window(), 12_800);
        // A prefetch that is set counts as set: 80 nodes of 16 + 16, 5,120 asked.
        let set_prefetch = parse(
            "[[executor]]\nlabel = \"cpu\"\nprovider = \"slurm\"\nworkers_per_node = 16\nprefetch = 16\n[executor.slurm]\nnodes_per_block = 2\nmax_blocks = 40\n",
        );
        assert_eq!(set_prefetch.expect("valid").window(), 5_120);
        let set = parse("task_window = 7\n[[executor]]\nlabel = \"a\"\nworkers_per_node = 4\n");
        assert_eq!(set.expect("valid").window(), 7);
        for bad in ["0", "1000001", "-3"] {
            let message = error(&format!(
                "task_window = {bad}\n[[executor]]\nlabel = \"a\"\nworkers_per_node = 4\n"
            ));
            assert!(message.contains("task_window"), "{message}");
        }
    }

    #[test]
    fn slurm_executors_and_the_keys_they_get_wrong() {
        let config = parse(
            "[[executor]]\nlabel = \"cpu\"\nprovider = \"slurm\"\nworkers_per_node = 4\nwalltime_secs = 600\n[executor.slurm]\npartition = \"debug\"\nnodes_per_block = 2\nblock_walltime = \"00:30:00\"\nmax_blocks = 4\nidle_timeout = \"05:00\"\nlauncher = \"single\"\n[interchange]\naddress = \"10.0.0.5\"\nport = 54000\n",
        )
        .expect("valid");
        let scaling = config.executors[0].scaling();
        assert_eq!(scaling.nodes_per_block, 2);
        assert_eq!(scaling.block_walltime, Some(Duration::from_secs(1800)));
        assert_eq!(scaling.idle_timeout, Some(Duration::from_secs(300)));
        assert_eq!((scaling.init_blocks, scaling.min_blocks), (1, 0));
        assert_eq!(config.interchange.port, 54000);

        let slurm = "[[executor]]\nlabel = \"cpu\"\nprovider = \"slurm\"\nworkers_per_node = 1\n[executor.slurm]\n";
        for (extra, says) in [
            ("partiton = \"debug\"\n", "unknown field `partiton`"),
            (
                "block_walltime = \"half an hour\"\n",
                "slurm.block_walltime",
            ),
            ("min_blocks = 5\n", "slurm.max_blocks"),
            ("launcher = \"mpirun\"\n", "unknown variant `mpirun`"),
            ("partition = \"a b\"\n", "slurm.partition"),
        ] {
            let message = error(&format!("{slurm}{extra}"));
            assert!(message.contains(says), "{extra}: {message}");
        }
        let message =
            error("[[executor]]\nlabel = \"cpu\"\nprovider = \"slurm\"\nworkers_per_node = 1\n");
        assert!(message.contains("[executor.slurm]"), "{message}");
        let message = error(&format!("{slurm}block_walltime = \"1\"\n").replace(
            "workers_per_node = 1",
            "workers_per_node = 1\nwalltime_secs = 120",
        ));
        assert!(message.contains("walltime_secs"), "{message}");
    }

    #[test]
    fn slurm_times() {
        for (text, secs) in [
            ("30", 1800),
            ("1:30", 90),
            ("00:30:00", 1800),
            ("2-00", 2 * 86_400),
            ("1-02:03", 86_400 + 2 * 3600 + 3 * 60),
            ("1-00:00:05", 86_405),
        ] {
            assert_eq!(
                parse_slurm_time(text),
                Some(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for text in ["", "-", "1:2:3:4", "a", "1-", "-1", "1--2", "+5", " 5"] {
            assert_eq!(parse_slurm_time(text), None, "{text:?}");
        }
    }
}
