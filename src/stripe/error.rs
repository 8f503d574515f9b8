//! A failed Stripe call, classified: transient or not, the key's fault or
//! not, and the permission a restricted key lacks. Messages carry Stripe's
//! own text with keys cut to their last four.

use std::time::Duration;

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

/// The restricted-key permission a read of `path` needs, as Stripe's
/// dashboard names it.
pub(super) fn permission_for(path: &str) -> &'static str {
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
pub(super) fn redact_keys(message: &str) -> String {
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
