//! The running service: shared context, start-up checks, and `serve`.

use std::{ops::Deref, sync::Arc};

use anyhow::Context;
use tokio::{net::TcpListener, sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    crypto::{KEY_CHECK_CONTEXT, MasterKey},
    ingress::{directory::ProjectDirectory, inbox::InboxWriter},
    probe::ProbeClient,
    store::{ProjectMode, Store},
    stripe::StripeClient,
    web,
    worker::{self, retry::RetryPolicy},
};

/// How often SQLite's WAL is copied back into the database file, off the
/// write connection (a no-op on PostgreSQL): often while writes flow, so
/// each round is short, and rarely when idle.
const WAL_CHECKPOINT_BUSY: std::time::Duration = std::time::Duration::from_millis(50);
const WAL_CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything a handler or worker needs; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub store: Store,
    pub stripe: StripeClient,
    pub probe: ProbeClient,
    pub directory: ProjectDirectory,
    pub inbox: InboxWriter,
    pub retry: RetryPolicy,
    /// Wakes idle workers when the inbox commits new work.
    pub wake: Arc<Notify>,
    /// Stops the inbox writer (after the HTTP server has drained).
    pub inbox_stop: CancellationToken,
}

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// Checks that the configured master key is the one the stored secrets were
/// sealed with, recording it on first use. Without a key, only an all-demo
/// installation may run when `require_for_projects` is set.
pub async fn check_master_key(
    store: &Store,
    key: Option<&MasterKey>,
    require_for_projects: bool,
) -> anyhow::Result<()> {
    let Some(key) = key else {
        if require_for_projects {
            let projects = store.list_projects().await?;
            if projects.iter().any(|p| p.mode != ProjectMode::Demo) {
                anyhow::bail!(
                    "PARITYRAIL_MASTER_KEY is required: stored Stripe keys and signing secrets are encrypted with it \
                     (generate one with `parityrail keygen`)"
                );
            }
        }
        return Ok(());
    };
    match store.master_key_check().await? {
        Some(sealed) => {
            key.open(KEY_CHECK_CONTEXT, &sealed)?;
        }
        None => {
            store
                .set_master_key_check(&key.seal(KEY_CHECK_CONTEXT, "ok"))
                .await?
        }
    }
    Ok(())
}

impl App {
    /// Connects, migrates, checks the master key and starts the inbox writer.
    pub async fn start(config: Config) -> anyhow::Result<(Self, JoinHandle<()>)> {
        let store = Store::connect(&config.database).await?;
        store.migrate().await?;
        check_master_key(&store, config.master_key.as_ref(), true).await?;
        let wake = Arc::new(Notify::new());
        let inbox_stop = CancellationToken::new();
        let (inbox, inbox_task) =
            InboxWriter::spawn(store.clone(), wake.clone(), inbox_stop.clone());
        let checkpoints = tokio::spawn({
            let (store, stop) = (store.clone(), inbox_stop.clone());
            async move {
                store
                    .checkpoint_wal(WAL_CHECKPOINT_BUSY, WAL_CHECKPOINT_IDLE, stop)
                    .await
            }
        });
        // One handle for both: the store is closed only after each has ended.
        let writer = tokio::spawn(async move {
            let _ = inbox_task.await;
            let _ = checkpoints.await;
        });
        let app = Self(Arc::new(AppInner {
            stripe: StripeClient::new(&config.stripe_api_base),
            probe: ProbeClient::new(std::time::Duration::from_secs(10)),
            directory: ProjectDirectory::new(store.clone(), config.master_key.clone()),
            retry: RetryPolicy::new(config.retry_schedule.clone()),
            inbox,
            inbox_stop,
            wake,
            store,
            config,
        }));
        Ok((app, writer))
    }
}

/// HTTP server + workers + lag sweeper until `shutdown`; then in-flight
/// requests finish, every accepted event is committed, and workers stop.
pub async fn serve(
    app: App,
    writer: JoinHandle<()>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let background = CancellationToken::new();
    let mut tasks = Vec::new();
    for index in 0..app.config.workers {
        tasks.push(tokio::spawn(worker::run_worker(
            app.clone(),
            index,
            background.clone(),
        )));
    }
    tasks.push(tokio::spawn(worker::run_lag_sweeper(
        app.clone(),
        background.clone(),
    )));
    tasks.push(tokio::spawn(crate::scan::schedule::run_scheduler(
        app.clone(),
        app.config.scan_tick,
        background.clone(),
    )));
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = app.store.backend_name(), "parityrail listening on http://{addr}");
    let store = app.store.clone();
    let inbox_stop = app.inbox_stop.clone();
    let server = axum::serve(listener, web::router(app))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    background.cancel();
    for task in tasks {
        let _ = task.await;
    }
    // No request is in flight any more: commit what is queued, then stop.
    inbox_stop.cancel();
    let _ = writer.await;
    store.close().await;
    server.context("HTTP server failed")
}

/// `parityrail serve`: start everything on `config.listen`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let (app, writer) = App::start(config).await?;
    serve(app, writer, listener, shutdown).await
}
