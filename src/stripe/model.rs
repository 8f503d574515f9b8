//! Narrow views of Stripe objects: only the fields expected access needs,
//! normalized across API versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::event::expandable_id;

#[derive(Debug, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Debug, Deserialize)]
struct RawSubscription {
    id: String,
    customer: Value,
    status: String,
    #[serde(default)]
    cancel_at_period_end: bool,
    /// Only before `2025-03-31.basil`; later versions carry periods on items.
    current_period_end: Option<i64>,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    items: List<RawItem>,
}

#[derive(Debug, Deserialize)]
struct RawItem {
    price: RawPrice,
    quantity: Option<i64>,
    current_period_end: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct RawPrice {
    id: String,
    product: Value,
    lookup_key: Option<String>,
}

/// One subscription as ParityRail keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    /// The latest period end over the items (or the subscription's own before basil).
    pub current_period_end: Option<i64>,
    pub created: i64,
    pub metadata: BTreeMap<String, String>,
    pub items: Vec<SubscriptionItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionItem {
    pub price: String,
    pub product: Option<String>,
    pub lookup_key: Option<String>,
    pub quantity: Option<i64>,
}

impl Subscription {
    /// Parses a subscription object of any supported API version.
    pub fn from_value(value: Value) -> Result<Self, serde_json::Error> {
        let raw: RawSubscription = serde_json::from_value(value)?;
        let item_period = raw
            .items
            .data
            .iter()
            .filter_map(|i| i.current_period_end)
            .max();
        Ok(Self {
            customer: expandable_id(Some(&raw.customer)).unwrap_or_default(),
            current_period_end: item_period.or(raw.current_period_end),
            id: raw.id,
            status: raw.status,
            cancel_at_period_end: raw.cancel_at_period_end,
            created: raw.created,
            metadata: raw.metadata,
            items: raw
                .items
                .data
                .into_iter()
                .map(|i| SubscriptionItem {
                    product: expandable_id(Some(&i.price.product)),
                    price: i.price.id,
                    lookup_key: i.price.lookup_key,
                    quantity: i.quantity,
                })
                .collect(),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ActiveEntitlement {
    pub lookup_key: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub id: String,
}

/// Everything read from Stripe about one customer, at one moment.
#[derive(Debug, Clone)]
pub struct CustomerSnapshot {
    pub customer_id: String,
    pub deleted: bool,
    pub metadata: BTreeMap<String, String>,
    pub subscriptions: Vec<Subscription>,
    /// Active entitlement lookup keys; `None` when the key may not read them.
    pub entitlements: Option<Vec<String>>,
    /// Unix milliseconds when the read started; orders snapshots.
    pub read_at_ms: i64,
}

impl CustomerSnapshot {
    /// SPEC §3: subscription metadata, then customer metadata, then the user
    /// ParityRail already knows for this customer (for example from the app's
    /// `/list`), then (unless the project requires an explicit mapping) the
    /// Stripe customer id.
    pub fn app_user(
        &self,
        key: &str,
        require_mapping: bool,
        known: Option<&str>,
    ) -> Option<String> {
        let mut subs: Vec<&Subscription> = self.subscriptions.iter().collect();
        // Newest subscription first, so a re-subscribed customer maps by its latest metadata.
        subs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        subs.iter()
            .find_map(|s| s.metadata.get(key).filter(|v| !v.is_empty()).cloned())
            .or_else(|| self.metadata.get(key).filter(|v| !v.is_empty()).cloned())
            .or_else(|| {
                known
                    .filter(|k| !k.is_empty() && *k != self.customer_id)
                    .map(str::to_string)
            })
            .or_else(|| (!require_mapping).then(|| self.customer_id.clone()))
    }
}
