//! The app probe (SPEC §5): ask the customer's app what access a Stripe
//! customer has, so it can be compared with what was paid for.
//!
//! `signature` signs every request (`ParityRail-Signature`), `client` sends
//! it with timeouts and retries, `answer` reads the reply strictly into
//! [`ObservedAccess`](crate::access::ObservedAccess). The same client calls
//! the app's optional reconcile hook (SPEC §6).

mod answer;
mod client;
mod signature;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use answer::{ListPage, ProbeAnswer};
pub use client::{MAX_ANSWER_BYTES, MAX_BATCH, ProbeClient};
pub use signature::{SIGNATURE_HEADER, TOLERANCE_SECS, sign, verify};

use crate::config::Secret;

/// Where and how to probe one project's app.
#[derive(Clone, Debug)]
pub struct ProbeTarget {
    /// The probe URL, e.g. `https://app.example.com/parityrail/access`;
    /// `/batch` and `/list` are appended to its path.
    pub url: String,
    /// The shared secret requests are signed with; never printed.
    pub secret: Secret,
    /// The app's optional reconcile hook, signed like the probe.
    pub reconcile_url: Option<String>,
}

/// A failed probe or reconcile call. Messages never carry the probe secret,
/// nor the probe URL (it may hold credentials or a query).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The app could not be reached: DNS, refused connection, reset. The
    /// error is stripped of its URL.
    #[error("the app is unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// The answer is larger than [`MAX_ANSWER_BYTES`]; the rest was not read.
    #[error("the app's answer is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The app did not finish answering in time.
    #[error("the app did not answer within {after:?}")]
    Timeout {
        /// The client's timeout.
        after: Duration,
    },
    /// The app answered with a status the protocol does not allow here.
    #[error("the app answered HTTP {status}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The app's `Retry-After` (seconds form), on 429 and 5xx.
        retry_after: Option<Duration>,
    },
    /// A success whose body is not the documented shape.
    #[error("the app's answer is malformed: {reason}")]
    Malformed {
        /// Names the offending field, e.g. `customers[2].features`.
        reason: String,
    },
    /// A batch of more than [`MAX_BATCH`] customers; nothing was sent.
    #[error("a batch probe holds at most {MAX_BATCH} customers, got {count}")]
    TooMany {
        /// How many were asked for.
        count: usize,
    },
    /// The configured probe or reconcile URL cannot be used.
    #[error("the probe URL is invalid: {reason}")]
    InvalidUrl {
        /// Why.
        reason: String,
    },
}

impl ProbeError {
    fn status(status: reqwest::StatusCode) -> Self {
        Self::Status {
            status: status.as_u16(),
            retry_after: None,
        }
    }

    /// The HTTP status the app answered with, when it answered at all.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth trying again later: network trouble, timeouts, 408, 429 and
    /// 5xx. A wrong secret (401/403), a malformed answer or a bad URL needs
    /// someone to change something first.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout { .. } => true,
            Self::Status { status, .. } => matches!(status, 408 | 429) || *status >= 500,
            Self::Malformed { .. }
            | Self::TooMany { .. }
            | Self::InvalidUrl { .. }
            | Self::TooLarge { .. } => false,
        }
    }

    /// The app's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
