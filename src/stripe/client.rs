//! A thin Stripe REST client: the handful of reads ParityRail makes, with
//! Stripe's error shape classified into transient and permanent.

use std::time::Duration;

use reqwest::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    error::{StripeError, permission_for, redact_keys},
    model::{
        Account, ActiveEntitlement, Customer, CustomerSnapshot, List, RawInvoice,
        parse_subscription,
    },
};
use crate::{config::Secret, domain::Subscription, ids::CustomerId};

/// The API version ParityRail reads with, so response shapes never depend on
/// the account's default version.
pub const STRIPE_VERSION: &str = "2026-07-29.dahlia";
const USER_AGENT: &str = concat!("ParityRail/", env!("CARGO_PKG_VERSION"));

/// Stripe API client; cheap to clone.
#[derive(Clone, Debug)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
}

impl StripeClient {
    pub fn new(base: &str) -> Self {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("the TLS backend is installed");
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        key: &Secret,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, StripeError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key.expose())
            .header("Stripe-Version", STRIPE_VERSION)
            .query(query)
            .send()
            .await
            // The URL names customers and cursors: not for error text.
            .map_err(|e| StripeError::Transport(e.without_url()))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| StripeError::Transport(e.without_url()))?;
        if status == StatusCode::OK {
            return serde_json::from_slice(&bytes).map_err(|e| StripeError::Decode(e.to_string()));
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let error = &body["error"];
        let text = |k: &str| error.get(k).and_then(Value::as_str).map(str::to_string);
        if status == StatusCode::FORBIDDEN {
            return Err(StripeError::Permission {
                permission: permission_for(path),
                message: redact_keys(&text("message").unwrap_or_else(|| "forbidden".into())),
            });
        }
        Err(StripeError::Api {
            status: status.as_u16(),
            error_type: text("type"),
            code: text("code"),
            message: redact_keys(
                &text("message").unwrap_or_else(|| status.canonical_reason().unwrap_or("").into()),
            ),
            retry_after,
        })
    }

    /// Every subscription of the customer, any status, following pagination,
    /// with the latest invoice expanded (the `past_due` grace runs from it).
    pub async fn list_subscriptions(
        &self,
        key: &Secret,
        customer: &CustomerId,
    ) -> Result<Vec<Subscription>, StripeError> {
        let mut out: Vec<Subscription> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![
                ("customer", customer.as_str()),
                ("status", "all"),
                ("limit", "100"),
                ("expand[]", "data.latest_invoice"),
            ];
            if let Some(after) = cursor.as_deref() {
                query.push(("starting_after", after));
            }
            let page: List<Value> = self.get(key, "/v1/subscriptions", &query).await?;
            for value in page.data {
                out.push(
                    parse_subscription(value)
                        .map_err(|e| StripeError::Decode(format!("subscription: {e}")))?,
                );
            }
            match (page.has_more, out.last()) {
                (true, Some(last)) => cursor = Some(last.id.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// One page (100) of every subscription of the account, any status,
    /// newest first: `(subscriptions, has_more)`.
    pub async fn subscriptions_page(
        &self,
        key: &Secret,
        starting_after: Option<&str>,
    ) -> Result<(Vec<Subscription>, bool), StripeError> {
        self.subscriptions_page_in(key, starting_after, None, 100)
            .await
    }

    /// Like [`Self::subscriptions_page`], within `created` in `[gte, lt)`
    /// when given, and up to `limit` (1–100).
    pub async fn subscriptions_page_in(
        &self,
        key: &Secret,
        starting_after: Option<&str>,
        created: Option<(i64, i64)>,
        limit: u8,
    ) -> Result<(Vec<Subscription>, bool), StripeError> {
        let limit = limit.clamp(1, 100).to_string();
        let bounds = created.map(|(gte, lt)| (gte.to_string(), lt.to_string()));
        let mut query = vec![("status", "all"), ("limit", limit.as_str())];
        if let Some((gte, lt)) = &bounds {
            query.push(("created[gte]", gte));
            query.push(("created[lt]", lt));
        }
        if let Some(after) = starting_after {
            query.push(("starting_after", after));
        }
        let page: List<Value> = self.get(key, "/v1/subscriptions", &query).await?;
        let subs = page
            .data
            .into_iter()
            .map(|v| {
                parse_subscription(v).map_err(|e| StripeError::Decode(format!("subscription: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((subs, page.has_more))
    }

    pub async fn get_customer(
        &self,
        key: &Secret,
        id: &CustomerId,
    ) -> Result<Customer, StripeError> {
        self.get(key, &format!("/v1/customers/{id}"), &[]).await
    }

    /// When the first payment of an unpaid invoice failed (SPEC §4), for a
    /// `past_due` subscription a scan page listed without its invoice.
    pub async fn invoice_unpaid_since(
        &self,
        key: &Secret,
        invoice: &str,
    ) -> Result<Option<i64>, StripeError> {
        if invoice.is_empty()
            || !invoice
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StripeError::Decode(format!(
                "invalid invoice id {invoice:?}"
            )));
        }
        let raw: RawInvoice = self
            .get(key, &format!("/v1/invoices/{invoice}"), &[])
            .await?;
        Ok(raw.unpaid_since())
    }

    /// The customer's active entitlement lookup keys, sorted. A restricted
    /// key without the Entitlements permission is an error
    /// ([`StripeError::Permission`]), never an empty list.
    pub async fn active_entitlements(
        &self,
        key: &Secret,
        customer: &CustomerId,
    ) -> Result<Vec<String>, StripeError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("customer", customer.as_str()), ("limit", "100")];
            if let Some(after) = cursor.as_deref() {
                query.push(("starting_after", after));
            }
            let page: List<Value> = self
                .get(key, "/v1/entitlements/active_entitlements", &query)
                .await?;
            let last_id = page
                .data
                .last()
                .and_then(|v| v["id"].as_str())
                .map(str::to_string);
            for value in page.data {
                let ent: ActiveEntitlement = serde_json::from_value(value)
                    .map_err(|e| StripeError::Decode(format!("entitlement: {e}")))?;
                out.push(ent.lookup_key);
            }
            match (page.has_more, last_id) {
                (true, Some(last)) => cursor = Some(last),
                _ => {
                    out.sort();
                    out.dedup();
                    return Ok(out);
                }
            }
        }
    }

    /// The account id, or `None` when a restricted key may not read it.
    pub async fn account_id(&self, key: &Secret) -> Result<Option<String>, StripeError> {
        match self.get::<Account>(key, "/v1/account", &[]).await {
            Ok(account) => Ok(Some(account.id)),
            Err(e) if e.is_permission() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// "Test & connect": the one read ParityRail cannot work without.
    pub async fn check_key(&self, key: &Secret) -> Result<(), StripeError> {
        self.get::<List<Value>>(
            key,
            "/v1/subscriptions",
            &[("limit", "1"), ("status", "all")],
        )
        .await
        .map(|_| ())
    }

    /// Everything expected access needs about one customer, read now:
    /// `read_at_ms` is when the read started. Entitlements are read only
    /// when the project uses them.
    pub async fn customer_snapshot(
        &self,
        key: &Secret,
        customer: &CustomerId,
        entitlements: bool,
        read_at_ms: i64,
    ) -> Result<CustomerSnapshot, StripeError> {
        let found = self.get_customer(key, customer).await;
        let (deleted, metadata) = match found {
            Ok(c) => (c.deleted, c.metadata),
            // Unknown to Stripe (removed, or an app user Stripe never saw):
            // nothing was paid, and there is nothing more to read.
            Err(StripeError::Api { status: 404, .. }) => {
                return Ok(CustomerSnapshot {
                    customer_id: customer.to_string(),
                    deleted: true,
                    metadata: Default::default(),
                    subscriptions: Vec::new(),
                    entitlements: None,
                    read_at_ms,
                });
            }
            Err(e) => return Err(e),
        };
        let subscriptions = self.list_subscriptions(key, customer).await?;
        let entitlements = if entitlements {
            Some(self.active_entitlements(key, customer).await?)
        } else {
            None
        };
        Ok(CustomerSnapshot {
            customer_id: customer.to_string(),
            deleted,
            metadata,
            subscriptions,
            entitlements,
            read_at_ms,
        })
    }
}
