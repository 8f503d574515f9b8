//! The full scan (SPEC §7): stream every subscription from Stripe inside the
//! project's request budget, store it, check customers in batches against the
//! app probe, and walk the app's `/list` to find access Stripe never paid for.
//! Memory stays flat (pages and batches only); progress is checkpointed after
//! every page so a scan resumes after a crash. A mismatch is confirmed before
//! it alarms: the customer is re-read from Stripe and probed again as a
//! `scan` run, which opens the incident with full evidence.

mod batch;
pub mod pacer;
mod pipeline;
pub mod schedule;
pub mod slices;

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::{
    App,
    access::{AccessPolicy, PlanMap},
    config::Secret,
    ids::ProjectId,
    probe::ProbeTarget,
    store::{Project, ProjectMode, Scan, ScanCheckpoint, StoreError},
};
use pacer::Pacer;
pub use slices::{Slice, SlicePlan};

/// How long a scan's lease lasts without a checkpoint.
pub const LEASE_MS: i64 = 120_000;
/// Customers checked per app batch request (the protocol's maximum).
const BATCH: usize = 500;
/// Batches checked concurrently while Stripe is paged.
const IN_FLIGHT: usize = 4;
/// Slices paged at once: enough to hide page latency under the budget.
const PAGERS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0}")]
    NotScannable(&'static str),
    #[error("Stripe: {0}")]
    Stripe(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a scan did (SPEC §7), as `parityrail scan --json` prints it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScanSummary {
    pub scan_id: String,
    pub project_id: String,
    pub status: String,
    pub subscriptions_seen: i64,
    pub customers_checked: i64,
    pub mismatches: BTreeMap<String, i64>,
    pub stripe_requests: i64,
    pub probe_requests: i64,
    pub duration_ms: i64,
    pub error: Option<String>,
}

impl ScanSummary {
    pub fn from_scan(scan: &Scan) -> Self {
        Self {
            scan_id: scan.id.clone(),
            project_id: scan.project_id.clone(),
            status: scan.status.clone(),
            subscriptions_seen: scan.subscriptions_seen,
            customers_checked: scan.customers_checked,
            mismatches: serde_json::from_str(&scan.mismatches).unwrap_or_default(),
            stripe_requests: scan.stripe_requests,
            probe_requests: scan.probe_requests,
            duration_ms: scan.finished_at.unwrap_or_else(crate::now_ms) - scan.started_at,
            error: scan.error.clone(),
        }
    }
}

/// Live counters, shared by the Stripe loop, batch checks and the `/list` walk.
#[derive(Default)]
pub(crate) struct Counters {
    subscriptions_seen: i64,
    customers_checked: i64,
    mismatches: BTreeMap<String, i64>,
    stripe_requests: i64,
    probe_requests: i64,
}

/// A batch check in flight.
type BatchTask = JoinHandle<Result<(), ScanError>>;

/// Progress callback (the CLI's progress bar).
pub type Progress = Arc<dyn Fn(&ScanSummary) + Send + Sync>;

pub(crate) struct Ctx {
    app: App,
    project: Project,
    scan_id: String,
    key: Secret,
    target: ProbeTarget,
    map: PlanMap,
    policy: AccessPolicy,
    pacer: Pacer,
    counters: Mutex<Counters>,
    /// Customers whose webhook check is still pending: left to it.
    pending: HashSet<String>,
    /// Customers with a standing access incident: a pass resolves it.
    with_incidents: HashSet<String>,
}

/// Only projects with a Stripe key and an app probe can be scanned.
pub async fn is_scannable(app: &App, project: &Project) -> Result<bool, StoreError> {
    Ok(project.mode != ProjectMode::Demo
        && app.store.integration(&project.id).await?.is_some()
        && app.store.probe_config(&project.id).await?.is_some())
}

/// Creates a manual or cron scan of one project.
pub async fn create(app: &App, project: &ProjectId, trigger: &str) -> Result<Scan, ScanError> {
    let p = app
        .store
        .project(project)
        .await?
        .ok_or(ScanError::NotScannable("no such project"))?;
    if !is_scannable(app, &p).await? {
        return Err(ScanError::NotScannable(
            "the project needs a Stripe key (`parityrail stripe connect`) and an app probe (`parityrail probe set`)",
        ));
    }
    let now = crate::now_ms();
    app.store
        .create_scan(project.as_str(), trigger, None, now, now + LEASE_MS)
        .await?
        .ok_or(ScanError::NotScannable("could not create the scan"))
}

/// Runs a scan in the background.
pub fn spawn(app: &App, scan: Scan) -> JoinHandle<()> {
    let app = app.clone();
    tokio::spawn(async move {
        let id = scan.id.clone();
        if let Err(e) = run(&app, scan, None).await {
            tracing::error!(scan_id = %id, error = %e, "scan failed");
        }
    })
}

/// Runs (or resumes) a scan to the end and returns its summary.
pub async fn run(
    app: &App,
    scan: Scan,
    progress: Option<Progress>,
) -> Result<ScanSummary, ScanError> {
    let outcome = pipeline::execute(app, &scan, progress).await;
    let (status, error) = match &outcome {
        Ok(()) => ("completed", None),
        Err(e) => ("failed", Some(e.to_string())),
    };
    app.store
        .finish_scan(&scan.id, status, error.as_deref(), crate::now_ms())
        .await?;
    let done = app
        .store
        .scan(&scan.id)
        .await?
        .ok_or(ScanError::NotScannable("scan vanished"))?;
    let summary = ScanSummary::from_scan(&done);
    tracing::info!(scan_id = %scan.id, status, customers = summary.customers_checked,
        stripe_requests = summary.stripe_requests, "scan finished");
    outcome.map(|()| summary)
}

async fn context(app: &App, scan: &Scan) -> Result<Ctx, ScanError> {
    let project_id =
        ProjectId::parse(&scan.project_id).ok_or(ScanError::NotScannable("bad project id"))?;
    let project = app
        .store
        .project(&project_id)
        .await?
        .ok_or(ScanError::NotScannable("no such project"))?;
    let (key, mode) = app
        .directory
        .api_key(&project_id)
        .await
        .map_err(|e| ScanError::Stripe(e.to_string()))?
        .ok_or(ScanError::NotScannable("no Stripe key"))?;
    let probe = app
        .store
        .probe_config(&project_id)
        .await?
        .ok_or(ScanError::NotScannable("no app probe"))?;
    let master = app
        .config
        .master_key
        .as_ref()
        .ok_or(ScanError::NotScannable("no master key"))?;
    let secret = master
        .open(
            &crate::ingress::directory::secret_context("probe_secret", &project_id),
            &probe.secret_sealed,
        )
        .map_err(|e| ScanError::Stripe(e.to_string()))?;
    let budget = project
        .stripe_budget_rps
        .unwrap_or(if mode.is_live() { 80 } else { 20 });
    let restored = Counters {
        subscriptions_seen: scan.subscriptions_seen,
        customers_checked: scan.customers_checked,
        mismatches: serde_json::from_str(&scan.mismatches).unwrap_or_default(),
        stripe_requests: scan.stripe_requests,
        probe_requests: scan.probe_requests,
    };
    Ok(Ctx {
        app: app.clone(),
        map: app
            .store
            .plan_map(&project_id, project.use_entitlements)
            .await?,
        policy: AccessPolicy {
            past_due_grace_secs: project.past_due_grace_secs,
        },
        pending: app
            .store
            .customers_with_pending_runs(project_id.as_str())
            .await?,
        with_incidents: app
            .store
            .customers_with_access_incidents(project_id.as_str())
            .await?,
        project,
        scan_id: scan.id.clone(),
        key,
        target: ProbeTarget {
            url: probe.url,
            secret: Secret::new(secret),
        },
        pacer: Pacer::new(u32::try_from(budget).unwrap_or(20)),
        counters: Mutex::new(restored),
    })
}

impl Ctx {
    fn summary(&self) -> ScanSummary {
        let c = self.counters.lock().expect("counters");
        ScanSummary {
            scan_id: self.scan_id.clone(),
            project_id: self.project.id.to_string(),
            status: "running".into(),
            subscriptions_seen: c.subscriptions_seen,
            customers_checked: c.customers_checked,
            mismatches: c.mismatches.clone(),
            stripe_requests: c.stripe_requests,
            probe_requests: c.probe_requests,
            ..ScanSummary::default()
        }
    }

    fn checkpoint(&self, cursor: Option<String>, done: bool) -> ScanCheckpoint {
        let c = self.counters.lock().expect("counters");
        ScanCheckpoint {
            stripe_cursor: cursor,
            stripe_done: done,
            subscriptions_seen: c.subscriptions_seen,
            customers_checked: c.customers_checked,
            mismatches: serde_json::to_string(&c.mismatches).expect("serializes"),
            stripe_requests: c.stripe_requests,
            probe_requests: c.probe_requests,
        }
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.counters.lock().expect("counters"));
    }

    /// One paced Stripe page (within `created` `[gte, lt)` when given),
    /// retrying rate limits and transient errors.
    pub(crate) async fn stripe_page(
        &self,
        cursor: Option<&str>,
        created: Option<(i64, i64)>,
        limit: u8,
    ) -> Result<(Vec<crate::stripe::model::Subscription>, bool), ScanError> {
        let mut failures = 0;
        loop {
            self.pacer.wait().await;
            self.count(|c| c.stripe_requests += 1);
            match self
                .app
                .stripe
                .subscriptions_page_in(&self.key, cursor, created, limit)
                .await
            {
                Ok(page) => return Ok(page),
                Err(e) if e.is_transient() && failures < 8 => {
                    failures += 1;
                    let wait = e
                        .retry_after()
                        .unwrap_or(Duration::from_millis(500 << failures.min(5)));
                    tracing::info!(scan_id = %self.scan_id, error = %e, ?wait, "Stripe asked to wait");
                    self.pacer.pause(wait);
                }
                Err(e) => return Err(ScanError::Stripe(e.to_string())),
            }
        }
    }
}
