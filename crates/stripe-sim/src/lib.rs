//! A stateful Stripe API simulator shared by ParityRail's tests, demo and
//! benchmarks.
//!
//! The flow: the control API ([`StripeSim`] methods) changes the simulated
//! account (`state`, `lifecycle`) → each change emits the events Stripe
//! would (`events`, `invoices`, `entitlements`) → the HTTP API serves
//! Stripe-shaped objects (`objects`, `http`) behind keys, rate limits and
//! injected faults (`control`) → queued events go to webhook endpoints,
//! signed like Stripe (`delivery`, `signing`), retried on Stripe's schedule
//! (`retry`); `shaping` holds the traffic knobs, `transitions` what time does.
//!
//! Objects are rendered in the `2026-07-29.dahlia` shape. The control API
//! panics on ids it never issued: that is a bug in the calling test.

// The full Stripe objects are large `json!` literals.
#![recursion_limit = "256"]
#![warn(missing_docs)]

mod clock;
mod control;
mod delivery;
mod entitlements;
mod events;
mod http;
mod ids;
mod invoices;
mod lifecycle;
mod model;
mod objects;
mod retry;
mod shaping;
mod signing;
mod state;
mod transitions;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

pub use control::{DeliveryFault, Fault, RequestRecord};
pub use delivery::DeliveryReport;
pub use http::SimHandle;
pub use lifecycle::SubscriptionChange;
pub use retry::RetrySchedule;
pub use signing::sign_header;
pub use state::API_VERSION;
pub use transitions::AfterFailedRetries;

use control::Control;
use objects::Expand;
use state::Store;

/// The simulator: cheap to clone, all clones share one account.
#[derive(Clone)]
pub struct StripeSim {
    inner: Arc<Inner>,
}

struct Inner {
    store: RwLock<Store>,
    control: Mutex<Control>,
    served: AtomicU64,
    /// Bumped by `release_holds`: held answers waiting on it go out at once.
    released: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for StripeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSim")
            .field("account_id", &self.account_id())
            .finish_non_exhaustive()
    }
}

impl Default for StripeSim {
    fn default() -> Self {
        StripeSim::new()
    }
}

impl StripeSim {
    /// An empty test-mode account (`acct_sim…`) with no API keys.
    pub fn new() -> Self {
        StripeSim::with_mode(false)
    }

    /// An empty live-mode account: objects and events have `livemode: true`
    /// and only `sk_live_`/`rk_live_` keys see them.
    pub fn new_live() -> Self {
        StripeSim::with_mode(true)
    }

    fn with_mode(livemode: bool) -> Self {
        StripeSim {
            inner: Arc::new(Inner {
                store: RwLock::new(Store::new(livemode)),
                control: Mutex::new(Control::default()),
                served: AtomicU64::new(0),
                released: tokio::sync::watch::channel(0).0,
            }),
        }
    }

    // A panic while holding a lock leaves plain data behind; keep serving.
    pub(crate) fn store(&self) -> RwLockReadGuard<'_, Store> {
        self.inner
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
    pub(crate) fn store_mut(&self) -> RwLockWriteGuard<'_, Store> {
        self.inner
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
    pub(crate) fn control(&self) -> MutexGuard<'_, Control> {
        self.inner
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
    pub(crate) fn finish_request(&self, record: RequestRecord) {
        self.inner.served.fetch_add(1, Ordering::Relaxed);
        self.control().record(record);
    }

    // --- account and keys ----------------------------------------------

    /// The account id, `acct_sim…`.
    pub fn account_id(&self) -> String {
        self.store().account_id.clone()
    }

    /// Whether this is a live-mode account.
    pub fn livemode(&self) -> bool {
        self.store().livemode
    }

    /// Registers a valid key; `sk_live_`/`rk_live_` keys are live mode, any
    /// other key test mode. A key of the other mode than the sim's sees no
    /// objects (404 `resource_missing`, empty lists).
    pub fn add_api_key(&self, key: &str) {
        self.control().add_key(key, true);
    }

    /// Like [`StripeSim::add_api_key`], but `GET /v1/account` answers 403 as
    /// for a restricted key without the account permission.
    pub fn add_restricted_key_without_account_access(&self, key: &str) {
        self.control().add_key(key, false);
    }

    /// Like [`StripeSim::add_api_key`], for a restricted key that may not
    /// read paths starting with `path_prefix` (say `/v1/entitlements`):
    /// those get Stripe's 403 naming `permission` (say
    /// `rak_entitlements_active_entitlement_read`).
    pub fn add_restricted_key_without(&self, key: &str, path_prefix: &str, permission: &str) {
        let mut control = self.control();
        control.add_key(key, true);
        control.deny(key, path_prefix, permission);
    }

    /// Revokes a key: it then gets 401 "Expired API Key provided".
    pub fn revoke_api_key(&self, key: &str) {
        self.control().revoke_key(key);
    }

    // --- clock -----------------------------------------------------------

    /// Pins the clock used for `created` and period fields.
    pub fn set_clock(&self, unix: i64) {
        self.store_mut().clock.set(unix);
    }

    /// Moves the clock (pinned or real) forward by `secs`; nothing else
    /// happens (seeding uses it to spread `created` times).
    pub fn advance_clock(&self, secs: i64) {
        self.store_mut().clock.advance(secs);
    }

    /// Lets `secs` pass as they would in Stripe: the clock moves, then what
    /// Stripe would have done meanwhile happens, oldest first. Trials that
    /// ended become `active`; periods renew with a paid invoice (or end,
    /// for a subscription cancelled at period end); an open invoice is
    /// retried every 3 days until, after 4 failed attempts, Stripe cancels
    /// the subscription (or marks it `unpaid`, or leaves it `past_due`:
    /// [`StripeSim::set_after_failed_retries`]). Each change emits the
    /// events Stripe sends.
    pub fn pass_time(&self, secs: i64) {
        let mut store = self.store_mut();
        let target = store.clock.now() + secs;
        store.pass_time_to(target);
    }

    /// The sim's current unix time.
    pub fn now(&self) -> i64 {
        self.store().clock.now()
    }

    // --- catalogue, customers, subscriptions ---------------------------

    /// Creates a product; returns `prod_…`.
    pub fn create_product(&self, name: &str) -> String {
        self.store_mut().create_product(name)
    }

    /// Creates a monthly USD price of `product`; returns `price_…`.
    pub fn create_price(
        &self,
        product: &str,
        lookup_key: Option<&str>,
        unit_amount: i64,
    ) -> String {
        self.store_mut()
            .create_price(product, lookup_key, unit_amount)
    }

    /// Creates a customer and emits `customer.created`; returns `cus_…`.
    pub fn create_customer(&self, email: &str, metadata: &[(&str, &str)]) -> String {
        self.store_mut()
            .create_customer(email, state::metadata(metadata))
    }

    /// Deletes a customer like Stripe: its subscriptions are canceled at
    /// once (`customer.subscription.deleted` each), then `customer.deleted`;
    /// afterwards `GET /v1/customers/{id}` returns the deleted stub.
    pub fn delete_customer(&self, customer: &str) {
        self.store_mut().delete_customer(customer);
    }

    /// Creates a subscription with one item (quantity 1, a one-month period
    /// from now) per price. Emits `customer.subscription.created`, then
    /// `invoice.paid` when `status` is `active`, then an entitlement summary
    /// update if the customer's features changed. Returns `sub_…`.
    pub fn create_subscription(
        &self,
        customer: &str,
        prices: &[&str],
        status: &str,
        metadata: &[(&str, &str)],
    ) -> String {
        self.store_mut()
            .create_subscription(customer, prices, status, state::metadata(metadata))
    }

    /// Applies `change` and emits `customer.subscription.updated` whose
    /// `data.previous_attributes` holds the old values of what changed
    /// (nothing is emitted when nothing changed).
    pub fn update_subscription(&self, sub: &str, change: SubscriptionChange) {
        self.store_mut().update_subscription(sub, change);
    }

    /// Cancels now: status `canceled`, `ended_at` = now; emits
    /// `customer.subscription.deleted`. No-op if already canceled.
    pub fn cancel_subscription(&self, sub: &str) {
        self.store_mut().cancel_subscription(sub);
    }

    /// A renewal payment fails: emits `invoice.payment_failed` (open
    /// invoice, `attempt_count` growing on repeats), then moves the
    /// subscription to `past_due` with `customer.subscription.updated`.
    pub fn fail_invoice_payment(&self, sub: &str) {
        self.store_mut().fail_invoice_payment(sub);
    }

    /// Sets the entitlement features (by lookup key) of a product. A
    /// customer's active entitlements are the features of the products of
    /// its active, trialing and past_due subscriptions; every change emits
    /// `entitlements.active_entitlement_summary.updated` for that customer.
    pub fn set_product_features(&self, product: &str, lookup_keys: &[&str]) {
        self.store_mut().set_product_features(product, lookup_keys);
    }

    /// The subscription as `GET /v1/subscriptions/{id}` renders it.
    pub fn subscription_json(&self, sub: &str) -> Value {
        let store = self.store();
        let s = store.expect_sub(sub);
        store.subscription_json(s, Expand::default())
    }

    /// The customer as `GET /v1/customers/{id}` renders it.
    pub fn customer_json(&self, customer: &str) -> Value {
        let store = self.store();
        let c = store.expect_customer(customer);
        store.customer_json(c)
    }

    /// Lookup keys of the customer's active entitlements, sorted.
    pub fn active_entitlements(&self, customer: &str) -> Vec<String> {
        let store = self.store();
        let c = store.expect_customer(customer);
        store
            .entitled_features(c)
            .into_iter()
            .map(|f| store.features[f as usize].clone())
            .collect()
    }

    /// Switches automatic events off (or on again). Seeding a million
    /// subscriptions with events on would hold millions of event objects;
    /// with them off, state changes emit nothing and queue nothing.
    pub fn set_emit_events(&self, enabled: bool) {
        self.store_mut().auto_events = enabled;
    }

    // --- events ----------------------------------------------------------

    /// Every event emitted, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.store().events.iter().map(|e| e.json.clone()).collect()
    }

    /// One event by id.
    pub fn event(&self, id: &str) -> Option<Value> {
        let store = self.store();
        store
            .find_event(id)
            .map(|e| store.events[e as usize].json.clone())
    }

    /// Builds an event of `event_type` around `object` (created now,
    /// livemode of the sim), stores it and queues it for delivery like any
    /// other event; returns it. Always emits, even with events switched off.
    pub fn emit_event(
        &self,
        event_type: &str,
        object: Value,
        previous_attributes: Option<Value>,
    ) -> Value {
        self.store_mut()
            .emit(event_type, object, previous_attributes)
    }
}

#[cfg(test)]
mod tests;
