//! Expected × observed → verdict (SPEC §6). Pure: the worker decides what to
//! do with a verdict (re-probe, open or resolve incidents); this only says
//! exactly what differs and in which direction.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::access::{ExpectedAccess, ObservedAccess, PlanMap};

/// Orders two plans: how `a` compares with `b`, `None` when incomparable.
pub trait PlanOrder {
    fn order(&self, a: &str, b: &str) -> Option<Ordering>;
}

impl PlanOrder for &PlanMap {
    fn order(&self, a: &str, b: &str) -> Option<Ordering> {
        PlanMap::order(self, a, b)
    }
}

/// Ranks alone (tests and callers without a plan map): equal ranks and
/// unranked plans are incomparable.
impl<F: Fn(&str) -> Option<i64>> PlanOrder for F {
    fn order(&self, a: &str, b: &str) -> Option<Ordering> {
        if a == b {
            return Some(Ordering::Equal);
        }
        self(a)
            .zip(self(b))
            .map(|(x, y)| x.cmp(&y))
            .filter(|o| o.is_ne())
    }
}

/// The direction of a mismatch, and so the incident kind it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// Paid access missing: the customer is owed something.
    Unfulfilled,
    /// Access without payment: the app gives away something.
    UnpaidAccess,
}

impl MismatchKind {
    /// The stable name used in storage, the API and notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            MismatchKind::Unfulfilled => "unfulfilled",
            MismatchKind::UnpaidAccess => "unpaid_access",
        }
    }
}

impl fmt::Display for MismatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One way observed access differs from expected access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Difference {
    /// Stripe grants access; the app has no such user or reports it inactive.
    AccessMissing,
    /// No subscription grants access; the app reports active access.
    AccessWithoutPayment,
    /// The app's plan ranks below the paid one (or it reports none).
    PlanLower {
        expected: String,
        observed: Option<String>,
    },
    /// The app's plan ranks above the paid one (or none was paid for).
    PlanHigher {
        expected: Option<String>,
        observed: String,
    },
    /// The plans differ and their order is unknown (an unmapped or equally
    /// ranked plan). Counted as unfulfilled: the plan paid for is not what
    /// the app delivers.
    PlanDiffers { expected: String, observed: String },
    /// A paid feature the app does not grant.
    FeatureMissing { feature: String },
    /// A feature the app grants that was not paid for.
    FeatureExtra { feature: String },
    /// A paid limit the app lowers, or does not report (`observed: None`).
    LimitSmaller {
        limit: String,
        expected: i64,
        observed: Option<i64>,
    },
    /// A limit the app raises, or grants without one being paid for
    /// (`expected: None`).
    LimitLarger {
        limit: String,
        expected: Option<i64>,
        observed: i64,
    },
}

impl Difference {
    /// Whether this is the plan's difference (at most one per verdict).
    pub fn is_plan(&self) -> bool {
        matches!(
            self,
            Difference::PlanLower { .. }
                | Difference::PlanHigher { .. }
                | Difference::PlanDiffers { .. }
        )
    }

    /// Which incident kind this difference belongs to.
    pub fn kind(&self) -> MismatchKind {
        match self {
            Difference::AccessMissing
            | Difference::PlanLower { .. }
            | Difference::PlanDiffers { .. }
            | Difference::FeatureMissing { .. }
            | Difference::LimitSmaller { .. } => MismatchKind::Unfulfilled,
            Difference::AccessWithoutPayment
            | Difference::PlanHigher { .. }
            | Difference::FeatureExtra { .. }
            | Difference::LimitLarger { .. } => MismatchKind::UnpaidAccess,
        }
    }
}

/// Shows a missing value as "none" in human text.
struct OrNone<'a, T>(&'a Option<T>);

impl<T: fmt::Display> fmt::Display for OrNone<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("none"),
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::AccessMissing => {
                f.write_str("access missing (paid, app reports no access)")
            }
            Difference::AccessWithoutPayment => {
                f.write_str("access without payment (nothing paid, app reports access)")
            }
            Difference::PlanLower { expected, observed } => {
                write!(
                    f,
                    "plan lower (expected {expected}, observed {})",
                    OrNone(observed)
                )
            }
            Difference::PlanHigher { expected, observed } => {
                write!(
                    f,
                    "plan higher (expected {}, observed {observed})",
                    OrNone(expected)
                )
            }
            Difference::PlanDiffers { expected, observed } => {
                write!(f, "plan differs (expected {expected}, observed {observed})")
            }
            Difference::FeatureMissing { feature } => write!(f, "feature {feature} missing"),
            Difference::FeatureExtra { feature } => write!(f, "feature {feature} extra"),
            Difference::LimitSmaller {
                limit,
                expected,
                observed,
            } => write!(
                f,
                "limit {limit} smaller (expected {expected}, observed {})",
                OrNone(observed)
            ),
            Difference::LimitLarger {
                limit,
                expected,
                observed,
            } => write!(
                f,
                "limit {limit} larger (expected {}, observed {observed})",
                OrNone(expected)
            ),
        }
    }
}

/// The outcome of one comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Every difference, plan first, then features, then limits, each by
    /// name; empty when the check passed.
    pub differences: Vec<Difference>,
}

impl Verdict {
    /// Whether observed access is exactly what was paid for.
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }

    /// The incident kinds this verdict opens, each once, `unfulfilled` first
    /// (a customer owed access matters more than a leak).
    ///
    /// A plan difference decides alone (SPEC §4): one mismatch is one
    /// incident, `unpaid_access` when the app's plan is higher, `unfulfilled`
    /// when it is lower or the two are incomparable; the feature and limit
    /// differences that come with the other plan stay in the evidence.
    pub fn kinds(&self) -> Vec<MismatchKind> {
        if let Some(plan) = self.differences.iter().find(|d| d.is_plan()) {
            return vec![plan.kind()];
        }
        let kinds: BTreeSet<MismatchKind> = self.differences.iter().map(Difference::kind).collect();
        kinds.into_iter().collect()
    }

    /// One human line naming exactly what differs, for logs, incident titles
    /// and notifications.
    pub fn summary(&self) -> String {
        if self.passed() {
            return "access matches".to_string();
        }
        let kinds: Vec<&str> = self.kinds().into_iter().map(MismatchKind::as_str).collect();
        let parts: Vec<String> = self.differences.iter().map(ToString::to_string).collect();
        format!("{}: {}", kinds.join(" + "), parts.join("; "))
    }
}

/// Compares what Stripe says was paid with what the app reports (SPEC §6).
///
/// `plans` orders the paid and the observed plan (the project's
/// [`PlanMap`], or ranks alone).
/// Access itself is decided first: when either side has none, only that one
/// difference is reported — listing every feature of a plan that should not
/// exist at all would bury the point, and an inactive answer's leftover plan
/// or features grant nothing.
pub fn compare(
    expected: &ExpectedAccess,
    observed: &ObservedAccess,
    plans: impl PlanOrder,
) -> Verdict {
    let has_access = observed.found && observed.access.active;
    let differences = match (expected.access.active, has_access) {
        (false, false) => Vec::new(),
        (false, true) => vec![Difference::AccessWithoutPayment],
        (true, false) => vec![Difference::AccessMissing],
        (true, true) => {
            let mut out = Vec::new();
            out.extend(compare_plan(expected, observed, &plans));
            compare_features(expected, observed, &mut out);
            compare_limits(expected, observed, &mut out);
            out
        }
    };
    Verdict { differences }
}

fn compare_plan(
    expected: &ExpectedAccess,
    observed: &ObservedAccess,
    plans: &impl PlanOrder,
) -> Option<Difference> {
    match (&expected.access.plan, &observed.access.plan) {
        (None, None) => None,
        (Some(e), Some(o)) if e == o => None,
        (Some(e), None) => Some(Difference::PlanLower {
            expected: e.clone(),
            observed: None,
        }),
        (None, Some(o)) => Some(Difference::PlanHigher {
            expected: None,
            observed: o.clone(),
        }),
        (Some(e), Some(o)) => Some(match plans.order(o, e) {
            Some(Ordering::Less) => Difference::PlanLower {
                expected: e.clone(),
                observed: Some(o.clone()),
            },
            Some(Ordering::Greater) => Difference::PlanHigher {
                expected: Some(e.clone()),
                observed: o.clone(),
            },
            Some(Ordering::Equal) | None => Difference::PlanDiffers {
                expected: e.clone(),
                observed: o.clone(),
            },
        }),
    }
}

fn compare_features(
    expected: &ExpectedAccess,
    observed: &ObservedAccess,
    out: &mut Vec<Difference>,
) {
    // The symmetric difference of two sorted sets walks in name order, so
    // missing and extra features interleave by name.
    let (e, o) = (&expected.access.features, &observed.access.features);
    out.extend(e.symmetric_difference(o).map(|f| {
        let feature = f.clone();
        if e.contains(f) {
            Difference::FeatureMissing { feature }
        } else {
            Difference::FeatureExtra { feature }
        }
    }));
}

fn compare_limits(expected: &ExpectedAccess, observed: &ObservedAccess, out: &mut Vec<Difference>) {
    let (e, o) = (&expected.access.limits, &observed.access.limits);
    let names: BTreeSet<&String> = e.keys().chain(o.keys()).collect();
    for name in names {
        let limit = name.clone();
        let diff = match (e.get(name).copied(), o.get(name).copied()) {
            (Some(expected), None) => Some(Difference::LimitSmaller {
                limit,
                expected,
                observed: None,
            }),
            (None, Some(observed)) => Some(Difference::LimitLarger {
                limit,
                expected: None,
                observed,
            }),
            (Some(expected), Some(observed)) if observed < expected => {
                Some(Difference::LimitSmaller {
                    limit,
                    expected,
                    observed: Some(observed),
                })
            }
            (Some(expected), Some(observed)) if observed > expected => {
                Some(Difference::LimitLarger {
                    limit,
                    expected: Some(expected),
                    observed,
                })
            }
            _ => None,
        };
        out.extend(diff);
    }
}

#[cfg(test)]
mod tests;
