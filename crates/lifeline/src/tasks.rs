//! Reading tasks back: `lifeline result` (one task's result, waiting for it if need be) and
//! `lifeline task list` (tasks page by page, filtered as `GET /v1/tasks` filters them).

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use lifeline_client::Client;
use lifeline_model::api::TaskListQuery;
use lifeline_model::{EndpointId, FunctionId, State, TaskGroupId, TaskId};

use crate::client::{CliError, CliResult, endpoint_id, parse_id};
use crate::commands::utc;

/// `lifeline result ID`: the result as JSON on stdout; a failure's traceback on stderr and exit
/// 1. A pending task is waited for, a minute's long poll at a time.
pub(crate) async fn result(client: &Client, id: &str) -> CliResult<()> {
    let id: TaskId = parse_id(id)?;
    let mut doc = client.task(id).await?;
    if doc.pending {
        eprintln!("waiting for task {id} ({})", doc.status.wire());
    }
    while doc.pending {
        doc = client.wait_for_task(id, Duration::from_secs(60)).await?;
    }
    match doc.status {
        State::Success => {
            let result = doc.result.unwrap_or(serde_json::Value::Null);
            println!(
                "{}",
                serde_json::to_string_pretty(&result).unwrap_or_default()
            );
            Ok(())
        }
        State::Failed => {
            eprintln!(
                "{}",
                doc.exception.as_deref().unwrap_or("no exception given")
            );
            Err(CliError::failed(format!("task {id} failed")))
        }
        State::Cancelled => Err(CliError::failed(format!(
            "task {id} was cancelled, so it has no result"
        ))),
        other => Err(CliError::failed(format!(
            "task {id} is {} and has no result yet",
            other.wire()
        ))),
    }
}

/// `lifeline task list`: which tasks to list.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only these endpoints (names or ids; repeat for several)
    #[arg(long)]
    endpoint: Vec<String>,
    /// Only tasks in these states (repeat, or separate with commas), such as failed or running
    #[arg(long, value_delimiter = ',')]
    state: Vec<String>,
    /// Only the tasks of this submission (the task group `submit` prints)
    #[arg(long, value_name = "TASK_GROUP_ID")]
    group: Option<String>,
    /// At most this many tasks, newest first [default: all]
    #[arg(long)]
    limit: Option<usize>,
    /// One JSON object per task and line
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(crate) connection: crate::Connection,
}

/// A state from its name as the diagram shows it.
fn parse_state(name: &str) -> CliResult<State> {
    let name = name.trim();
    State::ALL
        .into_iter()
        .find(|s| s.wire() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = State::ALL.iter().map(|s| s.wire()).collect();
            CliError::usage(format!(
                "{name:?} is not a state; the states are {}",
                names.join(", ")
            ))
        })
}

/// Largest page asked of the service.
const PAGE: usize = 1000;

/// `lifeline task list`: newest first, one line per task, printed page by page.
pub(crate) async fn list(client: &Client, args: &ListArgs) -> CliResult<()> {
    let states: Vec<State> = args
        .state
        .iter()
        .map(|s| parse_state(s))
        .collect::<CliResult<_>>()?;
    let group: Option<TaskGroupId> = args.group.as_deref().map(parse_id).transpose()?;
    if args.limit == Some(0) {
        return Err(CliError::usage("--limit must be at least 1"));
    }
    let mut endpoints = Vec::new();
    for e in &args.endpoint {
        endpoints.push(endpoint_id(client, e).await?);
    }
    let join = |items: Vec<String>| (!items.is_empty()).then(|| items.join(","));
    let mut query = TaskListQuery {
        endpoint_id: join(endpoints.iter().map(ToString::to_string).collect()),
        state: join(states.iter().map(|s| s.wire().to_owned()).collect()),
        task_group_id: group.map(|g| g.to_string()),
        ..TaskListQuery::default()
    };
    let mut names = Names::new(client).await?;
    let mut shown = 0;
    loop {
        let wanted = args.limit.map_or(PAGE, |limit| (limit - shown).min(PAGE));
        query.limit = Some(wanted);
        let page = client.tasks(&query).await?;
        let mut lines = Vec::with_capacity(page.tasks.len() + 1);
        if shown == 0 && !args.json && !page.tasks.is_empty() {
            lines.push(format!(
                "{:<36}  {:<18}  {:>7}  {:<16}  {:<16}  SINCE",
                "TASK", "STATE", "ATTEMPT", "ENDPOINT", "FUNCTION"
            ));
        }
        for task in &page.tasks {
            lines.push(if args.json {
                serde_json::to_string(task).unwrap_or_default()
            } else {
                format!(
                    "{:<36}  {:<18}  {:>7}  {:<16}  {:<16}  {}",
                    task.task_id,
                    task.state.wire(),
                    format!("{}/{}", task.attempt, task.max_retries + 1),
                    names.endpoint(task.endpoint_id),
                    names.function(task.function_id).await,
                    utc(task.since.as_secs_f64())
                )
            });
        }
        // Lines go out page by page; a reader that stops early (`| head`) ends the listing
        // quietly.
        let mut out = std::io::stdout().lock();
        for line in lines {
            match writeln!(out, "{line}") {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(CliError::failed(format!("cannot print the tasks: {e}"))),
            }
        }
        shown += page.tasks.len();
        match page.next_cursor {
            Some(cursor) if args.limit.is_none_or(|limit| shown < limit) => {
                query.cursor = Some(cursor);
            }
            _ => break,
        }
    }
    if shown == 0 {
        eprintln!("No task matches.");
    }
    Ok(())
}

/// Names of endpoints and functions for the listing, each function looked up once.
struct Names<'a> {
    client: &'a Client,
    endpoints: HashMap<EndpointId, String>,
    functions: HashMap<FunctionId, String>,
}

impl<'a> Names<'a> {
    async fn new(client: &'a Client) -> CliResult<Self> {
        let endpoints = client
            .endpoints()
            .await?
            .into_iter()
            .map(|e| (e.endpoint_id, e.name))
            .collect();
        Ok(Self {
            client,
            endpoints,
            functions: HashMap::new(),
        })
    }

    fn endpoint(&self, id: EndpointId) -> String {
        self.endpoints
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// The function's name, or its id if the service does not show it to this user.
    async fn function(&mut self, id: FunctionId) -> String {
        if let Some(name) = self.functions.get(&id) {
            return name.clone();
        }
        let name = match self.client.function(id).await {
            Ok(info) => info.name,
            Err(_) => id.to_string(),
        };
        self.functions.insert(id, name.clone());
        name
    }
}
