//! Properties of the derivation: it never panics and ignores input order.

use proptest::prelude::*;

use super::*;

const IDS: &[&str] = &["a", "b", "c", "d"];
const STATUSES: &[&str] = &[
    "active",
    "trialing",
    "past_due",
    "canceled",
    "unpaid",
    "incomplete",
    "incomplete_expired",
    "paused",
];

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(pool).prop_map(String::from)
}

fn time() -> impl Strategy<Value = i64> {
    prop_oneof![4 => (NOW - 10 * DAY)..(NOW + 10 * DAY), 1 => any::<i64>()]
}

fn arb_item() -> impl Strategy<Value = SubscriptionItem> {
    (
        pick(IDS),
        prop::option::of(pick(IDS)),
        prop::option::of(pick(IDS)),
        any::<Option<i64>>(),
    )
        .prop_map(|(price, product, lookup_key, quantity)| SubscriptionItem {
            price,
            product,
            lookup_key,
            quantity,
        })
}

fn arb_sub() -> impl Strategy<Value = SubscriptionView> {
    (
        pick(IDS),
        prop_oneof![4 => pick(STATUSES), 1 => ".*"],
        any::<bool>(),
        prop::option::of(time()),
        prop::option::of(time()),
        prop::collection::vec(arb_item(), 0..4),
    )
        .prop_map(
            |(id, status, cancel_at_period_end, current_period_end, past_due_since, items)| {
                SubscriptionView {
                    id,
                    status,
                    cancel_at_period_end,
                    current_period_end,
                    past_due_since,
                    items,
                }
            },
        )
}

fn arb_rule() -> impl Strategy<Value = PlanRule> {
    let selector = prop_oneof![
        pick(IDS).prop_map(Selector::Price),
        pick(IDS).prop_map(Selector::Product),
        pick(IDS).prop_map(Selector::LookupKey),
    ];
    (
        selector,
        pick(IDS),
        -3i64..3,
        prop::collection::btree_set(pick(IDS), 0..3),
        prop::collection::btree_map(pick(IDS), any::<i64>(), 0..3),
    )
        .prop_map(|(selector, plan, rank, features, limits)| PlanRule {
            selector,
            plan,
            rank,
            features,
            limits,
        })
}

fn arb_map() -> impl Strategy<Value = PlanMap> {
    (prop::collection::vec(arb_rule(), 0..6), any::<bool>()).prop_map(
        |(rules, use_entitlements)| PlanMap {
            rules,
            use_entitlements,
        },
    )
}

/// A deterministic shuffle (Fisher–Yates over a tiny LCG), so a failing case
/// shrinks to a seed rather than to an opaque permutation.
fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    let mut state = seed | 1;
    for i in (1..out.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.swap(i, (state >> 33) as usize % (i + 1));
    }
    out
}

proptest! {
    #[test]
    fn never_panics(
        subs in prop::collection::vec(arb_sub(), 0..5),
        ents in prop::option::of(prop::collection::vec(".*", 0..4)),
        map in arb_map(),
        grace in any::<i64>(),
        now in any::<i64>(),
    ) {
        let policy = AccessPolicy { past_due_grace_secs: grace };
        let got = expected_access(&subs, ents.as_deref(), &map, &policy, now);
        prop_assert_eq!(got.access.active, !got.granting.is_empty());
        prop_assert_eq!(got.plan_rank.is_some(), got.access.plan.is_some());
    }

    #[test]
    fn independent_of_order(
        subs in prop::collection::vec(arb_sub(), 0..5),
        ents in prop::option::of(prop::collection::vec(pick(IDS), 0..5)),
        map in arb_map(),
        now in time(),
        seed in any::<u64>(),
    ) {
        let policy = AccessPolicy::default();
        let before = expected_access(&subs, ents.as_deref(), &map, &policy, now);
        let reordered: Vec<SubscriptionView> = shuffled(&subs, seed)
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                s.items = shuffled(&s.items, seed ^ i as u64);
                s
            })
            .collect();
        let ents = ents.map(|e| shuffled(&e, seed.rotate_left(7)));
        let after = expected_access(&reordered, ents.as_deref(), &map, &policy, now);
        prop_assert_eq!(before, after);
    }
}
