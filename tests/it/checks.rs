//! Fulfillment checks end to end: Stripe simulator → webhook → sync →
//! expected access → sample app probe → verdict, runs and incidents.

use std::{collections::BTreeSet, time::Duration};

use parityrail::{
    domain::{Incident, IncidentKind, ProjectSettings, Trigger},
    ids::ProjectId,
};
use serde_json::Value;
use stripe_sim::SubscriptionChange;

use crate::{
    support::{Backend, TEST_KEY, TestApp},
    world::Options,
};

crate::backend_tests!(
    healthy_customer_passes_without_incident,
    paid_without_access_opens_unfulfilled_with_full_evidence,
    cancelled_customer_who_kept_access_is_unpaid_access,
    downgrade_not_applied_is_unpaid_access,
    upgrade_not_applied_is_unfulfilled,
    extra_feature_and_smaller_limit_are_both_reported,
    past_due_keeps_access_inside_grace_only,
    cancel_at_period_end_keeps_access,
    slow_app_inside_the_window_passes_without_incident,
    app_down_opens_one_probe_failed_for_all_customers,
    redelivered_and_burst_events_make_one_run,
    unmapped_customer_opens_unmapped_customer,
    passing_check_resolves_the_incident,
    out_of_order_events_judge_stripe_current_state,
    revoked_key_on_a_manual_check_opens_stripe_auth,
);

/// The shared story world with a hand clock: the 120 s fulfillment window
/// and the re-probes inside it pass in milliseconds.
struct World(crate::world::World);

impl std::ops::Deref for World {
    type Target = crate::world::World;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

async fn world(backend: Backend) -> Option<World> {
    crate::world::world(
        backend,
        Options {
            manual_clock: true,
            deadline_secs: 120,
            ..Options::default()
        },
    )
    .await
    .map(World)
}

async fn set(t: &TestApp, project: &ProjectId, settings: ProjectSettings) {
    t.store()
        .update_project_settings(project, &settings)
        .await
        .unwrap();
}

impl World {
    fn grant_pro(&self, customer: &str, user: &str) {
        self.grant(customer, user, "pro");
    }

    async fn deliver_events(&self, customer: &str) -> Vec<String> {
        self.deliver(customer).await
    }

    async fn open_incidents(&self) -> Vec<Incident> {
        self.incidents()
            .await
            .into_iter()
            .filter(|i| i.status.as_str() == "open")
            .collect()
    }
}

async fn healthy_customer_passes_without_incident(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_ok", &w.pro);
    w.grant_pro(&customer, "u_ok");
    w.deliver_events(&customer).await;
    let run = w.verdict(&customer).await;
    assert_eq!(
        (run.status.as_str(), run.trigger.as_str()),
        ("passed", "webhook")
    );
    assert_eq!(run.deploy_sha.as_deref(), Some("abc123"));
    assert!(w.incidents().await.is_empty());
    let steps: Vec<String> =
        w.t.store()
            .run_steps(&run.id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.step.as_str().to_string())
            .collect();
    assert_eq!(steps, ["stripe_snapshot", "expected", "probe", "verdict"]);
    w.0.t.stop().await;
}

async fn paid_without_access_opens_unfulfilled_with_full_evidence(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, sub) = w.subscribe("u_paid", &w.pro);
    let events = w.deliver_events(&customer).await;
    let run = w.verdict(&customer).await;
    assert_eq!(
        (run.status.as_str(), run.kind.map(|k| k.as_str())),
        ("failed", Some("unfulfilled"))
    );
    assert!(
        run.probe_attempts >= 2,
        "re-probed before the deadline: {run:?}"
    );
    let incidents = w.open_incidents().await;
    assert_eq!(incidents.len(), 1);
    let i = &incidents[0];
    assert_eq!(i.kind.as_str(), "unfulfilled");
    assert_eq!(i.customer_id, customer);
    assert_eq!(i.app_user_id.as_deref(), Some("u_paid"));
    assert_eq!(i.subscription_id.as_deref(), Some(sub.as_str()));
    assert_eq!(i.subscription_status.as_deref(), Some("active"));
    assert!(
        events.contains(i.event_id.as_ref().unwrap()),
        "event id is evidence"
    );
    let expected: Value = serde_json::from_str(i.expected.as_deref().unwrap()).unwrap();
    assert_eq!(expected["plan"], "pro");
    let observed: Value = serde_json::from_str(i.observed.as_deref().unwrap()).unwrap();
    assert_eq!(observed["found"], false);
    assert_eq!(
        w.t.store().incident_runs(&i.id).await.unwrap(),
        vec![run.id.clone()]
    );
    assert!(i.kind.guidance().contains("webhook handler"));
    w.0.t.stop().await;
}

async fn cancelled_customer_who_kept_access_is_unpaid_access(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, sub) = w.subscribe("u_gone", &w.pro);
    w.grant_pro(&customer, "u_gone");
    w.sim.cancel_subscription(&sub);
    w.deliver_events(&customer).await;
    let run = w.verdict(&customer).await;
    assert_eq!(run.kind.map(|k| k.as_str()), Some("unpaid_access"));
    let i = &w.open_incidents().await[0];
    assert_eq!(
        (i.kind.as_str(), i.subscription_status.as_deref()),
        ("unpaid_access", Some("canceled"))
    );
    assert_eq!(i.deploy_sha.as_deref(), Some("abc123"));
    w.0.t.stop().await;
}

async fn downgrade_not_applied_is_unpaid_access(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, sub) = w.subscribe("u_down", &w.pro);
    w.grant_pro(&customer, "u_down");
    w.sim.update_subscription(
        &sub,
        SubscriptionChange {
            prices: Some(vec![w.basic.clone()]),
            ..Default::default()
        },
    );
    w.deliver_events(&customer).await;
    let run = w.verdict(&customer).await;
    assert_eq!(run.kind.map(|k| k.as_str()), Some("unpaid_access"));
    assert!(
        run.summary.as_deref().unwrap().contains("pro"),
        "{:?}",
        run.summary
    );
    w.0.t.stop().await;
}

async fn upgrade_not_applied_is_unfulfilled(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, sub) = w.subscribe("u_up", &w.basic);
    w.app.grant(
        &customer,
        "u_up",
        Some("basic"),
        &["export"],
        &[("seats", 3)],
    );
    w.sim.update_subscription(
        &sub,
        SubscriptionChange {
            prices: Some(vec![w.pro.clone()]),
            ..Default::default()
        },
    );
    w.deliver_events(&customer).await;
    let run = w.verdict(&customer).await;
    assert_eq!(run.kind.map(|k| k.as_str()), Some("unfulfilled"));
    let kinds: BTreeSet<String> = w
        .open_incidents()
        .await
        .into_iter()
        .map(|i| i.kind.as_str().to_string())
        .collect();
    assert_eq!(kinds, ["unfulfilled".to_string()].into());
    w.0.t.stop().await;
}

async fn extra_feature_and_smaller_limit_are_both_reported(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_mixed", &w.pro);
    w.app.grant(
        &customer,
        "u_mixed",
        Some("pro"),
        &["export", "sso", "beta"],
        &[("seats", 5)],
    );
    w.deliver_events(&customer).await;
    let run = w.verdict(&customer).await;
    let summary = run.summary.unwrap();
    assert!(
        summary.contains("beta") && summary.contains("seats"),
        "{summary}"
    );
    let kinds: BTreeSet<String> = w
        .open_incidents()
        .await
        .into_iter()
        .map(|i| i.kind.as_str().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["unfulfilled".to_string(), "unpaid_access".to_string()].into()
    );
    w.0.t.stop().await;
}

async fn past_due_keeps_access_inside_grace_only(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, sub) = w.subscribe("u_late", &w.pro);
    w.grant_pro(&customer, "u_late");
    w.sim.fail_invoice_payment(&sub);
    w.deliver_events(&customer).await;
    assert_eq!(
        w.verdict(&customer).await.status.as_str(),
        "passed",
        "inside the 3-day default grace"
    );
    // Grace 0: past_due grants nothing, so the app's access is unpaid.
    set(
        &w.t,
        &w.project,
        ProjectSettings {
            past_due_grace_secs: Some(0),
            ..Default::default()
        },
    )
    .await;
    let run = w.t.check_now(&w.project, &customer, Trigger::Manual).await;
    assert_eq!(
        (run.status.as_str(), run.kind.map(|k| k.as_str())),
        ("failed", Some("unpaid_access"))
    );
    w.0.t.stop().await;
}

async fn cancel_at_period_end_keeps_access(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, sub) = w.subscribe("u_leaving", &w.pro);
    w.grant_pro(&customer, "u_leaving");
    w.sim.update_subscription(
        &sub,
        SubscriptionChange {
            cancel_at_period_end: Some(true),
            ..Default::default()
        },
    );
    w.deliver_events(&customer).await;
    assert_eq!(w.verdict(&customer).await.status.as_str(), "passed");
    w.0.t.stop().await;
}

async fn slow_app_inside_the_window_passes_without_incident(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_slow", &w.pro);
    w.deliver_events(&customer).await;
    // The first probe sees no access: the app's own handler is still at work.
    w.t.drain_all().await;
    let first = w.runs(&customer).await.remove(0);
    assert!(
        first.is_pending(),
        "re-probing inside the window: {first:?}"
    );
    // A minute later (of the two the window allows) the handler is done.
    w.advance(Duration::from_secs(60));
    w.grant(&customer, "u_slow", "pro");
    let run = w.verdict(&customer).await;
    assert_eq!(run.status.as_str(), "passed");
    assert!(run.probe_attempts >= 2, "the first probe saw no access");
    assert!(w.incidents().await.is_empty());
    w.0.t.stop().await;
}

async fn app_down_opens_one_probe_failed_for_all_customers(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    // Each failing attempt costs the probe client's own quick retries in
    // real time: a short window keeps the story short.
    set(
        &w.t,
        &w.project,
        ProjectSettings {
            fulfillment_deadline_secs: Some(2),
            ..Default::default()
        },
    )
    .await;
    w.app.set_down(true);
    let (a, _) = w.subscribe("u_a", &w.pro);
    let (b, _) = w.subscribe("u_b", &w.pro);
    w.deliver_events(&a).await;
    w.deliver_events(&b).await;
    assert_eq!(
        w.verdict(&a).await.kind.map(|k| k.as_str()),
        Some("probe_failed")
    );
    assert_eq!(
        w.verdict(&b).await.kind.map(|k| k.as_str()),
        Some("probe_failed")
    );
    let incidents = w.open_incidents().await;
    assert_eq!(
        incidents.len(),
        1,
        "one probe_failed for the app, not one per customer"
    );
    assert_eq!(
        (incidents[0].kind.as_str(), incidents[0].count),
        ("probe_failed", 2)
    );
    assert_eq!(
        w.t.store()
            .incident_runs(&incidents[0].id)
            .await
            .unwrap()
            .len(),
        2
    );
    w.0.t.stop().await;
}

async fn redelivered_and_burst_events_make_one_run(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, sub) = w.subscribe("u_burst", &w.pro);
    w.grant_pro(&customer, "u_burst");
    for n in 0..3 {
        w.sim.update_subscription(
            &sub,
            SubscriptionChange {
                metadata: Some(vec![("n".into(), n.to_string())]),
                ..Default::default()
            },
        );
    }
    w.deliver_events(&customer).await;
    w.deliver_events(&customer).await; // Stripe redelivers all of them
    w.verdict(&customer).await;
    let runs =
        w.t.store()
            .list_runs(w.project.as_str(), Some(&customer), 10)
            .await
            .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    w.0.t.stop().await;
}

async fn unmapped_customer_opens_unmapped_customer(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    set(
        &w.t,
        &w.project,
        ProjectSettings {
            require_mapping: Some(true),
            ..Default::default()
        },
    )
    .await;
    let customer = w.sim.create_customer("nobody@example.com", &[]);
    w.sim
        .create_subscription(&customer, &[&w.pro], "active", &[]);
    w.deliver_events(&customer).await;
    let run = w.verdict(&customer).await;
    assert_eq!(run.kind.map(|k| k.as_str()), Some("unmapped_customer"));
    assert_eq!(
        w.open_incidents().await[0].kind.as_str(),
        "unmapped_customer"
    );
    assert_eq!(w.app.request_count(), 0, "never guesses a user to probe");
    w.0.t.stop().await;
}

async fn passing_check_resolves_the_incident(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_fix", &w.pro);
    w.deliver_events(&customer).await;
    assert_eq!(
        w.verdict(&customer).await.kind.map(|k| k.as_str()),
        Some("unfulfilled")
    );
    w.grant_pro(&customer, "u_fix");
    let run = w.t.check_now(&w.project, &customer, Trigger::Rerun).await;
    assert_eq!(run.status.as_str(), "passed");
    let incidents = w.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].status.as_str(), "resolved");
    w.0.t.stop().await;
}

async fn out_of_order_events_judge_stripe_current_state(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, sub) = w.subscribe("u_order", &w.pro);
    w.sim.cancel_subscription(&sub);
    // The app handled the cancellation correctly: no access.
    w.app.grant(
        &customer,
        "u_order",
        Some("pro"),
        &["export", "sso"],
        &[("seats", 10)],
    );
    w.app.revoke(&customer);
    // Stripe delivers `deleted` before `created`.
    let mut events: Vec<Value> = w
        .sim
        .events()
        .into_iter()
        .filter(|e| e["data"]["object"]["customer"] == customer.as_str())
        .filter(|e| parityrail::stripe::event::is_handled(e["type"].as_str().unwrap()))
        .collect();
    events.reverse();
    assert_eq!(events[0]["type"], "customer.subscription.deleted");
    for event in &events {
        let body = serde_json::to_vec(event).unwrap();
        assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
        w.t.drain().await; // processed one at a time, in the wrong order
    }
    let run = w.verdict(&customer).await;
    assert_eq!(run.status.as_str(), "passed", "{:?}", run.summary);
    let subs =
        w.t.store()
            .subscriptions_of(w.project.as_str(), &customer)
            .await
            .unwrap();
    assert_eq!(
        subs[0].status.as_str(),
        "canceled",
        "the older event never rolls the state back"
    );
    assert!(w.incidents().await.is_empty());
    w.0.t.stop().await;
}

async fn revoked_key_on_a_manual_check_opens_stripe_auth(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_key", &w.pro);
    w.grant_pro(&customer, "u_key");
    w.sim.revoke_api_key(TEST_KEY);
    let run = w.t.check_now(&w.project, &customer, Trigger::Manual).await;
    assert_eq!(
        (run.status.as_str(), run.kind.map(|k| k.as_str())),
        ("failed", Some("stripe_auth"))
    );
    let incidents = w.open_incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        (
            incidents[0].kind.as_str(),
            incidents[0].customer_id.as_str()
        ),
        ("stripe_auth", "")
    );
    assert!(
        !incidents[0].details.contains(TEST_KEY),
        "the key never reaches evidence"
    );
    assert!(IncidentKind::StripeAuth.guidance().contains("Reconnect"));
    w.0.t.stop().await;
}
