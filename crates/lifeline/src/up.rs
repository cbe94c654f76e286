//! `lifeline up`: the whole system in one command. The service on its embedded store, a local
//! endpoint (registered on first use) with its agent, the dashboard, and one URL to open.
//! `--demo` adds a small workload that shows the whole life cycle (`demo.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use lifeline_client::Client;
use lifeline_model::EndpointId;
use lifeline_model::api::EndpointRegistered;
use lifeline_service::Service;
use lifeline_service::config::Settings;
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
    /// Also show the whole life cycle: a small workload the first time (once per store), then a
    /// gentle trickle of tasks until Ctrl-C
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
pub(crate) async fn local_endpoint(
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

pub(crate) fn start_agent(
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
        ca_cert: None,
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
            crate::demo::run(&client, &data_dir, local_id, &url, stop).await
        }))
    } else {
        None
    };

    signal.await;
    println!("Stopping...");
    let _ = stop_tx.send(true);
    if let Some(demo) = demo {
        match demo.await {
            Ok(Ok(running)) => agents.extend(running),
            Ok(Err(error)) => tracing::error!("the demo stopped: {error:#}"),
            Err(_) => {}
        }
    }
    for agent in agents {
        let _ = agent.await;
    }
    server.await??;
    println!("Stopped. `lifeline up` again resumes the same store.");
    Ok(())
}
