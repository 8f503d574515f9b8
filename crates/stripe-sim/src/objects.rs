//! Renders stored objects as Stripe JSON, in the `2026-07-29.dahlia` shape
//! of the fixtures in `shared/stripe` (subscription periods on items,
//! invoices linked through `parent.subscription_details`).

use serde_json::{Value, json};

use crate::model::{Item, Metadata};
use crate::state::Store;

/// Which expandable fields to render as objects instead of ids.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Expand {
    pub product: bool,
    pub customer: bool,
    pub latest_invoice: bool,
}

impl Expand {
    /// Reads `expand[]` paths; list endpoints prefix them with `data.`.
    pub(crate) fn parse<'a>(paths: impl IntoIterator<Item = &'a str>, list: bool) -> Expand {
        let mut e = Expand::default();
        for path in paths {
            let path = if list {
                match path.strip_prefix("data.") {
                    Some(p) => p,
                    None => continue,
                }
            } else {
                path
            };
            match path {
                "items.data.price.product" => e.product = true,
                "customer" => e.customer = true,
                "latest_invoice" => e.latest_invoice = true,
                _ => {}
            }
        }
        e
    }
}

pub(crate) fn opt(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

pub(crate) fn meta(m: &Metadata) -> Value {
    m.to_json()
}

/// Per-method payment options as the dahlia fixtures carry them; the
/// invoice variant has `pix.amount_includes_iof` and no `card.network`.
pub(crate) fn payment_method_options(invoice: bool) -> Value {
    let mut options = json!({
        "acss_debit": {},
        "bancontact": {"preferred_language": "fr"},
        "card": {"network": null, "request_three_d_secure": null},
        "customer_balance": {"funding_type": null},
        "konbini": {},
        "sepa_debit": {},
        "us_bank_account": {},
        "payto": {},
        "pix": {},
        "upi": {}
    });
    if invoice {
        options["card"] = json!({"request_three_d_secure": null});
        options["pix"] = json!({"amount_includes_iof": null});
    }
    options
}

pub(crate) fn null_address() -> Value {
    json!({"city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null})
}

impl Store {
    pub(crate) fn account_json(&self) -> Value {
        json!({
            "id": self.account_id,
            "object": "account",
            "business_profile": {"name": "ParityRail Simulator", "url": null, "support_email": null},
            "business_type": "company",
            "capabilities": {"card_payments": "active", "transfers": "active"},
            "charges_enabled": true,
            "country": "US",
            "created": 1_700_000_000,
            "default_currency": "usd",
            "details_submitted": true,
            "email": "sim@example.com",
            "metadata": {},
            "payouts_enabled": true,
            "settings": {"dashboard": {"display_name": "ParityRail Simulator", "timezone": "Etc/UTC"}},
            "type": "standard",
        })
    }

    pub(crate) fn product_json(&self, p: u32) -> Value {
        let product = &self.products[p as usize];
        json!({
            "id": self.product_id(p),
            "object": "product",
            "active": true,
            "created": product.created,
            "default_price": null,
            "description": null,
            "images": [],
            "livemode": self.livemode,
            "marketing_features": [],
            "metadata": {},
            "name": product.name,
            "package_dimensions": null,
            "shippable": null,
            "statement_descriptor": null,
            "tax_code": null,
            "type": "service",
            "unit_label": null,
            "updated": product.created,
            "url": null,
        })
    }

    pub(crate) fn price_json(&self, p: u32, expand_product: bool) -> Value {
        let price = &self.prices[p as usize];
        let product = if expand_product {
            self.product_json(price.product)
        } else {
            Value::from(self.product_id(price.product))
        };
        json!({
            "id": self.price_id(p),
            "object": "price",
            "active": true,
            "billing_scheme": "per_unit",
            "created": price.created,
            "currency": "usd",
            "custom_unit_amount": null,
            "livemode": self.livemode,
            "lookup_key": price.lookup_key,
            "metadata": {},
            "nickname": null,
            "product": product,
            "recurring": {
                "interval": "month",
                "interval_count": 1,
                "meter": null,
                "usage_type": "licensed",
                "trial_period_days": null
            },
            "tax_behavior": "unspecified",
            "tiers_mode": null,
            "transform_quantity": null,
            "type": "recurring",
            "unit_amount": price.unit_amount,
            "unit_amount_decimal": price.unit_amount.to_string(),
        })
    }

    /// The legacy `plan` mirror of a price that items still carry.
    fn plan_json(&self, p: u32) -> Value {
        let price = &self.prices[p as usize];
        json!({
            "id": self.price_id(p),
            "object": "plan",
            "active": true,
            "amount": price.unit_amount,
            "amount_decimal": price.unit_amount.to_string(),
            "billing_scheme": "per_unit",
            "created": price.created,
            "currency": "usd",
            "interval": "month",
            "interval_count": 1,
            "livemode": self.livemode,
            "metadata": {},
            "meter": null,
            "nickname": null,
            "product": self.product_id(price.product),
            "tiers_mode": null,
            "transform_usage": null,
            "trial_period_days": null,
            "usage_type": "licensed",
        })
    }

    fn item_json(&self, sub_id: &str, item: &Item, expand: Expand) -> Value {
        json!({
            "id": self.item_id(item.seq),
            "object": "subscription_item",
            "billing_thresholds": null,
            "created": item.created,
            "current_period_end": item.period_end,
            "current_period_start": item.period_start,
            "discounts": [],
            "metadata": {},
            "plan": self.plan_json(item.price),
            "price": self.price_json(item.price, expand.product),
            "quantity": item.quantity,
            "subscription": sub_id,
            "tax_rates": [],
        })
    }

    /// The `items` list object of a subscription.
    pub(crate) fn items_json(&self, s: u32, items: &[Item], expand: Expand) -> Value {
        let sub_id = self.sub_id(s);
        json!({
            "object": "list",
            "data": items.iter().map(|i| self.item_json(&sub_id, i, expand)).collect::<Vec<_>>(),
            "has_more": false,
            "url": format!("/v1/subscription_items?subscription={sub_id}"),
        })
    }

    pub(crate) fn subscription_json(&self, s: u32, expand: Expand) -> Value {
        let sub = &self.subs[s as usize];
        let customer = if expand.customer {
            self.customer_json(sub.customer)
        } else {
            Value::from(self.customer_id(sub.customer))
        };
        let latest_invoice = match sub.latest_invoice {
            Some(i) if expand.latest_invoice => self.invoice_json(i),
            Some(i) => Value::from(self.invoice_id(i)),
            None => Value::Null,
        };
        json!({
            "id": self.sub_id(s),
            "object": "subscription",
            "application": null,
            "application_fee_percent": null,
            "automatic_tax": {"enabled": false, "liability": {"type": "account"}, "disabled_reason": null},
            "billing_cycle_anchor": sub.items.first().map_or(sub.created, |i| i.created),
            "billing_cycle_anchor_config": null,
            "billing_mode": {"type": "classic", "flexible": {}},
            "billing_schedules": null,
            "billing_thresholds": null,
            "cancel_at": opt(sub.cancel_at),
            "cancel_at_period_end": sub.cancel_at_period_end,
            "canceled_at": opt(sub.canceled_at),
            "cancellation_details": {"comment": null, "feedback": null, "reason": sub.cancellation_reason},
            "collection_method": "charge_automatically",
            "created": sub.created,
            "currency": "usd",
            "customer": customer,
            "customer_account": null,
            "days_until_due": null,
            "default_payment_method": null,
            "default_source": null,
            "default_tax_rates": [],
            "description": null,
            "discounts": [],
            "ended_at": opt(sub.ended_at),
            "invoice_settings": {
                "account_tax_ids": null,
                "issuer": {"type": "self"},
                "custom_fields": null,
                "description": null,
                "footer": null
            },
            "items": self.items_json(s, &sub.items, expand),
            "latest_invoice": latest_invoice,
            "livemode": self.livemode,
            "managed_payments": null,
            "metadata": meta(&sub.metadata),
            "next_pending_invoice_item_invoice": null,
            "on_behalf_of": null,
            "pause_collection": null,
            "payment_settings": {
                "payment_method_options": payment_method_options(false),
                "payment_method_types": null,
                "save_default_payment_method": null
            },
            "pending_invoice_item_interval": null,
            "pending_setup_intent": null,
            "pending_update": null,
            "schedule": null,
            "start_date": sub.created,
            "status": sub.status.as_str(),
            "test_clock": null,
            "transfer_data": null,
            "trial_end": opt(sub.trial_end),
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": opt(sub.trial_start),
        })
    }

    /// A customer, or Stripe's `{id, object, deleted}` stub once deleted.
    pub(crate) fn customer_json(&self, c: u32) -> Value {
        let customer = &self.customers[c as usize];
        if customer.deleted {
            return json!({"id": self.customer_id(c), "object": "customer", "deleted": true});
        }
        self.live_customer_json(c)
    }

    /// The full customer object, even when deleted (for `customer.deleted`).
    pub(crate) fn live_customer_json(&self, c: u32) -> Value {
        let customer = &self.customers[c as usize];
        json!({
            "id": self.customer_id(c),
            "object": "customer",
            "address": null_address(),
            "balance": 0,
            "created": customer.created,
            "currency": "usd",
            "default_source": null,
            "delinquent": false,
            "description": null,
            "discount": null,
            "email": customer.email,
            "invoice_prefix": self.invoice_prefix(c),
            "invoice_settings": {
                "custom_fields": null,
                "default_payment_method": null,
                "footer": null,
                "rendering_options": {"amount_tax_display": null, "template": null}
            },
            "livemode": self.livemode,
            "metadata": meta(&customer.metadata),
            "name": null,
            "next_invoice_sequence": 1,
            "phone": null,
            "preferred_locales": [],
            "shipping": null,
            "tax_exempt": "none",
            "test_clock": null,
        })
    }
}
