//! The `lifeline` command: one binary for the service and, in time, the endpoint agent and the
//! user's tools.
//!
//! ```text
//! lifeline serve --bind 127.0.0.1:8080 --data-dir ./lifeline-data
//! lifeline endpoint start --service http://127.0.0.1:8080 --token ENDPOINT_TOKEN
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lifeline_service::Service;
use lifeline_service::config::Settings;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "lifeline",
    version,
    about = "Run functions on remote endpoints and follow every task's life cycle."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: the REST API, the forwarder, the SQLite store and the dashboard.
    #[command(
        after_help = "Examples:\n  lifeline serve\n  lifeline serve --bind 0.0.0.0:8080 --data-dir /var/lib/lifeline\n  LIFELINE_HEARTBEAT_THRESHOLD=60 lifeline serve --config lifeline.toml"
    )]
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]
        #[arg(long)]
        bind: Option<SocketAddr>,
        /// Directory of the store and the user token, created on first start [default: ./lifeline-data]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// A TOML configuration file; LIFELINE_* environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The dashboard's built files, served at / [default: ./dist]
        #[arg(long)]
        dashboard_dir: Option<PathBuf>,
    },
    /// Run an endpoint: the agent that executes tasks at a compute site.
    #[command(subcommand)]
    Endpoint(EndpointCommand),
}

#[derive(Debug, Subcommand)]
enum EndpointCommand {
    /// Start the endpoint agent: it connects to the service and runs the endpoint's tasks.
    #[command(
        after_help = "Examples:\n  lifeline endpoint start --service http://127.0.0.1:8080 --token $ENDPOINT_TOKEN\n  lifeline endpoint start --service https://lifeline.example.org --token $ENDPOINT_TOKEN --config endpoint.toml\n\nendpoint.toml:\n  [[executor]]\n  label = \"cpu\"\n  provider = \"local\"\n  nodes = 2\n  workers_per_node = 4\n  walltime_secs = 3600"
    )]
    Start {
        /// The service's URL
        #[arg(long, env = "LIFELINE_URL")]
        service: String,
        /// The endpoint's token, from `POST /v1/endpoints`
        #[arg(long, env = "LIFELINE_ENDPOINT_TOKEN")]
        token: String,
        /// Executors, providers, nodes and workers (TOML); default: one local executor sized to this machine
        #[arg(long)]
        config: Option<PathBuf>,
        /// The agent's directory, where undelivered results wait [default: ./lifeline-endpoint]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run a manager on this node (started by the agent's providers, not by hand).
    #[command(hide = true)]
    Manager {
        #[arg(long)]
        workers: usize,
        #[arg(long, default_value_t = 1.0)]
        heartbeat_period: f64,
        #[arg(long, default_value_t = 10 * 1024 * 1024)]
        max_result_bytes: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LIFELINE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            bind,
            data_dir,
            config,
            dashboard_dir,
        } => {
            let mut settings = Settings::load(config.as_deref(), std::env::vars())?;
            if let Some(bind) = bind {
                settings.bind = bind;
            }
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            if let Some(dir) = dashboard_dir {
                settings.dashboard_dir = dir;
            }
            serve(settings).await
        }
        Command::Endpoint(EndpointCommand::Start {
            service,
            token,
            config,
            dir,
        }) => {
            let config = match config {
                Some(path) => lifeline_endpoint::config::EndpointConfig::load(&path)?,
                None => lifeline_endpoint::config::EndpointConfig::for_this_machine(),
            };
            let options = lifeline_endpoint::AgentOptions {
                service,
                token,
                dir: dir.unwrap_or_else(|| PathBuf::from("lifeline-endpoint")),
                config,
                program: std::env::current_exe().context("cannot find the lifeline binary")?,
            };
            lifeline_endpoint::run_agent(options, shutdown_signal()).await
        }
        Command::Endpoint(EndpointCommand::Manager {
            workers,
            heartbeat_period,
            max_result_bytes,
        }) => {
            let options = lifeline_endpoint::ManagerOptions {
                workers,
                heartbeat_period: std::time::Duration::from_secs_f64(heartbeat_period.max(0.01)),
                max_result_bytes,
            };
            lifeline_endpoint::run_manager(options).await
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("cannot listen on {}", settings.bind))?;
    let addr = listener.local_addr()?;
    let token_file = settings.data_dir.join("token");
    let service = Service::open(settings).await?;
    match &service.new_user_token {
        Some(token) => println!(
            "Created the user token (saved in {}):\n  {token}",
            token_file.display()
        ),
        None => println!("User token: in {}", token_file.display()),
    }
    println!("Lifeline is listening on http://{addr}/");
    service.run(listener, shutdown_signal()).await
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
