//! The one backoff: how long to wait before retry *n*, as data. Intake
//! retries follow the configured schedule, probe and scan retries grow
//! exponentially, a check's re-probes double up to a cap; all of them get
//! their jitter and their `Retry-After` handling here.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Debug, PartialEq)]
enum Steps {
    /// `first`, doubling, never above `max`.
    Exponential { first: Duration, max: Duration },
    /// Exactly these delays, then give up.
    Schedule(Vec<Duration>),
}

/// A retry policy. `delay(n, …)` is the wait before retry `n` (0 = the
/// first retry, after the first failure).
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    steps: Steps,
    retries: Option<u32>,
    /// Each delay is scaled by a factor drawn from this range.
    jitter: Option<(f64, f64)>,
    /// A server's `Retry-After` above this ends the retries instead of
    /// holding the caller.
    max_retry_after: Option<Duration>,
}

impl Backoff {
    /// `first`, `2 × first`, … capped at `max`; unlimited retries, no jitter.
    pub fn exponential(first: Duration, max: Duration) -> Self {
        Self {
            steps: Steps::Exponential { first, max },
            retries: None,
            jitter: None,
            max_retry_after: None,
        }
    }

    /// One retry per delay listed, then give up.
    pub fn schedule(delays: Vec<Duration>) -> Self {
        Self {
            steps: Steps::Schedule(delays),
            retries: None,
            jitter: None,
            max_retry_after: None,
        }
    }

    /// At most `n` retries.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = Some(n);
        self
    }

    /// Scale every delay by a random factor in `[low, high]`, so a burst of
    /// failures does not come back as a burst.
    pub fn jitter(mut self, low: f64, high: f64) -> Self {
        self.jitter = Some((low, high));
        self
    }

    /// Give up when a server asks to wait longer than `limit`.
    pub fn give_up_beyond(mut self, limit: Duration) -> Self {
        self.max_retry_after = Some(limit);
        self
    }

    /// The wait before retry `retry`, or `None` to give up. A server's
    /// `Retry-After` is a floor.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if self.retries.is_some_and(|max| retry >= max) {
            return None;
        }
        if let (Some(limit), Some(asked)) = (self.max_retry_after, retry_after)
            && asked > limit
        {
            return None;
        }
        let base = match &self.steps {
            Steps::Exponential { first, max } => first.saturating_mul(1 << retry.min(20)).min(*max),
            Steps::Schedule(delays) => *delays.get(usize::try_from(retry).ok()?)?,
        };
        let jittered = match self.jitter {
            Some((low, high)) => base.mul_f64(rand::rng().random_range(low..=high)),
            None => base,
        };
        Some(retry_after.map_or(jittered, |floor| jittered.max(floor)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_list_with_jitter_then_give_up() {
        let policy = Backoff::schedule(vec![Duration::from_secs(10), Duration::from_secs(100)])
            .jitter(0.75, 1.25);
        for _ in 0..50 {
            let first = policy.delay(0, None).unwrap();
            assert!((7.5..=12.5).contains(&first.as_secs_f64()), "{first:?}");
            let second = policy.delay(1, None).unwrap();
            assert!((75.0..=125.0).contains(&second.as_secs_f64()), "{second:?}");
        }
        assert_eq!(policy.delay(2, None), None);
    }

    #[test]
    fn exponential_doubles_to_its_cap() {
        let policy = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<u64> = (0..7)
            .map(|n| policy.delay(n, None).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert!(
            policy.delay(500, None).is_some(),
            "no retry limit unless set"
        );
        let limited = policy.clone().retries(2);
        assert!(limited.delay(1, None).is_some());
        assert_eq!(limited.delay(2, None), None);
    }

    #[test]
    fn retry_after_is_a_floor_unless_beyond_the_limit() {
        let policy = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(2))
            .retries(3)
            .give_up_beyond(Duration::from_secs(10));
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(5))),
            Some(Duration::from_secs(5))
        );
        assert_eq!(policy.delay(0, Some(Duration::from_secs(11))), None);
        let jittered = policy.jitter(0.5, 1.0);
        for _ in 0..50 {
            let d = jittered.delay(2, None).unwrap();
            assert!((200..=400).contains(&d.as_millis()), "{d:?}");
        }
    }
}
