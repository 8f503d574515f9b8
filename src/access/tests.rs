//! Expected-access derivation: a table of statuses and edge cases.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

const NOW: i64 = 1_700_000_000;
const DAY: i64 = 24 * 3600;

fn item(price: &str, product: Option<&str>, lookup_key: Option<&str>) -> SubscriptionItem {
    SubscriptionItem {
        price: price.into(),
        product: product.map(Into::into),
        lookup_key: lookup_key.map(Into::into),
        quantity: Some(1),
    }
}

fn sub(id: &str, status: &str, items: Vec<SubscriptionItem>) -> SubscriptionView {
    SubscriptionView {
        id: id.into(),
        status: status.into(),
        cancel_at_period_end: false,
        current_period_end: Some(NOW + 10 * DAY),
        past_due_since: None,
        items,
    }
}

fn rule(
    selector: Selector,
    plan: &str,
    rank: i64,
    features: &[&str],
    limits: &[(&str, i64)],
) -> PlanRule {
    PlanRule {
        selector,
        plan: plan.into(),
        rank,
        features: features.iter().map(|f| f.to_string()).collect(),
        limits: limits.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

/// starter (rank 1) and pro (rank 2) by price, an add-on by product, and
/// one lookup key that competes with the pro price.
fn map() -> PlanMap {
    PlanMap {
        rules: vec![
            rule(
                Selector::Price("price_starter".into()),
                "starter",
                1,
                &["api"],
                &[("seats", 3)],
            ),
            rule(
                Selector::Price("price_pro".into()),
                "pro",
                2,
                &["api", "sso"],
                &[("seats", 10)],
            ),
            rule(
                Selector::Product("prod_addon".into()),
                "addon",
                0,
                &["audit"],
                &[("projects", 5)],
            ),
            rule(
                Selector::LookupKey("pro_monthly".into()),
                "legacy",
                9,
                &["legacy"],
                &[],
            ),
            rule(
                Selector::Product("prod_pro".into()),
                "pro_product",
                8,
                &["product"],
                &[],
            ),
        ],
        use_entitlements: false,
    }
}

fn starter() -> SubscriptionItem {
    item("price_starter", Some("prod_starter"), None)
}

fn pro() -> SubscriptionItem {
    item("price_pro", Some("prod_pro"), Some("pro_monthly"))
}

fn derive(subs: &[SubscriptionView]) -> ExpectedAccess {
    expected_access(subs, None, &map(), &AccessPolicy::default(), NOW)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_status() {
    let table = [
        ("active", true),
        ("trialing", true),
        ("past_due", true), // unknown `past_due_since`: grace just started
        ("canceled", false),
        ("unpaid", false),
        ("incomplete", false),
        ("incomplete_expired", false),
        ("paused", false),
        ("some_future_status", false),
        ("", false),
        ("ACTIVE", false),
    ];
    for (status, granted) in table {
        let got = derive(&[sub("sub_1", status, vec![starter()])]);
        assert_eq!(got.access.active, granted, "status {status}");
        if granted {
            assert_eq!(
                got.access.plan.as_deref(),
                Some("starter"),
                "status {status}"
            );
            assert_eq!(got.granting, vec!["sub_1".to_string()]);
        } else {
            assert_eq!(got, ExpectedAccess::default(), "status {status}");
        }
    }
}

#[test]
fn past_due_grace() {
    let grace = AccessPolicy::default().past_due_grace_secs;
    let table = [
        // (since, grace, granted)
        (Some(NOW), grace, true),
        (Some(NOW - grace + 1), grace, true),
        (Some(NOW - grace), grace, false), // the grace ends at exactly since + grace
        (Some(NOW - 30 * DAY), grace, false),
        (None, grace, true),
        (Some(NOW), 0, false),
        (None, 0, false),
        (None, -5, false),
        (Some(i64::MAX), grace, true), // no overflow
        (Some(i64::MIN), grace, false),
    ];
    for (since, grace, granted) in table {
        let mut s = sub("sub_1", "past_due", vec![starter()]);
        s.past_due_since = since;
        let policy = AccessPolicy {
            past_due_grace_secs: grace,
        };
        let got = expected_access(&[s], None, &map(), &policy, NOW);
        assert_eq!(got.access.active, granted, "since {since:?}, grace {grace}");
    }
}

#[test]
fn cancel_at_period_end() {
    let table = [
        // (status, period end, granted)
        ("active", Some(NOW + 1), true),
        ("active", Some(NOW), false),
        ("active", Some(NOW - DAY), false),
        ("active", None, true),
        ("trialing", Some(NOW - 1), false),
        ("trialing", Some(NOW + DAY), true),
        ("past_due", Some(NOW - 1), false),
        ("canceled", Some(NOW + DAY), false),
    ];
    for (status, end, granted) in table {
        let mut s = sub("sub_1", status, vec![starter()]);
        s.cancel_at_period_end = true;
        s.current_period_end = end;
        assert_eq!(
            derive(&[s]).access.active,
            granted,
            "{status} ending {end:?}"
        );
    }
    // Without cancel_at_period_end a passed period end changes nothing:
    // Stripe renews and reports the status.
    let mut s = sub("sub_1", "active", vec![starter()]);
    s.current_period_end = Some(NOW - DAY);
    assert!(derive(&[s]).access.active);
}

#[test]
fn several_subscriptions_merge() {
    let addon = item("price_addon", Some("prod_addon"), None);
    let got = derive(&[
        sub("sub_b", "active", vec![starter()]),
        sub("sub_a", "trialing", vec![addon]),
        sub("sub_c", "canceled", vec![pro()]),
    ]);
    assert_eq!(
        got,
        ExpectedAccess {
            access: Access {
                active: true,
                plan: Some("starter".into()),
                features: set(&["api", "audit"]),
                limits: BTreeMap::from([("projects".into(), 5), ("seats".into(), 3)]),
            },
            plan_rank: Some(1),
            granting: vec!["sub_a".into(), "sub_b".into()],
        }
    );

    // Two plans: the higher rank wins, limits take the larger value.
    let got = derive(&[
        sub("sub_1", "active", vec![starter()]),
        sub("sub_2", "active", vec![item("price_pro", None, None)]),
    ]);
    assert_eq!(got.access.plan.as_deref(), Some("pro"));
    assert_eq!(got.plan_rank, Some(2));
    assert_eq!(got.access.features, set(&["api", "sso"]));
    assert_eq!(got.access.limits, BTreeMap::from([("seats".into(), 10)]));
}

#[test]
fn rank_ties_pick_the_smallest_name() {
    let map = PlanMap {
        rules: vec![
            rule(Selector::Price("p1".into()), "zeta", 1, &[], &[]),
            rule(Selector::Price("p2".into()), "alpha", 1, &[], &[]),
        ],
        use_entitlements: false,
    };
    let subs = [sub(
        "s",
        "active",
        vec![item("p1", None, None), item("p2", None, None)],
    )];
    let got = expected_access(&subs, None, &map, &AccessPolicy::default(), NOW);
    assert_eq!(got.access.plan.as_deref(), Some("alpha"));
}

#[test]
fn unmapped_items_grant_access_without_a_plan() {
    let got = derive(&[sub(
        "sub_1",
        "active",
        vec![item("price_unknown", Some("prod_x"), Some("lk_x"))],
    )]);
    assert_eq!(
        got,
        ExpectedAccess {
            access: Access {
                active: true,
                ..Access::default()
            },
            plan_rank: None,
            granting: vec!["sub_1".into()],
        }
    );
    // An unmapped item next to a mapped one adds nothing.
    let got = derive(&[sub(
        "sub_1",
        "active",
        vec![item("price_unknown", None, None), starter()],
    )]);
    assert_eq!(got.access.plan.as_deref(), Some("starter"));
    // No items at all.
    assert!(derive(&[sub("sub_1", "active", vec![])]).access.active);
}

#[test]
fn selector_precedence() {
    // (item, plan): price beats lookup key beats product, whatever the ranks.
    let table = [
        (pro(), "pro"),
        (
            item("price_other", Some("prod_pro"), Some("pro_monthly")),
            "legacy",
        ),
        (item("price_other", Some("prod_pro"), None), "pro_product"),
        (
            item("price_other", Some("prod_addon"), Some("unknown_key")),
            "addon",
        ),
    ];
    for (it, plan) in table {
        let got = derive(&[sub("s", "active", vec![it.clone()])]);
        assert_eq!(got.access.plan.as_deref(), Some(plan), "{it:?}");
    }
    // Losing rules contribute no features either.
    assert_eq!(
        derive(&[sub("s", "active", vec![pro()])]).access.features,
        set(&["api", "sso"])
    );
}

#[test]
fn rules_of_the_same_kind_all_apply() {
    let mut map = map();
    map.rules.push(rule(
        Selector::Price("price_pro".into()),
        "pro",
        2,
        &["extra"],
        &[("seats", 20)],
    ));
    let subs = [sub("s", "active", vec![pro()])];
    let got = expected_access(&subs, None, &map, &AccessPolicy::default(), NOW);
    assert_eq!(got.access.features, set(&["api", "extra", "sso"]));
    assert_eq!(got.access.limits["seats"], 20);
}

#[test]
fn entitlements_mode() {
    let mut map = map();
    map.use_entitlements = true;
    let ents = vec!["sso".to_string(), "api".into(), "sso".into()];
    let policy = AccessPolicy::default();
    let granting = [sub("s", "active", vec![pro()])];

    let got = expected_access(&granting, Some(&ents), &map, &policy, NOW);
    assert_eq!(got.access.features, set(&["api", "sso"]));
    // Plan and limits still come from the rules.
    assert_eq!(got.access.plan.as_deref(), Some("pro"));
    assert_eq!(got.access.limits["seats"], 10);

    // Entitlements differ from rule features: Stripe's word wins.
    let got = expected_access(&granting, Some(&["audit".to_string()]), &map, &policy, NOW);
    assert_eq!(got.access.features, set(&["audit"]));

    // Unreadable entitlements: no features.
    let got = expected_access(&granting, None, &map, &policy, NOW);
    assert!(got.access.active);
    assert!(got.access.features.is_empty());

    // No granting subscription: none, whatever the entitlements say.
    let lapsed = [sub("s", "canceled", vec![pro()])];
    assert_eq!(
        expected_access(&lapsed, Some(&ents), &map, &policy, NOW),
        ExpectedAccess::default()
    );
}

#[test]
fn no_subscriptions_is_none() {
    assert_eq!(derive(&[]), ExpectedAccess::default());
    assert!(!ExpectedAccess::default().access.active);
}

#[test]
fn rank_of_a_plan() {
    let map = map();
    assert_eq!(map.rank_of("pro"), Some(2));
    assert_eq!(map.rank_of("nope"), None);
}

mod props;
