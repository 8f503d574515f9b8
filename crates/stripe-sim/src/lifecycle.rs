//! Subscription lifecycle and entitlements: the state changes the control
//! API drives, each emitting the events Stripe would send for it.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::clock::add_month;
use crate::invoices::RETRY_AFTER_FAILURE;
use crate::model::{InvoiceStatus, Item, Metadata, Status, Subscription, key};
use crate::objects::Expand;
use crate::state::Store;

/// A change for [`crate::StripeSim::update_subscription`]; `None` fields stay
/// as they are.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChange {
    /// New status. `"canceled"` cancels immediately and emits
    /// `customer.subscription.deleted` (as Stripe does) instead of `.updated`.
    pub status: Option<String>,
    /// Replaces the items: one item per price; items whose price stays keep
    /// their id and period, new prices get new items in the current period.
    pub prices: Option<Vec<String>>,
    /// Schedules (`true`: `cancel_at` = period end, `canceled_at` = now) or
    /// unschedules a cancellation at the end of the period.
    pub cancel_at_period_end: Option<bool>,
    /// Merged into the metadata like Stripe's update: an empty value
    /// removes the key.
    pub metadata: Option<Vec<(String, String)>>,
}

fn parse_status(text: &str) -> Status {
    Status::parse(text)
        .unwrap_or_else(|| panic!("stripe-sim: unknown subscription status {text:?}"))
}

fn opt(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

impl Store {
    fn next_item(&mut self) -> u32 {
        let s = self.next_item;
        self.next_item += 1;
        s
    }

    fn set_status(&mut self, s: u32, new: Status) {
        let sub = &mut self.subs[s as usize];
        self.sub_index.change(key(sub.created, s), sub.status, new);
        sub.status = new;
    }

    pub(crate) fn create_subscription(
        &mut self,
        customer: &str,
        prices: &[&str],
        status: &str,
        metadata: Metadata,
    ) -> String {
        let c = self.expect_customer(customer);
        let status = parse_status(status);
        let prices: Vec<u32> = prices.iter().map(|p| self.expect_price(p)).collect();
        let now = self.clock.now();
        let end = add_month(now);
        let items = prices
            .into_iter()
            .map(|price| Item {
                seq: self.next_item(),
                price,
                quantity: 1,
                created: now,
                period_start: now,
                period_end: end,
            })
            .collect();
        let before = self.entitled_features(c);
        let trial = (status == Status::Trialing).then_some((now, end));
        let ended = matches!(status, Status::Canceled | Status::IncompleteExpired).then_some(now);
        let canceled = status == Status::Canceled;
        let s = self.next_sub_seq();
        self.subs.push(Subscription {
            customer: c,
            status,
            created: now,
            items,
            metadata: Arc::new(metadata),
            cancel_at_period_end: false,
            cancel_at: None,
            canceled_at: canceled.then_some(now),
            ended_at: ended,
            trial_start: trial.map(|t| t.0),
            trial_end: trial.map(|t| t.1),
            cancellation_reason: canceled.then_some("cancellation_requested"),
            latest_invoice: None,
        });
        self.customers[c as usize].subs.push(s);
        self.sub_index.insert(key(now, s), status);
        let paid = !matches!(
            status,
            Status::Incomplete | Status::IncompleteExpired | Status::PastDue | Status::Unpaid
        );
        let invoice = self.create_invoice(s, paid, "subscription_create");
        self.subs[s as usize].latest_invoice = Some(invoice);
        if self.auto_events {
            let object = self.subscription_json(s, Expand::default());
            self.emit("customer.subscription.created", object, None);
            if status == Status::Active {
                let object = self.invoice_json(invoice);
                self.emit("invoice.paid", object, None);
            }
        }
        self.notify_entitlements(c, before);
        self.sub_id(s)
    }

    pub(crate) fn update_subscription(&mut self, id: &str, change: SubscriptionChange) {
        let s = self.expect_sub(id);
        let c = self.subs[s as usize].customer;
        let now = self.clock.now();
        let before = self.entitled_features(c);
        let mut prev = Map::new();
        if let Some(prices) = change.prices {
            self.replace_items(s, &prices, now, &mut prev);
        }
        if let Some(flag) = change.cancel_at_period_end {
            let sub = &mut self.subs[s as usize];
            if sub.cancel_at_period_end != flag {
                prev.insert(
                    "cancel_at_period_end".into(),
                    json!(sub.cancel_at_period_end),
                );
                prev.insert("cancel_at".into(), opt(sub.cancel_at));
                prev.insert("canceled_at".into(), opt(sub.canceled_at));
                prev.insert(
                    "cancellation_details".into(),
                    json!({ "reason": sub.cancellation_reason }),
                );
                sub.cancel_at_period_end = flag;
                let end = sub.period().1;
                sub.cancel_at = flag.then_some(end);
                sub.canceled_at = flag.then_some(now);
                sub.cancellation_reason = flag.then_some("cancellation_requested");
            }
        }
        if let Some(pairs) = change.metadata {
            merge_metadata(
                Arc::make_mut(&mut self.subs[s as usize].metadata),
                pairs,
                &mut prev,
            );
        }
        let mut cancel_now = false;
        if let Some(status) = change.status {
            let new = parse_status(&status);
            let old = self.subs[s as usize].status;
            if new == Status::Canceled {
                cancel_now = old != Status::Canceled;
            } else if new != old {
                if new == Status::Active {
                    self.settle_payment(s, old, &mut prev);
                }
                if new == Status::Trialing {
                    let sub = &mut self.subs[s as usize];
                    let (start, end) = sub.period();
                    sub.trial_start.get_or_insert(start);
                    sub.trial_end.get_or_insert(end);
                }
                self.set_status(s, new);
                prev.insert("status".into(), json!(old.as_str()));
            }
        }
        if !prev.is_empty() && self.auto_events {
            let object = self.subscription_json(s, Expand::default());
            self.emit(
                "customer.subscription.updated",
                object,
                Some(Value::Object(prev)),
            );
        }
        if cancel_now {
            self.cancel_inner(s);
        }
        self.notify_entitlements(c, before);
    }

    fn replace_items(
        &mut self,
        s: u32,
        prices: &[String],
        now: i64,
        prev: &mut Map<String, Value>,
    ) {
        let prices: Vec<u32> = prices.iter().map(|p| self.expect_price(p)).collect();
        let old = self.subs[s as usize].items.clone();
        let (start, end) = self.subs[s as usize].period();
        let mut items: Vec<Item> = Vec::with_capacity(prices.len());
        for price in prices {
            let kept = old
                .iter()
                .find(|i| i.price == price && !items.iter().any(|n| n.seq == i.seq));
            let item = match kept {
                Some(i) => i.clone(),
                None => Item {
                    seq: self.next_item(),
                    price,
                    quantity: 1,
                    created: now,
                    period_start: start,
                    period_end: end,
                },
            };
            items.push(item);
        }
        if items != old {
            // "If an array attribute has any updated elements, this object
            // contains the entire array": the whole old list goes in.
            prev.insert("items".into(), self.items_json(s, &old, Expand::default()));
            self.subs[s as usize].items = items;
        }
    }

    /// Moving to `active` means a payment went through: the open invoice of
    /// a failed renewal is paid, otherwise (trial end, resume) a new cycle
    /// invoice is; either way `invoice.paid` goes out before the update.
    fn settle_payment(&mut self, s: u32, old: Status, prev: &mut Map<String, Value>) {
        let now = self.clock.now();
        let latest = self.subs[s as usize].latest_invoice;
        let open = latest.filter(|&i| self.invoices[i as usize].status == InvoiceStatus::Open);
        let invoice = match open {
            Some(i) if matches!(old, Status::PastDue | Status::Unpaid | Status::Incomplete) => {
                let inv = &mut self.invoices[i as usize];
                inv.status = InvoiceStatus::Paid;
                inv.attempt_count += 1;
                inv.paid_at = Some(now);
                inv.next_payment_attempt = None;
                i
            }
            _ => self.create_invoice(s, true, "subscription_cycle"),
        };
        if latest != Some(invoice) {
            prev.insert(
                "latest_invoice".into(),
                latest.map_or(Value::Null, |i| self.invoice_id(i).into()),
            );
            self.subs[s as usize].latest_invoice = Some(invoice);
        }
        if self.auto_events {
            let object = self.invoice_json(invoice);
            self.emit("invoice.paid", object, None);
        }
    }

    /// Cancels now; `false` if it already was canceled.
    fn cancel_inner(&mut self, s: u32) -> bool {
        if self.subs[s as usize].status == Status::Canceled {
            return false;
        }
        let now = self.clock.now();
        self.set_status(s, Status::Canceled);
        let sub = &mut self.subs[s as usize];
        sub.canceled_at.get_or_insert(now);
        sub.ended_at = Some(now);
        sub.cancellation_reason
            .get_or_insert("cancellation_requested");
        if self.auto_events {
            let object = self.subscription_json(s, Expand::default());
            self.emit("customer.subscription.deleted", object, None);
        }
        true
    }

    pub(crate) fn cancel_subscription(&mut self, id: &str) {
        let s = self.expect_sub(id);
        let c = self.subs[s as usize].customer;
        let before = self.entitled_features(c);
        self.cancel_inner(s);
        self.notify_entitlements(c, before);
    }

    pub(crate) fn fail_invoice_payment(&mut self, id: &str) {
        let s = self.expect_sub(id);
        let c = self.subs[s as usize].customer;
        let now = self.clock.now();
        let before = self.entitled_features(c);
        let latest = self.subs[s as usize].latest_invoice;
        let open = latest.filter(|&i| self.invoices[i as usize].status == InvoiceStatus::Open);
        let invoice = match open {
            Some(i) => {
                let inv = &mut self.invoices[i as usize];
                inv.attempt_count += 1;
                inv.next_payment_attempt = Some(now + RETRY_AFTER_FAILURE);
                i
            }
            None => self.create_invoice(s, false, "subscription_cycle"),
        };
        if self.auto_events {
            let object = self.invoice_json(invoice);
            self.emit("invoice.payment_failed", object, None);
        }
        let mut prev = Map::new();
        if latest != Some(invoice) {
            prev.insert(
                "latest_invoice".into(),
                latest.map_or(Value::Null, |i| self.invoice_id(i).into()),
            );
            self.subs[s as usize].latest_invoice = Some(invoice);
        }
        let old = self.subs[s as usize].status;
        if old != Status::PastDue {
            prev.insert("status".into(), json!(old.as_str()));
            self.set_status(s, Status::PastDue);
        }
        if !prev.is_empty() && self.auto_events {
            let object = self.subscription_json(s, Expand::default());
            self.emit(
                "customer.subscription.updated",
                object,
                Some(Value::Object(prev)),
            );
        }
        self.notify_entitlements(c, before);
    }

    /// Deleting a customer in Stripe cancels its subscriptions at once.
    pub(crate) fn delete_customer(&mut self, id: &str) {
        let c = self.expect_customer(id);
        if self.customers[c as usize].deleted {
            return;
        }
        let before = self.entitled_features(c);
        for s in self.customers[c as usize].subs.clone() {
            self.cancel_inner(s);
        }
        self.notify_entitlements(c, before);
        let object = self.auto_events.then(|| self.live_customer_json(c));
        let customer = &mut self.customers[c as usize];
        customer.deleted = true;
        self.customer_index.remove(&key(customer.created, c));
        if let Some(object) = object {
            self.emit("customer.deleted", object, None);
        }
    }
}

/// Stripe's metadata update: set keys, empty value unsets; the previous
/// attributes name only the keys that changed (null where one was added).
fn merge_metadata(
    metadata: &mut Metadata,
    pairs: Vec<(String, String)>,
    prev: &mut Map<String, Value>,
) {
    let mut changed = Map::new();
    for (k, v) in pairs {
        let old = metadata.get(&k).map(str::to_owned);
        if v.is_empty() {
            if let Some(old) = old {
                metadata.remove(&k);
                changed.insert(k, Value::from(old));
            }
        } else if old.as_deref() != Some(v.as_str()) {
            changed.insert(k.clone(), old.map_or(Value::Null, Value::from));
            metadata.insert(k, v);
        }
    }
    if !changed.is_empty() {
        prev.insert("metadata".into(), Value::Object(changed));
    }
}
