//! The app's own user store: one compact entry per Stripe customer, with the
//! few distinct grants (plan, features, limits) interned so a million users
//! fit in well under 200 MB.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use serde_json::{Value, json};

/// What a user can use. Shared by every user with the same access.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Grant {
    pub active: bool,
    pub plan: Option<String>,
    /// Sorted, deduplicated.
    pub features: Vec<String>,
    /// Sorted by name, one value per name.
    pub limits: Vec<(String, i64)>,
}

impl Grant {
    /// The state after `revoke`: the user exists with no access.
    pub fn revoked() -> Self {
        Grant {
            active: false,
            plan: None,
            features: Vec::new(),
            limits: Vec::new(),
        }
    }
}

struct Entry {
    user: Box<str>,
    grant: u32,
}

/// Users keyed by Stripe customer id; ordered, so `/list` pages by id.
#[derive(Default)]
pub(crate) struct Store {
    users: BTreeMap<Box<str>, Entry>,
    grants: Vec<Grant>,
    grant_ids: HashMap<Grant, u32>,
}

/// How the app renders answers: correct, or deliberately malformed.
#[derive(Clone, Copy)]
pub(crate) struct Render<'a> {
    pub deploy_sha: &'a str,
    /// Sends `features` as a comma-separated string instead of an array.
    pub wrong: bool,
}

impl Store {
    fn intern(&mut self, grant: Grant) -> u32 {
        if let Some(id) = self.grant_ids.get(&grant) {
            return *id;
        }
        let id = u32::try_from(self.grants.len()).expect("fewer than 2^32 distinct grants");
        self.grants.push(grant.clone());
        self.grant_ids.insert(grant, id);
        id
    }

    /// Creates or replaces the user of `customer`.
    pub fn put(&mut self, customer: &str, user: &str, grant: Grant) {
        let grant = self.intern(grant);
        let entry = Entry {
            user: user.into(),
            grant,
        };
        self.users.insert(customer.into(), entry);
    }

    /// Keeps the user but takes all access away; unknown customers are ignored.
    pub fn revoke(&mut self, customer: &str) {
        let grant = self.intern(Grant::revoked());
        if let Some(entry) = self.users.get_mut(customer) {
            entry.grant = grant;
        }
    }

    pub fn remove(&mut self, customer: &str) {
        self.users.remove(customer);
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// The answer for one customer; `None` when the app has no such user, or
    /// the caller named a different user than the one the app has.
    pub fn answer(&self, customer: &str, user: &str, render: Render<'_>) -> Option<Value> {
        let entry = self.users.get(customer)?;
        if !user.is_empty() && *entry.user != *user {
            return None;
        }
        Some(self.render(customer, entry, render))
    }

    /// Up to `size` users with active access after `cursor`, and the cursor
    /// of the next page when there is one.
    pub fn page(
        &self,
        cursor: Option<&str>,
        size: usize,
        render: Render<'_>,
    ) -> (Vec<Value>, Option<String>) {
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let mut active = self
            .users
            .range::<str, _>((start, Bound::Unbounded))
            .filter(|(_, entry)| self.grants[entry.grant as usize].active)
            .peekable();
        let mut data = Vec::new();
        let mut last = None;
        while data.len() < size.max(1) {
            let Some((customer, entry)) = active.next() else {
                break;
            };
            data.push(self.render(customer, entry, render));
            last = Some(customer.to_string());
        }
        let next = active.peek().is_some().then_some(last).flatten();
        (data, next)
    }

    fn render(&self, customer: &str, entry: &Entry, render: Render<'_>) -> Value {
        let grant = &self.grants[entry.grant as usize];
        let limits: serde_json::Map<String, Value> = grant
            .limits
            .iter()
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        let features = if render.wrong {
            json!(grant.features.join(","))
        } else {
            json!(grant.features)
        };
        json!({
            "customer": customer,
            "user": &*entry.user,
            "plan": grant.plan,
            "features": features,
            "limits": limits,
            "active": grant.active,
            "deploy_sha": render.deploy_sha,
        })
    }
}
