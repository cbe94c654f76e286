//! Settings of the service: a TOML file, then `LIFELINE_*` environment overrides.
//!
//! Every field of [`Settings`] can be set from the environment as `LIFELINE_` + its name in
//! capitals (`max_batch_tasks` → `LIFELINE_MAX_BATCH_TASKS`; a `_secs` field also without the
//! suffix, `LIFELINE_HEARTBEAT_PERIOD`); the names are derived from the struct, not listed by
//! hand. A `LIFELINE_*` variable that is neither a setting nor one the other commands read is an
//! error naming it, as is an unknown key in the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Everything the service can be told. Tests build it directly with [`Settings::for_data_dir`].
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// A token that may read `GET /metrics` and nothing else (admins' tokens may too); empty:
    /// admins only.
    pub metrics_token: String,
    /// An address serving `GET /metrics` without a token, for a monitoring network; empty: none.
    pub metrics_bind: String,
    /// How long a finished task's arguments, result and events are kept, such as `30d`, `12h`,
    /// `90m` or `2s`; afterwards the task answers 410 Gone.
    pub retention: String,
    /// The certificate chain (PEM, leaf first) to serve HTTPS and WSS with; empty: plain HTTP.
    pub tls_cert: String,
    /// The private key (PEM) of `tls_cert`.
    pub tls_key: String,
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
            metrics_token: String::new(),
            metrics_bind: String::new(),
            retention: "30d".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

/// `LIFELINE_*` variables read by other parts of the `lifeline` command (the CLI, the agent,
/// logging, tests and benchmarks), which the service leaves alone.
fn is_other_variable(name: &str) -> bool {
    const OTHERS: &[&str] = &[
        "URL",
        "TOKEN",
        "CA_CERT",
        "ENDPOINT_TOKEN",
        "LOG",
        "TEST_LOG",
        "BLESS",
        "PRINT_OPENAPI",
    ];
    OTHERS.contains(&name) || name.starts_with("BENCH_") || name.starts_with("FUZZ_")
}

/// The settings field a variable name (after `LIFELINE_`) sets, if any.
fn setting_for(table: &toml::Table, name: &str) -> Option<String> {
    let field = name.to_lowercase();
    [field.clone(), format!("{field}_secs")]
        .into_iter()
        .find(|f| table.contains_key(f))
}

/// Reads `text` as a value of the same kind as `current`: numbers, booleans, strings, and lists
/// as comma-separated items.
fn parse_like(current: &toml::Value, text: &str) -> anyhow::Result<toml::Value> {
    fn parse<T: std::str::FromStr>(text: &str) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        text.trim().parse().map_err(|e| anyhow::anyhow!("{e}"))
    }
    Ok(match current {
        toml::Value::Integer(_) => toml::Value::Integer(parse(text)?),
        toml::Value::Float(_) => toml::Value::Float(parse(text)?),
        toml::Value::Boolean(_) => toml::Value::Boolean(parse(text)?),
        toml::Value::Array(_) => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        toml::Value::String(_) | toml::Value::Datetime(_) | toml::Value::Table(_) => {
            toml::Value::String(text.to_owned())
        }
    })
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
        let mut table = match toml::Value::try_from(&settings)? {
            toml::Value::Table(table) => table,
            _ => bail!("the settings are not a table"),
        };
        for (key, text) in env {
            let Some(name) = key.strip_prefix("LIFELINE_") else {
                continue;
            };
            if is_other_variable(name) {
                continue;
            }
            let field = setting_for(&table, name).ok_or_else(|| {
                let known: Vec<String> = table
                    .keys()
                    .map(|k| format!("LIFELINE_{}", k.trim_end_matches("_secs").to_uppercase()))
                    .collect();
                anyhow::anyhow!(
                    "environment variable {key} is not a setting of the service (settings: {})",
                    known.join(", ")
                )
            })?;
            let context = || format!("environment variable {key}={text:?}");
            let value = parse_like(&table[&field], &text).with_context(context)?;
            table.insert(field, value);
            // Read back at once, so that a value of the wrong form names its variable.
            settings = toml::Value::Table(table.clone())
                .try_into()
                .with_context(context)?;
        }
        settings.check()?;
        Ok(settings)
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
        if !self.metrics_token.is_empty() && self.metrics_token.len() < 16 {
            bail!("metrics_token must have at least 16 characters (or be empty: admins only)");
        }
        self.metrics_address()?;
        parse_duration(&self.retention).context("retention")?;
        if self.tls_cert.is_empty() != self.tls_key.is_empty() {
            bail!("tls_cert and tls_key go together: give both (HTTPS) or neither (HTTP)");
        }
        Ok(())
    }

    /// The TLS configuration, when `tls_cert` and `tls_key` are set.
    pub fn tls(&self) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
        if self.tls_cert.is_empty() && self.tls_key.is_empty() {
            return Ok(None);
        }
        lifeline_tls::server_config(Path::new(&self.tls_cert), Path::new(&self.tls_key)).map(Some)
    }

    /// How long finished tasks are kept.
    pub fn retention(&self) -> Duration {
        // Checked when the settings were loaded; settings built in code fall back to the default.
        parse_duration(&self.retention).unwrap_or(Duration::from_secs(30 * 86_400))
    }

    /// Where `GET /metrics` is served without a token, if anywhere.
    pub fn metrics_address(&self) -> anyhow::Result<Option<SocketAddr>> {
        let text = self.metrics_bind.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|e| {
            anyhow::anyhow!(
                "metrics_bind must be an address such as 127.0.0.1:9464, not {text:?} ({e})"
            )
        })
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

/// A duration written as a number and a unit: `s`, `m`, `h` or `d` (`30d`, `1.5h`, `2s`).
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let unit = text
        .char_indices()
        .find(|(_, c)| c.is_ascii_alphabetic())
        .map(|(i, _)| i)
        .ok_or_else(|| {
            anyhow::anyhow!("{text:?} needs a unit: s, m, h or d (such as 30d or 12h)")
        })?;
    let (number, unit) = text.split_at(unit);
    let seconds = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => bail!("{text:?}: the unit must be s, m, h or d, not {unit:?}"),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{text:?} must be a number and a unit (such as 30d)"))?;
    // At most a hundred years: beyond, the arithmetic on timestamps could overflow.
    let secs = n * seconds;
    if !(secs.is_finite() && secs > 0.0 && secs <= 100.0 * 365.0 * 86_400.0) {
        bail!("{text:?} must be more than nothing and at most 100 years");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_a_number_and_a_unit() {
        assert_eq!(
            parse_duration("30d").ok(),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            parse_duration("12h").ok(),
            Some(Duration::from_secs(12 * 3600))
        );
        assert_eq!(parse_duration(" 1.5m ").ok(), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2s").ok(), Some(Duration::from_secs(2)));
        for bad in ["30", "d", "0s", "-1d", "3w", "1e9d", "nand"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let err = Settings::load(None, [("LIFELINE_RETENTION".into(), "forever".into())])
            .expect_err("bad");
        assert!(format!("{err:#}").contains("retention"), "{err:#}");
        let s = Settings::load(None, [("LIFELINE_RETENTION".into(), "12h".into())]).expect("ok");
        assert_eq!(s.retention(), Duration::from_secs(12 * 3600));
    }

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

    #[test]
    fn every_setting_comes_from_the_environment_and_nothing_else_does() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let s = Settings::load(
            None,
            env(&[
                ("LIFELINE_MAX_BATCH_TASKS", "500"),
                ("LIFELINE_HEARTBEAT_THRESHOLD", "60"),
                ("LIFELINE_HEARTBEAT_PERIOD_SECS", "2.5"),
                (
                    "LIFELINE_CORS_ORIGINS",
                    "https://a.example, https://b.example",
                ),
                ("LIFELINE_BIND", "0.0.0.0:9000"),
                ("LIFELINE_DATA_DIR", "/var/lib/lifeline"),
                // Read by other commands: left alone.
                ("LIFELINE_URL", "http://x"),
                ("LIFELINE_TOKEN", "t"),
                ("LIFELINE_BENCH_SIZES", "1"),
            ]),
        )
        .expect("loads");
        assert_eq!(s.max_batch_tasks, 500);
        assert_eq!(s.heartbeat_threshold_secs, 60.0);
        assert_eq!(s.heartbeat_period_secs, 2.5);
        assert_eq!(s.cors_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(s.bind.port(), 9000);
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/lifeline"));

        let err = Settings::load(None, env(&[("LIFELINE_HEARTBEAT_TRESHOLD", "60")]))
            .expect_err("a misspelt setting");
        let message = format!("{err:#}");
        assert!(
            message.contains("LIFELINE_HEARTBEAT_TRESHOLD")
                && message.contains("LIFELINE_HEARTBEAT_THRESHOLD"),
            "{message}"
        );
        let err = Settings::load(None, env(&[("LIFELINE_BIND", "nowhere")])).expect_err("bad");
        assert!(format!("{err:#}").contains("LIFELINE_BIND"), "{err:#}");
    }
}
