//! Drills on setups the main drill stories do not cover.
//!
//! A project ParityRail has only scanned can be drilled (the quick start's
//! order: `scan`, then `drill`): a scan reads subscriptions, not customers,
//! and the drill still finds a real customer among them. Its incident is
//! labelled in the CLI and never counts as a real one.
//!
//! A wrong signing secret fails the drill: the drill signs with the stored
//! secret, so it would pass, while Stripe's deliveries are refused. It says
//! so at `accepted` and sends nothing, until a Stripe delivery matches again.

use std::time::Duration;

use parityrail::{
    config::Secret,
    domain::IncidentStatus,
    usecase::{connection, drill, incidents, overview},
};

use crate::{
    process::stdout,
    support::Backend,
    support::TEST_SECRET,
    world::{Options, World, world},
};

crate::backend_tests!(
    a_project_only_scanned_is_drilled_with_a_scanned_customer,
    a_wrong_signing_secret_fails_the_drill_until_a_stripe_delivery_matches_again,
    a_drill_resolves_no_real_incident_and_leaves_none_of_its_own_open,
);

/// Runs the drill while the world's workers process what it sends.
async fn drill_driven(w: &World) -> drill::DrillReport {
    crate::drill::drill_with_workers(w, Duration::from_secs(30), true).await
}

/// The newest handled event of `customer` in the simulator, as Stripe sends it.
fn newest_event_of(w: &World, customer: &str) -> Vec<u8> {
    let event = w
        .sim
        .events()
        .into_iter()
        .rev()
        .find(|e| e["data"]["object"]["customer"] == customer)
        .expect("an event of the customer");
    serde_json::to_vec(&event).unwrap()
}

async fn a_project_only_scanned_is_drilled_with_a_scanned_customer(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_scanned", &w.pro);
    w.grant(&customer, "u_scanned", "pro");
    let project = w.t.project_of(&w.project).await;
    // Nothing read yet: nothing to drill with, and nothing sent.
    let none = drill::run(&w.t.app, &project, &w.t.url(""), Duration::from_secs(1)).await;
    assert!(
        matches!(none, Err(drill::DrillError::NoCustomer)),
        "{none:?}"
    );
    // The CLI says what is missing in one line, exits non-zero, sends nothing.
    let base = w.t.url("");
    let out = w.t.cli(&["drill", w.project.as_str(), "--url", &base]);
    assert!(!out.status.success());
    let err = crate::process::stderr(&out);
    assert!(err.contains("no customer to drill with"), "{err}");
    assert!(
        w.t.store()
            .list_events(w.project.as_str(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    w.scan().await.unwrap();

    let report = drill_driven(&w).await;
    assert_eq!(report.customer, customer, "{report:#?}");
    assert!(report.caught, "{report:#?}");

    // Drill incidents never count: the overview and the inbox's tabs show
    // no incident, while the list shows the drill's, labelled.
    let glance = overview::glance(&w.t.app, &project).await.unwrap();
    assert_eq!(glance.open_total, 0);
    let inbox = incidents::inbox(&w.t.app, &project, Default::default(), None, 50)
        .await
        .unwrap();
    assert!(
        inbox.by_status.iter().all(|(_, n)| *n == 0),
        "{:?}",
        inbox.by_status
    );
    let listed = incidents::list(&w.t.app, &project).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].incident.drill);
    for args in [["incidents", "list"], ["events", "list"]] {
        let out = w.t.cli(&[args[0], args[1], w.project.as_str()]);
        let text = stdout(&out);
        assert!(
            out.status.success() && text.contains("[drill]"),
            "{args:?}: {text}"
        );
    }
}

async fn a_wrong_signing_secret_fails_the_drill_until_a_stripe_delivery_matches_again(
    backend: Backend,
) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_secret", &w.pro);
    w.grant(&customer, "u_secret", "pro");
    w.deliver(&customer).await;
    w.verdict(&customer).await;
    let project = w.t.project_of(&w.project).await;

    // An operator pastes another endpoint's secret and removes the right one.
    connection::add_secrets(
        &w.t.app,
        &project,
        &[Secret::new("whsec_another_endpoints_0001")],
    )
    .await
    .unwrap();
    connection::remove_secret(&w.t.app, &project, "whs_1", false)
        .await
        .unwrap();
    // Stripe's next delivery, signed with the endpoint's real secret: 400.
    let (other, _) = w.subscribe("u_other", &w.pro);
    let refused = w.t.deliver(&w.project, &newest_event_of(&w, &other)).await;
    assert_eq!(refused.status(), 400);

    // The overview says so too.
    crate::dashboard::member(&w, "ops@example.com", parityrail::domain::Role::Viewer).await;
    let mut page = crate::dashboard::Dash::new(&w.t);
    page.sign_in("ops@example.com", crate::dashboard::PASSWORD)
        .await;
    let overview = format!("/projects/{}", w.project);
    let warned = page.get(&overview).await.body;
    assert!(warned.contains("id=\"signature-refused\""), "{warned}");
    let events_before =
        w.t.store()
            .list_events(w.project.as_str(), 100)
            .await
            .unwrap()
            .len();
    let report = drill::run(&w.t.app, &project, &w.t.url(""), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!report.caught, "{report:#?}");
    let broken = report.broken().unwrap();
    assert_eq!(broken.stage, "accepted", "{report:#?}");
    assert!(
        broken.detail.contains("matched no stored signing secret"),
        "{}",
        broken.detail
    );
    assert!(broken.detail.contains("nothing sent"), "{}", broken.detail);
    let events_after =
        w.t.store()
            .list_events(w.project.as_str(), 100)
            .await
            .unwrap()
            .len();
    assert_eq!(events_after, events_before, "the drill sent nothing");
    // The CLI says the same and exits non-zero.
    let base = w.t.url("");
    let out =
        w.t.cli(&["drill", w.project.as_str(), "--url", &base, "--wait", "5"]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("FAIL accepted"), "{}", stdout(&out));

    // The right secret back; Stripe's next delivery matches: caught again.
    connection::add_secrets(&w.t.app, &project, &[Secret::new(TEST_SECRET)])
        .await
        .unwrap();
    let (third, _) = w.subscribe("u_third", &w.pro);
    let matched = w.t.deliver(&w.project, &newest_event_of(&w, &third)).await;
    assert_eq!(matched.status(), 200);
    let last_match = || async {
        connection::secrets(&w.t.app, &project)
            .await
            .unwrap()
            .iter()
            .filter_map(|s| s.last_matched_at)
            .max()
    };
    let before_drill = last_match().await;
    let calm = page.get(&overview).await.body;
    assert!(!calm.contains("id=\"signature-refused\""), "{calm}");
    let report = drill_driven(&w).await;
    assert!(report.caught, "{report:#?}");
    // The drill's own delivery proves nothing about Stripe's secret, so it
    // does not count as a match.
    assert_eq!(last_match().await, before_drill);

    // A refusal right after that match counts at once (the note of the
    // first refusal, seconds ago, does not hold it back).
    let (fourth, _) = w.subscribe("u_fourth", &w.pro);
    let body = newest_event_of(&w, &fourth);
    let forged = crate::support::sign("whsec_nobody_holds_this_0001", &body);
    let refused = w.t.post_webhook(&w.project, &body, Some(&forged)).await;
    assert_eq!(refused.status(), 400);
    let warned = page.get(&overview).await.body;
    assert!(warned.contains("id=\"signature-refused\""), "{warned}");
}

async fn a_drill_resolves_no_real_incident_and_leaves_none_of_its_own_open(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    // A customer who cancelled and kept access: a real unpaid_access.
    let (customer, sub) = w.subscribe("u_kept", &w.pro);
    w.grant(&customer, "u_kept", "pro");
    w.deliver(&customer).await;
    w.verdict(&customer).await;
    // The app keeps the user active, with no plan or feature named.
    w.app.grant(&customer, "u_kept", None, &[], &[]);
    w.sim.cancel_subscription(&sub);
    w.deliver(&customer).await;
    let real = w.verdict(&customer).await;
    assert_eq!(
        real.kind,
        Some(parityrail::domain::RunKind::UnpaidAccess),
        "{real:?}"
    );
    let project = w.t.project_of(&w.project).await;
    let open_real = || async {
        incidents::list(&w.t.app, &project)
            .await
            .unwrap()
            .into_iter()
            .filter(|v| !v.incident.drill && v.incident.status != IncidentStatus::Resolved)
            .count()
    };
    assert_eq!(open_real().await, 1);

    // The drill's check expects access (active, plus its feature): its
    // verdict is only unfulfilled, and still the real incident stands.
    let report = drill_driven(&w).await;
    assert!(report.caught, "{report:#?}");
    assert_eq!(report.customer, customer);
    assert_eq!(open_real().await, 1, "the drill resolved a real incident");

    // A drill that gives up (no worker ran) leaves its event; processed
    // later, it opens a drill incident, which the next drill resolves.
    let gave_up = drill::run(&w.t.app, &project, &w.t.url(""), Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(gave_up.broken().unwrap().stage, "processed", "{gave_up:#?}");
    w.t.drain_all().await;
    let open_drills = || async {
        incidents::list(&w.t.app, &project)
            .await
            .unwrap()
            .into_iter()
            .filter(|v| v.incident.drill && v.incident.status != IncidentStatus::Resolved)
            .count()
    };
    assert_eq!(
        open_drills().await,
        1,
        "the late check opened the drill's incident"
    );
    let report = drill_driven(&w).await;
    assert!(report.caught, "{report:#?}");
    assert_eq!(open_drills().await, 0);
    assert_eq!(open_real().await, 1);
}
