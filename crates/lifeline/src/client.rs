//! Where the command line's service is, which token to send, and errors that say in one sentence
//! what went wrong and what to do (the calls themselves are `lifeline_client`'s).

use std::fmt;
use std::path::PathBuf;

use lifeline_client::Client;
use lifeline_model::EndpointId;
use serde::{Deserialize, Serialize};

/// Exit codes of the `lifeline` command.
pub(crate) mod exit {
    /// A task the command waited for failed, or the service refused the request.
    pub(crate) const FAILED: u8 = 1;
    /// Bad usage: flags, arguments or files.
    pub(crate) const USAGE: u8 = 2;
    /// The service could not be reached.
    pub(crate) const UNREACHABLE: u8 = 3;
    /// The service refused the token.
    pub(crate) const UNAUTHORIZED: u8 = 4;
}

/// A failure of a command, with the exit code it ends with.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl CliError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            code: exit::FAILED,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        Self::failed(format!("{e:#}"))
    }
}

pub(crate) type CliResult<T> = Result<T, CliError>;

/// What `lifeline up` writes so that later commands find the service without flags.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CliConfig {
    pub(crate) url: String,
    pub(crate) token: String,
}

/// `$XDG_CONFIG_HOME/lifeline/cli.toml`, or `~/.config/lifeline/cli.toml`.
pub(crate) fn config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("lifeline").join("cli.toml"))
}

pub(crate) fn read_config() -> Option<CliConfig> {
    let text = std::fs::read_to_string(config_path()?).ok()?;
    toml::from_str(&text).ok()
}

pub(crate) fn write_config(config: &CliConfig) -> anyhow::Result<PathBuf> {
    let path =
        config_path().ok_or_else(|| anyhow::anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, toml::to_string(config)?)?;
    Ok(path)
}

/// Connects to the service and token from flags, else `LIFELINE_URL`/`LIFELINE_TOKEN` (clap
/// fills those in), else the file `lifeline up` wrote.
pub(crate) fn connect(
    url: Option<String>,
    token: Option<String>,
    ca_cert: Option<&std::path::Path>,
) -> CliResult<Client> {
    let saved = if url.is_none() || token.is_none() {
        read_config()
    } else {
        None
    };
    let url = url.or_else(|| saved.as_ref().map(|c| c.url.clone())).ok_or_else(|| {
        CliError::usage("no service to talk to: pass --url (or set LIFELINE_URL), or start one with `lifeline up`")
    })?;
    let token = token.or_else(|| saved.map(|c| c.token)).ok_or_else(|| {
        CliError::usage("no token: pass --token (or set LIFELINE_TOKEN); `lifeline up` prints one")
    })?;
    match ca_cert {
        Some(ca) => {
            Client::with_ca_cert(url, token, ca).map_err(|e| CliError::usage(format!("{e:#}")))
        }
        None => Ok(Client::new(url, token)),
    }
}

impl From<lifeline_client::Error> for CliError {
    fn from(error: lifeline_client::Error) -> Self {
        use lifeline_client::Error;
        match error {
            Error::Unreachable { url, why } => CliError {
                code: exit::UNREACHABLE,
                message: format!(
                    "cannot reach the Lifeline service at {url} ({why}); is it running? Start one with `lifeline up`"
                ),
            },
            Error::Api { status: 401, body } => CliError {
                code: exit::UNAUTHORIZED,
                message: format!(
                    "the service refused the token ({}); check --token or LIFELINE_TOKEN",
                    body.message
                ),
            },
            Error::Api { status, body } => {
                CliError::failed(format!("the service answered {status}: {}", body.message))
            }
            Error::Protocol(why) => CliError::failed(why),
        }
    }
}

/// An id given on the command line (a task, task group or function id): a malformed one is bad
/// usage, refused here rather than sent to the service.
pub(crate) fn parse_id<T>(text: &str) -> CliResult<T>
where
    T: std::str::FromStr<Err = lifeline_model::IdError>,
{
    text.trim()
        .parse()
        .map_err(|e: lifeline_model::IdError| CliError::usage(e.to_string()))
}

/// An endpoint's id from its id or its name.
pub(crate) async fn endpoint_id(client: &Client, name_or_id: &str) -> CliResult<EndpointId> {
    let endpoints = client.endpoints().await?;
    let found: Vec<EndpointId> = endpoints
        .iter()
        .filter(|e| e.endpoint_id.to_string() == name_or_id.to_lowercase() || e.name == name_or_id)
        .map(|e| e.endpoint_id)
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(CliError::usage(format!(
            "no endpoint is named or numbered {name_or_id:?}; `lifeline endpoint list` shows them"
        ))),
        _ => Err(CliError::usage(format!(
            "several endpoints are named {name_or_id:?}; use the id instead"
        ))),
    }
}
