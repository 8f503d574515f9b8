//! A thin Stripe REST client: the handful of reads ParityRail makes, with
//! Stripe's error shape classified into transient and permanent.

use std::time::Duration;

use reqwest::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::model::{
    Account, ActiveEntitlement, Customer, CustomerSnapshot, List, RawInvoice, parse_subscription,
};
use crate::{config::Secret, domain::Subscription, ids::CustomerId};

/// The API version ParityRail reads with, so response shapes never depend on
/// the account's default version.
pub const STRIPE_VERSION: &str = "2026-07-29.dahlia";
const USER_AGENT: &str = concat!("ParityRail/", env!("CARGO_PKG_VERSION"));

/// A failed Stripe call. Messages carry Stripe's own text, never the key,
/// and transport errors never the URL.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("Stripe is unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// A restricted key without a permission ParityRail needs.
    #[error("the Stripe key lacks the {permission} permission: {message}")]
    Permission {
        permission: &'static str,
        message: String,
    },
    #[error("Stripe answered {status}: {message}")]
    Api {
        status: u16,
        error_type: Option<String>,
        code: Option<String>,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("Stripe answered with an unexpected body: {0}")]
    Decode(String),
}

impl StripeError {
    /// Worth retrying later: network trouble, rate limits, lock timeouts, 409 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Api { status, .. } => matches!(status, 409 | 429) || *status >= 500,
            // A half-read or garbled body is more likely a proxy hiccup than a
            // permanent change of Stripe's API.
            Self::Decode(_) => true,
            Self::Permission { .. } => false,
        }
    }

    /// The key is the problem (SPEC §6 `stripe_auth`): rejected (revoked,
    /// expired, wrong kind) or lacking a permission ParityRail needs.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Self::Api { status: 401, .. } | Self::Permission { .. }
        )
    }

    /// The key may not call this endpoint (restricted keys).
    pub fn is_permission(&self) -> bool {
        matches!(self, Self::Permission { .. })
    }

    /// The permission a restricted key lacks, when that is the problem.
    pub fn missing_permission(&self) -> Option<&'static str> {
        match self {
            Self::Permission { permission, .. } => Some(permission),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

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

/// The restricted-key permission a read of `path` needs, as Stripe's
/// dashboard names it.
fn permission_for(path: &str) -> &'static str {
    if path.starts_with("/v1/subscriptions") {
        "Subscriptions: Read"
    } else if path.starts_with("/v1/customers") {
        "Customers: Read"
    } else if path.starts_with("/v1/entitlements") {
        "Entitlements: Read"
    } else if path.starts_with("/v1/invoices") {
        "Invoices: Read"
    } else if path.starts_with("/v1/account") {
        "Account: Read"
    } else if path.starts_with("/v1/events") {
        "Events: Read"
    } else {
        "read"
    }
}

/// Stripe echoes part of a bad key in its messages; keep only the last four.
fn redact_keys(message: &str) -> String {
    message
        .split(' ')
        .map(|word| {
            let bare =
                word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '*');
            let is_key = ["sk_", "rk_", "pk_", "whsec_"]
                .iter()
                .any(|p| bare.starts_with(p));
            if is_key && bare.len() > 8 {
                word.replace(bare, &format!("****{}", crate::config::last4(bare)))
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_in_messages_are_cut_to_last4() {
        let m = super::redact_keys("Invalid API Key provided: sk_test_abcdefgh1234.");
        assert_eq!(m, "Invalid API Key provided: ****1234.");
    }
}
