//! Webhook ingress: verify the signature on the raw bytes, store the event
//! and its work item durably, answer. Nothing here waits for Stripe or the
//! app; the HTTP handler in `web` maps a [`Receipt`] to its status.

pub mod directory;
pub mod inbox;
mod receive;
pub mod verify;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;

pub use receive::{Addressed, Receipt, ReceiveError, Rejection};

use crate::{clock::SharedClock, store::Store};

/// Largest body accepted (SPEC §2).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the webhook endpoint works with.
pub struct Intake {
    pub directory: directory::ProjectDirectory,
    pub inbox: inbox::InboxWriter,
    pub store: Store,
    pub clock: SharedClock,
    /// How long a new event's work waits (the coalescing window).
    pub coalesce: Duration,
    /// Wakes idle workers when lagging work is re-queued.
    pub wake: Arc<Notify>,
    /// When each project's last signature refusal was written (ms), so a
    /// flood of forged deliveries writes once every few seconds at most.
    pub refusals_written: Mutex<HashMap<String, i64>>,
}
