//! A manager: the process that runs on a node, takes tasks from the interchange and runs each
//! on one of its workers. `lifeline endpoint manager` runs it; providers start it, on this
//! machine or on a batch job's nodes. It dials the interchange over TCP, says which block it
//! belongs to with the block's secret (from its environment), then speaks [`crate::node`]
//! messages until the connection closes.
//!
//! A worker slot keeps a warm `python3` process for Python functions and runs shell commands
//! with `sh -c`. A worker that dies under a task reports it lost; one past its walltime or
//! cancelled is killed (its whole process group) and replaced on the next Python task.

mod slot;

use slot::{PyWorker, run};

use std::collections::VecDeque;
use std::time::Duration;

use lifeline_model::TaskId;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::node::{
    FromManager, ManagerHello, Outcome, RunTask, SECRET_ENV, ToManager, write_lines,
};

/// How a manager is run.
#[derive(Clone, Debug)]
pub struct ManagerOptions {
    /// The interchange's `host:port`.
    pub interchange: String,
    /// The block this manager belongs to.
    pub block: u64,
    pub workers: usize,
    pub heartbeat_period: Duration,
    /// Largest result a task may return, in bytes.
    pub max_result_bytes: usize,
    /// How long to keep trying to reach the interchange before giving up.
    pub connect_timeout: Duration,
}

/// A slot's finished run, sent back to the manager's loop.
struct Finished {
    slot: usize,
    task_id: TaskId,
    attempt: u32,
    outcome: Outcome,
    worker: Option<PyWorker>,
}

#[derive(Default)]
struct Slot {
    worker: Option<PyWorker>,
    /// The task on this worker, and the way to cancel it (taken once used: the slot stays busy
    /// until the cancelled run has actually stopped).
    running: Option<(TaskId, Option<oneshot::Sender<()>>)>,
}

fn emit(out: &mpsc::UnboundedSender<String>, message: &FromManager) {
    if let Ok(text) = serde_json::to_string(message) {
        let _ = out.send(text);
    }
}

/// Runs a manager: dials the interchange, introduces itself with the block's secret (from the
/// environment), and serves until the connection closes.
pub async fn run_manager(options: ManagerOptions) -> anyhow::Result<()> {
    let secret = std::env::var(SECRET_ENV).map_err(|_| {
        anyhow::anyhow!(
            "{SECRET_ENV} is not set: managers are started by the endpoint agent's providers"
        )
    })?;
    let deadline = tokio::time::Instant::now() + options.connect_timeout;
    let stream = loop {
        match TcpStream::connect(&options.interchange).await {
            Ok(stream) => break stream,
            Err(error) if tokio::time::Instant::now() >= deadline => anyhow::bail!(
                "cannot reach the interchange at {} within {} s: {error}",
                options.interchange,
                options.connect_timeout.as_secs_f64()
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    stream.set_nodelay(true)?;
    let (input, mut output) = stream.into_split();
    let hello = ManagerHello {
        block: options.block,
        secret,
        node: host_name(),
    };
    let mut line = serde_json::to_string(&hello)?;
    line.push('\n');
    output.write_all(line.as_bytes()).await?;
    serve_manager(options, input, output).await
}

/// This machine's host name.
pub(crate) fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer it is given.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if ok && !name.is_empty() => name.to_owned(),
        _ => "localhost".into(),
    }
}

/// Runs a manager that reads the interchange's messages from `input` and writes its own to
/// `output`, until `input` ends.
pub(crate) async fn serve_manager(
    options: ManagerOptions,
    input: impl tokio::io::AsyncRead + Unpin,
    stdout: impl tokio::io::AsyncWrite + Unpin + Send + 'static,
) -> anyhow::Result<()> {
    let (out_tx, out_rx) = mpsc::unbounded_channel::<String>();
    // One writer owns the output, so lines never interleave.
    let writer = tokio::spawn(write_lines(out_rx, stdout));
    let mut lines = BufReader::new(input).lines();
    let mut slots: Vec<Slot> = (0..options.workers.max(1))
        .map(|_| Slot::default())
        .collect();
    let mut queue: VecDeque<RunTask> = VecDeque::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
    let mut heartbeat = tokio::time::interval(options.heartbeat_period);
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { break };
                match serde_json::from_str::<ToManager>(&line) {
                    Ok(ToManager::Run(task)) => {
                        emit(&out_tx, &FromManager::Accepted { task_id: task.task_id, attempt: task.attempt, at: crate::now() });
                        queue.push_back(task);
                    }
                    Ok(ToManager::Cancel { task_id }) => {
                        let before = queue.len();
                        queue.retain(|t| t.task_id != task_id);
                        if queue.len() == before
                            && let Some(slot) = slots.iter_mut().find(|s| s.running.as_ref().is_some_and(|(id, _)| *id == task_id))
                            && let Some(cancel) = slot.running.as_mut().and_then(|(_, c)| c.take())
                        {
                            let _ = cancel.send(());
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "manager got an unreadable message"),
                }
            }
            Some(done) = done_rx.recv() => {
                let slot = &mut slots[done.slot];
                slot.worker = done.worker;
                slot.running = None;
                if !matches!(done.outcome, Outcome::Cancelled) {
                    emit(&out_tx, &FromManager::Done { task_id: done.task_id, attempt: done.attempt, at: crate::now(), outcome: done.outcome });
                }
            }
            _ = heartbeat.tick() => {
                let busy = slots.iter().filter(|s| s.running.is_some()).count() as u32;
                emit(&out_tx, &FromManager::Heartbeat { busy, idle: slots.len() as u32 - busy, queued: queue.len() as u32 });
            }
        }
        // Start queued tasks on free workers.
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.running.is_some() {
                continue;
            }
            let Some(task) = queue.pop_front() else { break };
            let (cancel_tx, cancel_rx) = oneshot::channel();
            slot.running = Some((task.task_id, Some(cancel_tx)));
            emit(
                &out_tx,
                &FromManager::Started {
                    task_id: task.task_id,
                    attempt: task.attempt,
                    at: crate::now(),
                },
            );
            let worker = slot.worker.take();
            let done_tx = done_tx.clone();
            let max_result = options.max_result_bytes;
            let (task_id, attempt) = (task.task_id, task.attempt);
            let running =
                tokio::spawn(async move { run(&task, worker, cancel_rx, max_result).await });
            tokio::spawn(async move {
                // Whatever goes wrong while running one task is that task's failure, and the
                // slot is always handed back.
                let (outcome, worker) = running.await.unwrap_or_else(|error| {
                    let reason = format!("the manager failed while running the task: {error}");
                    (Outcome::Failed { reason }, None)
                });
                let _ = done_tx.send(Finished {
                    slot: i,
                    task_id,
                    attempt,
                    outcome,
                    worker,
                });
            });
        }
    }
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use lifeline_protocol::FunctionSpec;
    use serde_json::Value;
    use serde_json::value::RawValue;

    use super::slot::*;
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.into()).expect("json")
    }

    #[test]
    fn placeholders_are_filled_and_quoted() {
        let kwargs = raw(r#"{"name": "World", "n": 3, "evil": "x'; rm -rf /"}"#);
        assert_eq!(
            fill("echo Hello {name} {n}", &kwargs),
            Ok("echo Hello 'World' '3'".into())
        );
        assert_eq!(
            fill("echo {evil}", &kwargs),
            Ok(r"echo 'x'\''; rm -rf /'".into())
        );
        assert_eq!(
            fill("awk '{print $1}' {name}", &kwargs),
            Ok("awk '{print $1}' 'World'".into())
        );
        assert!(
            fill("echo {missing}", &kwargs)
                .expect_err("missing")
                .contains("no \"missing\"")
        );
    }

    #[test]
    fn only_plain_commands_skip_sh() {
        assert_eq!(plain_words("true"), Some(vec!["true"]));
        assert_eq!(
            plain_words("  python3 run.py --n=3  out/a.txt "),
            Some(vec!["python3", "run.py", "--n=3", "out/a.txt"])
        );
        assert_eq!(plain_words("./simulate -v"), Some(vec!["./simulate", "-v"]));
        for needs_sh in [
            "",
            "   ",
            "echo hi",
            "true --version",
            "cd /tmp",
            "exit 3",
            "X=1 env",
            "ls *.txt",
            "cat $HOME/x",
            "ls ~",
            "a && b",
            "a; b",
            "a | b",
            "a > out",
            "sleep 1 &",
            "echo 'quoted'",
            "grep \"x\" f",
            "a\tb",
            "line1\nline2",
            "ls # comment",
            "cp a{1,2}",
            "ls `pwd`",
            "ls $(pwd)",
        ] {
            assert_eq!(plain_words(needs_sh), None, "{needs_sh:?}");
        }
    }

    #[tokio::test]
    async fn a_plain_command_and_one_through_sh_answer_alike() {
        let kwargs = raw("{}");
        let shell =
            |command: &'static str| run_shell(command, &kwargs, std::future::pending::<Stop>());
        // Run directly and through sh, the same program gives the same result.
        let direct = shell("printenv PATH").await;
        let via_sh = shell("printenv 'PATH'").await;
        let (Outcome::Success { result: a }, Outcome::Success { result: b }) = (&direct, &via_sh)
        else {
            panic!("expected two successes, got {direct:?} and {via_sh:?}")
        };
        assert_eq!(a.get(), b.get());
        // A program that does not exist fails as sh reports it.
        let Outcome::Failed { reason } = shell("no-such-program-here --flag").await else {
            panic!("expected a failure")
        };
        assert!(reason.contains("exit code 127"), "{reason}");
        assert!(reason.contains("not found"), "{reason}");
        // So does one that is no program: sh's answer, exit code 126.
        let Outcome::Failed { reason } = shell("/").await else {
            panic!("expected a failure")
        };
        assert!(reason.contains("exit code 126"), "{reason}");
        // A failing program fails with its own exit code.
        let Outcome::Failed { reason } = shell("false").await else {
            panic!("expected a failure")
        };
        assert!(reason.contains("exit code 1"), "{reason}");
    }

    fn python_task(id: u128, source: &str, entrypoint: &str, args: &str) -> RunTask {
        RunTask {
            task_id: TaskId::from_u128(id),
            attempt: 1,
            function_id: lifeline_model::FunctionId::from_u128(id),
            function: FunctionSpec::Python {
                source: source.into(),
                entrypoint: entrypoint.into(),
            },
            args: raw(args),
            kwargs: raw("{}"),
            walltime_secs: Some(30.0),
        }
    }

    #[tokio::test]
    async fn the_worker_program_is_not_a_file() {
        // A program at a path would be one another local user could create or replace first.
        let source = "import sys\ndef argv():\n    return sys.argv\n";
        let (_keep, cancel) = oneshot::channel::<()>();
        let (outcome, _) = run(&python_task(1, source, "argv", "[]"), None, cancel, 1 << 20).await;
        let Outcome::Success { result } = outcome else {
            panic!("expected success, got {outcome:?}")
        };
        assert_eq!(result.get(), r#"["-c"]"#);
    }

    /// Drives a manager through a pipe as the interchange does, and collects its messages
    /// until every task has an answer.
    async fn run_on_manager(workers: usize, tasks: Vec<RunTask>) -> Vec<FromManager> {
        let (mut to_manager, input) = tokio::io::duplex(1 << 20);
        let (output, from_manager) = tokio::io::duplex(1 << 20);
        let options = ManagerOptions {
            interchange: String::new(),
            block: 0,
            workers,
            heartbeat_period: Duration::from_secs(60),
            max_result_bytes: 1 << 20,
            connect_timeout: Duration::ZERO,
        };
        let manager = tokio::spawn(serve_manager(options, input, output));
        let expected = tasks.len();
        for task in tasks {
            let mut line = serde_json::to_string(&ToManager::Run(task)).expect("json");
            line.push('\n');
            to_manager.write_all(line.as_bytes()).await.expect("write");
        }
        let mut lines = BufReader::new(from_manager).lines();
        let mut seen = Vec::new();
        let mut done = 0;
        while done < expected {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the manager answers")
                .expect("read")
                .expect("a line");
            let message: FromManager = serde_json::from_str(&line).expect("message");
            done += usize::from(matches!(message, FromManager::Done { .. }));
            seen.push(message);
        }
        drop(to_manager);
        manager.await.expect("joins").expect("runs");
        seen
    }

    #[tokio::test]
    async fn deeply_nested_arguments_neither_wedge_a_worker_nor_the_manager() {
        let deep = format!("[{}{}]", "[".repeat(300), "]".repeat(300));
        let source = "def depth(x):\n    n = 0\n    while isinstance(x, list) and x:\n        x, n = x[0], n + 1\n    return n\n";
        // One worker: the second task runs only if the first one gave its slot back.
        let seen = run_on_manager(
            1,
            vec![
                python_task(1, source, "depth", &deep),
                python_task(2, source, "depth", "[[[1]]]"),
            ],
        )
        .await;
        let outcomes: Vec<(u128, String)> = seen
            .into_iter()
            .filter_map(|m| match m {
                FromManager::Done {
                    task_id, outcome, ..
                } => Some((task_id.as_u128(), format!("{outcome:?}"))),
                _ => None,
            })
            .collect();
        assert_eq!(outcomes.len(), 2, "{outcomes:?}");
        assert!(outcomes[1].1.contains("RawValue(2)"), "{outcomes:?}");
    }

    #[tokio::test]
    async fn shell_results_and_failures() {
        let never = std::future::pending::<Stop>();
        let ok = run_shell("echo out; echo err >&2", &raw("{}"), never).await;
        let Outcome::Success { result } = ok else {
            panic!("expected success")
        };
        let v: Value = serde_json::from_str(result.get()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({ "returncode": 0, "stdout": "out\n", "stderr": "err\n" })
        );

        let failed = run_shell(
            "echo boom >&2; exit 3",
            &raw("{}"),
            std::future::pending::<Stop>(),
        )
        .await;
        let Outcome::Failed { reason } = failed else {
            panic!("expected failure")
        };
        assert!(
            reason.contains("exit code 3") && reason.ends_with("boom\n"),
            "{reason}"
        );

        let timed = run_shell("sleep 30", &raw("{}"), async { Stop::Walltime(0.1) }).await;
        let Outcome::Failed { reason } = timed else {
            panic!("expected walltime")
        };
        assert!(reason.starts_with("walltime exceeded"), "{reason}");
    }
}
