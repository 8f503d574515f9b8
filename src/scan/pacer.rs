//! Keeps a scan inside its Stripe request budget: requests are spaced evenly
//! at the budget's rate, and a 429's `Retry-After` pushes every later slot.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    /// `per_second` requests per second (at least 1).
    pub fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next request slot.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().expect("pacer lock");
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }

    /// Stripe asked us to slow down: no request before `after` from now.
    pub fn pause(&self, after: Duration) {
        let mut next = self.next.lock().expect("pacer lock");
        *next = (*next).max(Instant::now() + after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_at_the_budget() {
        let pacer = Pacer::new(10);
        let start = tokio::time::Instant::now();
        for _ in 0..11 {
            pacer.wait().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1000), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1100), "{elapsed:?}");
    }
}
