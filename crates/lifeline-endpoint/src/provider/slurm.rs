//! The `slurm` provider: each block is one batch job of `nodes_per_block` nodes, submitted with
//! `sbatch` from a script kept in the agent's `blocks/` directory (so that users can read and
//! rerun it), followed with `squeue --states=all` (finished jobs report their real final state
//! for a while rather than vanishing) and ended with `scancel`. Every command runs with a
//! timeout; a failure answers Slurm's own message.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use lifeline_model::BlockState;
use tokio::process::Command;

use super::{BlockLaunch, JobStatus, Provider, ProviderFuture};
use crate::config::{Launcher, SlurmConfig};
use crate::node::SECRET_ENV;

/// How long a scheduler command may take before it is abandoned.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct SlurmProvider {
    config: SlurmConfig,
    /// The `lifeline` binary, as the compute nodes see it (a shared file system).
    program: PathBuf,
    /// Where job scripts and their output are kept (mode 0700: scripts hold block secrets).
    scripts: PathBuf,
}

impl SlurmProvider {
    pub fn new(config: SlurmConfig, program: PathBuf, scripts: PathBuf) -> Self {
        Self {
            config,
            program,
            scripts,
        }
    }

    /// The job script for a block.
    fn script(&self, launch: &BlockLaunch) -> String {
        let c = &self.config;
        let out = self.scripts.join(format!("block-{}.out", launch.block_id));
        let mut s = String::from("#!/bin/bash\n");
        let mut header = |line: String| {
            s.push_str("#SBATCH ");
            s.push_str(&line);
            s.push('\n');
        };
        header(format!(
            "--job-name=lifeline-{}-{}",
            slug(&launch.executor),
            launch.block_id
        ));
        header(format!("--nodes={}", c.nodes_per_block));
        header("--ntasks-per-node=1".into());
        header(format!("--time={}", c.block_walltime));
        header(format!("--output={}", out.display()));
        for (flag, value) in [
            ("partition", &c.partition),
            ("account", &c.account),
            ("qos", &c.qos),
            ("constraint", &c.constraint),
        ] {
            if let Some(value) = value {
                header(format!("--{flag}={value}"));
            }
        }
        if c.exclusive {
            header("--exclusive".into());
        }
        for line in c.scheduler_options.lines().filter(|l| !l.trim().is_empty()) {
            s.push_str(line.trim());
            s.push('\n');
        }
        s.push_str("\nset -e\n");
        for line in c.worker_init.lines() {
            s.push_str(line);
            s.push('\n');
        }
        s.push_str(&format!(
            "export {SECRET_ENV}={}\n",
            shell_quote(&launch.secret)
        ));
        let manager: Vec<String> = launch
            .manager_args(&self.program)
            .iter()
            .map(|a| shell_quote(a))
            .collect();
        match c.launcher {
            Launcher::Srun => s.push_str(&format!(
                "srun --ntasks={n} --ntasks-per-node=1 --kill-on-bad-exit=0 {}\n",
                manager.join(" "),
                n = c.nodes_per_block
            )),
            Launcher::Single => {
                s.push_str(&manager.join(" "));
                s.push('\n');
            }
        }
        s
    }

    fn write_script(&self, launch: &BlockLaunch) -> Result<PathBuf, String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.scripts)
            .map_err(|e| format!("cannot create {}: {e}", self.scripts.display()))?;
        let path = self
            .scripts
            .join(format!("block-{}.sbatch", launch.block_id));
        // A script left by an earlier run of the agent under the same number is replaced, never
        // followed through a link: remove, then create exclusively.
        let _ = std::fs::remove_file(&path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        file.write_all(self.script(launch).as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

/// Runs a scheduler command; its stdout, or its stderr as the error.
async fn run(program: &str, args: &[String]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(COMMAND_TIMEOUT, output).await {
        Err(_) => {
            return Err(format!(
                "{program} did not answer within {} s",
                COMMAND_TIMEOUT.as_secs()
            ));
        }
        Ok(Err(error)) => return Err(format!("cannot run {program}: {error}")),
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr.trim();
        Err(if message.is_empty() {
            format!("{program} failed ({})", output.status)
        } else if message.starts_with(program) {
            // Slurm's commands name themselves: `sbatch: error: ...`.
            message.replace('\n', "; ")
        } else {
            format!("{program}: {}", message.replace('\n', "; "))
        })
    }
}

impl Provider for SlurmProvider {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn submit<'a>(&'a self, launch: &'a BlockLaunch) -> ProviderFuture<'a, String> {
        Box::pin(async move {
            let script = self.write_script(launch)?;
            let out = run(
                "sbatch",
                &["--parsable".into(), script.display().to_string()],
            )
            .await?;
            // `--parsable` prints `JOBID` or `JOBID;CLUSTER`.
            let id = out.trim().split(';').next().unwrap_or_default();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("sbatch answered {:?}, not a job id", out.trim()));
            }
            Ok(id.to_owned())
        })
    }

    fn status<'a>(&'a self, jobs: &'a [String]) -> ProviderFuture<'a, HashMap<String, JobStatus>> {
        Box::pin(async move {
            if jobs.is_empty() {
                return Ok(HashMap::new());
            }
            // Only this user's jobs: asking for a job id Slurm has forgotten is an error that
            // would hide the answer about every other job.
            let out = run(
                "squeue",
                &[
                    "--me".into(),
                    "--states=all".into(),
                    "--noheader".into(),
                    "--format=%i|%t|%r".into(),
                ],
            )
            .await?;
            Ok(parse_squeue(&out)
                .into_iter()
                .filter(|(id, _)| jobs.contains(id))
                .collect())
        })
    }

    fn cancel<'a>(&'a self, jobs: &'a [String]) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            if jobs.is_empty() {
                return Ok(());
            }
            run("scancel", jobs).await.map(drop)
        })
    }
}

/// `JOBID|STATE|REASON` lines → job statuses.
fn parse_squeue(out: &str) -> HashMap<String, JobStatus> {
    out.lines()
        .filter_map(|line| {
            let mut fields = line.trim().splitn(3, '|');
            let id = fields.next()?.trim();
            let code = fields.next()?.trim();
            let reason = fields
                .next()
                .map(str::trim)
                .filter(|r| !r.is_empty() && *r != "None" && *r != "(null)");
            let state = block_state(code)?;
            let reason = match (state, reason) {
                (BlockState::Pending | BlockState::Running, r) => r.map(str::to_owned),
                (_, Some(r)) => Some(format!("{} ({r})", code_name(code))),
                (_, None) => Some(code_name(code).to_owned()),
            };
            Some((id.to_owned(), JobStatus { state, reason }))
        })
        .collect()
}

/// Slurm's compact state codes, as block states.
fn block_state(code: &str) -> Option<BlockState> {
    Some(match code {
        "PD" | "CF" | "RQ" | "RF" | "RH" | "S" | "ST" => BlockState::Pending,
        "R" | "CG" | "SO" | "SE" | "RS" | "RD" | "RV" => BlockState::Running,
        "CD" => BlockState::Completed,
        "CA" => BlockState::Cancelled,
        "TO" | "DL" | "PR" => BlockState::Timeout,
        "F" | "NF" | "BF" | "OOM" => BlockState::Failed,
        _ => return None,
    })
}

/// Slurm's name for a state code, as `sacct` and `scontrol` write it.
fn code_name(code: &str) -> &str {
    match code {
        "CD" => "COMPLETED",
        "CA" => "CANCELLED",
        "TO" => "TIMEOUT",
        "DL" => "DEADLINE",
        "PR" => "PREEMPTED",
        "F" => "FAILED",
        "NF" => "NODE_FAIL",
        "BF" => "BOOT_FAIL",
        "OOM" => "OUT_OF_MEMORY",
        other => other,
    }
}

/// A label as a job-name part: letters, digits, `-` and `_` only.
fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Quotes a word for `bash`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_states_become_block_states_with_slurm_s_names() {
        let out = "101|PD|Resources\n102|R|None\n103|TO|None\n104|CA|None\n105|F|NonZeroExitCode\n106|XX|None\n";
        let s = parse_squeue(out);
        assert_eq!(s["101"].state, BlockState::Pending);
        assert_eq!(s["101"].reason.as_deref(), Some("Resources"));
        assert_eq!(
            s["102"],
            JobStatus {
                state: BlockState::Running,
                reason: None
            }
        );
        assert_eq!(s["103"].state, BlockState::Timeout);
        assert_eq!(s["103"].reason.as_deref(), Some("TIMEOUT"));
        assert_eq!(s["104"].state, BlockState::Cancelled);
        assert_eq!(s["105"].reason.as_deref(), Some("FAILED (NonZeroExitCode)"));
        assert!(!s.contains_key("106"), "an unknown code is not guessed");
    }

    #[test]
    fn the_job_script_asks_for_the_block_and_keeps_the_secret_off_the_command_line() {
        let config: SlurmConfig = toml::from_str(
            "partition = \"debug\"\nnodes_per_block = 2\nblock_walltime = \"00:10:00\"\nworker_init = \"module load python\"\nscheduler_options = \"#SBATCH --mem=1G\"\n",
        )
        .expect("config");
        let provider = SlurmProvider::new(config, "/opt/lifeline".into(), "/tmp/x".into());
        let launch = BlockLaunch {
            block_id: 7,
            executor: "cpu pool".into(),
            interchange: "10.0.0.5:5000".into(),
            secret: "s3cr'et".into(),
            workers: 4,
            heartbeat_period: Duration::from_secs(1),
            max_result_bytes: 100,
        };
        let script = provider.script(&launch);
        for line in [
            "#SBATCH --job-name=lifeline-cpu_pool-7",
            "#SBATCH --nodes=2",
            "#SBATCH --time=00:10:00",
            "#SBATCH --partition=debug",
            "#SBATCH --exclusive",
            "#SBATCH --mem=1G",
            "module load python",
            "export LIFELINE_BLOCK_SECRET='s3cr'\\''et'",
        ] {
            assert!(script.lines().any(|l| l == line), "{line} in\n{script}");
        }
        let srun = script.lines().last().expect("srun");
        assert!(
            srun.starts_with("srun --ntasks=2 --ntasks-per-node=1"),
            "{srun}"
        );
        assert!(
            srun.contains("'--interchange' '10.0.0.5:5000' '--block' '7'"),
            "{srun}"
        );
        assert!(!srun.contains("s3cr"), "{srun}");
    }
}
