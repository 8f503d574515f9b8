//! A Stripe subscription as ParityRail keeps it: the few fields expected
//! access needs, normalized across API versions by the Stripe client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One subscription, as read from Stripe at one moment.
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
    /// Unix seconds of the first failed payment of the unpaid latest invoice,
    /// as Stripe records it (SPEC §4: the `past_due` grace runs from it);
    /// `None` when the latest invoice is paid, absent or never attempted.
    #[serde(default)]
    pub unpaid_since: Option<i64>,
    /// The id of the latest invoice, for a scan to read it when a page
    /// shows the subscription `past_due`.
    #[serde(default)]
    pub latest_invoice: Option<String>,
}

/// One item of a subscription: what a plan-map rule matches on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionItem {
    pub price: String,
    pub product: Option<String>,
    pub lookup_key: Option<String>,
    pub quantity: Option<i64>,
}
