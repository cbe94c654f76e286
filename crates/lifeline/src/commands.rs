//! The user's commands: endpoints, functions, submit, status and cancel.

use std::path::{Path, PathBuf};

use lifeline_client::{Client, TaskStatus};
use lifeline_model::api::{BatchEntry, FunctionSpec, RegisterFunction, SubmitRequest, TaskSpec};
use lifeline_model::{BlockReport, EndpointId, FunctionId, State, TaskId, human_duration};
use serde_json::Value;

use crate::client::{CliError, CliResult, endpoint_id, parse_id};
use crate::python_check;

/// `lifeline endpoint register NAME`: prints the endpoint's id and token.
pub(crate) async fn endpoint_register(client: &Client, name: &str) -> CliResult<()> {
    let answer = client.register_endpoint(name).await?;
    println!("endpoint_id: {}", answer.endpoint_id);
    println!("token:       {}", answer.token);
    eprintln!(
        "Keep the token in a file only you can read (endpoint.token, mode 0600), then start the \
         endpoint with: lifeline endpoint start --service {} --token-file endpoint.token",
        client.base_url()
    );
    Ok(())
}

/// `lifeline endpoint list`: one line per endpoint, with each executor's workers.
pub(crate) async fn endpoint_list(client: &Client, as_json: bool) -> CliResult<()> {
    let endpoints = client.endpoints().await?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&endpoints).unwrap_or_default()
        );
        return Ok(());
    }
    if endpoints.is_empty() {
        println!("No endpoint yet: `lifeline endpoint register NAME` creates one.");
    }
    for e in endpoints {
        let heartbeat = e
            .last_heartbeat
            .map(|t| format!(", last heartbeat {}", utc(t.as_secs_f64())))
            .unwrap_or_default();
        let status = if e.online { "online" } else { "offline" };
        println!("{}  {:<16} {status}{heartbeat}", e.endpoint_id, e.name);
        for x in e.report.iter().flat_map(|r| &r.executors) {
            let waiting = x.tasks.get(State::WaitingForNodes);
            println!(
                "    executor {:<12} {} managers, {} workers ({} busy, {} idle), {waiting} waiting for nodes",
                x.label, x.managers, x.total_workers, x.busy_workers, x.idle_workers
            );
            if let Some(error) = &x.provider_error {
                println!("      {} cannot be followed: {error}", x.provider);
            }
            for b in &x.blocks {
                println!("      {}", block_line(&x.provider, b));
            }
        }
    }
    Ok(())
}

/// One block of `endpoint list`: `block 2  slurm job 57  running  1/1 nodes  up 2m 10s  27m 50s
/// left  3 tasks`.
fn block_line(provider: &str, b: &BlockReport) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let job = match &b.job_id {
        Some(job) => format!("{provider} job {job}"),
        None => format!("{provider}, submitting"),
    };
    let mut line = format!(
        "block {:<3} {job:<18} {:<9} {}/{} nodes",
        b.block_id, b.state, b.managers, b.nodes
    );
    if !b.state.is_over() {
        match b.started_at {
            Some(start) => {
                let up = (now - start.as_secs_f64()).max(0.0);
                line.push_str(&format!("  up {}", human_duration(up)));
                if let Some(walltime) = b.walltime_secs {
                    let left = (walltime as f64 - up).max(0.0);
                    line.push_str(&format!("  {} left", human_duration(left)));
                }
            }
            None => {
                let waited = (now - b.submitted_at.as_secs_f64()).max(0.0);
                line.push_str(&format!("  waiting {}", human_duration(waited)));
            }
        }
        line.push_str(&format!("  {} tasks", b.tasks));
    }
    if let Some(reason) = &b.reason {
        line.push_str(&format!("  ({reason})"));
    }
    line
}

/// The registration of a function from `--python FILE:FUNC` or `--shell CMD`. A Python file is
/// checked here first: it must compile and define the function.
pub(crate) async fn function_body(
    python: Option<&str>,
    shell: Option<&str>,
    name: Option<&str>,
) -> CliResult<RegisterFunction> {
    match (python, shell) {
        (Some(spec), None) => {
            let (file, entrypoint) = spec
                .rsplit_once(':')
                .filter(|(file, entry)| !file.is_empty() && !entry.is_empty())
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "--python takes FILE.py:FUNCTION, such as analysis.py:run; got {spec:?}"
                    ))
                })?;
            let source = std::fs::read_to_string(Path::new(file))
                .map_err(|e| CliError::usage(format!("cannot read {file}: {e}")))?;
            python_check::check(file, &source, entrypoint).await?;
            let spec = FunctionSpec::Python {
                source,
                entrypoint: entrypoint.to_owned(),
            };
            Ok(RegisterFunction::new(name.unwrap_or(entrypoint), spec))
        }
        (None, Some(command)) => {
            let spec = FunctionSpec::Shell {
                command: command.to_owned(),
            };
            Ok(RegisterFunction::new(name.unwrap_or("shell"), spec))
        }
        _ => Err(CliError::usage(
            "give either --python FILE.py:FUNCTION or --shell 'COMMAND'",
        )),
    }
}

/// `lifeline function register`: prints the function's id.
pub(crate) async fn function_register(client: &Client, body: &RegisterFunction) -> CliResult<()> {
    println!("{}", client.register_function(body).await?);
    Ok(())
}

/// `lifeline function list`: one line per function, newest first.
pub(crate) async fn function_list(client: &Client, as_json: bool) -> CliResult<()> {
    let functions = client.functions().await?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&functions).unwrap_or_default()
        );
        return Ok(());
    }
    if functions.is_empty() {
        println!("No function yet: `lifeline function register` makes one.");
    }
    for f in functions {
        let what = match &f.spec {
            FunctionSpec::Python { entrypoint, .. } => format!("python {entrypoint}"),
            FunctionSpec::Shell { command } => format!("shell  {command}"),
        };
        println!(
            "{}  {:<20} {}  {what}",
            f.function_id,
            f.name,
            utc(f.created_at.as_secs_f64())
        );
    }
    Ok(())
}

fn parse_json(what: &str, text: &str) -> CliResult<Value> {
    serde_json::from_str(text)
        .map_err(|e| CliError::usage(format!("{what} is not valid JSON ({e}): {text}")))
}

/// `lifeline submit`: what to call, where, with which arguments, how often.
#[derive(Debug, clap::Args)]
pub(crate) struct SubmitArgs {
    /// A registered function's id (or use --python / --shell)
    function_id: Option<String>,
    /// Register and call the Python function FUNCTION in FILE.py (checked first: it must compile
    /// and define FUNCTION)
    #[arg(long, value_name = "FILE.py:FUNCTION", conflicts_with = "function_id")]
    python: Option<String>,
    /// Register and call a shell command; {name} placeholders come from --kwargs
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["function_id", "python"])]
    shell: Option<String>,
    /// The endpoint's name or id
    #[arg(long)]
    endpoint: String,
    /// Positional arguments, a JSON array
    #[arg(long, default_value = "[]")]
    args: String,
    /// Keyword arguments, a JSON object
    #[arg(long, default_value = "{}")]
    kwargs: String,
    /// How many identical tasks to submit
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// One task per line of FILE, each line a JSON object {"args": [...], "kwargs": {...}}
    /// (either may be left out); `-` reads standard input
    #[arg(long, value_name = "FILE", conflicts_with_all = ["args", "kwargs", "count"])]
    args_file: Option<PathBuf>,
    /// Retries after system failures under a running function [default: the service's, 3]
    #[arg(long)]
    max_retries: Option<u32>,
    #[command(flatten)]
    pub(crate) connection: crate::Connection,
}

/// The arguments of one task.
type Call = (Value, Value);

/// The calls of `--args` and `--kwargs`, `--count` times.
fn calls_from_flags(s: &SubmitArgs) -> CliResult<Vec<Call>> {
    let args = parse_json("--args", &s.args)?;
    let kwargs = parse_json("--kwargs", &s.kwargs)?;
    if !args.is_array() {
        return Err(CliError::usage(format!(
            "--args must be a JSON array, such as '[1, 2]'; got {}",
            s.args
        )));
    }
    if !kwargs.is_object() {
        return Err(CliError::usage(format!(
            "--kwargs must be a JSON object, such as '{{\"x\": 1}}'; got {}",
            s.kwargs
        )));
    }
    if s.count == 0 {
        return Err(CliError::usage("--count must be at least 1"));
    }
    Ok(vec![(args, kwargs); s.count])
}

/// The calls of an `--args-file`: one JSON object per line, blank lines skipped.
fn calls_from_file(path: &Path) -> CliResult<Vec<Call>> {
    let name = path.display().to_string();
    let text = if name == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::usage(format!("cannot read the tasks from stdin: {e}")))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {name}: {e}")))?
    };
    let mut calls = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let call = parse_call(line).map_err(|why| {
            CliError::usage(format!(
                "{name}, line {}: {why}; nothing was submitted",
                i + 1
            ))
        })?;
        calls.push(call);
    }
    if calls.is_empty() {
        return Err(CliError::usage(format!(
            "{name} holds no task: write one JSON object per line, such as {{\"args\": [1, 2], \"kwargs\": {{}}}}"
        )));
    }
    Ok(calls)
}

/// One line of an `--args-file`; `Err` says what is wrong with it.
fn parse_call(line: &str) -> Result<Call, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON ({e})"))?;
    let Value::Object(mut fields) = value else {
        return Err("not a JSON object such as {\"args\": [1, 2], \"kwargs\": {}}".into());
    };
    let args = fields
        .remove("args")
        .unwrap_or_else(|| Value::Array(Vec::new()));
    let kwargs = fields
        .remove("kwargs")
        .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    if let Some(unknown) = fields.keys().next() {
        return Err(format!(
            "unknown key {unknown:?} (a line holds \"args\" and \"kwargs\")"
        ));
    }
    if !args.is_array() {
        return Err(format!("\"args\" must be a JSON array; got {args}"));
    }
    if !kwargs.is_object() {
        return Err(format!("\"kwargs\" must be a JSON object; got {kwargs}"));
    }
    Ok((args, kwargs))
}

/// The function a submission calls.
enum Function {
    Registered(FunctionId),
    New(RegisterFunction),
}

/// `lifeline submit`: prints one task id per line (the task group on stderr). Everything given
/// on the command line is checked before anything is registered or submitted.
pub(crate) async fn submit(client: &Client, s: &SubmitArgs) -> CliResult<()> {
    let calls = match &s.args_file {
        Some(path) => calls_from_file(path)?,
        None => calls_from_flags(s)?,
    };
    // Local checks first, then the endpoint's name, and only then is a new function registered.
    let function = match (
        s.function_id.as_deref(),
        s.python.as_deref(),
        s.shell.as_deref(),
    ) {
        (Some(id), None, None) => Function::Registered(parse_id(id)?),
        (None, python, shell) if python.is_some() || shell.is_some() => {
            Function::New(function_body(python, shell, None).await?)
        }
        _ => {
            return Err(CliError::usage(
                "give a FUNCTION_ID, or --python FILE.py:FUNCTION, or --shell 'COMMAND' (one of them)",
            ));
        }
    };
    let endpoint = endpoint_id(client, &s.endpoint).await?;
    let function = match function {
        Function::Registered(id) => id,
        Function::New(body) => client.register_function(&body).await?,
    };
    submit_calls(client, endpoint, function, calls, s.max_retries).await
}

async fn submit_calls(
    client: &Client,
    endpoint: EndpointId,
    function: FunctionId,
    calls: Vec<Call>,
    max_retries: Option<u32>,
) -> CliResult<()> {
    let tasks = calls
        .into_iter()
        .map(|(args, kwargs)| TaskSpec {
            function_id: function,
            args: Some(args),
            kwargs: Some(kwargs),
        })
        .collect();
    let request = SubmitRequest { tasks, max_retries };
    let answer = client.submit(endpoint, &request).await?;
    for id in &answer.task_ids {
        println!("{id}");
    }
    eprintln!("task group {}", answer.task_group_id);
    Ok(())
}

/// `lifeline status`: each task's status, readable, or the raw documents with `--json`. Exits 1
/// when a task failed or cannot be found; a malformed id is bad usage, refused before asking.
pub(crate) async fn status(client: &Client, ids: &[String], as_json: bool) -> CliResult<()> {
    for id in ids {
        parse_id::<TaskId>(id)?;
    }
    let answer = client.batch_status(ids).await?;
    let results = answer.results;
    let failed = ids
        .iter()
        .filter(|id| {
            matches!(results.get(*id), Some(BatchEntry::Status(doc)) if doc.status == State::Failed)
        })
        .count();
    let mut missing = 0;
    if as_json {
        let text = match ids {
            [one] => serde_json::to_string_pretty(&results.get(one)),
            _ => serde_json::to_string_pretty(&results),
        };
        println!("{}", text.unwrap_or_default());
        missing = ids
            .iter()
            .filter(|id| !matches!(results.get(*id), Some(BatchEntry::Status(_))))
            .count();
    } else {
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                println!();
            }
            match results.get(id) {
                Some(BatchEntry::Status(doc)) => print!("{}", describe(doc)),
                Some(BatchEntry::Error(error)) => {
                    println!("{id}  {}", error.message);
                    missing += 1;
                }
                None => {
                    println!("{id}  no answer");
                    missing += 1;
                }
            }
        }
    }
    let mut problems = Vec::new();
    match (failed, ids.len()) {
        (0, _) => {}
        (1, 1) => problems.push("the task failed".to_owned()),
        (n, _) => problems.push(format!("{n} of the tasks failed")),
    }
    if missing > 0 {
        problems.push(format!("{missing} of the tasks could not be found"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::failed(problems.join("; ")))
    }
}

/// A status document for people.
pub(crate) fn describe(doc: &TaskStatus) -> String {
    let mut out = String::new();
    let details = &doc.details;
    out.push_str(&format!(
        "{}  {} (attempt {} of at most {})\n",
        doc.task_id,
        doc.status.label(),
        details.attempt,
        details.max_retries + 1
    ));
    if let Some(t) = doc
        .completion_t
        .as_deref()
        .and_then(|t| t.parse::<f64>().ok())
    {
        out.push_str(&format!("  finished: {}\n", utc(t)));
    }
    if let Some(result) = &doc.result {
        out.push_str(&format!(
            "  result:   {}\n",
            serde_json::to_string(result).unwrap_or_default()
        ));
    }
    if let Some(exception) = &doc.exception {
        out.push_str("  exception:\n");
        for line in exception.lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    let log = &details.task_transitions;
    out.push_str("  life cycle:\n");
    for (i, t) in log.iter().enumerate() {
        let at = t.at.as_secs_f64();
        let stay = log
            .get(i + 1)
            .map(|next| format!("  ({} there)", human_duration(next.at.as_secs_f64() - at)))
            .unwrap_or_default();
        let reason = t
            .reason
            .as_deref()
            .map(|r| format!("  [{}]", r.lines().next().unwrap_or("")))
            .unwrap_or_default();
        out.push_str(&format!(
            "    {}  {:<19} by {:<11} attempt {}{stay}{reason}\n",
            utc(at),
            t.state.wire(),
            t.actor.wire(),
            t.attempt
        ));
    }
    out
}

/// `lifeline cancel`. A task that is already cancelled is what was asked for: a note, not a
/// failure; one that already finished otherwise cannot be cancelled (exit 1).
pub(crate) async fn cancel(client: &Client, ids: &[String]) -> CliResult<()> {
    let tasks: Vec<TaskId> = ids
        .iter()
        .map(|id| parse_id(id))
        .collect::<CliResult<_>>()?;
    let mut refused = 0;
    for task in tasks {
        match client.cancel(task).await {
            Ok(_) => println!("{task}  cancelled"),
            Err(e) if e.status() == Some(409) => match client.task(task).await {
                Ok(doc) if doc.status == State::Cancelled => {
                    println!("{task}  already cancelled; nothing to do");
                }
                _ => {
                    println!("{task}  not cancelled: {}", CliError::from(e));
                    refused += 1;
                }
            },
            Err(e @ lifeline_client::Error::Api { .. }) if e.status() != Some(401) => {
                println!("{task}  not cancelled: {}", CliError::from(e));
                refused += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if refused > 0 {
        return Err(CliError::failed(format!(
            "{refused} of the tasks could not be cancelled"
        )));
    }
    Ok(())
}

/// Epoch seconds as `YYYY-MM-DD HH:MM:SS.mmmZ`.
pub(crate) fn utc(epoch: f64) -> String {
    let millis = (epoch * 1000.0).round() as i64;
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_naturally() {
        assert_eq!(utc(1_623_881_816.333_504), "2021-06-16 22:16:56.334Z");
        assert_eq!(utc(0.0), "1970-01-01 00:00:00.000Z");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00.000Z");
    }
}
