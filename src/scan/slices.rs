//! Stripe lists subscriptions through one sequential cursor, so one pager is
//! bound by page latency, not by the budget. A scan therefore splits the
//! account's `created` range into slices and pages several at once; the
//! shared pacer keeps the total inside the budget. Each slice keeps its own
//! cursor, so a resumed scan continues every slice where it stood.

use serde::{Deserialize, Serialize};

use super::{Ctx, ScanError};

/// How many `created` slices a scan plans.
pub const SLICES: i64 = 8;
/// How closely planning finds the oldest subscription's `created`.
const PLAN_PRECISION_SECS: i64 = 3600;

/// One `created` range `[gte, lt)` and how far it has been read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    pub gte: i64,
    pub lt: i64,
    /// The last subscription id read (safely checked) in this slice.
    pub after: Option<String>,
    pub done: bool,
}

/// A scan's slices, stored as its checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlicePlan {
    pub slices: Vec<Slice>,
}

impl SlicePlan {
    /// The plan in a stored checkpoint, if any.
    pub fn from_checkpoint(raw: Option<&str>) -> Option<Self> {
        serde_json::from_str(raw?).ok()
    }

    pub fn to_checkpoint(&self) -> String {
        serde_json::to_string(self).expect("serializes")
    }
}

/// Plans the slices from the newest and oldest `created` in the account:
/// one read for the newest, then a bisection for the oldest (about 31 small
/// reads, inside the budget).
pub(crate) async fn plan(ctx: &Ctx) -> Result<SlicePlan, ScanError> {
    let newest = match ctx.first_created(None).await? {
        Some(created) => created,
        None => return Ok(SlicePlan::default()),
    };
    // Smallest x with a subscription created before x, to within an hour: a
    // first slice that starts a little early costs nothing, 12 reads do.
    let (mut lo, mut hi) = (0_i64, newest + 1);
    while lo + PLAN_PRECISION_SECS < hi {
        let mid = lo + (hi - lo) / 2;
        let any_before = ctx.first_created(Some((0, mid))).await?.is_some();
        if any_before {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let (start, end) = (lo, newest + 1);
    Ok(SlicePlan {
        slices: split(start, end),
    })
}

/// `[start, end)` in up to [`SLICES`] equal ranges of whole seconds.
pub fn split(start: i64, end: i64) -> Vec<Slice> {
    let span = (end - start).max(1);
    let count = SLICES.min(span);
    let width = (span + count - 1) / count;
    (0..count)
        .map(|i| start + i * width)
        .filter(|gte| *gte < end)
        .map(|gte| Slice {
            gte,
            lt: (gte + width).min(end),
            after: None,
            done: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_range_exactly() {
        for (start, end) in [
            (100, 101),
            (100, 103),
            (0, 1_800_000_000),
            (1_767_225_600, 1_767_225_607),
        ] {
            let slices = split(start, end);
            assert!(!slices.is_empty() && slices.len() as i64 <= SLICES);
            assert_eq!(slices[0].gte, start);
            assert_eq!(slices.last().unwrap().lt, end);
            for pair in slices.windows(2) {
                assert_eq!(pair[0].lt, pair[1].gte, "no gap, no overlap");
            }
        }
    }
}
