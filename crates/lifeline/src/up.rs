//! `lifeline up`: the whole system in one command. The service on its embedded store, a local
//! endpoint (registered on first use) with its agent, the dashboard, and one URL to open.
//! `--demo` adds a small workload that shows the whole life cycle.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use lifeline_client::Client;
use lifeline_model::api::{
    EndpointRegistered, FunctionSpec, RegisterFunction, SubmitRequest, TaskSpec,
};
use lifeline_model::{EndpointId, FunctionId, State, TaskId};
use lifeline_service::Service;
use lifeline_service::config::Settings;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::client::{CliConfig, write_config};

/// `lifeline up`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// The store's directory [default: ~/.local/share/lifeline]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// The dashboard's built files [default: ./dist, or the repository's dist/]
    #[arg(long)]
    dashboard_dir: Option<PathBuf>,
    /// Also submit a small workload that shows the whole life cycle
    #[arg(long)]
    demo: bool,
}

/// `$XDG_DATA_HOME/lifeline`, or `~/.local/share/lifeline`.
pub(crate) fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("lifeline")
}

/// The dashboard's built files: `./dist`, or the repository's `dist` next to this binary's
/// `target/` directory.
fn find_dashboard() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("dist")];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|dir| dir.join("dist")));
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("index.html").is_file())
}

/// An endpoint of this data directory: registered once, its token kept in
/// `DATA_DIR/endpoints/NAME/token`.
async fn local_endpoint(
    client: &Client,
    data_dir: &Path,
    name: &str,
) -> anyhow::Result<(EndpointId, String, PathBuf)> {
    let dir = data_dir.join("endpoints").join(name);
    std::fs::create_dir_all(&dir)?;
    let saved = std::fs::read_to_string(dir.join("endpoint.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<EndpointRegistered>(&t).ok());
    if let Some(saved) = saved
        && client.endpoint(saved.endpoint_id).await.is_ok()
    {
        return Ok((saved.endpoint_id, saved.token, dir));
    }
    let answer = client.register_endpoint(name).await?;
    std::fs::write(dir.join("endpoint.json"), serde_json::to_string(&answer)?)?;
    Ok((answer.endpoint_id, answer.token, dir))
}

fn start_agent(
    url: &str,
    token: String,
    dir: PathBuf,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let options = lifeline_endpoint::AgentOptions {
        service: url.to_owned(),
        token,
        dir,
        config: lifeline_endpoint::config::EndpointConfig::for_this_machine(),
        program: std::env::current_exe().context("cannot find the lifeline binary")?,
    };
    Ok(tokio::spawn(async move {
        if let Err(error) = lifeline_endpoint::run_agent(options, stopped(stop)).await {
            tracing::error!(%error, "the endpoint agent stopped");
        }
    }))
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

pub(crate) async fn up(options: UpArgs, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut settings = Settings::load(None, std::env::vars())?;
    settings.data_dir = options.data_dir.unwrap_or_else(default_data_dir);
    if let Some(bind) = options.bind {
        settings.bind = bind;
    }
    match options.dashboard_dir.or_else(find_dashboard) {
        Some(dir) => settings.dashboard_dir = dir,
        None => eprintln!(
            "note: no built dashboard found (run `trunk build --release`); the API works without it"
        ),
    }
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another Lifeline running? try --bind 127.0.0.1:0)",
                settings.bind
            )
        })?;
    let addr = listener.local_addr()?;
    let data_dir = settings.data_dir.clone();
    let service = Service::open(settings).await?;
    let token = std::fs::read_to_string(data_dir.join("token"))
        .context("the user token file is missing")?
        .trim()
        .to_owned();
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(service.run(listener, stopped(stop_rx.clone())));

    let url = format!("http://{addr}");
    let client = Client::new(url.clone(), token.clone());
    let (local_id, local_token, local_dir) = local_endpoint(&client, &data_dir, "local").await?;
    let mut agents = vec![start_agent(&url, local_token, local_dir, stop_rx.clone())?];
    let config_file = write_config(&CliConfig {
        url: url.clone(),
        token: token.clone(),
    })
    .ok();

    println!("Lifeline is up: {url}/#token={token}");
    println!("  store:    {}", data_dir.display());
    println!("  endpoint: local ({local_id})");
    if let Some(path) = config_file {
        println!(
            "  commands: `lifeline submit`, `status`, `watch` use {} (from {})",
            url,
            path.display()
        );
    }
    println!("Press Ctrl-C to stop.");

    let demo = if options.demo {
        let client = client.clone();
        let data_dir = data_dir.clone();
        let stop = stop_rx.clone();
        let url = url.clone();
        Some(tokio::spawn(async move {
            demo(&client, &data_dir, local_id, &url, stop).await
        }))
    } else {
        None
    };

    signal.await;
    println!("Stopping...");
    let _ = stop_tx.send(true);
    if let Some(demo) = demo
        && let Ok(Ok(Some(agent))) = demo.await
    {
        agents.push(agent);
    }
    for agent in agents {
        let _ = agent.await;
    }
    server.await??;
    println!("Stopped. `lifeline up` again resumes the same store.");
    Ok(())
}

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
    # The first attempt's worker dies; the retry finds the marker and succeeds.
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)
    return "survived a worker crash"
"#;

/// Submits the demo workload; returns the late endpoint's agent so that `up` can stop it.
async fn demo(
    client: &Client,
    data_dir: &Path,
    local: EndpointId,
    url: &str,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let mut functions = std::collections::HashMap::new();
    for name in ["hello", "simulate", "divide", "flaky"] {
        let spec = FunctionSpec::Python {
            source: DEMO_PYTHON.to_owned(),
            entrypoint: name.to_owned(),
        };
        let id = client
            .register_function(&RegisterFunction::new(name, spec))
            .await?;
        functions.insert(name, id);
    }
    let greet = RegisterFunction::new(
        "greet",
        FunctionSpec::Shell {
            command: "echo Hello {name} from $(hostname)".into(),
        },
    );
    let shell: FunctionId = client.register_function(&greet).await?;
    let submit = |endpoint: EndpointId, tasks: Vec<TaskSpec<Value>>| async move {
        let request = SubmitRequest {
            tasks,
            max_retries: None,
        };
        anyhow::Ok(client.submit(endpoint, &request).await?.task_ids)
    };
    let call = |f: &str, args: Value| TaskSpec {
        function_id: functions[f],
        args: Some(args),
        kwargs: None,
    };

    // First the task to cancel, so that it is running when the cancellation comes.
    let doomed: Vec<TaskId> = submit(local, vec![call("simulate", json!([60]))]).await?;
    println!("demo: cancelled while running -> {}", doomed[0]);
    let hello = submit(local, vec![call("hello", json!(["World"]))]).await?;
    println!("demo: hello (Python) -> {}", hello[0]);
    let greeting = TaskSpec {
        function_id: shell,
        args: None,
        kwargs: Some(json!({ "name": "Lifeline" })),
    };
    let greet = submit(local, vec![greeting]).await?;
    println!("demo: greet (shell) -> {}", greet[0]);
    let divide = submit(local, vec![call("divide", json!([1, 0]))]).await?;
    println!("demo: divide by zero (user exception) -> {}", divide[0]);
    let marker = data_dir.join(format!("demo-marker-{}", lifeline_service::new_id()));
    let flaky = submit(local, vec![call("flaky", json!([marker]))]).await?;
    println!("demo: worker crash, retried -> {}", flaky[0]);
    let simulations: Vec<TaskSpec<Value>> = (0..16)
        .map(|i| call("simulate", json!([0.1 + f64::from(i % 5) * 0.2])))
        .collect();
    let sims = submit(local, simulations).await?;
    println!(
        "demo: {} simulations (Python) -> {} ... {}",
        sims.len(),
        sims[0],
        sims[sims.len() - 1]
    );
    let (late_id, late_token, late_dir) = local_endpoint(client, data_dir, "demo-late").await?;
    let late = submit(
        late_id,
        (0..6)
            .map(|i| call("hello", json!([format!("late {i}")])))
            .collect(),
    )
    .await?;
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

    // The second endpoint comes online a few seconds later and takes its waiting tasks.
    let mut wait = stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        _ = wait.wait_for(|s| *s) => return Ok(None),
    }
    println!("demo: endpoint demo-late comes online");
    Ok(Some(start_agent(url, late_token, late_dir, stop)?))
}
