//! `lifeline up --demo`: a workload that shows the whole life cycle, then a gentle trickle of
//! tasks that keeps the dashboard alive for whoever opens it.
//!
//! The demo batch (Python and shell tasks, a user exception, a worker crash that is retried, a
//! task cancelled while it runs, and tasks that wait for a second endpoint until it comes online)
//! is submitted once per store: `DATA_DIR/demo.json` records that it was, and the functions it
//! registered, so a resumed store is not filled again on every start. The trickle runs on every
//! start until Ctrl-C: about one task a second on the local endpoint, now and then one that
//! fails and one whose worker crashes and is retried.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeline_client::Client;
use lifeline_model::api::{FunctionSpec, RegisterFunction, SubmitRequest, TaskSpec};
use lifeline_model::{EndpointId, FunctionId, State, TaskId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::up::{local_endpoint, start_agent};

const DEMO_PYTHON: &str = r#"import os
import random
import time


def hello(name):
    return "Hello %s!" % name


def simulate(seconds):
    time.sleep(seconds)
    return {"took": seconds}


def divide(a, b):
    return a / b


def flaky(marker):
    # The first attempt's worker dies; the retry finds the marker, removes it and succeeds.
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)
    os.remove(marker)
    return "survived a worker crash"
"#;

const PYTHON_FUNCTIONS: [&str; 4] = ["hello", "simulate", "divide", "flaky"];
const SHELL_FUNCTION: &str = "greet";

/// What the demo keeps in `DATA_DIR/demo.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    /// The demo's functions by name.
    #[serde(default)]
    functions: HashMap<String, FunctionId>,
    /// Whether the demo batch was submitted into this store.
    #[serde(default)]
    batch_submitted: bool,
}

impl Record {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("demo.json")
    }

    fn load(data_dir: &Path) -> Self {
        std::fs::read_to_string(Self::path(data_dir))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        std::fs::write(Self::path(data_dir), serde_json::to_string_pretty(self)?)?;
        Ok(())
    }
}

fn spec_of(name: &str) -> FunctionSpec {
    if name == SHELL_FUNCTION {
        FunctionSpec::Shell {
            command: "echo Hello {name} from $(hostname)".into(),
        }
    } else {
        FunctionSpec::Python {
            source: DEMO_PYTHON.to_owned(),
            entrypoint: name.to_owned(),
        }
    }
}

/// The demo's functions: those recorded, if the service still has them as they are written
/// here, else registered anew.
async fn functions(client: &Client, record: &mut Record) -> anyhow::Result<Functions> {
    for name in PYTHON_FUNCTIONS.into_iter().chain([SHELL_FUNCTION]) {
        let spec = spec_of(name);
        let kept = match record.functions.get(name) {
            Some(id) => client
                .function(*id)
                .await
                .is_ok_and(|info| info.spec == spec),
            None => false,
        };
        if !kept {
            let id = client
                .register_function(&RegisterFunction::new(name, spec))
                .await?;
            record.functions.insert(name.to_owned(), id);
        }
    }
    Ok(Functions(record.functions.clone()))
}

/// The demo's functions by name.
#[derive(Clone, Debug)]
struct Functions(HashMap<String, FunctionId>);

impl Functions {
    fn call(&self, name: &str, args: Value) -> anyhow::Result<TaskSpec<Value>> {
        let function_id = *self
            .0
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("the demo has no function {name}"))?;
        Ok(TaskSpec {
            function_id,
            args: Some(args),
            kwargs: None,
        })
    }

    fn greet(&self, name: &str) -> anyhow::Result<TaskSpec<Value>> {
        let mut task = self.call(SHELL_FUNCTION, Value::Null)?;
        task.args = None;
        task.kwargs = Some(json!({ "name": name }));
        Ok(task)
    }
}

async fn submit(
    client: &Client,
    endpoint: EndpointId,
    tasks: Vec<TaskSpec<Value>>,
) -> anyhow::Result<Vec<TaskId>> {
    let request = SubmitRequest {
        tasks,
        max_retries: None,
    };
    Ok(client.submit(endpoint, &request).await?.task_ids)
}

/// A fresh path for a `flaky` task's marker, in the demo's own directory.
fn marker(markers: &Path) -> PathBuf {
    markers.join(format!("{:032x}", lifeline_service::new_id()))
}

/// Runs the demo: the batch if this store has not had it, the trickle, and the late endpoint's
/// agent a few seconds later. Returns what `up` waits for when it stops.
pub(crate) async fn run(
    client: &Client,
    data_dir: &Path,
    local: EndpointId,
    url: &str,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    // A store from before demo.json had its batch if the late endpoint was registered.
    let late_known = data_dir.join("endpoints/demo-late/endpoint.json").is_file();
    let mut record = Record::load(data_dir);
    let functions = functions(client, &mut record).await?;
    record.save(data_dir)?;
    // Markers of flaky tasks of an earlier start are of no use now.
    let markers = data_dir.join("demo-markers");
    let _ = std::fs::remove_dir_all(&markers);
    std::fs::create_dir_all(&markers)?;
    let (late_id, late_token, late_dir) = local_endpoint(client, data_dir, "demo-late").await?;

    if record.batch_submitted || late_known {
        println!("demo: this store had the demo batch when it was new; it is not submitted again");
    } else {
        batch(client, &functions, local, late_id, &markers).await?;
    }
    record.batch_submitted = true;
    record.save(data_dir)?;

    let mut running = vec![tokio::spawn(trickle(
        client.clone(),
        functions,
        local,
        markers,
        stop.clone(),
    ))];
    println!(
        "demo: a trickle of tasks (about one a second, now and then a failure and a retry) runs on local until Ctrl-C"
    );

    // The second endpoint comes online a few seconds later and takes its waiting tasks.
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        _ = stop.wait_for(|s| *s) => return Ok(running),
    }
    println!("demo: endpoint demo-late comes online");
    running.push(start_agent(url, late_token, late_dir, stop)?);
    Ok(running)
}

/// The demo batch: every way through the life cycle once.
async fn batch(
    client: &Client,
    functions: &Functions,
    local: EndpointId,
    late: EndpointId,
    markers: &Path,
) -> anyhow::Result<()> {
    // First the task to cancel, so that it is running when the cancellation comes.
    let doomed = submit(
        client,
        local,
        vec![functions.call("simulate", json!([60]))?],
    )
    .await?;
    println!("demo: cancelled while running -> {}", doomed[0]);
    let hello = submit(
        client,
        local,
        vec![functions.call("hello", json!(["World"]))?],
    )
    .await?;
    println!("demo: hello (Python) -> {}", hello[0]);
    let greet = submit(client, local, vec![functions.greet("Lifeline")?]).await?;
    println!("demo: greet (shell) -> {}", greet[0]);
    let divide = submit(
        client,
        local,
        vec![functions.call("divide", json!([1, 0]))?],
    )
    .await?;
    println!("demo: divide by zero (user exception) -> {}", divide[0]);
    let flaky = functions.call("flaky", json!([marker(markers)]))?;
    let flaky = submit(client, local, vec![flaky]).await?;
    println!("demo: worker crash, retried -> {}", flaky[0]);
    let simulations = (0..16)
        .map(|i| functions.call("simulate", json!([0.1 + f64::from(i % 5) * 0.2])))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sims = submit(client, local, simulations).await?;
    println!(
        "demo: {} simulations (Python) -> {} ... {}",
        sims.len(),
        sims[0],
        sims[sims.len() - 1]
    );
    let waiting = (0..6)
        .map(|i| functions.call("hello", json!([format!("late {i}")])))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let late = submit(client, late, waiting).await?;
    println!(
        "demo: {} tasks waiting for endpoint demo-late -> {} ... {}",
        late.len(),
        late[0],
        late[late.len() - 1]
    );

    // Cancel the long task once it runs (or after a few seconds, wherever it is).
    let canceller = client.clone();
    let doomed = doomed[0];
    tokio::spawn(async move {
        for _ in 0..50 {
            match canceller.task(doomed).await {
                Ok(doc) if doc.status == State::Running || !doc.pending => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(_) => return,
            }
        }
        let _ = canceller.cancel(doomed).await;
    });
    Ok(())
}

/// The pauses between the trickle's tasks, in tenths of a second: about one task a second, never
/// more than a few.
const PAUSES: [u64; 8] = [6, 12, 8, 14, 5, 10, 9, 16];

/// The trickle's `n`th task: mostly short simulations, greetings in Python and shell, and in every
/// sixteen one user exception and one worker crash that is retried.
fn trickle_task(functions: &Functions, n: u64, markers: &Path) -> anyhow::Result<TaskSpec<Value>> {
    match n % 16 {
        5 => functions.call("divide", json!([n, 0])),
        11 => functions.call("flaky", json!([marker(markers)])),
        1 | 8 => functions.call("hello", json!([format!("visitor {n}")])),
        3 | 13 => functions.greet(&format!("visitor {n}")),
        step => functions.call("simulate", json!([0.2 + (step % 4) as f64 * 0.3])),
    }
}

/// Submits the trickle until `stop`. A refused submission (a quota, a service going down) is
/// skipped, not fatal: the next one comes after the usual pause.
async fn trickle(
    client: Client,
    functions: Functions,
    local: EndpointId,
    markers: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    for n in 0u64.. {
        match trickle_task(&functions, n, &markers) {
            Ok(task) => {
                if let Err(error) = submit(&client, local, vec![task]).await {
                    tracing::debug!(%error, "the demo's trickle skipped a task");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the demo's trickle stops");
                return;
            }
        }
        let pause = Duration::from_millis(100 * PAUSES[(n % PAUSES.len() as u64) as usize]);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
