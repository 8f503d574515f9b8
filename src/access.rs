//! Access as ParityRail reasons about it: what Stripe says was paid
//! (expected) and what the app says the customer can use (observed).
//! Pure types and functions, no I/O (SPEC §4).

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet},
};

use serde::{Deserialize, Serialize};

use crate::domain::SubscriptionItem;

/// What a plan-map rule matches on a subscription item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Selector {
    Price(String),
    Product(String),
    LookupKey(String),
}

impl Selector {
    /// The stored and shown name of its kind and its value:
    /// `("price" | "product" | "lookup_key", value)`.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Self::Price(v) => ("price", v),
            Self::Product(v) => ("product", v),
            Self::LookupKey(v) => ("lookup_key", v),
        }
    }

    /// The selector named by [`parts`](Self::parts); `None` for another kind.
    pub fn from_parts(kind: &str, value: String) -> Option<Self> {
        match kind {
            "price" => Some(Self::Price(value)),
            "product" => Some(Self::Product(value)),
            "lookup_key" => Some(Self::LookupKey(value)),
            _ => None,
        }
    }
}

/// One plan-map rule: items matching `selector` grant this plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Unix seconds of the first failed payment of the unpaid latest
    /// invoice, as Stripe records it (SPEC §4); `None` when unknown.
    pub past_due_since: Option<i64>,
    pub items: Vec<SubscriptionItem>,
}

/// Access a customer should have, or has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Rank of `access.plan` in the plan map, when it has one (evidence;
    /// plans are ordered by [`PlanMap::order`]).
    pub plan_rank: Option<i64>,
    /// Ids of the subscriptions that grant access, sorted.
    pub granting: Vec<String>,
}

/// What the app probe answered for one customer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObservedAccess {
    /// `false` when the app has no such user (404 or `found:false`): no access.
    pub found: bool,
    #[serde(flatten)]
    pub access: Access,
    pub deploy_sha: Option<String>,
}

impl PlanMap {
    /// The rank of `plan` in this map (the highest, should rules disagree),
    /// or `None` when no rule grants it.
    pub fn rank_of(&self, plan: &str) -> Option<i64> {
        self.rules
            .iter()
            .filter(|r| r.plan == plan)
            .map(|r| r.rank)
            .max()
    }

    /// How plan `a` compares with plan `b` (SPEC §4): by rank when their
    /// ranks differ; otherwise (no `--rank` given, or equal ranks) the plan
    /// whose features and limits contain the other's is the higher one.
    /// `None` when they are incomparable: neither contains the other, or
    /// the map does not know one of them.
    pub fn order(&self, a: &str, b: &str) -> Option<Ordering> {
        if a == b {
            return Some(Ordering::Equal);
        }
        let (ra, rb) = (self.rank_of(a)?, self.rank_of(b)?);
        if ra != rb {
            return Some(ra.cmp(&rb));
        }
        let (ga, gb) = (self.grants(a), self.grants(b));
        match (contains(&gb, &ga), contains(&ga, &gb)) {
            (true, false) => Some(Ordering::Less),
            (false, true) => Some(Ordering::Greater),
            // Equal grants under two names, or neither within the other.
            _ => None,
        }
    }

    /// What the rules of `plan` grant together: their features, and per
    /// limit the largest value.
    fn grants(&self, plan: &str) -> Grants {
        let mut grants = Grants::default();
        for rule in self.rules.iter().filter(|r| r.plan == plan) {
            grants.features.extend(rule.features.iter().cloned());
            for (name, &value) in &rule.limits {
                let limit = grants.limits.entry(name.clone()).or_insert(value);
                *limit = (*limit).max(value);
            }
        }
        grants
    }
}

#[derive(Default)]
struct Grants {
    features: BTreeSet<String>,
    limits: BTreeMap<String, i64>,
}

/// Whether `outer` grants everything `inner` does: every feature, and
/// every limit at least as large.
fn contains(outer: &Grants, inner: &Grants) -> bool {
    inner.features.is_subset(&outer.features)
        && inner
            .limits
            .iter()
            .all(|(name, v)| outer.limits.get(name).is_some_and(|o| o >= v))
}

impl Selector {
    /// Whether this selector names the item's price, lookup key or product.
    pub fn matches(&self, item: &SubscriptionItem) -> bool {
        match self {
            Selector::Price(id) => item.price == *id,
            Selector::LookupKey(key) => item.lookup_key.as_deref() == Some(key.as_str()),
            Selector::Product(id) => item.product.as_deref() == Some(id.as_str()),
        }
    }

    /// Precedence when several rules match one item: a price is the most
    /// specific thing an item carries, a lookup key names one price across
    /// modes, a product groups many prices.
    fn precedence(&self) -> u8 {
        match self {
            Selector::Price(_) => 3,
            Selector::LookupKey(_) => 2,
            Selector::Product(_) => 1,
        }
    }
}

impl SubscriptionView {
    /// Whether this subscription grants access at `now` (unix seconds), SPEC §4.
    ///
    /// Boundaries: `past_due` access ends at exactly `past_due_since + grace`,
    /// and a cancelling subscription's at exactly `current_period_end`.
    ///
    /// Unknown statuses grant nothing: a status Stripe adds later should
    /// surface as a mismatch to look at, never as silently granted access.
    pub fn grants_access(&self, policy: &AccessPolicy, now: i64) -> bool {
        let by_status = match self.status.as_str() {
            "active" | "trialing" => true,
            // Without a known start we cannot have used up the grace yet, so
            // the spell is treated as starting now. Saturating: a far-future
            // `since` plus grace must not wrap into the past.
            "past_due" => {
                policy.past_due_grace_secs > 0
                    && self
                        .past_due_since
                        .is_none_or(|since| now < since.saturating_add(policy.past_due_grace_secs))
            }
            _ => false,
        };
        // A cancelling subscription is paid up to the period end; with the
        // end unknown we cannot say it has passed, so access stays.
        let cancelled_out =
            self.cancel_at_period_end && self.current_period_end.is_some_and(|end| now >= end);
        by_status && !cancelled_out
    }
}

/// Derives the access Stripe says a customer paid for (SPEC §4). Pure.
///
/// - Only subscriptions that [grant access](SubscriptionView::grants_access)
///   count; with none, access is *none* ([`ExpectedAccess::default`]), even in
///   entitlements mode: Stripe keeps entitlements a little after a
///   subscription ends, and expected access follows the subscriptions.
/// - Each item of a granting subscription uses the rules of its most specific
///   matching selector kind (price, then lookup key, then product); several
///   rules of that kind all apply, so rule order in the map never matters.
/// - Across all applied rules: the plan with the highest rank (ties: the
///   smallest name, for determinism), the union of features, and per limit
///   the largest value.
/// - Item quantity is ignored for now: limits come from the plan map only,
///   not from seats bought.
/// - With `map.use_entitlements`, features are exactly the given active
///   entitlement lookup keys (`None`, i.e. unreadable, gives no features):
///   Stripe's own statement of access wins over rule features, while plan and
///   limits still come from the rules.
/// - `active` is true when a subscription grants access, even if none of its
///   items is mapped (then plan is `None`): the customer paid for something.
pub fn expected_access(
    subscriptions: &[SubscriptionView],
    entitlements: Option<&[String]>,
    map: &PlanMap,
    policy: &AccessPolicy,
    now: i64,
) -> ExpectedAccess {
    let granting_subs: Vec<&SubscriptionView> = subscriptions
        .iter()
        .filter(|s| s.grants_access(policy, now))
        .collect();
    if granting_subs.is_empty() {
        return ExpectedAccess::default();
    }

    let rules: Vec<&PlanRule> = granting_subs
        .iter()
        .flat_map(|s| &s.items)
        .flat_map(|item| rules_for_item(map, item))
        .collect();

    let best = rules
        .iter()
        .max_by(|a, b| a.rank.cmp(&b.rank).then_with(|| b.plan.cmp(&a.plan)));
    let features = if map.use_entitlements {
        entitlements.unwrap_or_default().iter().cloned().collect()
    } else {
        rules
            .iter()
            .flat_map(|r| r.features.iter().cloned())
            .collect()
    };
    let mut limits: BTreeMap<String, i64> = BTreeMap::new();
    for (name, &value) in rules.iter().flat_map(|r| &r.limits) {
        limits
            .entry(name.clone())
            .and_modify(|v| *v = (*v).max(value))
            .or_insert(value);
    }
    let mut granting: Vec<String> = granting_subs.iter().map(|s| s.id.clone()).collect();
    granting.sort();
    granting.dedup();

    ExpectedAccess {
        access: Access {
            active: true,
            plan: best.map(|r| r.plan.clone()),
            features,
            limits,
        },
        plan_rank: best.map(|r| r.rank),
        granting,
    }
}

/// The rules that apply to one item: those of its most specific matching
/// selector kind.
fn rules_for_item<'a>(map: &'a PlanMap, item: &SubscriptionItem) -> Vec<&'a PlanRule> {
    let matching = || map.rules.iter().filter(|r| r.selector.matches(item));
    let Some(top) = matching().map(|r| r.selector.precedence()).max() else {
        return Vec::new();
    };
    matching()
        .filter(|r| r.selector.precedence() == top)
        .collect()
}

#[cfg(test)]
mod tests;
