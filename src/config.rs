//! Typed configuration: defaults, then an optional env-style file, then the
//! environment (SPEC §9). Validated once at load; secrets are wrapped so they
//! never print.

use std::{fmt, net::SocketAddr, path::Path, time::Duration};

use crate::crypto::MasterKey;

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where the value is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// At most the last four characters, as the dashboard and CLI may show.
    pub fn last4(&self) -> String {
        last4(&self.0)
    }
}

/// The last four characters of a secret, the most that may ever be shown.
pub fn last4(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

impl AsRef<str> for Secret {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the data lives: the embedded SQLite file or a PostgreSQL server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(Secret),
}

impl DatabaseUrl {
    /// Accepts `sqlite://path`, `sqlite:path`, `postgres://…` and `postgresql://…`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(Secret::new(raw)));
        }
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(ConfigError::DatabaseUrl(
                    "sqlite URL has no file path (expected sqlite://parityrail.db)".into(),
                ));
            }
            return Ok(Self::Sqlite(path.to_string()));
        }
        Err(ConfigError::DatabaseUrl(format!(
            "unsupported scheme in DATABASE_URL (expected sqlite://FILE or postgres://…), got {:?}",
            raw.split("://").next().unwrap_or_default()
        )))
    }
}

/// Everything the service needs, resolved and validated.
#[derive(Clone, Debug)]
pub struct Config {
    /// `DATABASE_URL`: default `sqlite://parityrail.db`.
    pub database: DatabaseUrl,
    /// `PARITYRAIL_LISTEN`: default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `PARITYRAIL_PUBLIC_URL`: base of the webhook URL shown to users.
    pub public_url: String,
    /// `PARITYRAIL_MASTER_KEY`: encrypts stored API keys and signing secrets.
    pub master_key: Option<MasterKey>,
    /// `CRON_SECRET`: bearer secret of `/api/cron/scan`; unset disables it.
    pub cron_secret: Option<Secret>,
    /// `STRIPE_API_BASE`: default `https://api.stripe.com`.
    pub stripe_api_base: String,
    /// `PARITYRAIL_WORKERS`: concurrent intake workers (default 4).
    pub workers: usize,
    /// `PARITYRAIL_RETRY_SCHEDULE`: seconds between attempts, comma separated;
    /// an item that fails once more than the schedule is long is dead-lettered.
    pub retry_schedule: Vec<Duration>,
    /// `PARITYRAIL_LEASE_SECS`: how long a claimed work item or run stays
    /// locked without a renewal (its holder renews every third of it).
    pub lease: Duration,
    /// `PARITYRAIL_HEADER_READ_TIMEOUT_SECS`: how long a client may take to
    /// send its request headers (default 10 s).
    pub header_read_timeout: Duration,
    /// `PARITYRAIL_BODY_READ_TIMEOUT_SECS`: how long a client may take to
    /// send a request body (default 30 s).
    pub body_read_timeout: Duration,
    /// How often idle workers look for due work even without a wake-up.
    pub poll_interval: Duration,
    /// `PARITYRAIL_COALESCE_MS`: how long a new event's work waits before it
    /// is due, so the burst Stripe sends around one change (a checkout is
    /// several events within a second or two) costs one Stripe read.
    pub coalesce: Duration,
    /// How often the lag sweeper looks for events past their project's threshold.
    pub lag_sweep_interval: Duration,
    /// `PARITYRAIL_SCAN_TICK_SECS`: how often the scheduler looks for due scans.
    pub scan_tick: Duration,
}

/// A setting that cannot be used; the message names the setting and never its secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("DATABASE_URL: {0}")]
    DatabaseUrl(String),
    #[error("PARITYRAIL_LISTEN: {0}")]
    Listen(String),
    #[error("PARITYRAIL_MASTER_KEY: {0}")]
    MasterKey(String),
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
}

/// Default retry schedule: quick first retries, then hours, about a day in all.
pub const DEFAULT_RETRY_SCHEDULE: &str = "1,5,30,120,600,1800,3600,7200,14400,28800,43200";

impl Config {
    /// Builds the config from an environment lookup (the process env in
    /// production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let database = DatabaseUrl::parse(
            &get("DATABASE_URL").unwrap_or_else(|| "sqlite://parityrail.db".into()),
        )?;
        let listen_raw = get("PARITYRAIL_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_raw
            .parse()
            .map_err(|_| ConfigError::Listen(format!("{listen_raw:?} is not HOST:PORT")))?;
        let public_url = get("PARITYRAIL_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        let master_key = get("PARITYRAIL_MASTER_KEY")
            .map(|hex| MasterKey::from_hex(&hex).map_err(ConfigError::MasterKey))
            .transpose()?;
        let stripe_api_base = get("STRIPE_API_BASE")
            .unwrap_or_else(|| "https://api.stripe.com".into())
            .trim_end_matches('/')
            .to_string();
        url::Url::parse(&stripe_api_base).map_err(|e| ConfigError::Invalid {
            name: "STRIPE_API_BASE",
            message: e.to_string(),
        })?;
        let workers = parse_num(&get, "PARITYRAIL_WORKERS", 4)?;
        if workers == 0 {
            return Err(ConfigError::Invalid {
                name: "PARITYRAIL_WORKERS",
                message: "must be at least 1".into(),
            });
        }
        let retry_schedule = parse_schedule(
            &get("PARITYRAIL_RETRY_SCHEDULE").unwrap_or_else(|| DEFAULT_RETRY_SCHEDULE.into()),
        )?;
        Ok(Self {
            database,
            listen,
            public_url,
            master_key,
            cron_secret: get("CRON_SECRET").map(Secret::new),
            stripe_api_base,
            workers,
            retry_schedule,
            lease: parse_secs(&get, "PARITYRAIL_LEASE_SECS", 60.0)?,
            header_read_timeout: parse_secs(&get, "PARITYRAIL_HEADER_READ_TIMEOUT_SECS", 10.0)?,
            body_read_timeout: parse_secs(&get, "PARITYRAIL_BODY_READ_TIMEOUT_SECS", 30.0)?,
            poll_interval: Duration::from_millis(parse_num(&get, "PARITYRAIL_POLL_MS", 500)?),
            coalesce: Duration::from_millis(parse_num(&get, "PARITYRAIL_COALESCE_MS", 1000)?),
            lag_sweep_interval: Duration::from_millis(parse_num(
                &get,
                "PARITYRAIL_LAG_SWEEP_MS",
                15_000,
            )?),
            scan_tick: Duration::from_secs(parse_num(&get, "PARITYRAIL_SCAN_TICK_SECS", 30)?),
        })
    }

    /// Process environment, after loading `file` (env-style `KEY=VALUE` lines)
    /// underneath it: a variable already set in the environment wins.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        if let Some(path) = file {
            dotenvy::from_path(path).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

fn parse_num<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            message: format!("{raw:?} is not a whole number"),
        }),
    }
}

/// Seconds (fractions allowed), more than zero.
fn parse_secs(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: f64,
) -> Result<Duration, ConfigError> {
    let secs = match get(name) {
        None => default,
        Some(raw) => raw
            .trim()
            .parse::<f64>()
            .map_err(|_| ConfigError::Invalid {
                name,
                message: format!("{raw:?} is not a number of seconds"),
            })?,
    };
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(ConfigError::Invalid {
            name,
            message: "must be more than 0 and at most 86400 seconds".into(),
        });
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_schedule(raw: &str) -> Result<Vec<Duration>, ConfigError> {
    let schedule: Result<Vec<Duration>, _> = raw
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .map(|r| match r {
            Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(Duration::from_secs_f64(secs)),
            _ => Err(()),
        })
        .collect();
    match schedule {
        Ok(s) if !s.is_empty() => Ok(s),
        _ => Err(ConfigError::Invalid {
            name: "PARITYRAIL_RETRY_SCHEDULE",
            message: format!("{raw:?} is not a comma-separated list of seconds"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://parityrail.db").unwrap(),
            DatabaseUrl::Sqlite("parityrail.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db?mode=rwc").unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u:pw@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        let err = DatabaseUrl::parse("mysql://root:hunter2@h/db").unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"));
        assert!(!err.to_string().contains("hunter2"));
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn defaults_and_validation() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.database, DatabaseUrl::Sqlite("parityrail.db".into()));
        assert!(c.master_key.is_none());
        let bad = |k: &'static str, v: &'static str| {
            Config::from_lookup(move |n| (n == k).then(|| v.to_string())).unwrap_err()
        };
        assert!(
            bad("PARITYRAIL_LISTEN", "nope")
                .to_string()
                .contains("PARITYRAIL_LISTEN")
        );
        assert!(
            bad("PARITYRAIL_RETRY_SCHEDULE", "1,x")
                .to_string()
                .contains("seconds")
        );
        assert!(
            bad("PARITYRAIL_MASTER_KEY", "abcd")
                .to_string()
                .contains("64 hex")
        );
        assert!(
            bad("PARITYRAIL_WORKERS", "0")
                .to_string()
                .contains("at least 1")
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk_test_supersecret1234");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.last4(), "1234");
    }
}
