//! ParityRail proves every Stripe customer has exactly the access they paid for.
//!
//! The tree follows the data, each layer using only those below it:
//!
//! ```text
//! ingress (verify signature → durable inbox, group commit)
//!   → worker (claim with a lease → Stripe snapshot → state + check, one commit)
//!   → check (expected access → app probe → compare → verdict, fenced)
//!   → scan (the daily pass over every customer)
//!   → usecase (what the faces may do: setup, checks, events, incidents, scans, tokens)
//!   → web (webhooks, /api/v1, cron) / cli (commands)
//! ```
//!
//! Beneath them: `domain` (statuses, kinds, records), `access` and `compare`
//! (pure), `store` (the only SQL: SQLite or PostgreSQL), `stripe` and
//! `probe` (outbound clients), `vault` (secrets at rest), `clock`, `backoff`
//! and `lease`; `context` holds the shared services and their lifecycle,
//! `app` runs `serve`.

pub mod access;
pub mod app;
pub mod backoff;
pub mod check;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod config;
pub mod context;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod ids;
pub mod ingress;
pub mod lease;
pub mod probe;
pub mod scan;
pub mod store;
pub mod stripe;
pub mod usecase;
pub mod vault;
pub mod views;
pub mod web;
pub mod worker;

pub use context::App;

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
