//! Access as ParityRail reasons about it: what Stripe says was paid
//! (expected) and what the app says the customer can use (observed).
//! Pure types and functions, no I/O (SPEC §4).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::stripe::model::SubscriptionItem;

/// What a plan-map rule matches on a subscription item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Selector {
    Price(String),
    Product(String),
    LookupKey(String),
}

/// One plan-map rule: items matching `selector` grant this plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRule {
    pub selector: Selector,
    pub plan: String,
    /// Orders plans: a higher rank is a higher plan (used to tell an upgrade
    /// from a downgrade). Rules of the same plan share a rank.
    pub rank: i64,
    pub features: BTreeSet<String>,
    pub limits: BTreeMap<String, i64>,
}

/// A project's plan map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanMap {
    pub rules: Vec<PlanRule>,
    /// Features are the customer's active Stripe entitlement lookup keys.
    pub use_entitlements: bool,
}

/// Per-project access policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// How long `past_due` keeps access after the first failed payment; 0 disables.
    pub past_due_grace_secs: i64,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        Self {
            past_due_grace_secs: 3 * 24 * 3600,
        }
    }
}

/// A subscription as the derivation needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionView {
    pub id: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    /// Unix seconds.
    pub current_period_end: Option<i64>,
    /// Unix seconds of the first failed payment of the current `past_due`
    /// spell (when ParityRail first saw it past due, or the failed invoice's time).
    pub past_due_since: Option<i64>,
    pub items: Vec<SubscriptionItem>,
}

/// Access a customer should have, or has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub active: bool,
    pub plan: Option<String>,
    pub features: BTreeSet<String>,
    pub limits: BTreeMap<String, i64>,
}

/// Expected access with the subscriptions that grant it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedAccess {
    #[serde(flatten)]
    pub access: Access,
    /// Rank of `access.plan` in the plan map, when it has one.
    pub plan_rank: Option<i64>,
    /// Ids of the subscriptions that grant access, sorted.
    pub granting: Vec<String>,
}

/// What the app probe answered for one customer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedAccess {
    /// `false` when the app has no such user (404 or `found:false`): no access.
    pub found: bool,
    #[serde(flatten)]
    pub access: Access,
    pub deploy_sha: Option<String>,
}
