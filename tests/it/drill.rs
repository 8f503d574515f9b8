//! The drill (issue 9, SPEC §8b) through the real webhook URL: on a
//! healthy setup it is caught with complete evidence and its incident is
//! labelled and resolved, apart from a real incident of the same customer;
//! when monitoring is broken it names the stage that broke; and without a
//! signing secret, a probe or a customer it sends nothing.

use std::time::Duration;

use parityrail::{
    crypto::MasterKey,
    domain::{IncidentStatus, RunKind},
    usecase::drill::{self, DrillError, DrillReport},
    vault::{Purpose, Vault},
};

use crate::{
    process::{stderr, stdout},
    support::Backend,
    world::{Options, World, world},
};

crate::backend_tests!(
    a_drill_on_a_healthy_setup_is_caught_labelled_and_resolved,
    a_broken_setup_fails_the_drill_at_the_stage_that_broke,
    a_drill_without_a_secret_a_probe_or_a_customer_sends_nothing,
);

/// A customer ParityRail has read, with the access it paid for.
pub async fn known_customer(w: &World, user: &str) -> String {
    let (customer, _) = w.subscribe(user, &w.pro);
    w.grant(&customer, user, "pro");
    w.deliver(&customer).await;
    w.verdict(&customer).await;
    customer
}

/// Runs the drill while `drive` workers process what it sends.
pub async fn drill_with_workers(w: &World, wait: Duration, drive: bool) -> DrillReport {
    let project = w.t.project_of(&w.project).await;
    let base = w.t.url("");
    let drilled = drill::run(&w.t.app, &project, &base, wait);
    if drive {
        w.t.working(drilled).await.unwrap()
    } else {
        drilled.await.unwrap()
    }
}

async fn a_drill_on_a_healthy_setup_is_caught_labelled_and_resolved(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let customer = known_customer(&w, "u_drill").await;
    // A real incident of the same customer and kind stands meanwhile: the
    // app lost the customer's access.
    w.app.revoke(&customer);
    let real =
        w.t.check_now(&w.project, &customer, parityrail::domain::Trigger::Manual)
            .await;
    assert_eq!(real.kind, Some(RunKind::Unfulfilled));
    let real_before = w.incidents().await;
    assert_eq!(real_before.len(), 1, "one real incident: {real_before:?}");
    assert_eq!(real_before[0].customer_id, customer);

    let report = drill_with_workers(&w, Duration::from_secs(30), true).await;
    assert!(report.caught, "{report:#?}");
    assert_eq!(report.customer, customer, "{report:#?}");
    let stages: Vec<&str> = report.stages.iter().map(|s| s.stage).collect();
    assert_eq!(
        stages,
        [
            "accepted",
            "stored",
            "processed",
            "stripe_read",
            "probed",
            "compared",
            "incident_opened"
        ]
    );
    assert!(report.missing_evidence.is_empty());
    // Labelled everywhere, and resolved by the drill.
    let incident_id = report.incident_id.clone().unwrap();
    let incident = w
        .incidents()
        .await
        .into_iter()
        .find(|i| i.id == incident_id)
        .unwrap();
    assert!(incident.drill);
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert_eq!(incident.kind.as_str(), "unfulfilled");
    let run =
        w.t.store()
            .run(report.run_id.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(run.kind, Some(RunKind::Unfulfilled));
    assert_eq!(run.trigger.as_str(), "drill");
    let api = parityrail::views::incident_json(&incident, &[]);
    assert_eq!(api["drill"], true);
    assert_eq!(parityrail::views::run_json(&run)["drill"], true);
    // The pages say so too.
    crate::dashboard::member(&w, "ada@example.com", parityrail::domain::Role::Viewer).await;
    let mut d = crate::dashboard::Dash::new(&w.t);
    d.sign_in("ada@example.com", crate::dashboard::PASSWORD)
        .await;
    let page = d
        .get(&format!("/projects/{}/incidents/{incident_id}", w.project))
        .await;
    assert!(page.body.contains("badge drill"), "{}", page.body);
    let resolved = d
        .get(&format!(
            "/projects/{}/incidents?status=resolved",
            w.project
        ))
        .await;
    assert!(resolved.body.contains("badge drill"));
    // The real incident is untouched: still open, not merged.
    let real = w
        .incidents()
        .await
        .into_iter()
        .find(|i| i.id == real_before[0].id)
        .unwrap();
    assert_eq!(real.status, IncidentStatus::Open);
    assert!(!real.drill);
    assert_eq!(real.count, real_before[0].count);
    w.t.stop().await;
}

async fn a_broken_setup_fails_the_drill_at_the_stage_that_broke(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    known_customer(&w, "u_broken").await;
    // Workers stopped: accepted and stored, never processed.
    let report = drill_with_workers(&w, Duration::from_secs(1), false).await;
    assert!(!report.caught);
    let broken = report.broken().unwrap();
    assert_eq!(broken.stage, "processed", "{report:#?}");
    assert!(broken.detail.contains("workers"), "{}", broken.detail);
    w.t.drain_all().await;

    // The probe pointed nowhere: the app is never asked.
    let probe = w.t.store().probe_config(&w.project).await.unwrap().unwrap();
    w.t.set_probe(
        &w.project,
        "http://127.0.0.1:9/nowhere",
        crate::world::PROBE_SECRET,
        None,
    )
    .await;
    let report = drill_with_workers(&w, Duration::from_secs(30), true).await;
    assert!(!report.caught);
    assert_eq!(report.broken().unwrap().stage, "probed", "{report:#?}");
    w.t.set_probe(&w.project, &probe.url, crate::world::PROBE_SECRET, None)
        .await;

    // The service is not where the drill sends: nothing accepted it.
    let project = w.t.project_of(&w.project).await;
    let report = drill::run(
        &w.t.app,
        &project,
        "http://127.0.0.1:9",
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(report.broken().unwrap().stage, "accepted", "{report:#?}");
    assert!(
        report
            .broken()
            .unwrap()
            .detail
            .contains("is `parityrail serve` running")
    );

    // The CLI says the same and exits non-zero.
    let out = w.t.cli(&[
        "drill",
        w.project.as_str(),
        "--url",
        "http://127.0.0.1:9",
        "--wait",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("FAIL accepted"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("did NOT catch"));
    w.t.stop().await;
}

async fn a_drill_without_a_secret_a_probe_or_a_customer_sends_nothing(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let project = w.t.project_of(&w.project).await;
    let base = w.t.url("");
    let events = || async {
        w.t.store()
            .list_events(w.project.as_str(), 1000)
            .await
            .unwrap()
            .len()
    };
    // No customer read yet.
    let before = events().await;
    let err = drill::run(&w.t.app, &project, &base, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, DrillError::NoCustomer), "{err}");
    assert!(err.to_string().contains("parityrail scan"));
    known_customer(&w, "u_pre").await;
    let before = events().await.max(before);

    // A signing secret that cannot be opened (sealed under another key).
    let other = Vault::new(Some(
        MasterKey::from_hex(&MasterKey::generate_hex()).unwrap(),
    ));
    let sealed = other
        .seal(
            Purpose::WebhookSecret,
            &w.project,
            "whsec_sealed_elsewhere_0000",
        )
        .unwrap();
    let secrets = w.t.store().webhook_secrets(&w.project).await.unwrap();
    w.t.store()
        .add_webhook_secrets(&w.project, &[sealed], parityrail::now_ms())
        .await
        .unwrap();
    let err = drill::run(&w.t.app, &project, &base, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, DrillError::Vault(_)), "{err}");
    let added = w.t.store().webhook_secrets(&w.project).await.unwrap();
    let extra = added
        .iter()
        .find(|s| !secrets.iter().any(|o| o.id == s.id))
        .unwrap();
    w.t.store()
        .remove_webhook_secret(&w.project, extra.id, true)
        .await
        .unwrap();

    // No signing secret at all.
    for s in w.t.store().webhook_secrets(&w.project).await.unwrap() {
        w.t.store()
            .remove_webhook_secret(&w.project, s.id, true)
            .await
            .unwrap();
    }
    let err = drill::run(&w.t.app, &project, &base, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, DrillError::NoSigningSecret), "{err}");
    assert!(err.to_string().contains("stripe secrets add"));
    assert_eq!(events().await, before, "nothing was sent");

    // A connected project with no probe.
    let bare = w.t.connected_project().await;
    let bare = w.t.project_of(&bare).await;
    let err = drill::run(&w.t.app, &bare, &base, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, DrillError::NoProbe), "{err}");
    assert!(err.to_string().contains("probe set"));
    assert_eq!(
        w.t.store()
            .list_events(bare.id.as_str(), 10)
            .await
            .unwrap()
            .len(),
        0
    );
    w.t.stop().await;
}
