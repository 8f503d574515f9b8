//! Traffic shaping of the simulated API (per-key rate limits, injected
//! faults, latency, held answers) and its request log.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::{Fault, RequestRecord, StripeSim};

impl StripeSim {
    /// A token bucket per API key (burst = one second's worth), as Stripe
    /// limits each key: excess requests get Stripe's 429 `rate_limit` with
    /// `Retry-After`, while another key's requests still pass. `None`
    /// removes the limit.
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.control().set_rate_limit(per_second);
    }

    /// The next `count` API requests fail with `fault` (queued after any
    /// faults injected earlier).
    pub fn inject_faults(&self, fault: Fault, count: u32) {
        self.control().inject(fault, count);
    }

    /// Delay added to every API response.
    pub fn set_latency(&self, d: Duration) {
        self.control().latency = d;
    }

    /// Held answers not yet taken (a story waits for 0: its read happened).
    pub fn holds_pending(&self) -> u32 {
        self.control().holds.iter().map(|h| h.left).sum()
    }

    /// The next `count` answers to paths starting with `path_prefix` whose
    /// query contains `query_contains` are computed at once and sent
    /// `delay` later: what a client gets back was true when the request
    /// arrived, not when the answer lands.
    pub fn hold_responses(
        &self,
        path_prefix: &str,
        query_contains: &str,
        delay: Duration,
        count: u32,
    ) {
        self.control().holds.push(crate::control::Hold {
            path_prefix: path_prefix.to_owned(),
            query_contains: query_contains.to_owned(),
            delay,
            left: count,
        });
    }

    /// Sends every answer held back so far at once (a story that holds an
    /// answer "until I say so" uses a long delay and this).
    pub fn release_holds(&self) {
        self.inner.released.send_modify(|g| *g += 1);
    }

    /// Waits out a held answer: its delay, or a `release_holds` after it
    /// was held.
    pub(crate) async fn wait_hold(&self, delay: Duration, generation: u64) {
        let mut released = self.inner.released.subscribe();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = released.wait_for(|g| *g > generation) => {}
        }
    }

    pub(crate) fn release_generation(&self) -> u64 {
        *self.inner.released.borrow()
    }

    /// API requests served, errors included.
    pub fn request_count(&self) -> u64 {
        self.inner.served.load(Ordering::Relaxed)
    }

    /// The most recent requests (up to 100,000), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.control().log.iter().cloned().collect()
    }

    /// Clears the request log (not the count).
    pub fn reset_request_log(&self) {
        self.control().log.clear();
    }
}
