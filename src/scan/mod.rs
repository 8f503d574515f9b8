//! The full scan (SPEC §7): stream every subscription from Stripe inside the
//! project's request budget, store it with the time it was read, check
//! customers in batches against the app probe, and walk the app's `/list`
//! to find access Stripe never paid for. Memory stays flat (pages and
//! batches only); progress is checkpointed after every page so a scan
//! resumes after a crash. A mismatch is confirmed before it alarms: the
//! customer is re-read from Stripe and probed again as a `scan` run, which
//! opens the incident with full evidence.
//!
//! A project has at most one running scan, held under a lease its instance
//! renews while it works; a request for a project whose scan is running
//! gets that scan. Customers the app could not be asked about end the scan
//! `partial`, never `completed`.

mod batch;
mod context;
mod pipeline;
pub mod schedule;
pub mod slices;

use std::{collections::BTreeMap, sync::Arc};

use serde::Serialize;
use serde_json::json;

use crate::{
    App,
    domain::{IncidentKind, Project, Scan, ScanStatus, ScanTrigger},
    ids::ProjectId,
    lease::LeaseKeeper,
    store::{NewIncident, NewScan, ScanEnd, StoreError},
    vault::VaultError,
};
use context::Ctx;
pub use slices::{Slice, SlicePlan};

/// How long a scan's lease lasts without a renewal: twice a work item's
/// (120 s by default); its instance renews it every third of that.
pub fn lease(app: &App) -> std::time::Duration {
    app.config.lease * 2
}

/// [`lease`] in milliseconds.
pub fn lease_ms(app: &App) -> i64 {
    lease(app).as_millis() as i64
}
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
    /// The key is the problem (rejected, or lacking a permission).
    #[error("Stripe: {message}")]
    StripeAuth {
        message: String,
        permission: Option<&'static str>,
    },
    /// Another instance took the scan over (this one stalled past its lease).
    #[error("the scan's lease was lost to another instance")]
    LeaseLost,
    /// The service is shutting down; the scan resumes from its checkpoint.
    #[error("stopped at shutdown; it resumes from its checkpoint")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a scan did (SPEC §7), as `parityrail scan --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct ScanSummary {
    pub scan_id: String,
    pub project_id: String,
    pub status: ScanStatus,
    pub subscriptions_seen: i64,
    pub customers_checked: i64,
    /// Customers the app could not be asked about, even after retries.
    pub customers_unchecked: i64,
    pub mismatches: BTreeMap<String, i64>,
    pub stripe_requests: i64,
    pub probe_requests: i64,
    pub duration_ms: i64,
    pub error: Option<String>,
}

impl ScanSummary {
    pub fn from_scan(scan: &Scan, now: i64) -> Self {
        Self {
            scan_id: scan.id.clone(),
            project_id: scan.project_id.to_string(),
            status: scan.status,
            subscriptions_seen: scan.subscriptions_seen,
            customers_checked: scan.customers_checked,
            customers_unchecked: scan.customers_unchecked,
            mismatches: serde_json::from_str(&scan.mismatches).unwrap_or_default(),
            stripe_requests: scan.stripe_requests,
            probe_requests: scan.probe_requests,
            duration_ms: scan.finished_at.unwrap_or(now) - scan.started_at,
            error: scan.error.clone(),
        }
    }
}

/// Progress callback (the CLI's progress bar).
pub type Progress = Arc<dyn Fn(&ScanSummary) + Send + Sync>;

/// Only projects with a Stripe key and an app probe can be scanned; a demo
/// project is scanned against its built-in simulator like any other.
pub async fn is_scannable(app: &App, project: &Project) -> Result<bool, StoreError> {
    let has = |r: Result<bool, VaultError>| match r {
        Ok(has) => Ok(has),
        Err(VaultError::Store(e)) => Err(e),
        // A secret that cannot be opened is reported when the scan runs.
        Err(_) => Ok(true),
    };
    Ok(has(app
        .vault
        .stripe_key(&app.store, project)
        .await
        .map(|k| k.is_some()))?
        && has(app
            .vault
            .probe_target(&app.store, project)
            .await
            .map(|p| p.is_some()))?)
}

/// A scan to run: `created` is false when the project already had one
/// running (that one is returned; it is not started twice).
pub struct Started {
    pub scan: Scan,
    pub created: bool,
    /// The lease holder: the caller that runs a created scan.
    pub owner: String,
}

/// Starts a manual or cron scan of one project, or returns the running one.
pub async fn create(
    app: &App,
    project: &ProjectId,
    trigger: ScanTrigger,
) -> Result<Started, ScanError> {
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
    let owner = crate::ids::worker_tag(0);
    let now = app.now_ms();
    let (scan, created) = app
        .store
        .create_scan(&NewScan {
            project_id: project.as_str(),
            trigger,
            scheduled_for: None,
            owner: &owner,
            now,
            lease_until: now + lease_ms(app),
        })
        .await?
        .ok_or(ScanError::NotScannable("could not create the scan"))?;
    Ok(Started {
        scan,
        created,
        owner,
    })
}

/// Runs a scan in the background; shutdown stops it at a checkpoint.
pub fn spawn(app: &App, scan: Scan, owner: String) {
    let task_app = app.clone();
    app.spawn(async move {
        let id = scan.id.clone();
        if let Err(e) = run(&task_app, scan, &owner, None).await {
            tracing::warn!(scan_id = %id, error = %e, "scan did not complete");
        }
    });
}

/// Runs (or resumes) a scan to its end under the lease `owner` holds, and
/// returns its summary.
pub async fn run(
    app: &App,
    scan: Scan,
    owner: &str,
    progress: Option<Progress>,
) -> Result<ScanSummary, ScanError> {
    let keeper = LeaseKeeper::start(lease(app), {
        let (app, id, owner) = (app.clone(), scan.id.clone(), owner.to_string());
        move || {
            let (app, id, owner) = (app.clone(), id.clone(), owner.clone());
            async move {
                app.store
                    .renew_scan(&id, &owner, app.now_ms() + lease_ms(&app))
                    .await
            }
        }
    });
    let stopping = app.stopping();
    let outcome = tokio::select! {
        outcome = pipeline::execute(app, &scan, owner, progress) => outcome,
        () = keeper.lost() => Err(ScanError::LeaseLost),
        () = stopping.cancelled() => Err(ScanError::Stopped),
    };
    drop(keeper);
    let (status, error) = match &outcome {
        Err(ScanError::LeaseLost | ScanError::Stopped) => {
            let e = outcome.expect_err("matched an error");
            tracing::info!(scan_id = %scan.id, error = %e, "scan left for its checkpoint");
            return Err(e);
        }
        Ok(ended) if ended.unchecked > 0 || ended.note.is_some() => {
            (ScanStatus::Partial, ended.note.clone())
        }
        Ok(_) => (ScanStatus::Completed, None),
        Err(e) => (ScanStatus::Failed, Some(e.to_string())),
    };
    if let Err(ScanError::StripeAuth {
        message,
        permission,
    }) = &outcome
    {
        let mut details = json!({"message": message, "scan": scan.id});
        if let Some(permission) = permission {
            details["missing_permission"] = json!(permission);
        }
        app.store
            .open_incident(&NewIncident::for_project(
                scan.project_id.as_str(),
                IncidentKind::StripeAuth,
                details,
                app.now_ms(),
            ))
            .await?;
    }
    if let (ScanStatus::Partial, Ok(ended)) = (status, &outcome) {
        // The summary of what was not checked, for the on-call engineer.
        let mut details = json!({"scan": scan.id, "customers_unchecked": ended.unchecked,
            "message": error.clone().unwrap_or_default()});
        if ended.unchecked > 0 {
            details["message"] = json!(format!(
                "{} customers could not be checked: the app probe failed after retries{}",
                ended.unchecked,
                if ended.list_failed {
                    "; the app's /list walk also stopped early"
                } else {
                    ""
                }
            ));
        }
        app.store
            .open_incident(&NewIncident::for_project(
                scan.project_id.as_str(),
                IncidentKind::ProbeFailed,
                details,
                app.now_ms(),
            ))
            .await?;
    }
    let end = ScanEnd {
        status,
        error: error.as_deref(),
        now: app.now_ms(),
    };
    if !app.store.finish_scan(&scan.id, owner, &end).await? {
        return Err(ScanError::LeaseLost);
    }
    let done = app
        .store
        .scan(&scan.id)
        .await?
        .ok_or(ScanError::NotScannable("scan vanished"))?;
    let summary = ScanSummary::from_scan(&done, app.now_ms());
    tracing::info!(scan_id = %scan.id, status = %status, customers = summary.customers_checked,
        unchecked = summary.customers_unchecked, stripe_requests = summary.stripe_requests, "scan finished");
    outcome.map(|_| summary)
}
