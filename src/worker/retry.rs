//! Retry policy as data: a schedule from config, the attempt count from the
//! row, jitter, and Stripe's `Retry-After` honoured.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    schedule: Vec<Duration>,
}

impl RetryPolicy {
    pub fn new(schedule: Vec<Duration>) -> Self {
        Self { schedule }
    }

    /// Delay before the next attempt after `attempts` failed ones, or `None`
    /// when the schedule is exhausted and the work should be dead-lettered.
    /// Jitter spreads retries by ±25 % so a burst does not return as a burst;
    /// a server's `Retry-After` is a floor.
    pub fn next_delay(&self, attempts: i64, retry_after: Option<Duration>) -> Option<Duration> {
        let index = usize::try_from(attempts.max(1) - 1).ok()?;
        let base = *self.schedule.get(index)?;
        let jittered = base.mul_f64(rand::rng().random_range(0.75..=1.25));
        Some(retry_after.map_or(jittered, |floor| jittered.max(floor)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_schedule_with_jitter_then_gives_up() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(10), Duration::from_secs(100)]);
        for _ in 0..50 {
            let first = policy.next_delay(1, None).unwrap();
            assert!((7.5..=12.5).contains(&first.as_secs_f64()), "{first:?}");
            let second = policy.next_delay(2, None).unwrap();
            assert!((75.0..=125.0).contains(&second.as_secs_f64()), "{second:?}");
        }
        assert_eq!(policy.next_delay(3, None), None);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let policy = RetryPolicy::new(vec![Duration::from_secs(1)]);
        let d = policy.next_delay(1, Some(Duration::from_secs(30))).unwrap();
        assert_eq!(d, Duration::from_secs(30));
    }
}
