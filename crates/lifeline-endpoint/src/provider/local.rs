//! The `local` provider: each block is one manager, a child process of the agent on this
//! machine, in its own process group (a Ctrl-C meant for the agent must not kill the managers
//! behind its back; the agent cancels them itself, and they stop when their connection closes).

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;

use lifeline_model::BlockState;
use tokio::process::{Child, Command};

use super::{BlockLaunch, JobStatus, Provider, ProviderFuture};
use crate::node::SECRET_ENV;

#[derive(Debug)]
enum Job {
    Running { child: Child },
    Over(JobStatus),
}

#[derive(Debug)]
pub struct LocalProvider {
    /// The `lifeline` binary.
    program: PathBuf,
    /// Job id (the process id) → the process, or how it ended. A std mutex: held for map
    /// updates only, never across an await.
    jobs: Mutex<HashMap<String, Job>>,
}

impl LocalProvider {
    pub fn new(program: PathBuf) -> Self {
        Self {
            program,
            jobs: Mutex::new(HashMap::new()),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn submit<'a>(&'a self, launch: &'a BlockLaunch) -> ProviderFuture<'a, String> {
        Box::pin(async move {
            let args = launch.manager_args(&self.program);
            let child = Command::new(&args[0])
                .args(&args[1..])
                .env(SECRET_ENV, &launch.secret)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
            let id = child
                .id()
                .map(|pid| pid.to_string())
                .ok_or("the manager exited at once")?;
            let job = Job::Running { child };
            self.jobs().insert(id.clone(), job);
            Ok(id)
        })
    }

    fn status<'a>(&'a self, jobs: &'a [String]) -> ProviderFuture<'a, HashMap<String, JobStatus>> {
        Box::pin(async move {
            let mut known = self.jobs();
            let mut answer = HashMap::new();
            for id in jobs {
                let Some(job) = known.get_mut(id) else {
                    continue;
                };
                if let Job::Running { child } = job {
                    let running = JobStatus {
                        state: BlockState::Running,
                        reason: None,
                    };
                    let over = match child.try_wait() {
                        Ok(None) => {
                            answer.insert(id.clone(), running);
                            continue;
                        }
                        Ok(Some(status)) if status.success() => JobStatus {
                            state: BlockState::Completed,
                            reason: None,
                        },
                        Ok(Some(status)) => JobStatus {
                            state: BlockState::Failed,
                            reason: Some(match (status.code(), status.signal()) {
                                (Some(code), _) => format!("the manager exited with code {code}"),
                                (_, Some(signal)) => format!("the manager died of signal {signal}"),
                                _ => "the manager ended".into(),
                            }),
                        },
                        Err(error) => JobStatus {
                            state: BlockState::Failed,
                            reason: Some(format!("cannot check the manager: {error}")),
                        },
                    };
                    *job = Job::Over(over);
                }
                if let Job::Over(status) = job {
                    answer.insert(id.clone(), status.clone());
                }
            }
            Ok(answer)
        })
    }

    fn cancel<'a>(&'a self, jobs: &'a [String]) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            for id in jobs {
                let cancelled = Job::Over(JobStatus {
                    state: BlockState::Cancelled,
                    reason: None,
                });
                let mut known = self.jobs();
                let Some(job) = known.get_mut(id) else {
                    continue;
                };
                if let Job::Running { mut child, .. } = std::mem::replace(job, cancelled) {
                    let _ = child.start_kill();
                    // Reaped in the background, so that no zombie is left behind.
                    tokio::spawn(async move {
                        let _ = child.wait().await;
                    });
                }
            }
            Ok(())
        })
    }
}
