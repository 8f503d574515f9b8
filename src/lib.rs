//! ParityRail proves every Stripe customer has exactly the access they paid for.
//!
//! The tree follows the data:
//!
//! ```text
//! ingress (verify signature → durable inbox, group commit)
//!   → worker (claim with a lease → Stripe snapshot → normalized state)
//!   → store (the only SQL: SQLite or PostgreSQL)
//!   → web (HTTP surface) / cli (commands)
//! ```
//!
//! `config` loads settings, `crypto` seals secrets at rest, `stripe` holds
//! the event parser and the API client, `app` wires it together.

pub mod access;
pub mod app;
pub mod check;
pub mod cli;
pub mod compare;
pub mod config;
pub mod crypto;
pub mod ids;
pub mod incidents;
pub mod ingress;
pub mod probe;
pub mod scan;
pub mod setup;
pub mod store;
pub mod stripe;
pub mod tokens;
pub mod views;
pub mod web;
pub mod worker;

pub use app::App;

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Unix ms → RFC 3339 (UTC), as every JSON answer and CLI line shows time.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Makes ring the process's one TLS crypto backend (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
