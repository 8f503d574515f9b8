//! Verdicts right at the edges (issue 7, items 5–8): scan pages carry the
//! time they were read, past_due grace counts from Stripe's record, scans
//! in Entitlements mode read entitlements, and one mismatch is one incident.

use std::time::Duration;

use parityrail::{
    access::{PlanRule, Selector},
    domain::{ProjectSettings, RunKind, RunStatus, ScanStatus, ScanTrigger, Trigger},
};

use crate::{
    support::{Backend, TEST_SECRET, eventually},
    world::{Options, standing_of, world},
};

crate::backend_tests!(
    a_scan_page_read_before_a_cancel_never_overwrites_it,
    past_due_grace_runs_from_stripes_failed_payment,
    entitlements_scans_pass_healthy_customers_on_the_first_look,
    a_key_without_the_entitlements_permission_is_stripe_auth_never_unpaid_access,
    a_plan_mismatch_is_one_incident_with_or_without_ranks,
);

/// Item 5. The scan reads a page, Stripe's answer is slow to arrive; in
/// between, the customer cancels and the webhook's sync stores that. The
/// page, read earlier, must not overwrite the newer state.
async fn a_scan_page_read_before_a_cancel_never_overwrites_it(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let (customer, sub) = w.subscribe("u_page", &w.pro);
    w.grant(&customer, "u_page", "pro");
    w.deliver(&customer).await;
    assert_eq!(w.verdict(&customer).await.status, RunStatus::Passed);
    // The newest `created` slice ends just after the subscription: hold its page.
    let created = w.sim.subscription_json(&sub)["created"].as_i64().unwrap();
    w.sim.hold_responses(
        "/v1/subscriptions",
        &format!("created%5Blt%5D={}", created + 1),
        Duration::from_millis(1500),
        1,
    );
    let started = parityrail::scan::create(&w.t.app, &w.project, ScanTrigger::Manual)
        .await
        .unwrap();
    let scan = tokio::spawn({
        let app = w.t.app.clone();
        async move { parityrail::scan::run(&app, started.scan, &started.owner, None).await }
    });
    eventually(Duration::from_secs(10), || async {
        (w.sim.holds_pending() == 0).then_some(())
    })
    .await;
    // The page has been read (active); its answer is on the way. The
    // customer cancels, the app revokes access, the webhook is synced.
    w.sim.cancel_subscription(&sub);
    w.app.revoke(&customer);
    assert!(!w.deliver(&customer).await.is_empty());
    assert_eq!(w.t.drain().await, 1);
    let summary = scan.await.unwrap().unwrap();
    assert_eq!(summary.status, ScanStatus::Completed);
    let subs =
        w.t.store()
            .subscriptions_of(w.project.as_str(), &customer)
            .await
            .unwrap();
    assert_eq!(subs[0].status, "canceled", "the older page did not win");
    assert!(
        w.runs(&customer)
            .await
            .iter()
            .all(|r| r.trigger != Trigger::Scan),
        "nothing looked wrong to the scan, so nothing was confirmed"
    );
    assert_eq!(w.verdict(&customer).await.status, RunStatus::Passed);
    assert!(w.standing().await.is_empty(), "{:?}", w.incidents().await);
    w.t.stop().await;
}

/// Item 6. Onboarding customers past due for ten days (default grace: 3
/// days from the failed payment Stripe recorded): one whose access the app
/// revoked is fine; one who kept access is `unpaid_access`.
async fn past_due_grace_runs_from_stripes_failed_payment(backend: Backend) {
    let Some(w) = world(
        backend,
        Options {
            events: false,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let ten_days = 10 * 86_400;
    w.sim.advance_clock(-ten_days);
    let (revoked, revoked_sub) = w.subscribe("u_revoked", &w.pro);
    let (kept, kept_sub) = w.subscribe("u_kept", &w.pro);
    w.sim.fail_invoice_payment(&revoked_sub);
    w.sim.fail_invoice_payment(&kept_sub);
    w.sim.advance_clock(ten_days);
    w.grant(&kept, "u_kept", "pro");
    let summary = w.scan().await.unwrap();
    assert_eq!(summary.status, ScanStatus::Completed);
    assert_eq!(
        w.standing().await,
        standing_of(&[("unpaid_access", &kept)]),
        "{:?}",
        w.incidents().await
    );
    let past_due_since =
        w.t.store()
            .subscriptions_of(w.project.as_str(), &revoked)
            .await
            .unwrap()[0]
            .past_due_since
            .unwrap();
    let now = parityrail::now_ms() / 1000;
    assert!(
        (now - ten_days - past_due_since).abs() < 60,
        "from Stripe's invoice, not first sight"
    );
    // The webhook and manual path agrees.
    let run = w.t.check_now(&w.project, &revoked, Trigger::Manual).await;
    assert_eq!(run.status, RunStatus::Passed, "{:?}", run.summary);
    let run = w.t.check_now(&w.project, &kept, Trigger::Manual).await;
    assert_eq!(run.kind, Some(RunKind::UnpaidAccess));
    w.t.stop().await;
}

async fn entitlements_world(backend: Backend) -> Option<crate::world::World> {
    let w = world(
        backend,
        Options {
            events: false,
            ..Options::default()
        },
    )
    .await?;
    w.settings(ProjectSettings {
        use_entitlements: Some(true),
        ..Default::default()
    })
    .await;
    w.sim.set_product_features(&w.product, &["export", "sso"]);
    Some(w)
}

/// Item 7. In Entitlements mode the scan reads each paying customer's
/// entitlements inside the budget, so healthy customers pass on the first
/// look instead of each costing a confirmation.
async fn entitlements_scans_pass_healthy_customers_on_the_first_look(backend: Backend) {
    let Some(w) = entitlements_world(backend).await else {
        return;
    };
    for i in 0..42 {
        let user = format!("u{i}");
        let (customer, _) = w.subscribe(&user, &w.pro);
        w.grant(&customer, &user, "pro");
    }
    w.sim.reset_request_log();
    let summary = w.scan().await.unwrap();
    assert_eq!(summary.status, ScanStatus::Completed);
    assert_eq!(summary.customers_checked, 42);
    assert!(summary.mismatches.is_empty(), "{summary:?}");
    assert!(w.incidents().await.is_empty());
    assert_eq!(w.stripe_reads("/v1/customers/"), 0, "nothing to confirm");
    assert_eq!(w.stripe_reads("/v1/entitlements"), 42);
    assert!(
        summary.stripe_requests < 80,
        "planning, one page, 42 entitlement reads: {}",
        summary.stripe_requests
    );
    w.t.stop().await;
}

/// Item 7. A restricted key that may not read entitlements opens
/// `stripe_auth` naming the permission, for the scan and for webhooks alike;
/// it never turns into `unpaid_access` for everyone.
async fn a_key_without_the_entitlements_permission_is_stripe_auth_never_unpaid_access(
    backend: Backend,
) {
    let Some(w) = entitlements_world(backend).await else {
        return;
    };
    let key = "rk_test_no_entitlements_0001";
    w.sim.add_restricted_key_without(
        key,
        "/v1/entitlements",
        "rak_entitlements_active_entitlement_read",
    );
    w.t.connect(&w.project, key, &[TEST_SECRET]).await;
    let mut subs = Vec::new();
    for i in 0..5 {
        let user = format!("u{i}");
        let (customer, sub) = w.subscribe(&user, &w.pro);
        w.grant(&customer, &user, "pro");
        subs.push(sub);
    }
    let err = w.scan().await.unwrap_err();
    assert!(err.to_string().contains("Entitlements: Read"), "{err}");
    let scans = w.t.store().list_scans(w.project.as_str(), 1).await.unwrap();
    assert_eq!(scans[0].status, ScanStatus::Failed);
    assert_eq!(w.standing().await, standing_of(&[("stripe_auth", "")]));
    let incident = &w.incidents().await[0];
    assert!(
        incident.details.contains("Entitlements: Read"),
        "{}",
        incident.details
    );
    // A webhook sync meets the same refusal: still no access incidents.
    let event = w.sim.emit_event(
        "customer.subscription.updated",
        w.sim.subscription_json(&subs[0]),
        None,
    );
    let body = serde_json::to_vec(&event).unwrap();
    assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
    w.t.drain_all().await;
    let events = w.t.events(&w.project).await;
    assert_eq!(events[0].status.as_str(), "dead");
    assert!(
        events[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("Entitlements")
    );
    assert_eq!(w.standing().await, standing_of(&[("stripe_auth", "")]));
    w.t.stop().await;
}

/// Item 8. One mismatch, one incident, whether or not plans are ranked:
/// unranked plans are ordered by what they grant.
async fn a_plan_mismatch_is_one_incident_with_or_without_ranks(backend: Backend) {
    let Some(w) = world(
        backend,
        Options {
            ranks: (0, 0),
            deadline_secs: 1,
            manual_clock: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let team = w.sim.create_price(&w.product, Some("team"), 2000);
    let rule = PlanRule {
        selector: Selector::Price(team.clone()),
        plan: "team".into(),
        rank: 0,
        features: ["export".to_string(), "audit".to_string()].into(),
        limits: [("seats".to_string(), 3)].into(),
    };
    w.t.store()
        .upsert_plan_rule(&w.project, &rule)
        .await
        .unwrap();
    // Paid basic, the app shows pro: higher.
    let (up, _) = w.subscribe("u_up", &w.basic);
    w.grant(&up, "u_up", "pro");
    // Paid pro, the app shows basic: lower.
    let (down, _) = w.subscribe("u_down", &w.pro);
    w.grant(&down, "u_down", "basic");
    // Paid pro, the app shows team: neither contains the other.
    let (sideways, _) = w.subscribe("u_side", &w.pro);
    w.grant(&sideways, "u_side", "team");
    for customer in [&up, &down, &sideways] {
        w.deliver(customer).await;
        assert_eq!(w.verdict(customer).await.status, RunStatus::Failed);
    }
    assert_eq!(
        w.standing().await,
        standing_of(&[
            ("unpaid_access", &up),
            ("unfulfilled", &down),
            ("unfulfilled", &sideways),
        ])
    );
    let incidents = w.incidents().await;
    let side = incidents
        .iter()
        .find(|i| i.customer_id == sideways)
        .unwrap();
    for difference in ["plan_differs", "feature_extra", "feature_missing"] {
        assert!(
            side.details.contains(difference),
            "both sides' differences in the evidence: {}",
            side.details
        );
    }
    w.t.stop().await;
}
