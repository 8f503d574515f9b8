//! Control-API behaviour: state changes and the events they emit.

use serde_json::json;

use crate::{StripeSim, SubscriptionChange};

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00Z

fn setup() -> (StripeSim, String, String) {
    let sim = StripeSim::new();
    sim.set_clock(T0);
    let product = sim.create_product("Pro");
    let price = sim.create_price(&product, Some("pro_monthly"), 2000);
    sim.set_product_features(&product, &["pro-features"]);
    let customer = sim.create_customer("jenny@example.com", &[("app_user_id", "user_42")]);
    (sim, price, customer)
}

fn types(sim: &StripeSim) -> Vec<String> {
    sim.events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn subscription_has_dahlia_shape_and_emits_events() {
    let (sim, price, customer) = setup();
    let sub = sim.create_subscription(
        &customer,
        &[&price],
        "active",
        &[("app_user_id", "user_42")],
    );
    let json = sim.subscription_json(&sub);
    assert_eq!(json["object"], "subscription");
    assert_eq!(json["customer"], customer.as_str());
    assert_eq!(json["status"], "active");
    assert_eq!(json["livemode"], false);
    assert!(json.get("current_period_end").is_none());
    let item = &json["items"]["data"][0];
    assert_eq!(item["current_period_start"], T0);
    assert_eq!(item["current_period_end"], 1_769_904_000);
    assert_eq!(item["price"]["id"], price.as_str());
    assert_eq!(item["price"]["lookup_key"], "pro_monthly");
    assert_eq!(item["price"]["recurring"]["interval"], "month");
    assert_eq!(item["quantity"], 1);
    assert_eq!(
        types(&sim),
        [
            "customer.created",
            "customer.subscription.created",
            "invoice.paid",
            "entitlements.active_entitlement_summary.updated"
        ]
    );
    let events = sim.events();
    let invoice = &events[2]["data"]["object"];
    assert_eq!(
        invoice["parent"]["subscription_details"]["subscription"],
        sub.as_str()
    );
    assert_eq!(invoice["status"], "paid");
    assert_eq!(json["latest_invoice"], invoice["id"]);
    let summary = &events[3]["data"]["object"];
    assert_eq!(summary["customer"], customer.as_str());
    assert_eq!(
        summary["entitlements"]["data"][0]["lookup_key"],
        "pro-features"
    );
    assert_eq!(
        events[3]["data"]["previous_attributes"],
        json!({"entitlements": {"data": []}})
    );
    assert_eq!(events[3]["api_version"], crate::API_VERSION);
    assert_eq!(
        sim.event(events[1]["id"].as_str().unwrap()).unwrap(),
        events[1]
    );
}

#[test]
fn update_reports_previous_attributes() {
    let (sim, price, customer) = setup();
    let sub = sim.create_subscription(
        &customer,
        &[&price],
        "active",
        &[("app_user_id", "user_42")],
    );
    let before = sim.events().len();
    sim.update_subscription(
        &sub,
        SubscriptionChange {
            cancel_at_period_end: Some(true),
            metadata: Some(vec![("plan".into(), "pro".into())]),
            ..Default::default()
        },
    );
    let events = sim.events();
    assert_eq!(events.len(), before + 1);
    let event = &events[before];
    assert_eq!(event["type"], "customer.subscription.updated");
    assert_eq!(
        event["data"]["previous_attributes"],
        json!({
            "cancel_at": null,
            "cancel_at_period_end": false,
            "canceled_at": null,
            "cancellation_details": {"reason": null},
            "metadata": {"plan": null}
        })
    );
    let object = &event["data"]["object"];
    assert_eq!(object["cancel_at"], 1_769_904_000);
    assert_eq!(object["canceled_at"], T0);
    assert_eq!(
        object["metadata"],
        json!({"app_user_id": "user_42", "plan": "pro"})
    );

    // No change, no event.
    sim.update_subscription(&sub, SubscriptionChange::default());
    assert_eq!(sim.events().len(), before + 1);
}

#[test]
fn price_change_moves_entitlements() {
    let (sim, price, customer) = setup();
    let basic = sim.create_product("Basic");
    let basic_price = sim.create_price(&basic, None, 500);
    sim.set_product_features(&basic, &["basic-features"]);
    let sub = sim.create_subscription(&customer, &[&price], "active", &[]);
    sim.update_subscription(
        &sub,
        SubscriptionChange {
            prices: Some(vec![basic_price.clone()]),
            ..Default::default()
        },
    );
    assert_eq!(sim.active_entitlements(&customer), ["basic-features"]);
    let events = sim.events();
    let updated = &events[events.len() - 2];
    assert_eq!(updated["type"], "customer.subscription.updated");
    let old_items = &updated["data"]["previous_attributes"]["items"]["data"];
    assert_eq!(old_items[0]["price"]["id"], price.as_str());
    let summary = events.last().unwrap();
    assert_eq!(
        summary["data"]["previous_attributes"]["entitlements"]["data"][0]["lookup_key"],
        "pro-features"
    );
}

#[test]
fn failure_then_cancel() {
    let (sim, price, customer) = setup();
    let sub = sim.create_subscription(&customer, &[&price], "active", &[]);
    let first_invoice = sim.subscription_json(&sub)["latest_invoice"].clone();
    let before = sim.events().len();
    sim.fail_invoice_payment(&sub);
    let events = sim.events();
    assert_eq!(events[before]["type"], "invoice.payment_failed");
    assert_eq!(events[before]["data"]["object"]["status"], "open");
    assert_eq!(
        events[before]["data"]["object"]["billing_reason"],
        "subscription_cycle"
    );
    assert_eq!(events[before + 1]["type"], "customer.subscription.updated");
    assert_eq!(
        events[before + 1]["data"]["previous_attributes"],
        json!({"status": "active", "latest_invoice": first_invoice})
    );
    // past_due still entitles: no summary event.
    assert_eq!(events.len(), before + 2);
    assert_eq!(sim.subscription_json(&sub)["status"], "past_due");

    sim.advance_clock(60);
    sim.cancel_subscription(&sub);
    let json = sim.subscription_json(&sub);
    assert_eq!(json["status"], "canceled");
    assert_eq!(json["ended_at"], T0 + 60);
    let types = types(&sim);
    assert_eq!(
        &types[types.len() - 2..],
        [
            "customer.subscription.deleted",
            "entitlements.active_entitlement_summary.updated"
        ]
    );
    assert!(sim.active_entitlements(&customer).is_empty());
}

#[test]
fn recovering_past_due_pays_the_open_invoice() {
    let (sim, price, customer) = setup();
    let sub = sim.create_subscription(&customer, &[&price], "active", &[]);
    sim.fail_invoice_payment(&sub);
    let open = sim.subscription_json(&sub)["latest_invoice"].clone();
    sim.update_subscription(
        &sub,
        SubscriptionChange {
            status: Some("active".into()),
            ..Default::default()
        },
    );
    let events = sim.events();
    let paid = &events[events.len() - 2];
    assert_eq!(paid["type"], "invoice.paid");
    assert_eq!(paid["data"]["object"]["id"], open);
    assert_eq!(paid["data"]["object"]["attempt_count"], 2);
    assert_eq!(
        events.last().unwrap()["data"]["previous_attributes"],
        json!({"status": "past_due"})
    );
}

#[test]
fn deleting_a_customer_cancels_its_subscriptions() {
    let (sim, price, customer) = setup();
    let sub = sim.create_subscription(&customer, &[&price], "trialing", &[]);
    assert_eq!(sim.active_entitlements(&customer), ["pro-features"]);
    sim.delete_customer(&customer);
    assert_eq!(sim.subscription_json(&sub)["status"], "canceled");
    assert_eq!(
        sim.customer_json(&customer),
        json!({"id": customer, "object": "customer", "deleted": true})
    );
    assert_eq!(types(&sim).last().unwrap(), "customer.deleted");
}

#[test]
fn events_can_be_switched_off_for_seeding() {
    let (sim, price, customer) = setup();
    let before = sim.events().len();
    sim.set_emit_events(false);
    for _ in 0..100 {
        sim.create_subscription(&customer, &[&price], "active", &[]);
    }
    assert_eq!(sim.events().len(), before);
    let custom = sim.emit_event(
        "customer.updated",
        json!({"id": customer}),
        Some(json!({"email": "x"})),
    );
    assert_eq!(custom["type"], "customer.updated");
    assert_eq!(custom["data"]["previous_attributes"]["email"], "x");
    assert_eq!(sim.events().len(), before + 1);
}

#[test]
fn live_sim_marks_objects_live() {
    let sim = StripeSim::new_live();
    let customer = sim.create_customer("a@example.com", &[]);
    assert_eq!(sim.customer_json(&customer)["livemode"], true);
    assert_eq!(sim.events()[0]["livemode"], true);
    assert!(sim.account_id().starts_with("acct_sim"));
}

#[test]
fn time_passing_ends_trials_renews_periods_and_cancels_after_failed_retries() {
    let (sim, price, customer) = setup();
    let trial = sim.create_subscription(&customer, &[&price], "trialing", &[]);
    let renewing = sim.create_subscription(&customer, &[&price], "active", &[]);
    let ending = sim.create_subscription(&customer, &[&price], "active", &[]);
    sim.update_subscription(
        &ending,
        SubscriptionChange {
            cancel_at_period_end: Some(true),
            ..SubscriptionChange::default()
        },
    );
    let failing = sim.create_subscription(&customer, &[&price], "active", &[]);
    sim.fail_invoice_payment(&failing);
    let trial_end = sim.subscription_json(&trial)["trial_end"].as_i64().unwrap();
    let before = sim.events().len();

    // A day on: the failed payment waits for its retry.
    sim.pass_time(86_400);
    assert_eq!(sim.subscription_json(&failing)["status"], "past_due");
    assert_eq!(sim.subscription_json(&trial)["status"], "trialing");
    // Past the trial.
    sim.pass_time(trial_end - sim.now() + 1);
    assert_eq!(sim.subscription_json(&trial)["status"], "active");
    assert_eq!(sim.subscription_json(&renewing)["status"], "active");

    // A month on: renewed with a paid invoice; the one cancelled at period
    // end is gone; the failing one was retried and then cancelled.
    sim.pass_time(31 * 86_400);
    let renewed = sim.subscription_json(&renewing);
    assert_eq!(renewed["status"], "active");
    let item = &renewed["items"]["data"][0];
    let (start, end) = (
        item["current_period_start"].as_i64().unwrap(),
        item["current_period_end"].as_i64().unwrap(),
    );
    assert!(
        start > T0 && start <= sim.now() && sim.now() < end,
        "the period holds now"
    );
    assert_eq!(sim.subscription_json(&ending)["status"], "canceled");
    assert_eq!(sim.subscription_json(&failing)["status"], "canceled");
    let after: Vec<String> = sim.events()[before..]
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(after.iter().any(|t| t == "invoice.paid"), "{after:?}");
    assert_eq!(
        after
            .iter()
            .filter(|t| *t == "invoice.payment_failed")
            .count(),
        3,
        "three retries after the first failure: {after:?}"
    );
    assert!(
        after
            .iter()
            .filter(|t| *t == "customer.subscription.deleted")
            .count()
            >= 2
    );
    // Time passing again changes nothing more for the cancelled ones.
    let n = sim.events().len();
    sim.advance_clock(60);
    assert_eq!(sim.events().len(), n, "advance_clock only moves the clock");
}

#[test]
fn after_failed_retries_a_subscription_can_be_marked_unpaid_or_left_past_due() {
    let (sim, price, customer) = setup();
    for (outcome, status) in [
        (crate::AfterFailedRetries::MarkUnpaid, "unpaid"),
        (crate::AfterFailedRetries::LeavePastDue, "past_due"),
    ] {
        sim.set_after_failed_retries(outcome);
        let sub = sim.create_subscription(&customer, &[&price], "active", &[]);
        sim.fail_invoice_payment(&sub);
        sim.pass_time(20 * 86_400);
        let json = sim.subscription_json(&sub);
        assert_eq!(json["status"], status, "{outcome:?}");
        // The invoice stays open with no further attempt, so more time
        // changes nothing.
        let invoice = json["latest_invoice"].as_str().unwrap().to_owned();
        let n = sim.events().len();
        sim.pass_time(10 * 86_400);
        let later: Vec<_> = sim.events()[n..]
            .iter()
            .filter(|e| e["data"]["object"]["id"] == invoice.as_str())
            .map(|e| e["type"].clone())
            .collect();
        assert!(later.is_empty(), "{outcome:?}: {later:?}");
        assert_eq!(sim.subscription_json(&sub)["status"], status);
    }
}
