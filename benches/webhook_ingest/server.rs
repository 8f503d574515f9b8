//! The server under test: the real release binary as a child process, on a
//! fresh database, set up through its own CLI like an operator would.

use std::{
    collections::HashMap,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use parityrail::{config::DatabaseUrl, crypto::MasterKey, store::Store};
use tokio::process::{Child, Command};

/// The server under test: this build's binary, or `PARITYRAIL_BENCH_BIN`
/// to compare another build (say, a patched checkout) under the same load.
fn bin() -> String {
    std::env::var("PARITYRAIL_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_parityrail").to_string())
}

pub const API_KEY: &str = "sk_test_bench_parityrail_0001";
pub const SECRET: &str = "whsec_bench_parityrail_signing_secret";

/// Where the load goes: a spawned server or one given with `--target`.
#[derive(Clone, Debug)]
pub struct Target {
    pub base_url: String,
    pub project: String,
    pub secret: String,
}

/// A database that exists for one scenario and is removed afterwards.
pub enum Database {
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres(PgDatabase),
}

impl Database {
    pub fn sqlite() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        Ok(Self::Sqlite { url, _dir: dir })
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } => url,
            Self::Postgres(pg) => &pg.url,
        }
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("PARITYRAIL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `parityrail_bench_<random>`, dropped `WITH (FORCE)` when this is dropped
/// (also on a panic), so an aborted run leaves nothing behind.
pub struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// `Ok(None)` when PostgreSQL is unreachable: the caller skips that backend.
    pub async fn create() -> anyhow::Result<Option<Database>> {
        use sqlx::Connection;
        let admin = postgres_admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(e) => {
                println!("note: skipping PostgreSQL, unreachable at {admin}: {e}");
                return Ok(None);
            }
        };
        let name = format!("parityrail_bench_{:08x}", rand::random::<u32>());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        let base = admin
            .rsplit_once('/')
            .context("PARITYRAIL_TEST_POSTGRES has no /database part")?
            .0;
        let url = format!("{base}/{name}");
        Ok(Some(Database::Postgres(Self { admin, name, url })))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside the runtime; a thread with its own runtime can block.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop database {}", self.name);
        }
    }
}

/// `parityrail serve` as a child, with its log kept in a temp dir.
pub struct Server {
    child: Child,
    pub target: Target,
    db: Database,
    log: std::path::PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Server {
    /// Creates and connects a project through the CLI, starts `serve` on a
    /// free port and waits until `/readyz` answers.
    pub async fn start(db: Database, stripe_api_base: &str) -> anyhow::Result<Self> {
        // Chosen by the bench rather than read back from the server's log:
        // bound, read and released (a tiny race is acceptable for a bench).
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut env = vec![("PARITYRAIL_WORKERS".to_string(), "2".to_string())];
        // The bench's own PARITYRAIL_* settings reach the server (say,
        // PARITYRAIL_LOG or PARITYRAIL_WORKERS for a profiling run), except
        // those this harness must own.
        let owned = [
            "PARITYRAIL_LISTEN",
            "PARITYRAIL_MASTER_KEY",
            "PARITYRAIL_CONFIG",
        ];
        env.extend(
            std::env::vars()
                .filter(|(k, _)| k.starts_with("PARITYRAIL_") && !owned.contains(&k.as_str())),
        );
        env.extend([
            ("DATABASE_URL".to_string(), db.url().to_string()),
            (
                "PARITYRAIL_MASTER_KEY".to_string(),
                MasterKey::generate_hex(),
            ),
            ("STRIPE_API_BASE".to_string(), stripe_api_base.to_string()),
            ("PARITYRAIL_LISTEN".to_string(), format!("127.0.0.1:{port}")),
        ]);
        let created = cli(&env, &["project", "create", "--name", "bench", "--json"]).await?;
        let created: serde_json::Value = serde_json::from_str(&created)?;
        let project = created["id"]
            .as_str()
            .context("`project create --json` printed no id")?
            .to_string();
        let connect = [
            "stripe",
            "connect",
            &project,
            "--api-key",
            API_KEY,
            "--webhook-secret",
            SECRET,
            "--no-verify",
        ];
        cli(&env, &connect).await?;

        let log_dir = tempfile::tempdir()?;
        let log = log_dir.path().join("serve.log");
        let mut child = command(&env)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            // Only a fallback for panics; `stop` ends it with SIGTERM.
            .kill_on_drop(true)
            .spawn()
            .context("spawn parityrail serve")?;
        let base_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("parityrail serve exited early ({status}):\n{}", tail(&log));
            }
            let ready = http.get(format!("{base_url}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if Instant::now() > deadline {
                bail!("parityrail serve not ready within 60 s:\n{}", tail(&log));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            child,
            target: Target {
                base_url,
                project,
                secret: SECRET.to_string(),
            },
            db,
            log,
            _log_dir: log_dir,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The stored event ids, one entry per row, read with the library's
    /// `Store::list_events` (the query behind `parityrail events list`),
    /// because that command clamps `--limit` to 10,000.
    pub async fn stored_event_ids(&self) -> anyhow::Result<Vec<String>> {
        let url = DatabaseUrl::parse(self.db.url())?;
        let store = Store::connect(&url).await?;
        let events = store.list_events(&self.target.project, i64::MAX).await?;
        store.close().await;
        Ok(events.into_iter().map(|e| e.event_id).collect())
    }

    /// SIGTERM, then waits for the graceful shutdown (which commits
    /// everything queued); the database is dropped with `self`.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().context("server already reaped")?;
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !sent.success() {
            bail!("kill -TERM {pid} failed");
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("parityrail serve ignored SIGTERM for 30 s")??;
        if !status.success() {
            bail!(
                "parityrail serve exited with {status}:\n{}",
                tail(&self.log)
            );
        }
        Ok(())
    }
}

/// A clean environment (no inherited `DATABASE_URL` or config file) plus `env`.
fn command(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

async fn cli(env: &[(String, String)], args: &[&str]) -> anyhow::Result<String> {
    let out = command(env).args(args).output().await?;
    if !out.status.success() {
        bail!(
            "parityrail {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn tail(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Work items by status from `GET /metrics` (Prometheus text).
async fn metrics(http: &reqwest::Client, base_url: &str) -> anyhow::Result<String> {
    Ok(http
        .get(format!("{base_url}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

pub async fn work_counts(
    http: &reqwest::Client,
    base_url: &str,
) -> anyhow::Result<HashMap<String, i64>> {
    let text = metrics(http, base_url).await?;
    let mut counts = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("parityrail_work_items{status=\"") else {
            continue;
        };
        let (status, value) = rest
            .split_once("\"} ")
            .context("unexpected /metrics line")?;
        counts.insert(status.to_string(), value.trim().parse()?);
    }
    Ok(counts)
}

/// `parityrail_directory_loads_total` from `/metrics`.
pub async fn directory_loads(http: &reqwest::Client, base_url: &str) -> anyhow::Result<u64> {
    metrics(http, base_url)
        .await?
        .lines()
        .find_map(|l| l.strip_prefix("parityrail_directory_loads_total "))
        .context("no parityrail_directory_loads_total in /metrics")?
        .trim()
        .parse()
        .context("parityrail_directory_loads_total is not a number")
}
