//! Stripe: the events it sends and the reads ParityRail makes.

pub mod client;
pub mod event;
pub mod model;

pub use client::{StripeClient, StripeError};

/// Key mode from its prefix; `None` for anything that is not a secret or restricted key.
pub fn key_mode(key: &str) -> Option<crate::store::KeyMode> {
    use crate::store::KeyMode;
    match key.get(..8)? {
        "sk_test_" | "rk_test_" => Some(KeyMode::Test),
        "sk_live_" | "rk_live_" => Some(KeyMode::Live),
        _ => None,
    }
}
