//! What one scan works with: the project, its key and probe, its plan map,
//! the shared budget, live counters, and paced Stripe reads with retries.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{ScanError, ScanSummary};
use crate::{
    App,
    access::{AccessPolicy, PlanMap},
    backoff::Backoff,
    config::Secret,
    domain::{Project, Scan, ScanStatus, Subscription},
    ids::CustomerId,
    probe::ProbeTarget,
    store::ScanCheckpoint,
    stripe::{StripeError, budget::Pacer},
};

/// Live counters, shared by the Stripe loop, batch checks and the `/list` walk.
#[derive(Default)]
pub(crate) struct Counters {
    pub subscriptions_seen: i64,
    pub customers_checked: i64,
    pub customers_unchecked: i64,
    pub mismatches: BTreeMap<String, i64>,
    pub stripe_requests: i64,
    pub probe_requests: i64,
}

pub(crate) struct Ctx {
    pub app: App,
    pub project: Project,
    pub scan_id: String,
    pub owner: String,
    pub key: Secret,
    pub target: ProbeTarget,
    pub map: PlanMap,
    pub policy: AccessPolicy,
    pub pacer: Arc<Pacer>,
    counters: Mutex<Counters>,
    /// Customers whose webhook check is still pending: left to it.
    pub pending: HashSet<String>,
    /// Customers with a standing incident of their own: a pass resolves it.
    pub with_incidents: HashSet<String>,
    /// Set when the app's `/list` could not be walked to its end.
    pub list_failure: Mutex<Option<String>>,
}

/// Retries of one paced Stripe read: 0.5 s doubling, eight at most; a
/// `Retry-After` is a floor.
fn stripe_retry() -> Backoff {
    Backoff::exponential(Duration::from_millis(500), Duration::from_secs(16)).retries(8)
}

impl Ctx {
    pub async fn load(app: &App, scan: &Scan, owner: &str) -> Result<Self, ScanError> {
        let project = app
            .store
            .project(&scan.project_id)
            .await?
            .ok_or(ScanError::NotScannable("no such project"))?;
        let (key, mode) = app
            .vault
            .stripe_key(&app.store, &project)
            .await
            .map_err(|e| ScanError::Stripe(e.to_string()))?
            .ok_or(ScanError::NotScannable("no Stripe key"))?;
        let target = app
            .vault
            .probe_target(&app.store, &project)
            .await
            .map_err(|e| ScanError::Stripe(e.to_string()))?
            .ok_or(ScanError::NotScannable("no app probe"))?;
        let budget = project
            .stripe_budget_rps
            .unwrap_or(if mode.is_live() { 80 } else { 20 });
        let restored = Counters {
            subscriptions_seen: scan.subscriptions_seen,
            customers_checked: scan.customers_checked,
            customers_unchecked: scan.customers_unchecked,
            mismatches: serde_json::from_str(&scan.mismatches).unwrap_or_default(),
            stripe_requests: scan.stripe_requests,
            probe_requests: scan.probe_requests,
        };
        Ok(Self {
            app: app.clone(),
            map: app
                .store
                .plan_map(&project.id, project.use_entitlements)
                .await?,
            policy: AccessPolicy {
                past_due_grace_secs: project.past_due_grace_secs,
            },
            pending: app
                .store
                .customers_with_pending_runs(project.id.as_str())
                .await?,
            with_incidents: app
                .store
                .customers_with_access_incidents(project.id.as_str())
                .await?,
            pacer: app
                .budgets
                .pacer(&project.id, u32::try_from(budget).unwrap_or(20)),
            project,
            scan_id: scan.id.clone(),
            owner: owner.to_string(),
            key,
            target,
            counters: Mutex::new(restored),
            list_failure: Mutex::new(None),
        })
    }

    pub fn summary(&self) -> ScanSummary {
        let c = self.counters.lock().expect("counters");
        ScanSummary {
            scan_id: self.scan_id.clone(),
            project_id: self.project.id.to_string(),
            status: ScanStatus::Running,
            subscriptions_seen: c.subscriptions_seen,
            customers_checked: c.customers_checked,
            customers_unchecked: c.customers_unchecked,
            mismatches: c.mismatches.clone(),
            stripe_requests: c.stripe_requests,
            probe_requests: c.probe_requests,
            duration_ms: 0,
            error: None,
        }
    }

    pub fn checkpoint(&self, cursor: Option<String>, done: bool) -> ScanCheckpoint {
        let c = self.counters.lock().expect("counters");
        ScanCheckpoint {
            stripe_cursor: cursor,
            stripe_done: done,
            subscriptions_seen: c.subscriptions_seen,
            customers_checked: c.customers_checked,
            customers_unchecked: c.customers_unchecked,
            mismatches: serde_json::to_string(&c.mismatches).expect("serializes"),
            stripe_requests: c.stripe_requests,
            probe_requests: c.probe_requests,
        }
    }

    pub fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.counters.lock().expect("counters"));
    }

    pub fn unchecked(&self) -> i64 {
        self.counters.lock().expect("counters").customers_unchecked
    }

    /// One paced Stripe read, retrying rate limits and transient errors; a
    /// key that is rejected or lacks a permission ends the scan.
    pub async fn stripe<T, F, Fut>(&self, read: F) -> Result<T, ScanError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StripeError>>,
    {
        let mut failures = 0;
        loop {
            self.pacer.wait().await;
            self.count(|c| c.stripe_requests += 1);
            let error = match read().await {
                Ok(value) => return Ok(value),
                Err(e) if e.is_auth() => {
                    return Err(ScanError::StripeAuth {
                        message: e.to_string(),
                        permission: e.missing_permission(),
                    });
                }
                Err(e) if !e.is_transient() => return Err(ScanError::Stripe(e.to_string())),
                Err(e) => e,
            };
            let Some(wait) = stripe_retry().delay(failures, error.retry_after()) else {
                return Err(ScanError::Stripe(error.to_string()));
            };
            failures += 1;
            tracing::info!(scan_id = %self.scan_id, error = %error, ?wait, "Stripe asked to wait");
            self.pacer.pause(wait);
        }
    }

    /// One page of subscriptions within `created` `[gte, lt)`, with the
    /// time it was read (before the request left) and the first failed
    /// payment of every `past_due` subscription's unpaid invoice.
    pub async fn subscriptions_page(
        &self,
        cursor: Option<&str>,
        created: Option<(i64, i64)>,
        limit: u8,
    ) -> Result<(Vec<Subscription>, bool, i64), ScanError> {
        let read_at = self.app.now_ms();
        let (mut subs, has_more) = self
            .stripe(|| {
                self.app
                    .stripe
                    .subscriptions_page_in(&self.key, cursor, created, limit)
            })
            .await?;
        for sub in subs.iter_mut().filter(|s| s.status == "past_due") {
            let Some(invoice) = sub.latest_invoice.clone() else {
                continue;
            };
            sub.unpaid_since = self
                .stripe(|| self.app.stripe.invoice_unpaid_since(&self.key, &invoice))
                .await?;
        }
        Ok((subs, has_more, read_at))
    }

    /// `created` of the newest subscription within `created` `[gte, lt)`
    /// (slice planning: one small read).
    pub async fn first_created(
        &self,
        created: Option<(i64, i64)>,
    ) -> Result<Option<i64>, ScanError> {
        let (subs, _) = self
            .stripe(|| {
                self.app
                    .stripe
                    .subscriptions_page_in(&self.key, None, created, 1)
            })
            .await?;
        Ok(subs.first().map(|s| s.created))
    }

    /// The customer's active entitlements, paced.
    pub async fn entitlements(&self, customer: &CustomerId) -> Result<Vec<String>, ScanError> {
        self.stripe(|| self.app.stripe.active_entitlements(&self.key, customer))
            .await
    }
}
