//! Invoices: created by subscription billing, rendered with the dahlia
//! `parent.subscription_details` link to their subscription.

use serde_json::{Value, json};

use crate::model::{Invoice, InvoiceLine, InvoiceStatus, Status};
use crate::objects::{meta, null_address, opt, payment_method_options};
use crate::state::Store;

/// How long Stripe's smart retries wait before the next attempt, roughly.
pub(crate) const RETRY_AFTER_FAILURE: i64 = 3 * 86_400;

impl Store {
    pub(crate) fn create_invoice(
        &mut self,
        s: u32,
        paid: bool,
        billing_reason: &'static str,
    ) -> u32 {
        let now = self.clock.now();
        let sub = &self.subs[s as usize];
        let (period_start, period_end) = sub.period();
        let free_trial = sub.status == Status::Trialing && billing_reason == "subscription_create";
        let amount_due = if free_trial {
            0
        } else {
            sub.items
                .iter()
                .map(|i| self.prices[i.price as usize].unit_amount * i64::from(i.quantity))
                .sum()
        };
        let invoice = Invoice {
            sub: s,
            customer: sub.customer,
            status: if paid {
                InvoiceStatus::Paid
            } else {
                InvoiceStatus::Open
            },
            billing_reason,
            amount_due,
            created: now,
            period_start,
            period_end,
            attempt_count: u32::from(amount_due > 0),
            next_payment_attempt: (!paid).then_some(now + RETRY_AFTER_FAILURE),
            paid_at: paid.then_some(now),
            lines: sub
                .items
                .iter()
                .map(|i| InvoiceLine {
                    item: i.seq,
                    price: i.price,
                    quantity: i.quantity,
                })
                .collect(),
            sub_metadata: sub.metadata.clone(),
        };
        let i = self.next_invoice_seq();
        self.invoices.push(invoice);
        i
    }

    pub(crate) fn invoice_prefix(&self, c: u32) -> String {
        format!("{:07X}", c.wrapping_mul(2_654_435_761) & 0x0FFF_FFFF)
    }

    pub(crate) fn invoice_json(&self, i: u32) -> Value {
        let inv = &self.invoices[i as usize];
        let id = self.invoice_id(i);
        let sub_id = self.sub_id(inv.sub);
        let paid = inv.status == InvoiceStatus::Paid;
        let lines: Vec<Value> = inv
            .lines
            .iter()
            .enumerate()
            .map(|(n, line)| {
                let price = &self.prices[line.price as usize];
                let amount = price.unit_amount * i64::from(line.quantity);
                json!({
                    "id": self.line_id(i.wrapping_mul(16).wrapping_add(n as u32)),
                    "object": "line_item",
                    "amount": amount,
                    "currency": "usd",
                    "description": format!("{} × {}", line.quantity, self.products[price.product as usize].name),
                    "discount_amounts": [],
                    "discountable": true,
                    "discounts": [],
                    "invoice": id,
                    "livemode": self.livemode,
                    "metadata": meta(&inv.sub_metadata),
                    "parent": {
                        "invoice_item_details": null,
                        "subscription_item_details": {
                            "invoice_item": null,
                            "proration": false,
                            "proration_details": {"credited_items": null},
                            "subscription": sub_id,
                            "subscription_item": self.item_id(line.item)
                        },
                        "type": "subscription_item_details"
                    },
                    "period": {"start": inv.period_start, "end": inv.period_end},
                    "pretax_credit_amounts": [],
                    "pricing": {
                        "price_details": {"price": self.price_id(line.price), "product": self.product_id(price.product)},
                        "type": "price_details",
                        "unit_amount_decimal": price.unit_amount.to_string()
                    },
                    "quantity": line.quantity,
                    "quantity_decimal": line.quantity.to_string(),
                    "subtotal": amount,
                    "taxes": [],
                })
            })
            .collect();
        let amount_paid = if paid { inv.amount_due } else { 0 };
        let customer = &self.customers[inv.customer as usize];
        let base = if self.livemode {
            "https://invoice.stripe.com/i"
        } else {
            "https://invoice.stripe.com/i/test"
        };
        json!({
            "id": id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "ParityRail Simulator",
            "account_tax_ids": null,
            "amount_due": inv.amount_due,
            "amount_overpaid": 0,
            "amount_paid": amount_paid,
            "amount_remaining": inv.amount_due - amount_paid,
            "amount_shipping": 0,
            "application": null,
            "attempt_count": inv.attempt_count,
            "attempted": inv.attempt_count > 0,
            "auto_advance": !paid,
            "automatic_tax": {"enabled": false, "liability": {"type": "account"}, "status": null, "disabled_reason": null, "provider": null},
            "automatically_finalizes_at": null,
            "billing_reason": inv.billing_reason,
            "collection_method": "charge_automatically",
            "created": inv.created,
            "currency": "usd",
            "custom_fields": null,
            "customer": self.customer_id(inv.customer),
            "customer_account": null,
            "customer_address": null_address(),
            "customer_email": customer.email,
            "customer_name": null,
            "customer_phone": null,
            "customer_shipping": null,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": null,
            "default_source": null,
            "default_tax_rates": [],
            "description": null,
            "discounts": [],
            "due_date": null,
            "effective_at": inv.created,
            "ending_balance": 0,
            "footer": null,
            "from_invoice": null,
            "hosted_invoice_url": format!("{base}/{}/{id}", self.account_id),
            "invoice_pdf": format!("https://pay.stripe.com/invoice/{}/{id}/pdf", self.account_id),
            "issuer": {"type": "self"},
            "last_finalization_error": null,
            "latest_revision": null,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": false,
                "url": format!("/v1/invoices/{id}/lines"),
            },
            "livemode": self.livemode,
            "metadata": {},
            "next_payment_attempt": opt(inv.next_payment_attempt),
            "number": format!("{}-{:04}", self.invoice_prefix(inv.customer), i % 10_000 + 1),
            "on_behalf_of": null,
            "parent": {
                "quote_details": null,
                "subscription_details": {"metadata": meta(&inv.sub_metadata), "subscription": sub_id},
                "type": "subscription_details"
            },
            "payment_settings": {"default_mandate": null, "payment_method_options": payment_method_options(true), "payment_method_types": null},
            "period_end": inv.created,
            "period_start": inv.created,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": null,
            "rendering": {"amount_tax_display": null, "pdf": {"page_size": null}, "template": null, "template_version": null},
            "shipping_cost": null,
            "shipping_details": null,
            "starting_balance": 0,
            "statement_descriptor": null,
            "status": if paid { "paid" } else { "open" },
            "status_transitions": {
                "finalized_at": inv.created,
                "marked_uncollectible_at": null,
                "paid_at": opt(inv.paid_at),
                "voided_at": null
            },
            "subtotal": inv.amount_due,
            "subtotal_excluding_tax": inv.amount_due,
            "test_clock": null,
            "total": inv.amount_due,
            "total_discount_amounts": [],
            "total_excluding_tax": inv.amount_due,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": inv.created,
        })
    }
}
