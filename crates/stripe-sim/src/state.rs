//! The simulator's object store: ids, lookups and the simple creators.
//! Subscription lifecycle lives in `lifecycle`, events in `events`, JSON
//! rendering in `objects`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;

use crate::clock::Clock;
use crate::ids;
use crate::model::{Customer, Invoice, Key, Metadata, Price, Product, SubIndex, Subscription};

/// The API version whose object shapes the simulator renders.
pub const API_VERSION: &str = "2026-07-29.dahlia";

/// One stored event.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    pub kind: String,
    pub json: Value,
}

/// A registered webhook endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub id: String,
    pub url: String,
    pub secret: String,
    /// Event types it receives (`*`: all; `customer.subscription.*` allowed).
    pub enabled_events: Vec<String>,
    pub created: i64,
    /// Deleted endpoints keep their slot (outbox entries name slots).
    pub deleted: bool,
}

impl Endpoint {
    /// Whether an event of type `kind` goes to it.
    pub(crate) fn wants(&self, kind: &str) -> bool {
        !self.deleted
            && self
                .enabled_events
                .iter()
                .any(|f| f == "*" || crate::events::type_matches(f, kind))
    }

    /// Stripe's shape; the secret only when it was just created.
    pub(crate) fn json(&self, livemode: bool, with_secret: bool) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": self.id, "object": "webhook_endpoint", "url": self.url,
            "enabled_events": self.enabled_events, "status": "enabled",
            "livemode": livemode, "created": self.created, "api_version": null,
            "application": null, "description": null, "metadata": {},
        });
        if with_secret {
            v["secret"] = serde_json::Value::String(self.secret.clone());
        }
        v
    }
}

/// Everything the simulated account holds, behind one lock.
#[derive(Debug)]
pub(crate) struct Store {
    pub livemode: bool,
    pub account_id: String,
    /// Per-sim fragment inside every id, like the account fragment in real
    /// Stripe ids; ids from another sim never resolve here.
    pub tag: String,
    pub clock: Clock,
    /// Off while seeding large data sets so they do not allocate events.
    pub auto_events: bool,
    /// What happens to a subscription once its payment retries run out.
    pub after_failed_retries: crate::AfterFailedRetries,
    pub products: Vec<Product>,
    pub prices: Vec<Price>,
    /// Feature lookup keys by feature sequence number, and the reverse.
    pub features: Vec<String>,
    pub feature_by_key: BTreeMap<String, u32>,
    pub customers: Vec<Customer>,
    /// Customers not deleted, in list order.
    pub customer_index: BTreeSet<Key>,
    pub subs: Vec<Subscription>,
    pub sub_index: SubIndex,
    pub invoices: Vec<Invoice>,
    pub next_item: u32,
    pub events: Vec<StoredEvent>,
    pub event_index: BTreeSet<Key>,
    pub endpoints: Vec<Endpoint>,
    /// (event seq, endpoint index) pairs waiting for `deliver_pending`.
    pub outbox: VecDeque<(u32, usize)>,
}

fn seq(len: usize) -> u32 {
    u32::try_from(len).expect("the simulator holds at most u32::MAX objects per kind")
}

impl Store {
    pub(crate) fn new(livemode: bool) -> Store {
        Store {
            livemode,
            account_id: format!("acct_sim{}", ids::random(8)),
            tag: ids::random(10),
            clock: Clock::default(),
            auto_events: true,
            after_failed_retries: crate::AfterFailedRetries::Cancel,
            products: Vec::new(),
            prices: Vec::new(),
            features: Vec::new(),
            feature_by_key: BTreeMap::new(),
            customers: Vec::new(),
            customer_index: BTreeSet::new(),
            subs: Vec::new(),
            sub_index: SubIndex::default(),
            invoices: Vec::new(),
            next_item: 0,
            events: Vec::new(),
            event_index: BTreeSet::new(),
            endpoints: Vec::new(),
            outbox: VecDeque::new(),
        }
    }

    // --- ids -----------------------------------------------------------

    pub(crate) fn product_id(&self, s: u32) -> String {
        ids::format_short("prod", s, &self.tag)
    }
    pub(crate) fn price_id(&self, s: u32) -> String {
        ids::format("price", s, &self.tag)
    }
    pub(crate) fn customer_id(&self, s: u32) -> String {
        ids::format_short("cus", s, &self.tag)
    }
    pub(crate) fn sub_id(&self, s: u32) -> String {
        ids::format("sub", s, &self.tag)
    }
    pub(crate) fn item_id(&self, s: u32) -> String {
        ids::format_short("si", s, &self.tag)
    }
    pub(crate) fn invoice_id(&self, s: u32) -> String {
        ids::format("in", s, &self.tag)
    }
    pub(crate) fn line_id(&self, s: u32) -> String {
        ids::format("il", s, &self.tag)
    }
    pub(crate) fn event_id(&self, s: u32) -> String {
        ids::format("evt", s, &self.tag)
    }
    fn mode_prefix(&self, base: &'static str) -> String {
        if self.livemode {
            base.to_owned()
        } else {
            format!("{base}_test")
        }
    }
    pub(crate) fn feature_id(&self, s: u32) -> String {
        ids::format(&self.mode_prefix("feat"), s, &self.tag)
    }
    pub(crate) fn entitlement_id(&self, customer: u32, feature: u32) -> String {
        ids::format_pair(&self.mode_prefix("ent"), customer, feature, &self.tag)
    }

    // --- lookups -------------------------------------------------------

    pub(crate) fn find_product(&self, id: &str) -> Option<u32> {
        ids::parse_short("prod", id, &self.tag).filter(|&s| (s as usize) < self.products.len())
    }
    pub(crate) fn find_price(&self, id: &str) -> Option<u32> {
        ids::parse("price", id, &self.tag).filter(|&s| (s as usize) < self.prices.len())
    }
    pub(crate) fn find_customer(&self, id: &str) -> Option<u32> {
        ids::parse_short("cus", id, &self.tag).filter(|&s| (s as usize) < self.customers.len())
    }
    pub(crate) fn find_sub(&self, id: &str) -> Option<u32> {
        ids::parse("sub", id, &self.tag).filter(|&s| (s as usize) < self.subs.len())
    }
    pub(crate) fn find_invoice(&self, id: &str) -> Option<u32> {
        ids::parse("in", id, &self.tag).filter(|&s| (s as usize) < self.invoices.len())
    }
    pub(crate) fn find_event(&self, id: &str) -> Option<u32> {
        ids::parse("evt", id, &self.tag).filter(|&s| (s as usize) < self.events.len())
    }
    pub(crate) fn find_entitlement(&self, id: &str) -> Option<(u32, u32)> {
        ids::parse_pair(&self.mode_prefix("ent"), id, &self.tag)
    }

    /// Panicking lookups for the Rust control API: an unknown id there is a
    /// bug in the calling test, not a simulated Stripe error.
    pub(crate) fn expect_customer(&self, id: &str) -> u32 {
        self.find_customer(id)
            .unwrap_or_else(|| panic!("stripe-sim: no such customer {id:?}"))
    }
    pub(crate) fn expect_sub(&self, id: &str) -> u32 {
        self.find_sub(id)
            .unwrap_or_else(|| panic!("stripe-sim: no such subscription {id:?}"))
    }
    pub(crate) fn expect_price(&self, id: &str) -> u32 {
        self.find_price(id)
            .unwrap_or_else(|| panic!("stripe-sim: no such price {id:?}"))
    }
    pub(crate) fn expect_product(&self, id: &str) -> u32 {
        self.find_product(id)
            .unwrap_or_else(|| panic!("stripe-sim: no such product {id:?}"))
    }

    // --- simple creators -----------------------------------------------

    pub(crate) fn create_product(&mut self, name: &str) -> String {
        let s = seq(self.products.len());
        let created = self.clock.now();
        self.products.push(Product {
            name: name.to_owned(),
            created,
            features: Vec::new(),
        });
        self.product_id(s)
    }

    pub(crate) fn create_price(
        &mut self,
        product: &str,
        lookup_key: Option<&str>,
        unit_amount: i64,
    ) -> String {
        let product = self.expect_product(product);
        let s = seq(self.prices.len());
        let created = self.clock.now();
        self.prices.push(Price {
            product,
            lookup_key: lookup_key.map(str::to_owned),
            unit_amount,
            created,
        });
        self.price_id(s)
    }

    /// The feature with this lookup key, created on first use.
    pub(crate) fn feature(&mut self, lookup_key: &str) -> u32 {
        if let Some(&s) = self.feature_by_key.get(lookup_key) {
            return s;
        }
        let s = seq(self.features.len());
        self.features.push(lookup_key.to_owned());
        self.feature_by_key.insert(lookup_key.to_owned(), s);
        s
    }

    pub(crate) fn create_customer(&mut self, email: &str, metadata: Metadata) -> String {
        let s = seq(self.customers.len());
        let created = self.clock.now();
        self.customers.push(Customer {
            email: email.to_owned(),
            metadata,
            created,
            deleted: false,
            subs: Vec::new(),
        });
        self.customer_index.insert(crate::model::key(created, s));
        let object = self.customer_json(s);
        self.auto_emit("customer.created", object, None);
        self.customer_id(s)
    }

    pub(crate) fn next_sub_seq(&self) -> u32 {
        seq(self.subs.len())
    }
    pub(crate) fn next_invoice_seq(&self) -> u32 {
        seq(self.invoices.len())
    }
    pub(crate) fn next_event_seq(&self) -> u32 {
        seq(self.events.len())
    }
}

/// Metadata from the `(key, value)` pairs the control API takes.
pub(crate) fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
