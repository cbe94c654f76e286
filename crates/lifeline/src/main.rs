//! The `lifeline` command: one binary for the service, the endpoint agent and the user's tools.
//!
//! ```text
//! lifeline up --demo                      # service + local endpoint + dashboard, with a demo
//! lifeline serve --bind 127.0.0.1:8080 --data-dir ./lifeline-data
//! lifeline endpoint start --service http://127.0.0.1:8080 --token-file endpoint.token
//! lifeline submit --python analysis.py:run --args '[1, 2]' --endpoint local
//! lifeline watch --endpoint local
//! lifeline result 0190a1b2-...
//! ```

mod accounts;
mod client;
mod commands;
mod demo;
mod python_check;
mod tasks;
mod up;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use lifeline_service::Service;
use lifeline_service::config::Settings;
use tracing_subscriber::EnvFilter;

use crate::client::{CliError, CliResult};

const EXIT_CODES: &str = "Exit codes: 0 done (cancelling a task already cancelled too); 1 a task failed (status, result, watch) or the service refused the request; 2 bad usage (flags, files, a malformed id); 3 service unreachable; 4 token refused.";

#[derive(Debug, Parser)]
#[command(
    name = "lifeline",
    version = lifeline_service::VERSION_LINE,
    about = "Run functions on remote endpoints and follow every task's life cycle.",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the service is and how to authenticate (flags, environment, or what `lifeline up` saved).
#[derive(Clone, Debug, Args)]
pub(crate) struct Connection {
    /// The service's URL [env: LIFELINE_URL; default: what `lifeline up` saved]
    #[arg(long, env = "LIFELINE_URL", hide_env = true, global = true)]
    url: Option<String>,
    /// The user token [env: LIFELINE_TOKEN; default: what `lifeline up` saved]
    #[arg(
        long,
        env = "LIFELINE_TOKEN",
        hide_env = true,
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
    /// Also trust the CA certificates in this PEM file for an https:// service [env: LIFELINE_CA_CERT]
    #[arg(
        long,
        value_name = "FILE",
        env = "LIFELINE_CA_CERT",
        hide_env = true,
        global = true
    )]
    ca_cert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything here: the service with its store, a local endpoint and the dashboard.
    #[command(
        after_help = "Examples:\n  lifeline up\n  lifeline up --demo\n  lifeline up --data-dir ./my-lifeline --bind 127.0.0.1:9000"
    )]
    Up(up::UpArgs),
    /// Run the service: the REST API, the forwarder, the SQLite store and the dashboard.
    #[command(
        after_help = "Examples:\n  lifeline serve\n  lifeline serve --bind 0.0.0.0:8080 --data-dir /var/lib/lifeline\n  LIFELINE_HEARTBEAT_THRESHOLD=60 lifeline serve --config lifeline.toml"
    )]
    Serve(ServeArgs),
    /// Endpoints: run one here, register one, list them.
    #[command(subcommand)]
    Endpoint(EndpointCommand),
    /// Functions: register a Python function or a shell command.
    #[command(subcommand)]
    Function(FunctionCommand),
    /// Users (admin): add, list, remove, set quotas.
    #[command(subcommand)]
    User(accounts::UserCommand),
    /// Your tokens: create, list, revoke.
    #[command(subcommand)]
    Token(accounts::TokenCommand),
    /// Submit calls of a function to an endpoint; prints one task id per line.
    #[command(
        after_help = "Examples:\n  lifeline submit 0190a1b2-... --endpoint local --args '[1, 2]'\n  lifeline submit --python analysis.py:run --kwargs '{\"sample\": 3}' --endpoint local --count 100\n  lifeline submit --python analysis.py:run --args-file tasks.jsonl --endpoint local\n  lifeline submit --shell 'echo hello {name}' --kwargs '{\"name\": \"World\"}' --endpoint local\n\ntasks.jsonl holds one task per line:\n  {\"args\": [1, 2], \"kwargs\": {\"sample\": 3}}\n  {\"args\": [3, 4]}"
    )]
    Submit(commands::SubmitArgs),
    /// Print a task's result (JSON), waiting for it to finish; a failure prints its traceback
    /// and exits 1.
    #[command(
        after_help = "Examples:\n  lifeline result 0190a1b2-...\n  lifeline result 0190a1b2-... | jq .stdout"
    )]
    Result {
        task_id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Tasks: list them.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Show tasks' status: result or exception, and every transition (exit 1 if one failed).
    #[command(
        after_help = "Examples:\n  lifeline status 0190a1b2-...\n  lifeline status --json 0190a1b2-... | jq .status"
    )]
    Status {
        #[arg(required = true)]
        task_ids: Vec<String>,
        /// Print the raw status documents
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Cancel pending tasks (one already cancelled is left as it is).
    #[command(after_help = "Example:\n  lifeline cancel 0190a1b2-... 0190a1b3-...")]
    Cancel {
        #[arg(required = true)]
        task_ids: Vec<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Copy a running service's store to a new file, consistently, without stopping it.
    #[command(
        after_help = "Example:\n  lifeline backup --data-dir /var/lib/lifeline /backups/lifeline-2026-12-01.sqlite3\n\nTo restore: stop the service, put the copy in a data directory as lifeline.sqlite3 (beside the\ntoken file), and start `lifeline serve --data-dir` on it."
    )]
    Backup {
        /// The service's data directory [default: ./lifeline-data]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The new file to write (never overwritten)
        dest: PathBuf,
    },
    /// Watch tasks move through the life cycle until all are finished (exit 1 if any failed).
    ///
    /// By default it watches the tasks unfinished when it starts, and every task submitted while
    /// it runs; tasks that finished before it started are left out. With --task-group it watches
    /// that submission's tasks. At the end it lists the tasks that failed.
    #[command(
        after_help = "Examples:\n  lifeline watch --endpoint local\n  lifeline watch --task-group 0190a1b2-..."
    )]
    Watch {
        /// Only these endpoints (names or ids; repeat for several)
        #[arg(long)]
        endpoint: Vec<String>,
        /// Only the tasks of this submission
        #[arg(long)]
        task_group: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
}

/// `lifeline serve`.
#[derive(Debug, Args)]
struct ServeArgs {
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
    /// Serve HTTPS and WSS with this certificate chain (PEM, leaf first); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// `lifeline endpoint start`.
#[derive(Debug, Args)]
struct StartArgs {
    /// The service's URL
    #[arg(long, env = "LIFELINE_URL")]
    service: String,
    /// A file holding the endpoint's token, from `lifeline endpoint register`
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The endpoint's token itself. Other users of the machine can read it in `ps`: prefer
    /// --token-file or the environment variable
    #[arg(
        long,
        env = "LIFELINE_ENDPOINT_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    token: Option<String>,
    /// Executors, providers, nodes and workers (TOML); default: one local executor sized to this machine
    #[arg(long)]
    config: Option<PathBuf>,
    /// The agent's directory, where undelivered results wait [default: ./lifeline-endpoint]
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also trust the CA certificates in this PEM file for an https:// service (beside the
    /// system's roots)
    #[arg(long, value_name = "FILE", env = "LIFELINE_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

/// `lifeline endpoint manager`, which providers run.
#[derive(Debug, Args)]
struct ManagerArgs {
    /// The interchange's HOST:PORT
    #[arg(long)]
    interchange: String,
    /// The block this manager belongs to (its secret comes in LIFELINE_BLOCK_SECRET)
    #[arg(long)]
    block: u64,
    #[arg(long)]
    workers: usize,
    #[arg(long, default_value_t = 1.0)]
    heartbeat_period: f64,
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    max_result_bytes: usize,
    /// Seconds to keep trying to reach the interchange
    #[arg(long, default_value_t = 20.0)]
    connect_timeout: f64,
}

#[derive(Debug, Subcommand)]
enum EndpointCommand {
    /// Start the endpoint agent: it connects to the service and runs the endpoint's tasks.
    #[command(
        after_help = "Examples:\n  lifeline endpoint start --service http://127.0.0.1:8080 --token-file endpoint.token\n  LIFELINE_ENDPOINT_TOKEN=... lifeline endpoint start --service https://lifeline.example.org --config endpoint.toml\n\nendpoint.toml:\n  [[executor]]\n  label = \"cpu\"\n  provider = \"local\"\n  nodes = 2\n  workers_per_node = 4\n  walltime_secs = 3600"
    )]
    Start(StartArgs),
    /// Register an endpoint; prints its id and its token.
    #[command(after_help = "Example:\n  lifeline endpoint register my-cluster")]
    Register {
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// List endpoints: online or offline, and each executor's workers.
    List {
        /// Print the raw JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Share an endpoint with another user, or with every user.
    #[command(
        after_help = "Examples:\n  lifeline endpoint share my-cluster --with ada\n  lifeline endpoint share my-cluster --public"
    )]
    Share(accounts::ShareArgs),
    /// Run a manager on this node (started by the agent's providers, not by hand).
    #[command(hide = true)]
    Manager(ManagerArgs),
}

#[derive(Debug, Subcommand)]
enum TaskCommand {
    /// List tasks, newest first: id, state, attempt, endpoint, function and since when.
    #[command(
        after_help = "Examples:\n  lifeline task list --endpoint local --state failed\n  lifeline task list --group 0190a1b2-... --json\n  lifeline task list --state waiting-for-ep,waiting-for-nodes --limit 20"
    )]
    List(tasks::ListArgs),
}

#[derive(Debug, Subcommand)]
enum FunctionCommand {
    /// Register a function; prints its id.
    #[command(
        after_help = "Examples:\n  lifeline function register --python analysis.py:run\n  lifeline function register --shell 'gzip -k {path}' --name compress"
    )]
    Register {
        /// The Python function FUNCTION defined in FILE.py
        #[arg(long, value_name = "FILE.py:FUNCTION")]
        python: Option<String>,
        /// A shell command; {name} placeholders are filled from each task's kwargs
        #[arg(long, value_name = "COMMAND", conflicts_with = "python")]
        shell: Option<String>,
        /// The function's name [default: the Python function's name, or "shell"]
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// List your functions (admin: everyone's), newest first.
    List {
        /// Print the raw JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` logs every request (with its user); `up` and the other commands keep the
    // terminal for what matters.
    let default_filter = match cli.command {
        Command::Serve(_) => "info",
        _ => "info,tower_http=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LIFELINE_LOG")
                .unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    // The endpoint agent and each manager run one loop that owns their state: on a single
    // thread, no wakeup crosses to another core (1.3x the tasks per second end to end on two
    // cores, and a shorter round trip; BENCHMARKS.md).
    let runtime = match cli.command {
        Command::Endpoint(EndpointCommand::Start(_) | EndpointCommand::Manager(_)) => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        _ => tokio::runtime::Runtime::new(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code)
        }
    }
}

fn client(c: Connection) -> CliResult<lifeline_client::Client> {
    client::connect(c.url, c.token, c.ca_cert.as_deref())
}

async fn run(cli: Cli) -> CliResult<()> {
    match cli.command {
        Command::Up(args) => Ok(up::up(args, shutdown_signal()).await?),
        Command::Serve(args) => {
            let mut settings = Settings::load(args.config.as_deref(), std::env::vars())
                .map_err(|e| CliError::usage(format!("{e:#}")))?;
            if let Some(bind) = args.bind {
                settings.bind = bind;
            }
            if let Some(dir) = args.data_dir {
                settings.data_dir = dir;
            }
            if let Some(dir) = args.dashboard_dir {
                settings.dashboard_dir = dir;
            }
            if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
                settings.tls_cert = cert.display().to_string();
                settings.tls_key = key.display().to_string();
            }
            Ok(serve(settings).await?)
        }
        Command::Endpoint(EndpointCommand::Start(args)) => start(args).await,
        Command::Endpoint(EndpointCommand::Share(args)) => accounts::share(args).await,
        Command::User(command) => accounts::user(command).await,
        Command::Token(command) => accounts::token(command).await,
        Command::Endpoint(EndpointCommand::Register { name, connection }) => {
            commands::endpoint_register(&client(connection)?, &name).await
        }
        Command::Endpoint(EndpointCommand::List { json, connection }) => {
            commands::endpoint_list(&client(connection)?, json).await
        }
        Command::Endpoint(EndpointCommand::Manager(args)) => {
            let options = lifeline_endpoint::ManagerOptions {
                interchange: args.interchange,
                block: args.block,
                workers: args.workers,
                heartbeat_period: std::time::Duration::from_secs_f64(
                    args.heartbeat_period.max(0.01),
                ),
                max_result_bytes: args.max_result_bytes,
                connect_timeout: std::time::Duration::from_secs_f64(
                    args.connect_timeout.clamp(0.0, 3600.0),
                ),
            };
            Ok(lifeline_endpoint::run_manager(options).await?)
        }
        Command::Function(FunctionCommand::Register {
            python,
            shell,
            name,
            connection,
        }) => {
            let body =
                commands::function_body(python.as_deref(), shell.as_deref(), name.as_deref())
                    .await?;
            commands::function_register(&client(connection)?, &body).await
        }
        Command::Function(FunctionCommand::List { json, connection }) => {
            commands::function_list(&client(connection)?, json).await
        }
        Command::Submit(args) => commands::submit(&client(args.connection.clone())?, &args).await,
        Command::Result {
            task_id,
            connection,
        } => tasks::result(&client(connection)?, &task_id).await,
        Command::Task(TaskCommand::List(args)) => {
            tasks::list(&client(args.connection.clone())?, &args).await
        }
        Command::Status {
            task_ids,
            json,
            connection,
        } => commands::status(&client(connection)?, &task_ids, json).await,
        Command::Cancel {
            task_ids,
            connection,
        } => commands::cancel(&client(connection)?, &task_ids).await,
        Command::Backup { data_dir, dest } => {
            let data_dir = data_dir.unwrap_or_else(|| PathBuf::from("lifeline-data"));
            let summary = lifeline_service::store::backup(&data_dir, &dest)
                .map_err(|e| client::CliError::failed(format!("{e:#}")))?;
            println!(
                "Backed up {} tasks and {} events to {}.",
                summary.tasks,
                summary.events,
                dest.display()
            );
            Ok(())
        }
        Command::Watch {
            endpoint,
            task_group,
            connection,
        } => watch::watch(&client(connection)?, &endpoint, task_group.as_deref()).await,
    }
}

/// `lifeline endpoint start`: the agent, with its token from a file or the environment.
async fn start(args: StartArgs) -> CliResult<()> {
    let token = match (args.token, args.token_file) {
        (Some(token), _) => token,
        (None, Some(file)) => std::fs::read_to_string(&file)
            .map_err(|e| {
                CliError::usage(format!(
                    "cannot read the token file {}: {e}",
                    file.display()
                ))
            })?
            .trim()
            .to_owned(),
        (None, None) => {
            return Err(CliError::usage(
                "give the endpoint's token: --token-file FILE, or the environment variable LIFELINE_ENDPOINT_TOKEN",
            ));
        }
    };
    let config = match args.config {
        Some(path) => lifeline_endpoint::config::EndpointConfig::load(&path)
            .map_err(|e| CliError::usage(format!("{e:#}")))?,
        None => lifeline_endpoint::config::EndpointConfig::for_this_machine(),
    };
    let options = lifeline_endpoint::AgentOptions {
        service: args.service,
        token,
        dir: args
            .dir
            .unwrap_or_else(|| PathBuf::from("lifeline-endpoint")),
        config,
        program: std::env::current_exe().context("cannot find the lifeline binary")?,
        ca_cert: args.ca_cert,
    };
    Ok(lifeline_endpoint::run_agent(options, shutdown_signal()).await?)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("cannot listen on {}", settings.bind))?;
    let addr = listener.local_addr()?;
    let token_file = settings.data_dir.join("token");
    let service = Service::open(settings).await?;
    let scheme = if service.is_tls() { "https" } else { "http" };
    println!("Lifeline is listening on {scheme}://{addr}/");
    if let Some(metrics) = service.metrics_addr() {
        println!("Metrics, without a token: http://{metrics}/metrics");
    }
    // The token is printed once, when it is made; service logs must not carry it afterwards.
    match &service.new_user_token {
        Some(token) => {
            println!("Created the user token, saved in {}", token_file.display());
            println!("Open the dashboard: {scheme}://{addr}/#token={token}");
        }
        None => println!(
            "Open the dashboard at {scheme}://{addr}/ and sign in with the user token kept in {}",
            token_file.display()
        ),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
