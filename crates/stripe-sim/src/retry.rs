//! When a failed webhook delivery is tried again.
//!
//! Stripe documents the shape, not the intervals: "In live mode, Stripe
//! attempts to deliver a given event to your webhook endpoint for up to 3
//! days with an exponential back off… In test mode, Stripe retries three
//! times over a few hours." The schedules here follow that shape, compressed
//! by a time scale so a demo or a test sees three days pass in seconds.

use std::time::Duration;

/// Simulated minutes before each retry in live mode; after the last, every
/// twelve hours until three days have passed since the first attempt.
const LIVE_MINUTES: [u64; 7] = [1, 5, 30, 60, 120, 240, 480];
/// The live-mode wait once the doubling has reached half a day.
const LIVE_LATE_MINUTES: u64 = 720;
/// How long, after the first attempt, live mode keeps trying.
const LIVE_WINDOW_MINUTES: u64 = 3 * 24 * 60;
/// Simulated minutes before each of test mode's three retries.
const TEST_MINUTES: [u64; 3] = [5, 60, 120];
/// Longest wait of [`RetrySchedule::backoff`].
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Backoff(Duration),
    Live,
    Test,
}

/// The waits between the attempts of one delivery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySchedule {
    kind: Kind,
    /// Simulated seconds per real second.
    time_scale: f64,
}

impl RetrySchedule {
    /// Quick, for tests: `first`, doubled per retry and capped at 2 s, for
    /// as many attempts as the caller allows.
    pub fn backoff(first: Duration) -> RetrySchedule {
        RetrySchedule {
            kind: Kind::Backoff(first),
            time_scale: 1.0,
        }
    }

    /// Stripe's live mode: retries with exponential backoff for three days
    /// (twelve attempts in all), every wait divided by `time_scale` (3600:
    /// an hour passes in a second). Errors unless `time_scale` is a finite
    /// number above zero.
    pub fn stripe_live(time_scale: f64) -> Result<RetrySchedule, String> {
        Self::scaled(Kind::Live, time_scale)
    }

    /// Stripe's test mode: three retries over about three hours, every wait
    /// divided by `time_scale`.
    pub fn stripe_test(time_scale: f64) -> Result<RetrySchedule, String> {
        Self::scaled(Kind::Test, time_scale)
    }

    fn scaled(kind: Kind, time_scale: f64) -> Result<RetrySchedule, String> {
        if time_scale.is_finite() && time_scale > 0.0 {
            Ok(RetrySchedule { kind, time_scale })
        } else {
            Err(format!(
                "time scale must be a number above 0, got {time_scale}"
            ))
        }
    }

    /// The simulated wait before retry `retry` (1: the first retry), or
    /// `None` once the schedule has given up.
    pub fn simulated_wait(&self, retry: u32) -> Option<Duration> {
        let index = usize::try_from(retry.checked_sub(1)?).ok()?;
        let minutes = match self.kind {
            Kind::Backoff(first) => {
                let doubled = first.saturating_mul(1 << retry.saturating_sub(1).min(16));
                return Some(doubled.min(MAX_BACKOFF));
            }
            Kind::Test => *TEST_MINUTES.get(index)?,
            Kind::Live => {
                let wait = |i: usize| LIVE_MINUTES.get(i).copied().unwrap_or(LIVE_LATE_MINUTES);
                let elapsed: u64 = (0..=index).map(wait).sum();
                if elapsed > LIVE_WINDOW_MINUTES {
                    return None;
                }
                wait(index)
            }
        };
        Some(Duration::from_secs(minutes * 60))
    }

    /// The real wait before retry `retry`: the simulated wait divided by the
    /// time scale.
    pub fn wait(&self, retry: u32) -> Option<Duration> {
        let simulated = self.simulated_wait(retry)?;
        Some(Duration::from_secs_f64(
            simulated.as_secs_f64() / self.time_scale,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempts_and_span(schedule: RetrySchedule) -> (u32, Duration) {
        let mut retry = 1;
        let mut span = Duration::ZERO;
        while let Some(wait) = schedule.simulated_wait(retry) {
            span += wait;
            retry += 1;
        }
        (retry, span)
    }

    #[test]
    fn live_mode_backs_off_for_three_days_and_test_mode_retries_three_times() {
        let live = RetrySchedule::stripe_live(1.0).unwrap();
        let (attempts, span) = attempts_and_span(live);
        assert_eq!(attempts, 12);
        assert!(span <= Duration::from_secs(72 * 3600), "{span:?}");
        assert!(span > Duration::from_secs(60 * 3600), "{span:?}");
        // Exponential: every wait at least the one before.
        for retry in 2..attempts {
            assert!(live.simulated_wait(retry) >= live.simulated_wait(retry - 1));
        }

        let test = RetrySchedule::stripe_test(1.0).unwrap();
        let (attempts, span) = attempts_and_span(test);
        assert_eq!(attempts, 4);
        assert_eq!(span, Duration::from_secs((5 + 60 + 120) * 60));
        assert_eq!(test.simulated_wait(0), None);
    }

    #[test]
    fn the_time_scale_compresses_every_wait_and_must_be_positive() {
        let test = RetrySchedule::stripe_test(3600.0).unwrap();
        // An hour of simulated time passes in a real second.
        assert_eq!(test.wait(2), Some(Duration::from_secs(1)));
        assert_eq!(test.wait(3), Some(Duration::from_secs(2)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(RetrySchedule::stripe_live(bad).is_err(), "{bad}");
        }
        let quick = RetrySchedule::backoff(Duration::from_millis(50));
        assert_eq!(quick.wait(1), Some(Duration::from_millis(50)));
        assert_eq!(quick.wait(2), Some(Duration::from_millis(100)));
        assert_eq!(quick.wait(40), Some(MAX_BACKOFF));
    }
}
