//! The command line's HTTP client: where the service is, which token to send, and errors that
//! say in one sentence what went wrong and what to do.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// A client of one service with one token.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) url: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// The service and token from flags, else `LIFELINE_URL`/`LIFELINE_TOKEN` (clap fills those
    /// in), else the file `lifeline up` wrote.
    pub(crate) fn new(url: Option<String>, token: Option<String>) -> CliResult<Self> {
        let saved = if url.is_none() || token.is_none() {
            read_config()
        } else {
            None
        };
        let url = url.or_else(|| saved.as_ref().map(|c| c.url.clone())).ok_or_else(|| {
            CliError::usage("no service to talk to: pass --url (or set LIFELINE_URL), or start one with `lifeline up`")
        })?;
        let token = token.or_else(|| saved.map(|c| c.token)).ok_or_else(|| {
            CliError::usage(
                "no token: pass --token (or set LIFELINE_TOKEN); `lifeline up` prints one",
            )
        })?;
        Ok(Self::with(url, token))
    }

    pub(crate) fn with(url: String, token: String) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    pub(crate) async fn get(&self, path: &str) -> CliResult<Value> {
        self.send(self.http.get(format!("{}{path}", self.url)))
            .await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> CliResult<Value> {
        self.send(self.http.post(format!("{}{path}", self.url)).json(body))
            .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> CliResult<Value> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["message"]
            .as_str()
            .unwrap_or("no explanation given")
            .to_owned();
        Err(match status.as_u16() {
            401 => CliError {
                code: exit::UNAUTHORIZED,
                message: format!(
                    "the service refused the token ({message}); check --token or LIFELINE_TOKEN"
                ),
            },
            _ => CliError::failed(format!(
                "the service answered {}: {message}",
                status.as_u16()
            )),
        })
    }

    pub(crate) fn unreachable(&self, error: reqwest::Error) -> CliError {
        let why = if error.is_connect() {
            "nothing answers there".to_owned()
        } else if error.is_timeout() {
            "it did not answer in time".to_owned()
        } else {
            error.to_string()
        };
        CliError {
            code: exit::UNREACHABLE,
            message: format!(
                "cannot reach the Lifeline service at {} ({why}); is it running? Start one with `lifeline up`",
                self.url
            ),
        }
    }

    /// An endpoint's id from its id or its name.
    pub(crate) async fn endpoint_id(&self, name_or_id: &str) -> CliResult<String> {
        let endpoints = self.get("/v1/endpoints").await?;
        let list = endpoints.as_array().cloned().unwrap_or_default();
        let found: Vec<&Value> = list
            .iter()
            .filter(|e| e["endpoint_id"] == name_or_id || e["name"] == name_or_id)
            .collect();
        match found.as_slice() {
            [one] => Ok(one["endpoint_id"].as_str().unwrap_or_default().to_owned()),
            [] => Err(CliError::usage(format!(
                "no endpoint is named or numbered {name_or_id:?}; `lifeline endpoint list` shows them"
            ))),
            _ => Err(CliError::usage(format!(
                "several endpoints are named {name_or_id:?}; use the id instead"
            ))),
        }
    }
}
