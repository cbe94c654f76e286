//! Running one task on a worker slot: a warm `python3` worker for Python functions (started
//! as `python3 -c BOOTSTRAP` and handed its program on stdin, so it never exists as a file), or
//! `sh -c` for shell commands (a plain command, its program directly); walltime and
//! cancellation kill the worker's process group.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use lifeline_protocol::FunctionSpec;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;

use crate::node::{Outcome, RunTask};

/// The Python worker's program.
const WORKER_PY: &str = include_str!("../worker.py");
/// Most bytes of a shell command's stdout or stderr kept in its result.
const OUTPUT_CAP: usize = 64 * 1024;
/// Time a cancelled or timed-out worker gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// A warm Python worker process.
#[derive(Debug)]
pub(super) struct PyWorker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// What `python3 -c` runs: it reads the worker's program from stdin (its length in bytes on the
/// first line, then the program itself) and runs it. The program never touches the file system,
/// so no other user of the machine can replace or read it, and nothing is left behind when the
/// manager dies; process listings show this one line rather than the whole program.
const BOOTSTRAP: &str = "import sys;n=int(sys.stdin.buffer.readline());exec(compile(sys.stdin.buffer.read(n),'<lifeline worker>','exec'))";

impl PyWorker {
    async fn start() -> std::io::Result<Self> {
        let mut child = Command::new("python3")
            .args(["-u", "-c", BOOTSTRAP])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no stdin"))?;
        let stdout = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| std::io::Error::other("no stdout"))?,
        );
        stdin
            .write_all(format!("{}\n{WORKER_PY}", WORKER_PY.len()).as_bytes())
            .await?;
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }
}

/// Sends SIGTERM to the process group, then SIGKILL after the grace period.
pub(super) async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        unsafe { libc::kill(-(pid as i32), libc::SIGTERM) };
        if tokio::time::timeout(GRACE, child.wait()).await.is_ok() {
            return;
        }
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    }
    let _ = child.wait().await;
}

pub(super) fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "an unknown status".into(),
    }
}

/// Why a run stopped early.
pub(super) enum Stop {
    Walltime(f64),
    Cancelled,
}

/// Runs `task` on `worker` (starting one if needed). Returns the outcome and the worker if it
/// is still fit for the next task.
pub(super) async fn run(
    task: &RunTask,
    worker: Option<PyWorker>,
    cancel: oneshot::Receiver<()>,
    max_result: usize,
) -> (Outcome, Option<PyWorker>) {
    let walltime = task.walltime_secs;
    let limit = async move {
        match walltime {
            Some(secs) => tokio::time::sleep(Duration::from_secs_f64(secs)).await,
            None => std::future::pending().await,
        }
    };
    let stop = async move {
        tokio::select! {
            _ = limit => Stop::Walltime(walltime.unwrap_or_default()),
            _ = cancel => Stop::Cancelled,
        }
    };
    let (outcome, worker) = match &task.function {
        FunctionSpec::Python { source, entrypoint } => {
            run_python(task, source, entrypoint, worker, stop).await
        }
        FunctionSpec::Shell { command } => (run_shell(command, &task.kwargs, stop).await, worker),
    };
    let outcome = match outcome {
        Outcome::Success { result } if result.get().len() > max_result => Outcome::Failed {
            reason: format!(
                "MaxResultSizeExceeded: the result is {} bytes, more than the limit of {max_result} bytes",
                result.get().len()
            ),
        },
        other => other,
    };
    (outcome, worker)
}

pub(super) fn stopped(stop: Stop) -> Outcome {
    match stop {
        Stop::Walltime(secs) => Outcome::Failed {
            reason: format!(
                "walltime exceeded: the task ran longer than {secs} s and its worker was killed"
            ),
        },
        Stop::Cancelled => Outcome::Cancelled,
    }
}

pub(super) async fn run_python(
    task: &RunTask,
    source: &str,
    entrypoint: &str,
    worker: Option<PyWorker>,
    stop: impl Future<Output = Stop>,
) -> (Outcome, Option<PyWorker>) {
    let mut worker = match worker {
        Some(w) => w,
        None => match PyWorker::start().await {
            Ok(w) => w,
            Err(e) => {
                return (
                    Outcome::Lost {
                        reason: format!("worker lost: cannot start python3: {e}"),
                    },
                    None,
                );
            }
        },
    };
    // Arguments pass through as the JSON text they arrived as: nothing here parses them, so no
    // shape of theirs can make the manager fail.
    let request = WorkerRequest {
        function_id: task.function_id,
        name: entrypoint,
        source,
        entrypoint,
        args: &task.args,
        kwargs: &task.kwargs,
    };
    let mut line = match serde_json::to_string(&request) {
        Ok(line) => line,
        Err(e) => {
            let reason = format!("the task cannot be sent to its worker: {e}");
            return (Outcome::Failed { reason }, Some(worker));
        }
    };
    line.push('\n');
    let exchange = async {
        worker.stdin.write_all(line.as_bytes()).await?;
        worker.stdin.flush().await?;
        let mut answer = String::new();
        let n = worker.stdout.read_line(&mut answer).await?;
        Ok::<_, std::io::Error>((n, answer))
    };
    tokio::select! {
        got = exchange => match got {
            Ok((n, answer)) if n > 0 => (python_outcome(&answer), Some(worker)),
            _ => {
                let status = worker.child.wait().await.map(describe_exit).unwrap_or_else(|e| e.to_string());
                (Outcome::Lost { reason: format!("worker lost: the python3 worker died with {status}") }, None)
            }
        },
        why = stop => {
            terminate(&mut worker.child).await;
            (stopped(why), None)
        }
    }
}

/// One request to the Python worker, one JSON line.
#[derive(serde::Serialize)]
struct WorkerRequest<'a> {
    function_id: lifeline_model::FunctionId,
    name: &'a str,
    source: &'a str,
    entrypoint: &'a str,
    args: &'a RawValue,
    kwargs: &'a RawValue,
}

/// Parses the worker's answer line.
pub(super) fn python_outcome(answer: &str) -> Outcome {
    #[derive(serde::Deserialize)]
    struct Answer {
        ok: bool,
        #[serde(default)]
        result: Option<Box<RawValue>>,
        #[serde(default)]
        exception: Option<String>,
    }
    match serde_json::from_str::<Answer>(answer) {
        Ok(Answer {
            ok: true, result, ..
        }) => Outcome::Success {
            result: result.unwrap_or_else(null),
        },
        Ok(Answer { exception, .. }) => Outcome::Failed {
            reason: exception.unwrap_or_else(|| "the function failed".into()),
        },
        Err(e) => Outcome::Lost {
            reason: format!("worker lost: unreadable answer from the python3 worker: {e}"),
        },
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("null is JSON")
}

/// Quotes a kwarg's value for `sh`: strings verbatim inside single quotes, other JSON values as
/// their JSON text.
pub(super) fn shell_quote(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Fills `{name}` placeholders from kwargs.
pub(super) fn fill(command: &str, kwargs: &RawValue) -> Result<String, String> {
    let kwargs: Map<String, Value> = serde_json::from_str(kwargs.get())
        .map_err(|e| format!("kwargs are not a JSON object: {e}"))?;
    let mut out = String::with_capacity(command.len());
    let mut rest = command;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_name(&after[..close]) => {
                let name = &after[..close];
                let value = kwargs.get(name).ok_or_else(|| {
                    format!("the command uses {{{name}}} but kwargs have no {name:?}")
                })?;
                out.push_str(&shell_quote(value));
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Reads all of `reader`, keeping the first `OUTPUT_CAP` bytes.
pub(super) async fn capped(mut reader: impl tokio::io::AsyncRead + Unpin) -> (String, usize) {
    let mut kept = Vec::new();
    let mut total = 0;
    let mut buf = [0u8; 8192];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        total += n;
        let room = OUTPUT_CAP.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if total > kept.len() {
        text.push_str(&format!("\n[{} more bytes not kept]", total - kept.len()));
    }
    (text, total)
}

/// Shell builtins and keywords: a command starting with one of these needs sh. (`true` and
/// `false` alone are the same programs outside sh: they say nothing and exit 0 or 1.)
const SH_WORDS: &[&str] = &[
    ".", ":", "[", "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done",
    "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi", "for",
    "getopts", "hash", "if", "in", "jobs", "kill", "local", "printf", "pwd", "read", "readonly",
    "return", "set", "shift", "test", "then", "times", "trap", "type", "ulimit", "umask",
    "unalias", "unset", "until", "wait", "while",
];

/// The words of a command that sh would run as one program with exactly these arguments: plain
/// words only (no quoting, expansion, redirection, operator or assignment) and a first word
/// that is no builtin or keyword. Such a command runs without sh in between, which saves sh's
/// start-up on every task, as GNU make does for its recipes.
pub(super) fn plain_words(command: &str) -> Option<Vec<&str>> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c);
    if !command.chars().all(|c| plain(c) || c == ' ') {
        return None;
    }
    let words: Vec<&str> = command.split(' ').filter(|w| !w.is_empty()).collect();
    let first = *words.first()?;
    let builtin =
        SH_WORDS.contains(&first) || (matches!(first, "true" | "false") && words.len() > 1);
    (!builtin && !first.contains('=')).then_some(words)
}

/// Whether a spawn failed because the program could not be executed at all (the kernel refused
/// the `exec`), so that nothing of it ran.
fn never_started(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(
            libc::ENOENT
                | libc::EACCES
                | libc::ENOEXEC
                | libc::ENOTDIR
                | libc::ELOOP
                | libc::ENAMETOOLONG
        )
    )
}

/// Starts `program` with `args` for a shell task: no stdin, output piped, in a process group
/// of its own (which walltime and cancellation kill).
fn spawn(program: &str, args: &[&str]) -> std::io::Result<Child> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
}

pub(super) async fn run_shell(
    command: &str,
    kwargs: &RawValue,
    stop: impl Future<Output = Stop>,
) -> Outcome {
    let command = match fill(command, kwargs) {
        Ok(c) => c,
        Err(reason) => return Outcome::Failed { reason },
    };
    // A plain command starts its program itself; one that could not start as a program (not
    // found, not executable, a script without `#!`) goes through sh after all, for sh's own
    // error and exit code. Any other failure may come after the program started: no second run.
    let started = match plain_words(&command) {
        Some(words) => match spawn(words[0], &words[1..]) {
            Err(e) if never_started(&e) => spawn("sh", &["-c", &command]),
            other => other,
        },
        None => spawn("sh", &["-c", &command]),
    };
    let mut child = match started {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Lost {
                reason: format!("worker lost: cannot start the command: {e}"),
            };
        }
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Outcome::Lost {
            reason: "worker lost: no pipes to sh".into(),
        };
    };
    let finished = async {
        let ((out, _), (err, _), status) =
            tokio::join!(capped(stdout), capped(stderr), child.wait());
        (out, err, status)
    };
    tokio::select! {
        (stdout, stderr, status) = finished => {
            let status = match status {
                Ok(s) => s,
                Err(e) => return Outcome::Lost { reason: format!("worker lost: {e}") },
            };
            let code = status.code().unwrap_or(-1);
            if !status.success() {
                let tail: String = {
                    let chars: Vec<char> = stderr.chars().collect();
                    chars[chars.len().saturating_sub(2000)..].iter().collect()
                };
                return Outcome::Failed { reason: format!("the command failed with {}; stderr ends with:\n{tail}", describe_exit(status)) };
            }
            let result = serde_json::json!({ "returncode": code, "stdout": stdout, "stderr": stderr });
            match serde_json::value::to_raw_value(&result) {
                Ok(result) => Outcome::Success { result },
                Err(e) => Outcome::Failed { reason: e.to_string() },
            }
        }
        why = stop => {
            terminate(&mut child).await;
            stopped(why)
        }
    }
}
