//! Narrow views of Stripe objects: only the fields expected access needs,
//! normalized across API versions into the domain's [`Subscription`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::event::expandable_id;
use crate::domain::{Subscription, SubscriptionItem};

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
    /// An id, or the invoice itself when expanded.
    #[serde(default)]
    latest_invoice: Value,
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

/// The invoice fields that say whether, and since when, it is unpaid.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawInvoice {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    attempt_count: i64,
    #[serde(default)]
    created: Option<i64>,
    #[serde(default)]
    status_transitions: Option<StatusTransitions>,
}

#[derive(Debug, Default, Deserialize)]
struct StatusTransitions {
    finalized_at: Option<i64>,
}

impl RawInvoice {
    /// When the first payment of this invoice failed, if it is unpaid
    /// (`open`) and was attempted. A subscription invoice charged
    /// automatically is first attempted when Stripe finalizes it, so that
    /// is `status_transitions.finalized_at` (its `created` when absent).
    pub fn unpaid_since(&self) -> Option<i64> {
        (self.status.as_deref() == Some("open") && self.attempt_count > 0)
            .then(|| {
                self.status_transitions
                    .as_ref()
                    .and_then(|t| t.finalized_at)
                    .or(self.created)
            })
            .flatten()
    }
}

/// Parses a subscription object of any supported API version. With
/// `latest_invoice` expanded, `unpaid_since` is Stripe's record of the
/// first failed payment; unexpanded it stays `None` (the invoice id is kept
/// for a separate read).
pub fn parse_subscription(value: Value) -> Result<Subscription, serde_json::Error> {
    let raw: RawSubscription = serde_json::from_value(value)?;
    let item_period = raw
        .items
        .data
        .iter()
        .filter_map(|i| i.current_period_end)
        .max();
    let (unpaid_since, invoice_id) = match raw.latest_invoice {
        Value::Object(_) => {
            let id = expandable_id(Some(&raw.latest_invoice));
            let invoice: RawInvoice = serde_json::from_value(raw.latest_invoice)?;
            (invoice.unpaid_since(), id)
        }
        other => (None, expandable_id(Some(&other))),
    };
    let sub = Subscription {
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
        unpaid_since,
        latest_invoice: invoice_id,
    };
    Ok(sub)
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
    /// Active entitlement lookup keys; `None` when not read (the project
    /// does not use Entitlements).
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sub(latest_invoice: Value) -> Value {
        json!({"id": "sub_1", "customer": "cus_1", "status": "past_due", "items": {"data": []},
            "latest_invoice": latest_invoice})
    }

    #[test]
    fn unpaid_since_is_the_open_invoices_first_attempt() {
        let open = json!({"id": "in_1", "status": "open", "attempt_count": 2, "created": 100,
            "status_transitions": {"finalized_at": 160}});
        let s = parse_subscription(sub(open)).unwrap();
        assert_eq!(
            (s.unpaid_since, s.latest_invoice.as_deref()),
            (Some(160), Some("in_1"))
        );
        let no_transitions =
            json!({"id": "in_2", "status": "open", "attempt_count": 1, "created": 100});
        assert_eq!(
            parse_subscription(sub(no_transitions))
                .unwrap()
                .unpaid_since,
            Some(100)
        );
        for settled in [
            json!({"id": "in_3", "status": "paid", "attempt_count": 1, "created": 100}),
            json!({"id": "in_4", "status": "open", "attempt_count": 0, "created": 100}),
            json!("in_5"),
            Value::Null,
        ] {
            assert_eq!(parse_subscription(sub(settled)).unwrap().unpaid_since, None);
        }
        let unexpanded = parse_subscription(sub(json!("in_5"))).unwrap();
        assert_eq!(unexpanded.latest_invoice.as_deref(), Some("in_5"));
    }
}
