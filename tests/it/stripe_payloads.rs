//! Real Stripe payload shapes (`tests/fixtures/stripe`, copied from the shared
//! ground truth) parse before and after `2025-03-31.basil`.

use parityrail::{
    domain::Subscription,
    stripe::{
        event::{VerifiedEvent, is_handled},
        model::{ActiveEntitlement, List, parse_subscription},
    },
};
use serde_json::Value;

const JENNY: &str = "cus_QXg1o8vcGmoR32";
const SUB: &str = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/stripe/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn every_event_fixture_parses_with_its_customer_and_subscription() {
    let dirs = ["events", "events-pre-basil"];
    let mut seen = 0;
    for dir in dirs {
        let root = format!("{}/tests/fixtures/stripe/{dir}", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(root).unwrap() {
            let path = entry.unwrap().path();
            let event = VerifiedEvent::parse(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(is_handled(&event.event_type), "{}", event.event_type);
            assert_eq!(event.customer.as_deref(), Some(JENNY), "{}", path.display());
            assert!(!event.livemode);
            assert!(event.created > 1_767_225_000);
            if event.event_type != "entitlements.active_entitlement_summary.updated" {
                assert_eq!(
                    event.subscription.as_deref(),
                    Some(SUB),
                    "{}",
                    path.display()
                );
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 10);
}

#[test]
fn invoices_link_their_subscription_in_both_eras() {
    let basil = VerifiedEvent::parse(&fixture("events/invoice.paid.json")).unwrap();
    let acacia = VerifiedEvent::parse(&fixture("events-pre-basil/invoice.paid.json")).unwrap();
    assert_eq!(basil.api_version.as_deref(), Some("2026-07-29.dahlia"));
    assert_eq!(acacia.api_version.as_deref(), Some("2025-01-27.acacia"));
    assert_eq!(basil.subscription, acacia.subscription);
}

fn object_of(path: &str) -> Value {
    let event: Value = serde_json::from_slice(&fixture(path)).unwrap();
    event["data"]["object"].clone()
}

#[test]
fn subscription_periods_are_read_from_items_or_the_subscription() {
    let basil = parse_subscription(object_of("events/customer.subscription.created.json")).unwrap();
    let acacia = parse_subscription(object_of(
        "events-pre-basil/customer.subscription.updated.json",
    ))
    .unwrap();
    for sub in [&basil, &acacia] {
        assert_eq!(sub.id, SUB);
        assert_eq!(sub.customer, JENNY);
        assert_eq!(
            sub.current_period_end,
            Some(1_769_904_000),
            "period end lost"
        );
        assert_eq!(sub.items[0].price, "price_1PgafmB7WZ01zgkW6dKueIc5");
        assert_eq!(sub.items[0].product.as_deref(), Some("prod_QXg1hqf4jFNsqG"));
        assert_eq!(
            sub.metadata.get("app_user_id").map(String::as_str),
            Some("user_42")
        );
    }
    assert_eq!(basil.status.as_str(), "active");
    assert!(acacia.cancel_at_period_end);
    let past_due = parse_subscription(object_of(
        "events/customer.subscription.updated.past_due.json",
    ))
    .unwrap();
    assert_eq!(past_due.status.as_str(), "past_due");
    let deleted =
        parse_subscription(object_of("events/customer.subscription.deleted.json")).unwrap();
    assert_eq!(deleted.status.as_str(), "canceled");
}

#[test]
fn api_list_responses_parse() {
    let list: List<Value> =
        serde_json::from_slice(&fixture("api-responses/subscriptions.list.json")).unwrap();
    assert!(!list.has_more);
    let subs: Vec<Subscription> = list
        .data
        .into_iter()
        .map(|v| parse_subscription(v).unwrap())
        .collect();
    assert_eq!(subs[0].id, SUB);
    let ents: List<ActiveEntitlement> = serde_json::from_slice(&fixture(
        "api-responses/entitlements.active_entitlements.list.json",
    ))
    .unwrap();
    assert_eq!(ents.data[0].lookup_key, "seats-feature");
}
