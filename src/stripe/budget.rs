//! A project's Stripe request budget (SPEC §7): requests are spaced evenly
//! at the budget's rate, and a 429's `Retry-After` pushes every later slot.
//! One pacer per project, shared by every scan of it in this process, so the
//! budget holds whatever the number of scans.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::ids::ProjectId;

struct Slots {
    interval: Duration,
    next: Instant,
}

pub struct Pacer {
    slots: Mutex<Slots>,
}

impl Pacer {
    /// `per_second` requests per second (at least 1).
    pub fn new(per_second: u32) -> Self {
        Self {
            slots: Mutex::new(Slots {
                interval: interval(per_second),
                next: Instant::now(),
            }),
        }
    }

    /// Waits for the next request slot.
    pub async fn wait(&self) {
        let slot = {
            let mut slots = self.slots.lock().expect("pacer lock");
            let slot = slots.next.max(Instant::now());
            slots.next = slot + slots.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }

    /// Stripe asked us to slow down: no request before `after` from now.
    pub fn pause(&self, after: Duration) {
        let mut slots = self.slots.lock().expect("pacer lock");
        slots.next = slots.next.max(Instant::now() + after);
    }

    fn set_rate(&self, per_second: u32) {
        self.slots.lock().expect("pacer lock").interval = interval(per_second);
    }
}

fn interval(per_second: u32) -> Duration {
    Duration::from_secs(1) / per_second.max(1)
}

/// The pacers of every project.
#[derive(Default)]
pub struct Budgets {
    pacers: Mutex<HashMap<ProjectId, Arc<Pacer>>>,
}

impl Budgets {
    /// The project's pacer, at `per_second` (a changed budget applies at once).
    pub fn pacer(&self, project: &ProjectId, per_second: u32) -> Arc<Pacer> {
        let mut pacers = self.pacers.lock().expect("budgets lock");
        let pacer = pacers
            .entry(project.clone())
            .or_insert_with(|| Arc::new(Pacer::new(per_second)))
            .clone();
        pacer.set_rate(per_second);
        pacer
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

    #[tokio::test(start_paused = true)]
    async fn one_budget_per_project_however_many_scans() {
        let budgets = Budgets::default();
        let project = ProjectId::generate();
        let (a, b) = (budgets.pacer(&project, 10), budgets.pacer(&project, 10));
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            a.wait().await;
            b.wait().await;
        }
        // Ten requests from two scans at 10/s: 0.9 s, not 0.4 s.
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "{:?}",
            start.elapsed()
        );
        let other = budgets.pacer(&ProjectId::generate(), 10);
        assert!(!Arc::ptr_eq(&a, &other));
    }
}
