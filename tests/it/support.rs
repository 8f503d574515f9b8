//! Test harness: the real server on 127.0.0.1:0 with a fresh database
//! (a SQLite temp file, or a PostgreSQL database created and dropped per
//! test), helpers that sign like Stripe, and polling with deadlines.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use parityrail::{
    App,
    clock::{ManualClock, SharedClock, SystemClock},
    config::{Config, DatabaseUrl, Secret},
    crypto::MasterKey,
    domain::ProjectMode,
    ids::ProjectId,
    ingress::verify::compute_signature,
    store::{NewProject, Store},
    usecase::{
        connection::{self, ConnectRequest},
        projects,
    },
    worker::{self, Step},
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named story (an `async fn(Backend)`) once per backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

pub const TEST_SECRET: &str = "whsec_test_secret_for_parityrail_tests";
pub const TEST_KEY: &str = "sk_test_parityrail_tests_0001";

fn admin_postgres_url() -> String {
    std::env::var("PARITYRAIL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database that exists for one test and is removed afterwards.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    /// `None` when PostgreSQL is unreachable outside CI (the test is skipped
    /// with a note); under `CI=true` an unreachable PostgreSQL fails the test.
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("parityrail.db");
                Some(Self {
                    url: DatabaseUrl::Sqlite(path.to_string_lossy().into_owned()),
                    _dir: Some(dir),
                    pg_name: None,
                })
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let admin = admin_postgres_url();
                let mut conn = match sqlx::PgConnection::connect(&admin).await {
                    Ok(c) => c,
                    Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                        panic!("CI=true and PostgreSQL is unreachable at {admin}: {e}")
                    }
                    Err(e) => {
                        eprintln!("skipping PostgreSQL story: {e} (set CI=true to make this fail)");
                        return None;
                    }
                };
                static SEQ: AtomicU64 = AtomicU64::new(0);
                let name = format!(
                    "parityrail_t{}_{}_{}",
                    std::process::id(),
                    SEQ.fetch_add(1, Ordering::Relaxed),
                    rand_suffix()
                );
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let base = admin.rsplit_once('/').unwrap().0;
                Some(Self {
                    url: DatabaseUrl::Postgres(Secret::new(format!("{base}/{name}"))),
                    _dir: None,
                    pg_name: Some(name),
                })
            }
        }
    }
}

fn rand_suffix() -> String {
    use rand::Rng;
    rand::rng().random_range(0..u32::MAX).to_string()
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime; use a thread with its own.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_postgres_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

pub struct TestOptions {
    /// Background workers; 0 lets the test drive `worker::step` itself.
    pub workers: usize,
    pub stripe_api_base: String,
    pub retry_schedule: &'static str,
    pub cron_secret: Option<&'static str>,
    /// `PARITYRAIL_COALESCE_MS`; 0 (work due at once) unless a story is about the window.
    pub coalesce_ms: u64,
    /// `PARITYRAIL_LEASE_SECS`.
    pub lease_secs: f64,
    /// A clock the story moves by hand (deadlines, grace, leases) instead of sleeping.
    pub clock: Option<Arc<ManualClock>>,
    /// Extra `NAME=VALUE` settings.
    pub env: Vec<(&'static str, String)>,
    /// `PARITYRAIL_PUBLIC_URL` is this test server (the drill sends there).
    pub public_url_is_server: bool,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            workers: 0,
            // Nothing listens here: tests that need Stripe pass a simulator.
            stripe_api_base: "http://127.0.0.1:9".into(),
            retry_schedule: "0.05,0.05,0.05",
            cron_secret: None,
            coalesce_ms: 0,
            lease_secs: 60.0,
            clock: None,
            env: Vec::new(),
            public_url_is_server: false,
        }
    }
}

pub struct TestApp {
    pub app: App,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub master_key_hex: String,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    pub db: TestDb,
}

pub fn config_for(db: &DatabaseUrl, master_hex: &str, opts: &TestOptions) -> Config {
    let db_url = match db {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{path}"),
        DatabaseUrl::Postgres(url) => url.expose().to_string(),
    };
    let mut vars = vec![
        ("DATABASE_URL", db_url),
        ("PARITYRAIL_MASTER_KEY", master_hex.to_string()),
        ("STRIPE_API_BASE", opts.stripe_api_base.clone()),
        ("PARITYRAIL_WORKERS", opts.workers.max(1).to_string()),
        ("PARITYRAIL_RETRY_SCHEDULE", opts.retry_schedule.to_string()),
        ("PARITYRAIL_POLL_MS", "50".into()),
        ("PARITYRAIL_COALESCE_MS", opts.coalesce_ms.to_string()),
        ("PARITYRAIL_LAG_SWEEP_MS", "3600000".into()),
        ("PARITYRAIL_SCAN_TICK_SECS", "3600".into()),
        (
            "CRON_SECRET",
            opts.cron_secret.unwrap_or_default().to_string(),
        ),
        ("PARITYRAIL_LEASE_SECS", opts.lease_secs.to_string()),
    ];
    vars.extend(opts.env.iter().cloned());
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, TestOptions::default()).await
    }

    pub async fn spawn_with(backend: Backend, mut opts: TestOptions) -> Option<Self> {
        let db = TestDb::create(backend).await?;
        let master_key_hex = MasterKey::generate_hex();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        if opts.public_url_is_server {
            opts.env
                .push(("PARITYRAIL_PUBLIC_URL", format!("http://{addr}")));
        }
        let config = config_for(&db.url, &master_key_hex, &opts);
        let clock: SharedClock = match &opts.clock {
            Some(manual) => manual.clone(),
            None => Arc::new(SystemClock),
        };
        let app = App::start_with_clock(config, clock).await.unwrap();
        let shutdown = CancellationToken::new();
        let server = if opts.workers == 0 {
            // No background workers: the test drives `drain` itself.
            tokio::spawn(parityrail::app::serve_http(
                app.clone(),
                listener,
                shutdown.clone(),
            ))
        } else {
            tokio::spawn(parityrail::app::serve(
                app.clone(),
                listener,
                shutdown.clone(),
            ))
        };
        Some(Self {
            app,
            addr,
            http: reqwest::Client::new(),
            master_key_hex,
            shutdown,
            server: Some(server),
            db,
        })
    }

    pub fn store(&self) -> &Store {
        &self.app.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn project(&self, mode: ProjectMode) -> ProjectId {
        let name = format!("project-{}", rand_suffix());
        self.store()
            .create_project(&NewProject { name, mode })
            .await
            .unwrap()
            .id
    }

    /// A test-mode project with a key and the standard signing secret.
    pub async fn connected_project(&self) -> ProjectId {
        let id = self.project(ProjectMode::Test).await;
        self.connect(&id, TEST_KEY, &[TEST_SECRET]).await;
        id
    }

    pub async fn connect(&self, id: &ProjectId, key: &str, secrets: &[&str]) {
        let project = self.store().project(id).await.unwrap().unwrap();
        let request = ConnectRequest {
            api_key: Secret::new(key),
            webhook_secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
            verify: false,
        };
        connection::connect_stripe(&self.app, &project, request)
            .await
            .unwrap();
    }

    pub async fn post_webhook(
        &self,
        project: &ProjectId,
        body: &[u8],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url(&format!("/api/webhooks/stripe/{project}")))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("Stripe-Signature", sig);
        }
        req.send().await.unwrap()
    }

    /// A new API token of `project` with `role`, as its bearer string.
    pub async fn token(&self, project: &ProjectId, role: parityrail::domain::Role) -> String {
        parityrail::usecase::tokens::issue(&self.app, &self.project_of(project).await, role)
            .await
            .unwrap()
            .token
            .expose()
            .to_string()
    }

    /// Sets the project's app probe through the use case.
    pub async fn set_probe(
        &self,
        id: &ProjectId,
        url: &str,
        secret: &str,
        reconcile: Option<&str>,
    ) {
        let project = self.store().project(id).await.unwrap().unwrap();
        projects::set_probe(&self.app, &project, url, &Secret::new(secret), reconcile)
            .await
            .unwrap();
    }

    /// Starts a check of `customer` now (a rerun through its idempotent
    /// path) and carries it to its verdict.
    pub async fn check_now(
        &self,
        project: &ProjectId,
        customer: &str,
        trigger: parityrail::domain::Trigger,
    ) -> parityrail::domain::Run {
        let customer = parityrail::ids::CustomerId::parse(customer).expect("a cus_ id");
        let run_id = match trigger {
            parityrail::domain::Trigger::Rerun => {
                parityrail::check::rerun(&self.app, project, &customer)
                    .await
                    .unwrap()
                    .0
            }
            other => {
                parityrail::check::start(&self.app, project, &customer, other, None)
                    .await
                    .unwrap()
                    .0
            }
        };
        parityrail::check::drive(&self.app, &run_id, Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap()
    }

    /// The project's record.
    pub async fn project_of(&self, id: &ProjectId) -> parityrail::domain::Project {
        self.store().project(id).await.unwrap().unwrap()
    }

    /// Posts to a raw project path segment (for ids that do not parse).
    pub async fn post_webhook_raw(&self, segment: &str, body: &[u8]) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/api/webhooks/stripe/{segment}")))
            .header("Stripe-Signature", sign(TEST_SECRET, body))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Signs like Stripe (now) with the standard secret and posts.
    pub async fn deliver(&self, project: &ProjectId, body: &[u8]) -> reqwest::Response {
        let header = sign(TEST_SECRET, body);
        self.post_webhook(project, body, Some(&header)).await
    }

    /// `DATABASE_URL` and `PARITYRAIL_MASTER_KEY` of this test's service,
    /// for a CLI process on its database.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "DATABASE_URL".into(),
                crate::process::database_url(&self.db.url),
            ),
            ("PARITYRAIL_MASTER_KEY".into(), self.master_key_hex.clone()),
        ]
    }

    /// `parityrail ARGS` on this test's database.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let env = self.cli_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        crate::process::cli(&env, args)
    }

    /// Awaits `work` while this test's workers run (every 20 ms, until the
    /// work is done): what a served request or a CLI process waits on gets
    /// processed meanwhile.
    pub async fn working<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let done = CancellationToken::new();
        let drive = async {
            while !done.is_cancelled() {
                self.drain_all().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let work = async {
            let out = work.await;
            done.cancel();
            out
        };
        tokio::join!(work, drive).0
    }

    /// Runs the intake worker step until nothing is due; returns the steps taken.
    pub async fn drain(&self) -> usize {
        let mut steps = 0;
        while worker::step(&self.app, "test-worker").await.unwrap() == Step::Processed {
            steps += 1;
            assert!(steps < 10_000, "worker never went idle");
        }
        steps
    }

    /// Runs intake and check steps until neither has anything due now.
    pub async fn drain_all(&self) -> usize {
        let mut steps = self.drain().await;
        while parityrail::check::advance(&self.app, "test-worker")
            .await
            .unwrap()
        {
            steps += 1 + self.drain().await;
            assert!(steps < 10_000, "checks never went idle");
        }
        steps
    }

    pub async fn events(&self, project: &ProjectId) -> Vec<parityrail::domain::EventRecord> {
        self.store()
            .list_events(project.as_str(), 100_000)
            .await
            .unwrap()
    }

    pub async fn work_total(&self) -> i64 {
        self.store()
            .work_counts()
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum()
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// The `Stripe-Signature` header Stripe would send now.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let t = parityrail::now_ms() / 1000;
    format!("t={t},v1={}", compute_signature(secret, t, body))
}

/// A minimal, well-formed snapshot event.
pub fn event_json(id: &str, event_type: &str, customer: &str, livemode: bool) -> Vec<u8> {
    serde_json::to_vec_pretty(&serde_json::json!({
        "id": id,
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": parityrail::now_ms() / 1000,
        "data": {"object": {"id": format!("sub_{id}"), "object": "subscription", "customer": customer}},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": event_type,
    }))
    .unwrap()
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A database fault for a story: every INSERT into `table` fails until removed.
pub struct Fault {
    table: &'static str,
}

impl Fault {
    pub async fn install(t: &TestApp, table: &'static str) -> Self {
        match &t.db.url {
            DatabaseUrl::Sqlite(path) => {
                use sqlx::Connection;
                let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
                    .await
                    .unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE TRIGGER parityrail_test_fault BEFORE INSERT ON {table}
                     BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )))
                .execute(&mut conn)
                .await
                .unwrap();
            }
            DatabaseUrl::Postgres(url) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url.expose()).await.unwrap();
                sqlx::query(
                    "CREATE FUNCTION parityrail_test_fault() RETURNS trigger AS $$
                     BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql",
                )
                .execute(&mut conn)
                .await
                .unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE TRIGGER parityrail_test_fault BEFORE INSERT ON {table}
                     FOR EACH ROW EXECUTE FUNCTION parityrail_test_fault()"
                )))
                .execute(&mut conn)
                .await
                .unwrap();
            }
        }
        Self { table }
    }

    pub async fn remove(self, t: &TestApp) {
        match &t.db.url {
            DatabaseUrl::Sqlite(path) => {
                use sqlx::Connection;
                let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
                    .await
                    .unwrap();
                sqlx::query("DROP TRIGGER parityrail_test_fault")
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            DatabaseUrl::Postgres(url) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url.expose()).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP TRIGGER parityrail_test_fault ON {}",
                    self.table
                )))
                .execute(&mut conn)
                .await
                .unwrap();
            }
        }
    }
}
