//! The full scan (SPEC §7): stream every subscription from Stripe inside the
//! project's request budget, store it, check customers in batches against the
//! app probe, and walk the app's `/list` to find access Stripe never paid for.
//! Memory stays flat (pages and batches only); progress is checkpointed after
//! every page so a scan resumes after a crash. A mismatch is confirmed before
//! it alarms: the customer is re-read from Stripe and probed again as a
//! `scan` run, which opens the incident with full evidence.

mod batch;
pub mod pacer;
pub mod schedule;
pub mod slices;

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
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
    let outcome = execute(app, &scan, progress).await;
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

/// One page read from Stripe: which slice, its order in the slice, and the
/// cursor it was read after (where a resume re-reads it from).
struct Page {
    slice: usize,
    seq: u64,
    after: Option<String>,
    subs: Vec<crate::stripe::model::Subscription>,
    has_more: bool,
}

/// Pages every unfinished slice, [`PAGERS`] at a time, ahead of the consumer:
/// fetching never waits for the database, and page latency is hidden.
fn spawn_pagers(
    ctx: Arc<Ctx>,
    plan: &SlicePlan,
) -> tokio::sync::mpsc::Receiver<Result<Page, ScanError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(32);
    let queue: Arc<Mutex<VecDeque<(usize, Slice)>>> = Arc::new(Mutex::new(
        plan.slices
            .iter()
            .cloned()
            .enumerate()
            .filter(|(_, s)| !s.done)
            .collect(),
    ));
    for _ in 0..PAGERS {
        let (ctx, tx, queue) = (ctx.clone(), tx.clone(), queue.clone());
        tokio::spawn(async move {
            loop {
                let Some((index, slice)) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                let mut after = slice.after.clone();
                for seq in 0.. {
                    let page = ctx
                        .stripe_page(after.as_deref(), Some((slice.gte, slice.lt)), 100)
                        .await;
                    let failed = page.is_err();
                    let page = page.map(|(subs, has_more)| Page {
                        slice: index,
                        seq,
                        after: after.clone(),
                        has_more: has_more && !subs.is_empty(),
                        subs,
                    });
                    let next = page
                        .as_ref()
                        .ok()
                        .filter(|p| p.has_more)
                        .and_then(|p| p.subs.last())
                        .map(|s| s.id.clone());
                    if tx.send(page).await.is_err() || failed {
                        return;
                    }
                    match next {
                        Some(id) => after = Some(id),
                        None => break,
                    }
                }
            }
        });
    }
    rx
}

/// Pages received whose customers are not all checked yet, per slice: the
/// checkpoint of a slice never moves past them.
#[derive(Default)]
struct Unchecked {
    pages: BTreeMap<(usize, u64), Option<String>>,
}

impl Unchecked {
    fn plan(
        &self,
        base: &SlicePlan,
        latest: &[Option<String>],
        received_all: &[bool],
    ) -> SlicePlan {
        let slices = base
            .slices
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let oldest = self
                    .pages
                    .range((i, 0)..=(i, u64::MAX))
                    .next()
                    .map(|(_, after)| after.clone());
                Slice {
                    gte: s.gte,
                    lt: s.lt,
                    done: s.done || (received_all[i] && oldest.is_none()),
                    after: oldest.unwrap_or_else(|| latest[i].clone().or_else(|| s.after.clone())),
                }
            })
            .collect();
        SlicePlan { slices }
    }
}

async fn execute(app: &App, scan: &Scan, progress: Option<Progress>) -> Result<(), ScanError> {
    let started = std::time::Instant::now();
    let ctx = Arc::new(context(app, scan).await?);
    let walker = (!scan.app_done)
        .then(|| tokio::spawn(batch::walk_app_list(ctx.clone(), scan.app_cursor.clone())));
    let plan = match SlicePlan::from_checkpoint(scan.stripe_cursor.as_deref()) {
        Some(plan) => plan,
        None if scan.stripe_done => SlicePlan::default(),
        None => slices::plan(&ctx).await?,
    };
    tracing::info!(scan_id = %scan.id, slices = plan.slices.len(), elapsed = ?started.elapsed(), "scan planned");
    let mut latest: Vec<Option<String>> = plan.slices.iter().map(|s| s.after.clone()).collect();
    let mut received_all: Vec<bool> = plan.slices.iter().map(|s| s.done).collect();
    let mut unchecked = Unchecked::default();
    let mut pages = spawn_pagers(ctx.clone(), &plan);
    let mut buffer: Vec<String> = Vec::with_capacity(BATCH);
    let mut in_buffer: HashSet<String> = HashSet::with_capacity(BATCH);
    let mut buffer_pages: Vec<(usize, u64)> = Vec::new();
    let mut in_flight: VecDeque<(BatchTask, Vec<(usize, u64)>)> = VecDeque::new();
    loop {
        let next = pages.recv().await.transpose()?;
        let batch = match &next {
            Some(page) => {
                ctx.count(|c| c.subscriptions_seen += page.subs.len() as i64);
                unchecked
                    .pages
                    .insert((page.slice, page.seq), page.after.clone());
                buffer_pages.push((page.slice, page.seq));
                for sub in &page.subs {
                    if !ctx.pending.contains(&sub.customer)
                        && in_buffer.insert(sub.customer.clone())
                    {
                        buffer.push(sub.customer.clone());
                    }
                }
                if let Some(last) = page.subs.last() {
                    latest[page.slice] = Some(last.id.clone());
                }
                received_all[page.slice] |= !page.has_more;
                (buffer.len() >= BATCH).then(|| {
                    in_buffer.clear();
                    (
                        std::mem::take(&mut buffer),
                        std::mem::take(&mut buffer_pages),
                    )
                })
            }
            None => {
                in_buffer.clear();
                Some((
                    std::mem::take(&mut buffer),
                    std::mem::take(&mut buffer_pages),
                ))
            }
        };
        // Reap finished batches; keep at most IN_FLIGHT running.
        while in_flight.front().is_some_and(|(h, _)| h.is_finished())
            || in_flight.len() >= IN_FLIGHT
        {
            let (handle, done_pages) = in_flight.pop_front().expect("non-empty");
            handle
                .await
                .map_err(|e| ScanError::Stripe(format!("batch task: {e}")))??;
            for key in done_pages {
                unchecked.pages.remove(&key);
            }
        }
        let checkpoint = unchecked
            .plan(&plan, &latest, &received_all)
            .to_checkpoint();
        match &next {
            // The page is committed before its customers are checked against it.
            Some(page) => {
                app.store
                    .save_scan_page(
                        ctx.project.id.as_str(),
                        &page.subs,
                        crate::now_ms(),
                        &scan.id,
                        &ctx.checkpoint(Some(checkpoint), false),
                        crate::now_ms() + LEASE_MS,
                    )
                    .await?
            }
            None => {
                app.store
                    .checkpoint_scan(
                        &scan.id,
                        &ctx.checkpoint(Some(checkpoint), false),
                        crate::now_ms() + LEASE_MS,
                    )
                    .await?
            }
        }
        if let Some((customers, batch_pages)) = batch {
            in_flight.push_back((
                tokio::spawn(batch::check_batch(ctx.clone(), customers)),
                batch_pages,
            ));
        }
        if let Some(p) = &progress {
            p(&ctx.summary());
        }
        if next.is_none() {
            break;
        }
    }
    for (handle, done_pages) in in_flight {
        handle
            .await
            .map_err(|e| ScanError::Stripe(format!("batch task: {e}")))??;
        for key in done_pages {
            unchecked.pages.remove(&key);
        }
    }
    tracing::info!(scan_id = %scan.id, elapsed = ?started.elapsed(), "Stripe read and batches checked");
    let finished = unchecked
        .plan(&plan, &latest, &vec![true; latest.len()])
        .to_checkpoint();
    app.store
        .checkpoint_scan(
            &scan.id,
            &ctx.checkpoint(Some(finished.clone()), false),
            crate::now_ms() + LEASE_MS,
        )
        .await?;
    if let Some(walker) = walker {
        walker
            .await
            .map_err(|e| ScanError::Stripe(format!("list walk: {e}")))??;
    }
    tracing::info!(scan_id = %scan.id, elapsed = ?started.elapsed(), "app /list walked");
    batch::check_unpaid_candidates(&ctx).await?;
    tracing::info!(scan_id = %scan.id, elapsed = ?started.elapsed(), "unpaid candidates confirmed");
    app.store
        .checkpoint_scan(
            &scan.id,
            &ctx.checkpoint(Some(finished), true),
            crate::now_ms() + LEASE_MS,
        )
        .await?;
    if let Some(p) = &progress {
        p(&ctx.summary());
    }
    Ok(())
}
