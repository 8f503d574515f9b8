//! A small app implementing ParityRail's probe protocol (SPEC §5) over its
//! own in-memory user store: "the customer's app" for tests and the demo.
//!
//! The flow: the control API ([`SampleApp`] methods) changes users and
//! injects faults → the HTTP face (`http`) checks `ParityRail-Signature`
//! (`signature`) and answers from the store (`store`).
//!
//! Routes, all under `/parityrail`:
//! `GET /access?customer=&user=`, `POST /access/batch`,
//! `GET /access/list?cursor=`, `POST /reconcile` (recorded, answers 202).
//! It deliberately does not depend on `parityrail`.

#![warn(missing_docs)]

mod http;
mod signature;
mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::Value;

pub use http::SampleHandle;
pub use signature::{SIGNATURE_HEADER, TOLERANCE_SECS, verify_signature};

use store::{Grant, Store};

/// The default `/list` page size.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// The sample app: cheap to clone, all clones share one user store.
#[derive(Clone)]
pub struct SampleApp {
    inner: Arc<Inner>,
}

struct Inner {
    secret: String,
    store: RwLock<Store>,
    deploy_sha: RwLock<String>,
    delay: Mutex<Duration>,
    down: AtomicBool,
    wrong: AtomicBool,
    list_enabled: AtomicBool,
    page_size: AtomicUsize,
    requests: AtomicU64,
    batches: AtomicU64,
    reconciles: Mutex<Vec<Value>>,
    last_target: Mutex<Option<String>>,
    failing: Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for SampleApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleApp")
            .field("users", &self.user_count())
            .finish_non_exhaustive()
    }
}

// A panic while holding a lock leaves plain data behind; keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SampleApp {
    /// An app with no users that accepts requests signed with `secret`.
    pub fn new(secret: &str) -> Self {
        SampleApp {
            inner: Arc::new(Inner {
                secret: secret.to_string(),
                store: RwLock::new(Store::default()),
                deploy_sha: RwLock::new("sample0".to_string()),
                delay: Mutex::new(Duration::ZERO),
                failing: Mutex::default(),
                down: AtomicBool::new(false),
                wrong: AtomicBool::new(false),
                list_enabled: AtomicBool::new(true),
                page_size: AtomicUsize::new(DEFAULT_PAGE_SIZE),
                requests: AtomicU64::new(0),
                batches: AtomicU64::new(0),
                reconciles: Mutex::new(Vec::new()),
                last_target: Mutex::new(None),
            }),
        }
    }

    pub(crate) fn store(&self) -> RwLockReadGuard<'_, Store> {
        self.inner
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn store_mut(&self) -> RwLockWriteGuard<'_, Store> {
        self.inner
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    // --- users -------------------------------------------------------------

    /// Gives `user` (the app's id for Stripe customer `customer`) active
    /// access with this plan, features and limits, replacing what it had.
    pub fn grant(
        &self,
        customer: &str,
        user: &str,
        plan: Option<&str>,
        features: &[&str],
        limits: &[(&str, i64)],
    ) {
        let mut features: Vec<String> = features.iter().map(|f| f.to_string()).collect();
        features.sort();
        features.dedup();
        let mut limits: Vec<(String, i64)> =
            limits.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        limits.sort();
        limits.dedup_by(|a, b| a.0 == b.0);
        let grant = Grant {
            active: true,
            plan: plan.map(str::to_string),
            features,
            limits,
        };
        self.store_mut().put(customer, user, grant);
    }

    /// The user stays but loses all access: `active: false`, no plan,
    /// features or limits. Unknown customers are ignored.
    pub fn revoke(&self, customer: &str) {
        self.store_mut().revoke(customer);
    }

    /// Deletes the user: probes answer 404 (`found: false` in a batch).
    pub fn remove(&self, customer: &str) {
        self.store_mut().remove(customer);
    }

    /// How many users the app has, with or without access.
    pub fn user_count(&self) -> usize {
        self.store().len()
    }

    /// Runs `change` against this app after `delay`, as when the app's own
    /// webhook handler is still working. Needs a Tokio runtime.
    pub fn apply_after(&self, delay: Duration, change: impl FnOnce(&SampleApp) + Send + 'static) {
        let app = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            change(&app);
        });
    }

    // --- behaviour ---------------------------------------------------------

    /// The `deploy_sha` every answer carries (default `sample0`).
    pub fn set_deploy_sha(&self, sha: &str) {
        *self
            .inner
            .deploy_sha
            .write()
            .unwrap_or_else(PoisonError::into_inner) = sha.to_string();
    }

    pub(crate) fn deploy_sha(&self) -> String {
        self.inner
            .deploy_sha
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Single probes of `customer` answer 500 while `on` (a bug in the app
    /// that only one customer's data triggers); others are answered.
    pub fn set_failing(&self, customer: &str, on: bool) {
        let mut failing = lock(&self.inner.failing);
        if on {
            failing.insert(customer.to_string());
        } else {
            failing.remove(customer);
        }
    }

    pub(crate) fn is_failing(&self, customer: &str) -> bool {
        lock(&self.inner.failing).contains(customer)
    }

    /// Delays every answer by `d` (a slow app).
    pub fn set_delay(&self, d: Duration) {
        *lock(&self.inner.delay) = d;
    }

    pub(crate) fn delay(&self) -> Duration {
        *lock(&self.inner.delay)
    }

    /// While down, every route answers 503 (before checking the signature).
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::Relaxed);
    }

    pub(crate) fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::Relaxed)
    }

    /// While on, answers have `features` as a string instead of an array.
    pub fn set_wrong(&self, on: bool) {
        self.inner.wrong.store(on, Ordering::Relaxed);
    }

    pub(crate) fn is_wrong(&self) -> bool {
        self.inner.wrong.load(Ordering::Relaxed)
    }

    /// Whether `GET /parityrail/access/list` is offered (on by default);
    /// off, it answers 404.
    pub fn set_list_enabled(&self, on: bool) {
        self.inner.list_enabled.store(on, Ordering::Relaxed);
    }

    pub(crate) fn list_enabled(&self) -> bool {
        self.inner.list_enabled.load(Ordering::Relaxed)
    }

    /// Users per `/list` page (default [`DEFAULT_PAGE_SIZE`], at least 1).
    pub fn set_page_size(&self, size: usize) {
        self.inner.page_size.store(size.max(1), Ordering::Relaxed);
    }

    pub(crate) fn page_size(&self) -> usize {
        self.inner.page_size.load(Ordering::Relaxed)
    }

    pub(crate) fn secret(&self) -> &str {
        &self.inner.secret
    }

    // --- what the app saw --------------------------------------------------

    /// Requests received on the probe routes (single, batch, list), counting
    /// refused ones (401, 503) too.
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// `POST /parityrail/access/batch` requests received, refused ones included.
    pub fn batch_requests(&self) -> u64 {
        self.inner.batches.load(Ordering::Relaxed)
    }

    /// Bodies of the accepted (signed) reconcile calls, oldest first.
    pub fn reconcile_calls(&self) -> Vec<Value> {
        lock(&self.inner.reconciles).clone()
    }

    /// The request target (path and query, exactly as received) of the most
    /// recent request on any route.
    pub fn last_target(&self) -> Option<String> {
        lock(&self.inner.last_target).clone()
    }

    pub(crate) fn record_request(&self, target: &str, probe: bool, batch: bool) {
        *lock(&self.inner.last_target) = Some(target.to_string());
        if probe {
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
        }
        if batch {
            self.inner.batches.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn record_reconcile(&self, body: Value) {
        lock(&self.inner.reconciles).push(body);
    }
}

#[cfg(test)]
mod tests;
