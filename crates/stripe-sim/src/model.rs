//! Plain data held by the simulator and the ordered indexes lists page over.
//!
//! Objects live in `Vec`s indexed by their sequence number (see `ids`), so a
//! lookup by id is a decode plus an index. Lists page over `BTreeSet`s of
//! [`Key`]s, so one page costs O(log n + page) even with a million objects.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

/// Stripe's list order: newest `created` first, then newest id first.
pub(crate) type Key = (Reverse<i64>, Reverse<u32>);

pub(crate) fn key(created: i64, seq: u32) -> Key {
    (Reverse(created), Reverse(seq))
}

/// Metadata as a small sorted vector: a `BTreeMap` allocates a node for
/// eleven entries, which at a million subscriptions costs gigabytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Metadata(Vec<(String, String)>);

impl Metadata {
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        let i = self
            .0
            .binary_search_by(|(key, _)| key.as_str().cmp(k))
            .ok()?;
        Some(&self.0[i].1)
    }

    pub(crate) fn insert(&mut self, k: String, v: String) {
        match self.0.binary_search_by(|(key, _)| key.cmp(&k)) {
            Ok(i) => self.0[i].1 = v,
            Err(i) => self.0.insert(i, (k, v)),
        }
    }

    pub(crate) fn remove(&mut self, k: &str) -> Option<String> {
        let i = self
            .0
            .binary_search_by(|(key, _)| key.as_str().cmp(k))
            .ok()?;
        Some(self.0.remove(i).1)
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect();
        serde_json::Value::Object(map)
    }
}

impl FromIterator<(String, String)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Metadata {
        let mut m = Metadata::default();
        for (k, v) in pairs {
            m.insert(k, v);
        }
        m.0.shrink_to_fit();
        m
    }
}

/// Subscription statuses (Stripe's full set as of dahlia).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Status {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
}

impl Status {
    pub(crate) const ALL: [Status; 8] = [
        Status::Incomplete,
        Status::IncompleteExpired,
        Status::Trialing,
        Status::Active,
        Status::PastDue,
        Status::Canceled,
        Status::Unpaid,
        Status::Paused,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Incomplete => "incomplete",
            Status::IncompleteExpired => "incomplete_expired",
            Status::Trialing => "trialing",
            Status::Active => "active",
            Status::PastDue => "past_due",
            Status::Canceled => "canceled",
            Status::Unpaid => "unpaid",
            Status::Paused => "paused",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Statuses whose subscriptions grant the products' features.
    pub(crate) fn entitles(self) -> bool {
        matches!(self, Status::Active | Status::Trialing | Status::PastDue)
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// The `status` filter of `GET /v1/subscriptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusFilter {
    /// No `status` given: every subscription that has not been canceled.
    NotCanceled,
    All,
    /// `canceled` and `incomplete_expired`.
    Ended,
    Is(Status),
}

impl StatusFilter {
    pub(crate) fn parse(text: Option<&str>) -> Option<StatusFilter> {
        match text {
            None => Some(StatusFilter::NotCanceled),
            Some("all") => Some(StatusFilter::All),
            Some("ended") => Some(StatusFilter::Ended),
            Some(s) => Status::parse(s).map(StatusFilter::Is),
        }
    }

    pub(crate) fn matches(self, status: Status) -> bool {
        match self {
            StatusFilter::NotCanceled => status != Status::Canceled,
            StatusFilter::All => true,
            StatusFilter::Ended => matches!(status, Status::Canceled | Status::IncompleteExpired),
            StatusFilter::Is(s) => s == status,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Product {
    pub name: String,
    pub created: i64,
    /// Entitlement features (sequence numbers) attached to the product.
    pub features: Vec<u32>,
}

#[derive(Debug)]
pub(crate) struct Price {
    pub product: u32,
    pub lookup_key: Option<String>,
    pub unit_amount: i64,
    pub created: i64,
}

#[derive(Debug)]
pub(crate) struct Customer {
    pub email: String,
    pub metadata: Metadata,
    pub created: i64,
    pub deleted: bool,
    /// Sequence numbers of the customer's subscriptions.
    pub subs: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub seq: u32,
    pub price: u32,
    pub quantity: u32,
    pub created: i64,
    pub period_start: i64,
    pub period_end: i64,
}

#[derive(Debug)]
pub(crate) struct Subscription {
    pub customer: u32,
    pub status: Status,
    pub created: i64,
    pub items: Vec<Item>,
    /// Shared with the invoices that snapshot it; copied on write.
    pub metadata: Arc<Metadata>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub trial_start: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancellation_reason: Option<&'static str>,
    pub latest_invoice: Option<u32>,
}

impl Subscription {
    /// The period the subscription is in: the earliest item period end, as
    /// Stripe's `current_period_end` list filter defines it.
    pub(crate) fn period(&self) -> (i64, i64) {
        self.items
            .iter()
            .map(|i| (i.period_start, i.period_end))
            .min_by_key(|p| p.1)
            .unwrap_or((self.created, self.created))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvoiceStatus {
    Open,
    Paid,
}

#[derive(Debug)]
pub(crate) struct InvoiceLine {
    pub item: u32,
    pub price: u32,
    pub quantity: u32,
}

#[derive(Debug)]
pub(crate) struct Invoice {
    pub sub: u32,
    pub customer: u32,
    pub status: InvoiceStatus,
    pub billing_reason: &'static str,
    pub amount_due: i64,
    pub created: i64,
    pub period_start: i64,
    pub period_end: i64,
    pub attempt_count: u32,
    pub next_payment_attempt: Option<i64>,
    pub paid_at: Option<i64>,
    pub lines: Vec<InvoiceLine>,
    /// Snapshot of the subscription metadata at finalization, as Stripe keeps.
    pub sub_metadata: Arc<Metadata>,
}

/// Ordered indexes over subscriptions, one per `status` filter, so every
/// filter pages without scanning.
#[derive(Debug, Default)]
pub(crate) struct SubIndex {
    pub all: BTreeSet<Key>,
    pub not_canceled: BTreeSet<Key>,
    pub ended: BTreeSet<Key>,
    pub by_status: [BTreeSet<Key>; 8],
}

impl SubIndex {
    pub(crate) fn insert(&mut self, k: Key, status: Status) {
        self.all.insert(k);
        self.place(k, status, true);
    }

    pub(crate) fn change(&mut self, k: Key, old: Status, new: Status) {
        self.place(k, old, false);
        self.place(k, new, true);
    }

    fn place(&mut self, k: Key, status: Status, add: bool) {
        let mut sets = vec![&mut self.by_status[status.slot()]];
        if StatusFilter::NotCanceled.matches(status) {
            sets.push(&mut self.not_canceled);
        }
        if StatusFilter::Ended.matches(status) {
            sets.push(&mut self.ended);
        }
        for set in sets {
            if add {
                set.insert(k);
            } else {
                set.remove(&k);
            }
        }
    }

    pub(crate) fn for_filter(&self, filter: StatusFilter) -> &BTreeSet<Key> {
        match filter {
            StatusFilter::All => &self.all,
            StatusFilter::NotCanceled => &self.not_canceled,
            StatusFilter::Ended => &self.ended,
            StatusFilter::Is(s) => &self.by_status[s.slot()],
        }
    }
}

/// Where a list page starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cursor<K> {
    Start,
    After(K),
    Before(K),
}

/// One page of up to `limit` keys that pass `keep`, in list order, and
/// whether more exist beyond it in the direction of travel.
pub(crate) fn page<K: Ord + Copy>(
    set: &BTreeSet<K>,
    cursor: Cursor<K>,
    limit: usize,
    mut keep: impl FnMut(&K) -> bool,
) -> (Vec<K>, bool) {
    let mut found: Vec<K> = match cursor {
        Cursor::Start => set
            .iter()
            .filter(|k| keep(k))
            .take(limit + 1)
            .copied()
            .collect(),
        Cursor::After(c) => set
            .range((Bound::Excluded(c), Bound::Unbounded))
            .filter(|k| keep(k))
            .take(limit + 1)
            .copied()
            .collect(),
        // Stripe returns the `limit` objects right before the cursor, still
        // newest first; `has_more` then means "more, newer ones exist".
        Cursor::Before(c) => set
            .range(..c)
            .rev()
            .filter(|k| keep(k))
            .take(limit + 1)
            .copied()
            .collect(),
    };
    let has_more = found.len() > limit;
    found.truncate(limit);
    if matches!(cursor, Cursor::Before(_)) {
        found.reverse();
    }
    (found, has_more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_forward_and_backward() {
        let set: BTreeSet<Key> = (0..10u32).map(|s| key(i64::from(s / 3), s)).collect();
        let (first, more) = page(&set, Cursor::Start, 4, |_| true);
        assert!(more);
        assert_eq!(
            first.iter().map(|k| (k.1).0).collect::<Vec<_>>(),
            [9, 8, 7, 6]
        );
        let (next, _) = page(&set, Cursor::After(first[3]), 4, |_| true);
        assert_eq!(
            next.iter().map(|k| (k.1).0).collect::<Vec<_>>(),
            [5, 4, 3, 2]
        );
        let (back, more) = page(&set, Cursor::Before(next[0]), 2, |_| true);
        assert_eq!(back.iter().map(|k| (k.1).0).collect::<Vec<_>>(), [7, 6]);
        assert!(more);
    }

    #[test]
    fn index_follows_status_changes() {
        let mut ix = SubIndex::default();
        let k = key(1, 1);
        ix.insert(k, Status::Active);
        assert!(ix.not_canceled.contains(&k) && !ix.ended.contains(&k));
        ix.change(k, Status::Active, Status::Canceled);
        assert!(!ix.not_canceled.contains(&k) && ix.ended.contains(&k));
        assert!(
            ix.for_filter(StatusFilter::Is(Status::Canceled))
                .contains(&k)
        );
        assert!(!ix.for_filter(StatusFilter::Is(Status::Active)).contains(&k));
    }
}
