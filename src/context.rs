//! The running service's context: every shared service (store, clients,
//! vault, clock, budgets, intake) and the one owner of its lifecycle. Every
//! background task is started through [`App::spawn`] into one `JoinSet`, and
//! [`App::shutdown`] stops them in order; no caller repeats the sequence.

use std::{
    future::Future,
    ops::Deref,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    backoff::Backoff,
    clock::{SharedClock, SystemClock},
    config::Config,
    crypto::{KEY_CHECK_CONTEXT, MasterKey},
    domain::ProjectMode,
    ingress::{Intake, directory::ProjectDirectory, inbox::InboxWriter},
    probe::ProbeClient,
    store::Store,
    stripe::{StripeClient, budget::Budgets},
    vault::{Simulated, Vault},
};

/// How often SQLite's WAL is copied back into the database file, off the
/// write connection (a no-op on PostgreSQL): often while writes flow, so
/// each round is short, and rarely when idle.
const WAL_CHECKPOINT_BUSY: Duration = Duration::from_millis(50);
const WAL_CHECKPOINT_IDLE: Duration = Duration::from_secs(1);

/// Everything a handler, worker or command needs; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub store: Store,
    pub stripe: StripeClient,
    pub probe: ProbeClient,
    pub vault: Vault,
    /// The webhook endpoint's directory and inbox.
    pub intake: Intake,
    /// The intake retry schedule.
    pub retry: Backoff,
    pub clock: SharedClock,
    /// One Stripe request budget per project.
    pub budgets: Budgets,
    /// Wakes idle workers when new work is committed.
    pub wake: Arc<Notify>,
    /// Dashboard sign-in attempts per client address and per email.
    pub sign_in_limits: crate::usecase::accounts::SignInLimits,
    lifecycle: Lifecycle,
}

struct Lifecycle {
    /// Cancelled first at shutdown: workers, sweepers, schedulers, scans.
    stopping: CancellationToken,
    tasks: Mutex<Option<JoinSet<()>>>,
    /// Cancelled once no request can arrive: the inbox commits what it
    /// holds, then the WAL checkpointer stops.
    writers_stop: CancellationToken,
    writers: Mutex<Option<JoinSet<()>>>,
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
    /// The service (`serve`): connects, migrates, checks the master key
    /// (required unless every project is a demo) and starts the inbox writer.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`App::start`] with the clock every deadline, lease and schedule reads.
    pub async fn start_with_clock(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        Self::boot(config, clock, true, None).await
    }

    /// The demo (SPEC §8a): like [`App::start`], with demo projects reading
    /// the built-in simulator.
    pub async fn start_simulated(config: Config, simulated: Simulated) -> anyhow::Result<Self> {
        Self::boot(config, Arc::new(SystemClock), true, Some(simulated)).await
    }

    /// A command of the CLI: like [`App::start`], but a missing master key is
    /// only an error for the commands that open secrets.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        Self::boot(config, Arc::new(SystemClock), false, None).await
    }

    async fn boot(
        config: Config,
        clock: SharedClock,
        require_key: bool,
        simulated: Option<Simulated>,
    ) -> anyhow::Result<Self> {
        let store = Store::connect(&config.database).await?;
        store.migrate().await?;
        check_master_key(&store, config.master_key.as_ref(), require_key).await?;
        let wake = Arc::new(Notify::new());
        let writers_stop = CancellationToken::new();
        let mut writers = JoinSet::new();
        let (inbox, inbox_task) =
            InboxWriter::spawn(store.clone(), wake.clone(), writers_stop.clone());
        let checkpoint_stop = CancellationToken::new();
        writers.spawn({
            let checkpoint_stop = checkpoint_stop.clone();
            async move {
                let _ = inbox_task.await;
                // The inbox has committed its last batch: the checkpointer may stop.
                checkpoint_stop.cancel();
            }
        });
        writers.spawn({
            let store = store.clone();
            async move {
                store
                    .checkpoint_wal(WAL_CHECKPOINT_BUSY, WAL_CHECKPOINT_IDLE, checkpoint_stop)
                    .await
            }
        });
        let vault = Vault::new(config.master_key.clone()).simulating(simulated);
        let intake = Intake {
            directory: ProjectDirectory::new(store.clone(), vault.clone()),
            inbox,
            store: store.clone(),
            clock: clock.clone(),
            coalesce: config.coalesce,
            wake: wake.clone(),
            refusals_written: Default::default(),
        };
        Ok(Self(Arc::new(AppInner {
            stripe: StripeClient::new(&config.stripe_api_base),
            probe: ProbeClient::new(Duration::from_secs(10)),
            retry: Backoff::schedule(config.retry_schedule.clone()).jitter(0.75, 1.25),
            budgets: Budgets::default(),
            sign_in_limits: Default::default(),
            lifecycle: Lifecycle {
                stopping: CancellationToken::new(),
                tasks: Mutex::new(Some(JoinSet::new())),
                writers_stop,
                writers: Mutex::new(Some(writers)),
            },
            vault,
            intake,
            wake,
            clock,
            store,
            config,
        })))
    }

    /// Now, as the service's clock says (unix ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Cancelled when shutdown begins: long work checks it between steps.
    pub fn stopping(&self) -> CancellationToken {
        self.lifecycle.stopping.clone()
    }

    /// Runs `task` in the background until it ends; shutdown waits for it.
    /// After shutdown has begun, the task is not started.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.lifecycle.tasks.lock().expect("tasks lock");
        match tasks.as_mut() {
            Some(set) if !self.lifecycle.stopping.is_cancelled() => {
                // Reap what has finished so a long-running service does not
                // accumulate handles of ended scans.
                while set.try_join_next().is_some() {}
                set.spawn(task);
            }
            _ => tracing::debug!("shutting down: background task not started"),
        }
    }

    /// Stops everything in order: background tasks (workers, sweepers,
    /// schedulers, scans) are told to stop and awaited; then the inbox
    /// commits everything it accepted; then the store closes. The HTTP
    /// server (when one runs) must have drained before: no request may be
    /// accepted after the inbox stops. Calling it twice is harmless.
    pub async fn shutdown(&self) {
        self.lifecycle.stopping.cancel();
        let tasks = self.lifecycle.tasks.lock().expect("tasks lock").take();
        if let Some(mut tasks) = tasks {
            while tasks.join_next().await.is_some() {}
        }
        self.lifecycle.writers_stop.cancel();
        let writers = self.lifecycle.writers.lock().expect("writers lock").take();
        if let Some(mut writers) = writers {
            while writers.join_next().await.is_some() {}
        }
        self.store.close().await;
    }
}
