//! What Stripe does as time passes, applied when the clock moves
//! ([`crate::StripeSim::pass_time`]): trials end, periods renew (or end,
//! when cancelled at period end), and failed payments are retried until
//! Stripe gives up and does what the account's setting says
//! ([`AfterFailedRetries`]).

use serde_json::{Map, Value, json};

use crate::clock::add_month;
use crate::model::{InvoiceStatus, Status};
use crate::objects::Expand;
use crate::state::Store;
use crate::{StripeSim, SubscriptionChange};

/// Payment attempts before Stripe gives up on a past_due subscription (its
/// default retry schedule: the first attempt and three retries).
pub(crate) const MAX_PAYMENT_ATTEMPTS: u32 = 4;

/// Stripe's account setting "if all retries for a payment fail".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailedRetries {
    /// Cancel the subscription (Stripe's default).
    Cancel,
    /// Mark it `unpaid`: it stays, the invoice stays open, no more attempts.
    MarkUnpaid,
    /// Leave it `past_due`, with no more attempts.
    LeavePastDue,
}

impl StripeSim {
    /// What [`StripeSim::pass_time`] does once a subscription's payment
    /// retries run out (default: cancel).
    pub fn set_after_failed_retries(&self, outcome: AfterFailedRetries) {
        self.store_mut().after_failed_retries = outcome;
    }
}

impl Store {
    /// Lets time pass to `target`, stepping the clock to each due
    /// transition in turn, so a retry three days after a failure happens
    /// three days after it, however far the clock jumps.
    pub(crate) fn pass_time_to(&mut self, target: i64) {
        // A subscription crosses at most a few transitions a month.
        for _ in 0..100_000 {
            let Some((t, s)) = (0..self.subs.len() as u32)
                .filter_map(|s| self.due_at(s).map(|t| (t, s)))
                .filter(|(t, _)| *t <= target)
                .min()
            else {
                break;
            };
            let now = self.clock.now();
            if t > now {
                self.clock.advance(t - now);
            }
            self.transition(s);
        }
        let now = self.clock.now();
        if target > now {
            self.clock.advance(target - now);
        }
    }

    /// When subscription `s`'s next transition is due, if it has one.
    fn due_at(&self, s: u32) -> Option<i64> {
        let sub = &self.subs[s as usize];
        match sub.status {
            Status::Trialing => sub.trial_end,
            Status::PastDue | Status::Unpaid => {
                let invoice = &self.invoices[sub.latest_invoice? as usize];
                (invoice.status == InvoiceStatus::Open)
                    .then_some(invoice.next_payment_attempt)
                    .flatten()
            }
            Status::Active => Some(sub.period().1),
            _ => None,
        }
    }

    /// Applies subscription `s`'s due transition.
    fn transition(&mut self, s: u32) {
        let id = self.sub_id(s);
        let sub = &self.subs[s as usize];
        match sub.status {
            Status::Trialing => self.update_subscription(
                &id,
                SubscriptionChange {
                    status: Some("active".into()),
                    ..SubscriptionChange::default()
                },
            ),
            Status::PastDue | Status::Unpaid => {
                let attempts = sub
                    .latest_invoice
                    .map_or(0, |i| self.invoices[i as usize].attempt_count);
                if attempts >= MAX_PAYMENT_ATTEMPTS {
                    self.give_up(s, &id);
                } else {
                    self.fail_invoice_payment(&id);
                }
            }
            Status::Active if sub.cancel_at_period_end => self.cancel_subscription(&id),
            Status::Active => self.renew(s),
            _ => {}
        }
    }

    /// The payment retries of `s` ran out.
    fn give_up(&mut self, s: u32, id: &str) {
        if self.after_failed_retries == AfterFailedRetries::Cancel {
            return self.cancel_subscription(id);
        }
        if let Some(i) = self.subs[s as usize].latest_invoice {
            self.invoices[i as usize].next_payment_attempt = None;
        }
        if self.after_failed_retries == AfterFailedRetries::MarkUnpaid {
            self.update_subscription(
                id,
                SubscriptionChange {
                    status: Some("unpaid".into()),
                    ..SubscriptionChange::default()
                },
            );
        }
    }

    /// A new period: every item moves one month on, a paid invoice goes
    /// out, and the subscription's update names the old period.
    fn renew(&mut self, s: u32) {
        let (old_start, old_end) = self.subs[s as usize].period();
        for item in &mut self.subs[s as usize].items {
            item.period_start = item.period_end;
            item.period_end = add_month(item.period_end);
        }
        let invoice = self.create_invoice(s, true, "subscription_cycle");
        let previous = self.subs[s as usize].latest_invoice;
        self.subs[s as usize].latest_invoice = Some(invoice);
        if self.auto_events {
            let object = self.invoice_json(invoice);
            self.emit("invoice.paid", object, None);
            let mut prev = Map::new();
            prev.insert(
                "latest_invoice".into(),
                previous.map_or(Value::Null, |i| self.invoice_id(i).into()),
            );
            prev.insert(
                "items".into(),
                json!({"current_period_start": old_start, "current_period_end": old_end}),
            );
            let object = self.subscription_json(s, Expand::default());
            self.emit(
                "customer.subscription.updated",
                object,
                Some(Value::Object(prev)),
            );
        }
    }
}
