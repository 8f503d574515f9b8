//! Comparison: a table over every difference.

use super::*;
use crate::access::Access;

fn access(plan: Option<&str>, features: &[&str], limits: &[(&str, i64)]) -> Access {
    Access {
        active: true,
        plan: plan.map(Into::into),
        features: features.iter().map(|f| f.to_string()).collect(),
        limits: limits.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

fn expected(access: Access) -> ExpectedAccess {
    ExpectedAccess {
        plan_rank: access.plan.as_deref().and_then(rank),
        granting: if access.active {
            vec!["sub_1".into()]
        } else {
            vec![]
        },
        access,
    }
}

fn observed(access: Access) -> ObservedAccess {
    ObservedAccess {
        found: true,
        access,
        deploy_sha: Some("abc123".into()),
    }
}

fn rank(plan: &str) -> Option<i64> {
    match plan {
        "free" => Some(0),
        "starter" => Some(1),
        "pro" => Some(2),
        "pro_eu" => Some(2),
        _ => None,
    }
}

fn inactive() -> Access {
    Access::default()
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn table() {
    use Difference::*;
    let paid = access(Some("pro"), &["api", "sso"], &[("seats", 10)]);
    let not_found = ObservedAccess {
        found: false,
        access: paid.clone(),
        deploy_sha: None,
    };
    let cases: Vec<(&str, ExpectedAccess, ObservedAccess, Vec<Difference>)> = vec![
        (
            "exact",
            expected(paid.clone()),
            observed(paid.clone()),
            vec![],
        ),
        (
            "both none",
            expected(inactive()),
            observed(inactive()),
            vec![],
        ),
        (
            "none vs not found",
            expected(inactive()),
            not_found.clone(),
            vec![],
        ),
        (
            "stale inactive answer",
            expected(inactive()),
            observed(Access {
                active: false,
                ..paid.clone()
            }),
            vec![],
        ),
        (
            "missing: not found",
            expected(paid.clone()),
            not_found,
            vec![AccessMissing],
        ),
        (
            "missing: inactive",
            expected(paid.clone()),
            observed(Access {
                active: false,
                ..paid.clone()
            }),
            vec![AccessMissing],
        ),
        (
            "unpaid access, features not listed",
            expected(inactive()),
            observed(access(Some("pro"), &["sso"], &[("seats", 3)])),
            vec![AccessWithoutPayment],
        ),
        (
            "plan lower",
            expected(paid.clone()),
            observed(Access {
                plan: Some(s("starter")),
                ..paid.clone()
            }),
            vec![PlanLower {
                expected: s("pro"),
                observed: Some(s("starter")),
            }],
        ),
        (
            "plan none observed",
            expected(paid.clone()),
            observed(Access {
                plan: None,
                ..paid.clone()
            }),
            vec![PlanLower {
                expected: s("pro"),
                observed: None,
            }],
        ),
        (
            "plan higher",
            expected(Access {
                plan: Some(s("starter")),
                ..paid.clone()
            }),
            observed(paid.clone()),
            vec![PlanHigher {
                expected: Some(s("starter")),
                observed: s("pro"),
            }],
        ),
        (
            "plan none expected",
            expected(Access {
                plan: None,
                ..paid.clone()
            }),
            observed(paid.clone()),
            vec![PlanHigher {
                expected: None,
                observed: s("pro"),
            }],
        ),
        (
            "plan unknown rank",
            expected(paid.clone()),
            observed(Access {
                plan: Some(s("enterprise_x")),
                ..paid.clone()
            }),
            vec![PlanDiffers {
                expected: s("pro"),
                observed: s("enterprise_x"),
            }],
        ),
        (
            "plan equal rank, other name",
            expected(paid.clone()),
            observed(Access {
                plan: Some(s("pro_eu")),
                ..paid.clone()
            }),
            vec![PlanDiffers {
                expected: s("pro"),
                observed: s("pro_eu"),
            }],
        ),
        (
            "feature missing and extra, sorted together",
            expected(paid.clone()),
            observed(access(
                Some("pro"),
                &["api", "beta", "zz"],
                &[("seats", 10)],
            )),
            vec![
                FeatureExtra { feature: s("beta") },
                FeatureMissing { feature: s("sso") },
                FeatureExtra { feature: s("zz") },
            ],
        ),
        (
            "limit smaller",
            expected(paid.clone()),
            observed(access(Some("pro"), &["api", "sso"], &[("seats", 5)])),
            vec![LimitSmaller {
                limit: s("seats"),
                expected: 10,
                observed: Some(5),
            }],
        ),
        (
            "limit absent",
            expected(paid.clone()),
            observed(access(Some("pro"), &["api", "sso"], &[])),
            vec![LimitSmaller {
                limit: s("seats"),
                expected: 10,
                observed: None,
            }],
        ),
        (
            "limit larger and unexpected",
            expected(paid.clone()),
            observed(access(
                Some("pro"),
                &["api", "sso"],
                &[("seats", 11), ("projects", 1)],
            )),
            vec![
                LimitLarger {
                    limit: s("projects"),
                    expected: None,
                    observed: 1,
                },
                LimitLarger {
                    limit: s("seats"),
                    expected: Some(10),
                    observed: 11,
                },
            ],
        ),
        (
            "everything at once, in order",
            expected(paid.clone()),
            observed(access(
                Some("starter"),
                &["api", "audit"],
                &[("seats", 3), ("api_calls", 9)],
            )),
            vec![
                PlanLower {
                    expected: s("pro"),
                    observed: Some(s("starter")),
                },
                FeatureExtra {
                    feature: s("audit"),
                },
                FeatureMissing { feature: s("sso") },
                LimitLarger {
                    limit: s("api_calls"),
                    expected: None,
                    observed: 9,
                },
                LimitSmaller {
                    limit: s("seats"),
                    expected: 10,
                    observed: Some(3),
                },
            ],
        ),
    ];
    for (name, e, o, want) in cases {
        let verdict = compare(&e, &o, rank);
        assert_eq!(verdict.differences, want, "{name}");
        assert_eq!(verdict.passed(), want.is_empty(), "{name}");
    }
}

#[test]
fn kinds_of_every_variant() {
    use Difference::*;
    use MismatchKind::*;
    let table = [
        (AccessMissing, Unfulfilled),
        (AccessWithoutPayment, UnpaidAccess),
        (
            PlanLower {
                expected: s("b"),
                observed: None,
            },
            Unfulfilled,
        ),
        (
            PlanHigher {
                expected: None,
                observed: s("b"),
            },
            UnpaidAccess,
        ),
        (
            PlanDiffers {
                expected: s("a"),
                observed: s("b"),
            },
            Unfulfilled,
        ),
        (FeatureMissing { feature: s("f") }, Unfulfilled),
        (FeatureExtra { feature: s("f") }, UnpaidAccess),
        (
            LimitSmaller {
                limit: s("l"),
                expected: 1,
                observed: None,
            },
            Unfulfilled,
        ),
        (
            LimitLarger {
                limit: s("l"),
                expected: None,
                observed: 1,
            },
            UnpaidAccess,
        ),
    ];
    for (difference, kind) in table {
        assert_eq!(difference.kind(), kind, "{difference:?}");
    }
}

#[test]
fn kinds_are_deduped_unfulfilled_first() {
    let verdict = Verdict {
        differences: vec![
            Difference::FeatureExtra { feature: s("a") },
            Difference::FeatureMissing { feature: s("b") },
            Difference::FeatureExtra { feature: s("c") },
        ],
    };
    assert_eq!(
        verdict.kinds(),
        vec![MismatchKind::Unfulfilled, MismatchKind::UnpaidAccess]
    );
    assert!(Verdict::default().kinds().is_empty());
}

#[test]
fn summary_names_what_differs() {
    let e = expected(access(Some("pro"), &["api", "sso"], &[("seats", 10)]));
    let o = observed(access(Some("starter"), &["api", "beta"], &[("seats", 3)]));
    assert_eq!(
        compare(&e, &o, rank).summary(),
        "unfulfilled: plan lower (expected pro, observed starter); \
         feature beta extra; feature sso missing; limit seats smaller (expected 10, observed 3)"
    );
    assert_eq!(Verdict::default().summary(), "access matches");
    let v = compare(&expected(inactive()), &o, rank);
    assert_eq!(
        v.summary(),
        "unpaid_access: access without payment (nothing paid, app reports access)"
    );
}

#[test]
fn serde_shapes() {
    let d = Difference::FeatureMissing { feature: s("sso") };
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        serde_json::json!({"type": "feature_missing", "feature": "sso"})
    );
    assert_eq!(
        serde_json::to_value(Difference::AccessMissing).unwrap(),
        serde_json::json!({"type": "access_missing"})
    );
    assert_eq!(
        serde_json::to_value(MismatchKind::UnpaidAccess).unwrap(),
        serde_json::json!("unpaid_access")
    );
    let v = Verdict {
        differences: vec![
            Difference::LimitLarger {
                limit: s("seats"),
                expected: None,
                observed: 4,
            },
            Difference::PlanDiffers {
                expected: s("a"),
                observed: s("b"),
            },
        ],
    };
    let json = serde_json::to_string(&v).unwrap();
    assert_eq!(serde_json::from_str::<Verdict>(&json).unwrap(), v);
}

mod plans;
mod props;
