//! Webhook ingress: verify the signature on the raw bytes, store the event
//! and its work item durably, answer. Nothing here waits for Stripe or the app.

pub mod directory;
pub mod inbox;
mod receive;
pub mod verify;

pub use receive::receive_stripe_webhook;

/// Largest body accepted (SPEC §2).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
