//! The simulator's clock: real time by default, or pinned for tests.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds; pinned with `set`, shifted with `advance`.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    pinned: Option<i64>,
    offset: i64,
}

impl Clock {
    pub(crate) fn now(&self) -> i64 {
        self.pinned.unwrap_or_else(|| real_now() + self.offset)
    }

    pub(crate) fn set(&mut self, unix: i64) {
        self.pinned = Some(unix);
    }

    pub(crate) fn advance(&mut self, secs: i64) {
        match &mut self.pinned {
            Some(t) => *t += secs,
            None => self.offset += secs,
        }
    }
}

/// Real wall-clock unix seconds (used for webhook signing times too).
pub(crate) fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Adds one calendar month (UTC), clamping the day like Stripe's billing
/// anchors do: Jan 31 + 1 month = Feb 28/29.
pub(crate) fn add_month(unix: i64) -> i64 {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let d = d.min(days_in_month(y, m));
    days_from_civil(y, m, d) * 86_400 + secs
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms (public domain).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_calendar_months() {
        // 2026-01-01T00:00Z -> 2026-02-01T00:00Z, as in the fixtures.
        assert_eq!(add_month(1_767_225_600), 1_769_904_000);
        // 2026-01-31T12:00Z -> 2026-02-28T12:00Z (clamped).
        assert_eq!(add_month(1_769_860_800), 1_772_280_000);
        // 2025-12-15 -> 2026-01-15 crosses the year.
        assert_eq!(add_month(1_765_756_800), 1_768_435_200);
    }

    #[test]
    fn pinned_clock_advances() {
        let mut c = Clock::default();
        c.set(100);
        c.advance(5);
        assert_eq!(c.now(), 105);
    }
}
