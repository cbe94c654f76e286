//! Settings of the service: a TOML file, then `LIFELINE_*` environment overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Everything the service can be told. Tests build it directly with [`Settings::for_data_dir`].
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// Directory holding the SQLite store and the user token; created on first start.
    pub data_dir: PathBuf,
    /// How often endpoints send heartbeats, in seconds (told to endpoints; also the monitor's tick).
    pub heartbeat_period_secs: f64,
    /// An endpoint silent for this long is offline and its unfinished tasks are retried.
    pub heartbeat_threshold_secs: f64,
    /// A dispatched task the endpoint has not acknowledged after this long is retried.
    pub dispatch_ack_timeout_secs: f64,
    /// Retries after system failures when a submission does not say.
    pub default_max_retries: u32,
    /// Largest request body (a submission, a function), in bytes.
    pub max_payload_bytes: usize,
    /// Largest result an endpoint may report, in bytes.
    pub max_result_bytes: usize,
    /// Largest number of tasks in one submission (more is answered 413).
    pub max_batch_tasks: usize,
    /// Origins allowed to call the API from a browser (`*` for any); empty: same origin only.
    pub cors_origins: Vec<String>,
    /// The dashboard's built files, served at `/` when the directory exists.
    pub dashboard_dir: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("lifeline-data"),
            heartbeat_period_secs: 5.0,
            heartbeat_threshold_secs: 30.0,
            dispatch_ack_timeout_secs: 30.0,
            default_max_retries: 3,
            max_payload_bytes: 10 * 1024 * 1024,
            max_result_bytes: 10 * 1024 * 1024,
            max_batch_tasks: 10_000,
            cors_origins: Vec::new(),
            dashboard_dir: PathBuf::from("dist"),
        }
    }
}

impl Settings {
    /// Defaults with the given data directory.
    pub fn for_data_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: dir.into(),
            ..Self::default()
        }
    }

    /// Reads `file` when given, then applies `LIFELINE_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the configuration file {}", path.display())
                })?;
                toml::from_str(&text)
                    .with_context(|| format!("{} is not a valid configuration", path.display()))?
            }
            None => Settings::default(),
        };
        for (key, value) in env {
            let Some(name) = key.strip_prefix("LIFELINE_") else {
                continue;
            };
            settings
                .set(name, &value)
                .with_context(|| format!("environment variable {key}={value:?}"))?;
        }
        settings.check()?;
        Ok(settings)
    }

    fn set(&mut self, name: &str, value: &str) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(value: &str) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e| anyhow::anyhow!("{e}"))
        }
        match name {
            "BIND" => self.bind = parse(value)?,
            "DATA_DIR" => self.data_dir = value.into(),
            "HEARTBEAT_PERIOD" => self.heartbeat_period_secs = parse(value)?,
            "HEARTBEAT_THRESHOLD" => self.heartbeat_threshold_secs = parse(value)?,
            "DISPATCH_ACK_TIMEOUT" => self.dispatch_ack_timeout_secs = parse(value)?,
            "DEFAULT_MAX_RETRIES" => self.default_max_retries = parse(value)?,
            "MAX_PAYLOAD_BYTES" => self.max_payload_bytes = parse(value)?,
            "MAX_RESULT_BYTES" => self.max_result_bytes = parse(value)?,
            "MAX_BATCH_TASKS" => self.max_batch_tasks = parse(value)?,
            "CORS_ORIGINS" => {
                self.cors_origins = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "DASHBOARD_DIR" => self.dashboard_dir = value.into(),
            // Variables read by other parts of the command line (LIFELINE_URL, LIFELINE_TOKEN, LIFELINE_LOG...).
            _ => {}
        }
        Ok(())
    }

    fn check(&self) -> anyhow::Result<()> {
        for (name, secs) in [
            ("heartbeat_period_secs", self.heartbeat_period_secs),
            ("heartbeat_threshold_secs", self.heartbeat_threshold_secs),
            ("dispatch_ack_timeout_secs", self.dispatch_ack_timeout_secs),
        ] {
            if !(secs.is_finite() && secs > 0.0) {
                bail!("{name} must be a positive number of seconds, not {secs}");
            }
        }
        if self.heartbeat_threshold_secs < self.heartbeat_period_secs {
            bail!("heartbeat_threshold_secs must be at least heartbeat_period_secs");
        }
        Ok(())
    }

    pub fn heartbeat_period(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_period_secs)
    }

    pub fn heartbeat_threshold(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_threshold_secs)
    }

    pub fn dispatch_ack_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.dispatch_ack_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("lifeline.toml");
        std::fs::write(
            &file,
            "default_max_retries = 5\nheartbeat_period_secs = 2\n",
        )
        .expect("write");
        let env = [
            ("LIFELINE_DEFAULT_MAX_RETRIES".to_string(), "1".to_string()),
            ("HOME".into(), "/x".into()),
        ];
        let s = Settings::load(Some(&file), env).expect("loads");
        assert_eq!(s.default_max_retries, 1);
        assert_eq!(s.heartbeat_period_secs, 2.0);
        assert_eq!(s.max_result_bytes, 10 * 1024 * 1024);
    }

    #[test]
    fn bad_values_are_named() {
        let env = [("LIFELINE_HEARTBEAT_PERIOD".to_string(), "soon".to_string())];
        let err = Settings::load(None, env).expect_err("bad");
        assert!(
            format!("{err:#}").contains("LIFELINE_HEARTBEAT_PERIOD"),
            "{err:#}"
        );
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("lifeline-bad.toml");
        std::fs::write(&file, "colour = 1").expect("write");
        let err = Settings::load(Some(&file), []).expect_err("bad");
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }
}
