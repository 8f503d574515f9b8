//! Entitlements: a customer's active features are those of the products of
//! its active, trialing and past_due subscriptions; every change emits
//! `entitlements.active_entitlement_summary.updated`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::state::Store;

impl Store {
    pub(crate) fn set_product_features(&mut self, product: &str, lookup_keys: &[&str]) {
        let p = self.expect_product(product);
        let mut features: Vec<u32> = lookup_keys.iter().map(|k| self.feature(k)).collect();
        features.sort_unstable();
        features.dedup();
        let affected: BTreeSet<u32> = self
            .subs
            .iter()
            .filter(|sub| sub.status.entitles())
            .filter(|sub| {
                sub.items
                    .iter()
                    .any(|i| self.prices[i.price as usize].product == p)
            })
            .map(|sub| sub.customer)
            .collect();
        let before: Vec<(u32, Vec<u32>)> = affected
            .into_iter()
            .map(|c| (c, self.entitled_features(c)))
            .collect();
        self.products[p as usize].features = features;
        for (c, before) in before {
            self.notify_entitlements(c, before);
        }
    }

    /// A customer's active features: those of the products of its active,
    /// trialing and past_due subscriptions, ordered by lookup key.
    pub(crate) fn entitled_features(&self, c: u32) -> Vec<u32> {
        let mut found: BTreeMap<&str, u32> = BTreeMap::new();
        for &s in &self.customers[c as usize].subs {
            let sub = &self.subs[s as usize];
            if !sub.status.entitles() {
                continue;
            }
            for item in &sub.items {
                let product = self.prices[item.price as usize].product;
                for &f in &self.products[product as usize].features {
                    found.insert(&self.features[f as usize], f);
                }
            }
        }
        found.into_values().collect()
    }

    pub(crate) fn notify_entitlements(&mut self, c: u32, before: Vec<u32>) {
        if !self.auto_events || self.entitled_features(c) == before {
            return;
        }
        let previous: Vec<Value> = before
            .iter()
            .map(|&f| self.entitlement_json(c, f))
            .collect();
        let object = self.entitlement_summary_json(c);
        self.emit(
            "entitlements.active_entitlement_summary.updated",
            object,
            Some(json!({ "entitlements": { "data": previous } })),
        );
    }

    /// Active entitlements of a customer, ordered by lookup key.
    pub(crate) fn active_entitlements(&self, c: u32) -> Vec<(u32, Value)> {
        self.entitled_features(c)
            .into_iter()
            .map(|f| (f, self.entitlement_json(c, f)))
            .collect()
    }

    /// One `entitlements.active_entitlement` (feature `f` of customer `c`).
    pub(crate) fn entitlement_json(&self, c: u32, f: u32) -> Value {
        json!({
            "id": self.entitlement_id(c, f),
            "object": "entitlements.active_entitlement",
            "feature": self.feature_id(f),
            "livemode": self.livemode,
            "lookup_key": self.features[f as usize],
        })
    }

    /// The `entitlements.active_entitlement_summary` object of a customer.
    pub(crate) fn entitlement_summary_json(&self, c: u32) -> Value {
        let data: Vec<Value> = self
            .active_entitlements(c)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let id = self.customer_id(c);
        json!({
            "object": "entitlements.active_entitlement_summary",
            "customer": id,
            "entitlements": {
                "object": "list",
                "data": data,
                "has_more": false,
                "url": format!("/v1/customer/{id}/entitlements"),
            },
            "livemode": self.livemode,
        })
    }
}
