//! Plans: a plan difference decides the one incident kind, and plans
//! without ranks are ordered by what they grant (SPEC §4).

use super::*;

/// SPEC §4: a different plan is one mismatch, one incident — the plan's
/// kind — whatever the features and limits that come with it.
#[test]
fn a_plan_difference_decides_the_one_kind() {
    use Difference::*;
    let plan_cases = [
        (
            PlanHigher {
                expected: Some(s("basic")),
                observed: s("pro"),
            },
            MismatchKind::UnpaidAccess,
        ),
        (
            PlanLower {
                expected: s("pro"),
                observed: Some(s("basic")),
            },
            MismatchKind::Unfulfilled,
        ),
        (
            PlanDiffers {
                expected: s("a"),
                observed: s("b"),
            },
            MismatchKind::Unfulfilled,
        ),
    ];
    for (plan, kind) in plan_cases {
        let verdict = Verdict {
            differences: vec![
                plan,
                FeatureExtra { feature: s("sso") },
                FeatureMissing { feature: s("api") },
                LimitLarger {
                    limit: s("seats"),
                    expected: Some(3),
                    observed: 10,
                },
            ],
        };
        assert_eq!(verdict.kinds(), vec![kind], "{verdict:?}");
    }
}

#[test]
fn plans_without_ranks_are_ordered_by_containment() {
    use crate::access::{PlanMap, PlanRule, Selector};
    let rule = |price: &str, plan: &str, rank: i64, features: &[&str], seats: i64| PlanRule {
        selector: Selector::Price(price.into()),
        plan: plan.into(),
        rank,
        features: features.iter().map(|f| f.to_string()).collect(),
        limits: [("seats".to_string(), seats)].into(),
    };
    let unranked = PlanMap {
        rules: vec![
            rule("p1", "basic", 0, &["export"], 3),
            rule("p2", "pro", 0, &["export", "sso"], 10),
            rule("p3", "team", 0, &["export", "audit"], 3),
        ],
        use_entitlements: false,
    };
    use std::cmp::Ordering::*;
    assert_eq!(unranked.order("pro", "basic"), Some(Greater));
    assert_eq!(unranked.order("basic", "pro"), Some(Less));
    assert_eq!(unranked.order("pro", "pro"), Some(Equal));
    assert_eq!(
        unranked.order("team", "pro"),
        None,
        "neither contains the other"
    );
    assert_eq!(
        unranked.order("pro", "enterprise"),
        None,
        "a plan the map does not know"
    );
    // Ranks, when they differ, win over containment.
    let ranked = PlanMap {
        rules: vec![
            rule("p1", "basic", 2, &["export"], 3),
            rule("p2", "pro", 1, &["export", "sso"], 10),
        ],
        use_entitlements: false,
    };
    assert_eq!(ranked.order("basic", "pro"), Some(Greater));
    // A customer on basic whose app shows pro: one unpaid_access, with the
    // extra feature and the larger limit in the evidence.
    let e = ExpectedAccess {
        access: access(Some("basic"), &["export"], &[("seats", 3)]),
        plan_rank: Some(0),
        granting: vec!["sub_1".into()],
    };
    let o = observed(access(Some("pro"), &["export", "sso"], &[("seats", 10)]));
    let verdict = compare(&e, &o, &unranked);
    assert_eq!(verdict.kinds(), vec![MismatchKind::UnpaidAccess]);
    assert_eq!(verdict.differences.len(), 3, "{verdict:?}");
    // The reverse: one unfulfilled.
    let e = ExpectedAccess {
        access: access(Some("pro"), &["export", "sso"], &[("seats", 10)]),
        plan_rank: Some(0),
        granting: vec!["sub_1".into()],
    };
    let o = observed(access(Some("basic"), &["export"], &[("seats", 3)]));
    assert_eq!(
        compare(&e, &o, &unranked).kinds(),
        vec![MismatchKind::Unfulfilled]
    );
    // Incomparable plans: one unfulfilled (the paid plan is not delivered),
    // both sides' differences kept.
    let o = observed(access(Some("team"), &["export", "audit"], &[("seats", 3)]));
    let verdict = compare(&e, &o, &unranked);
    assert_eq!(verdict.kinds(), vec![MismatchKind::Unfulfilled]);
    assert!(verdict.differences.contains(&Difference::FeatureExtra {
        feature: s("audit")
    }));
    assert!(
        verdict
            .differences
            .contains(&Difference::FeatureMissing { feature: s("sso") })
    );
}
