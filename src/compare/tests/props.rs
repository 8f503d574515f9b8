//! Properties of the comparison: expected-as-observed passes, differences
//! agree with their inputs, fixing one gap removes exactly that difference.

use proptest::prelude::*;

use super::*;

const NAMES: &[&str] = &["free", "starter", "pro", "pro_eu", "x", "y"];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(String::from)
}

fn arb_access() -> impl Strategy<Value = Access> {
    (
        any::<bool>(),
        prop::option::of(name()),
        prop::collection::btree_set(name(), 0..5),
        prop::collection::btree_map(name(), -3i64..3, 0..4),
    )
        .prop_map(|(active, plan, features, limits)| Access {
            active,
            plan,
            features,
            limits,
        })
}

fn arb_expected() -> impl Strategy<Value = ExpectedAccess> {
    (arb_access(), prop::option::of(-1i64..4)).prop_map(|(access, plan_rank)| ExpectedAccess {
        plan_rank: access.plan.as_ref().and(plan_rank),
        granting: vec![],
        access,
    })
}

fn arb_observed() -> impl Strategy<Value = ObservedAccess> {
    (any::<bool>(), arb_access()).prop_map(|(found, access)| ObservedAccess {
        found,
        access,
        deploy_sha: None,
    })
}

/// Checks a difference against the inputs it came from, so a wrong
/// direction (say a missing feature reported as extra) cannot pass.
fn consistent(d: &Difference, e: &ExpectedAccess, o: &ObservedAccess) -> bool {
    let (ea, oa) = (&e.access, &o.access);
    let observed_active = o.found && oa.active;
    let both = ea.active && observed_active;
    let holds = match d {
        Difference::AccessMissing => ea.active && !observed_active,
        Difference::AccessWithoutPayment => !ea.active && observed_active,
        Difference::PlanLower { expected, observed } => {
            both && ea.plan.as_ref() == Some(expected) && oa.plan == *observed
        }
        Difference::PlanHigher { expected, observed } => {
            both && ea.plan == *expected && oa.plan.as_ref() == Some(observed)
        }
        Difference::PlanDiffers { expected, observed } => both && expected != observed,
        Difference::FeatureMissing { feature } => {
            both && ea.features.contains(feature) && !oa.features.contains(feature)
        }
        Difference::FeatureExtra { feature } => {
            both && !ea.features.contains(feature) && oa.features.contains(feature)
        }
        Difference::LimitSmaller {
            limit,
            expected,
            observed,
        } => {
            both && ea.limits.get(limit) == Some(expected)
                && oa.limits.get(limit).copied() == *observed
                && observed.is_none_or(|v| v < *expected)
        }
        Difference::LimitLarger {
            limit,
            expected,
            observed,
        } => {
            both && ea.limits.get(limit).copied() == *expected
                && oa.limits.get(limit) == Some(observed)
                && expected.is_none_or(|v| v < *observed)
        }
    };
    let kind_matches = match d.kind() {
        MismatchKind::Unfulfilled => ea.active,
        MismatchKind::UnpaidAccess => observed_active,
    };
    holds && kind_matches
}

proptest! {
    #[test]
    fn expected_as_observed_passes(e in arb_expected(), found in any::<bool>()) {
        // Not found only matters when access is expected.
        let o = ObservedAccess { found: found || e.access.active, access: e.access.clone(), deploy_sha: None };
        let verdict = compare(&e, &o, rank);
        prop_assert!(verdict.passed(), "{:?}", verdict);
    }

    #[test]
    fn differences_are_consistent(e in arb_expected(), o in arb_observed()) {
        let verdict = compare(&e, &o, rank);
        for d in &verdict.differences {
            prop_assert!(consistent(d, &e, &o), "{:?} from {:?} vs {:?}", d, e, o);
        }
        let kinds = verdict.kinds();
        let mut sorted = kinds.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(kinds, sorted);
        prop_assert_eq!(verdict.passed(), verdict.summary() == "access matches");
    }

    #[test]
    fn never_panics_with_any_ranks(
        e in arb_expected(),
        o in arb_observed(),
        ranks in prop::collection::btree_map(name(), any::<i64>(), 0..6),
    ) {
        let verdict = compare(&e, &o, |p: &str| ranks.get(p).copied());
        let _ = verdict.summary();
        let plan_differences = verdict
            .differences
            .iter()
            .filter(|d| {
                matches!(
                    d,
                    Difference::PlanLower { .. }
                        | Difference::PlanHigher { .. }
                        | Difference::PlanDiffers { .. }
                )
            })
            .count();
        prop_assert!(plan_differences <= 1);
    }

    #[test]
    fn supplying_a_missing_feature_removes_exactly_it(
        mut e in arb_expected(),
        mut o in arb_observed(),
        feature in name(),
    ) {
        // Force the one shape where a feature can be missing.
        e.access.active = true;
        e.access.features.insert(feature.clone());
        o.found = true;
        o.access.active = true;
        o.access.features.remove(&feature);
        let before = compare(&e, &o, rank);
        let gap = Difference::FeatureMissing { feature: feature.clone() };
        prop_assert!(before.differences.contains(&gap));

        o.access.features.insert(feature);
        let after = compare(&e, &o, rank);
        let mut want = before.differences;
        want.retain(|d| *d != gap);
        prop_assert_eq!(after.differences, want);
    }
}
