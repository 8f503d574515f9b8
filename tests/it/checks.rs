//! Fulfillment checks end to end: Stripe simulator → webhook → sync →
//! expected access → sample app probe → verdict, runs and incidents.

use std::{collections::BTreeSet, time::Duration};

use parityrail::{
    access::{PlanRule, Selector},
    domain::{Incident, IncidentKind, ProjectSettings, Run, Trigger},
    ids::ProjectId,
};
use sample_app::SampleApp;
use serde_json::Value;
use stripe_sim::{StripeSim, SubscriptionChange};

use crate::support::{Backend, TEST_KEY, TestApp, TestOptions, eventually};

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

const PROBE_SECRET: &str = "probe_secret_for_tests_0123456789";

struct World {
    t: TestApp,
    sim: StripeSim,
    app: SampleApp,
    _sim_handle: stripe_sim::SimHandle,
    _app_handle: sample_app::SampleHandle,
    project: ProjectId,
    basic: String,
    pro: String,
}

async fn world(backend: Backend) -> Option<World> {
    let sim = StripeSim::new();
    sim.add_api_key(TEST_KEY);
    let sim_handle = sim.start().await;
    let app = SampleApp::new(PROBE_SECRET);
    app.set_deploy_sha("abc123");
    let app_handle = app.start().await;
    let opts = TestOptions {
        stripe_api_base: sim_handle.base_url(),
        ..TestOptions::default()
    };
    let t = TestApp::spawn_with(backend, opts).await?;
    let project = t.connected_project().await;
    t.set_probe(
        &project,
        &app_handle.probe_url(),
        PROBE_SECRET,
        Some(&app_handle.reconcile_url()),
    )
    .await;
    let product = sim.create_product("App");
    let basic = sim.create_price(&product, Some("basic"), 1000);
    let pro = sim.create_price(&product, Some("pro"), 3000);
    for (price, plan, rank, features, seats) in [
        (&basic, "basic", 1, vec!["export"], 3),
        (&pro, "pro", 2, vec!["export", "sso"], 10),
    ] {
        let rule = PlanRule {
            selector: Selector::Price(price.clone()),
            plan: plan.into(),
            rank,
            features: features
                .into_iter()
                .map(String::from)
                .collect::<BTreeSet<_>>(),
            limits: [("seats".to_string(), seats)].into(),
        };
        t.store().upsert_plan_rule(&project, &rule).await.unwrap();
    }
    set(
        &t,
        &project,
        ProjectSettings {
            fulfillment_deadline_secs: Some(2),
            ..Default::default()
        },
    )
    .await;
    Some(World {
        t,
        sim,
        app,
        _sim_handle: sim_handle,
        _app_handle: app_handle,
        project,
        basic,
        pro,
    })
}

async fn set(t: &TestApp, project: &ProjectId, settings: ProjectSettings) {
    t.store()
        .update_project_settings(project, &settings)
        .await
        .unwrap();
}

impl World {
    /// A customer mapped to `user` subscribed to `price`: (customer, subscription).
    fn subscribe(&self, user: &str, price: &str) -> (String, String) {
        let customer = self
            .sim
            .create_customer(&format!("{user}@example.com"), &[]);
        let sub = self.sim.create_subscription(
            &customer,
            &[price],
            "active",
            &[("parityrail_user_id", user)],
        );
        (customer, sub)
    }

    fn grant_pro(&self, customer: &str, user: &str) {
        self.app.grant(
            customer,
            user,
            Some("pro"),
            &["export", "sso"],
            &[("seats", 10)],
        );
    }

    /// Delivers the simulator's events for `customer` not yet delivered.
    async fn deliver_events(&self, customer: &str) -> Vec<String> {
        let mut ids = Vec::new();
        for event in self.sim.events() {
            let is_handled = parityrail::stripe::event::is_handled(event["type"].as_str().unwrap());
            if !is_handled || event["data"]["object"]["customer"] != customer {
                continue;
            }
            let body = serde_json::to_vec(&event).unwrap();
            assert_eq!(self.t.deliver(&self.project, &body).await.status(), 200);
            ids.push(event["id"].as_str().unwrap().to_string());
        }
        ids
    }

    /// Drives workers until the customer's newest run has a verdict.
    async fn verdict(&self, customer: &str) -> Run {
        eventually(Duration::from_secs(20), || async {
            self.t.drain_all().await;
            let runs = self
                .t
                .store()
                .list_runs(self.project.as_str(), Some(customer), 10)
                .await
                .unwrap();
            runs.into_iter()
                .next()
                .filter(|r| r.status.as_str() != "pending")
        })
        .await
    }

    async fn incidents(&self) -> Vec<Incident> {
        self.t
            .store()
            .list_incidents(self.project.as_str())
            .await
            .unwrap()
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
    w.t.stop().await;
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
    w.t.stop().await;
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
    w.t.stop().await;
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
    w.t.stop().await;
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
    w.t.stop().await;
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
    w.t.stop().await;
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
    w.t.stop().await;
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
    w.t.stop().await;
}

async fn slow_app_inside_the_window_passes_without_incident(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    set(
        &w.t,
        &w.project,
        ProjectSettings {
            fulfillment_deadline_secs: Some(6),
            ..Default::default()
        },
    )
    .await;
    let (customer, _) = w.subscribe("u_slow", &w.pro);
    // The app's own webhook handler grants access 1.5 s later.
    let c = customer.clone();
    w.app.apply_after(Duration::from_millis(1500), move |app| {
        app.grant(
            &c,
            "u_slow",
            Some("pro"),
            &["export", "sso"],
            &[("seats", 10)],
        )
    });
    w.deliver_events(&customer).await;
    let run = w.verdict(&customer).await;
    assert_eq!(run.status.as_str(), "passed");
    assert!(run.probe_attempts >= 2, "the first probe saw no access");
    assert!(w.incidents().await.is_empty());
    w.t.stop().await;
}

async fn app_down_opens_one_probe_failed_for_all_customers(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
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
    w.t.stop().await;
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
    w.t.stop().await;
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
    w.t.stop().await;
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
    w.t.stop().await;
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
    w.t.stop().await;
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
    w.t.stop().await;
}
