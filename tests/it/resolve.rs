//! Incidents resolve when their cause is gone (issue 7, item 11).

use parityrail::domain::{ProjectSettings, RunKind, RunStatus, Trigger};
use stripe_sim::SubscriptionChange;

use crate::{
    support::{Backend, TEST_SECRET},
    world::{Options, standing_of, world},
};

crate::backend_tests!(
    unmapped_customer_resolves_once_mapped_and_passing,
    stripe_auth_resolves_when_stripe_can_be_read_again,
    a_probe_failing_for_one_customer_stays_that_customers_until_it_works,
);

fn manual() -> Options {
    Options {
        manual_clock: true,
        deadline_secs: 3,
        ..Options::default()
    }
}

async fn unmapped_customer_resolves_once_mapped_and_passing(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    w.settings(ProjectSettings {
        require_mapping: Some(true),
        ..Default::default()
    })
    .await;
    let customer = w.sim.create_customer("nobody@example.com", &[]);
    let sub = w
        .sim
        .create_subscription(&customer, &[&w.pro], "active", &[]);
    w.deliver(&customer).await;
    assert_eq!(
        w.verdict(&customer).await.kind,
        Some(RunKind::UnmappedCustomer)
    );
    assert_eq!(
        w.standing().await,
        standing_of(&[("unmapped_customer", &customer)])
    );
    // The user id is set on the subscription, and the app serves the user.
    w.sim.update_subscription(
        &sub,
        SubscriptionChange {
            metadata: Some(vec![("parityrail_user_id".into(), "u_mapped".into())]),
            ..Default::default()
        },
    );
    w.grant(&customer, "u_mapped", "pro");
    w.deliver(&customer).await;
    assert_eq!(w.verdict(&customer).await.status, RunStatus::Passed);
    assert!(w.standing().await.is_empty(), "{:?}", w.incidents().await);
    w.t.stop().await;
}

async fn stripe_auth_resolves_when_stripe_can_be_read_again(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_key", &w.pro);
    w.grant(&customer, "u_key", "pro");
    w.sim.revoke_api_key(crate::support::TEST_KEY);
    let run = w.t.check_now(&w.project, &customer, Trigger::Manual).await;
    assert_eq!(run.kind, Some(RunKind::StripeAuth));
    assert_eq!(w.standing().await, standing_of(&[("stripe_auth", "")]));
    // A new key is connected: the next working read resolves it.
    let fresh = "sk_test_parityrail_tests_0002";
    w.sim.add_api_key(fresh);
    w.t.connect(&w.project, fresh, &[TEST_SECRET]).await;
    let run = w.t.check_now(&w.project, &customer, Trigger::Manual).await;
    assert_eq!(run.status, RunStatus::Passed);
    assert!(w.standing().await.is_empty(), "{:?}", w.incidents().await);
    w.t.stop().await;
}

/// A bug in the app that only one customer's data triggers: the incident
/// is that customer's, other customers passing do not resolve it, and it
/// resolves once that customer's probe works.
async fn a_probe_failing_for_one_customer_stays_that_customers_until_it_works(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (broken, _) = w.subscribe("u_broken", &w.pro);
    let (fine, fine_sub) = w.subscribe("u_fine", &w.pro);
    w.grant(&broken, "u_broken", "pro");
    w.grant(&fine, "u_fine", "pro");
    w.app.set_failing(&broken, true);
    w.deliver(&broken).await;
    w.deliver(&fine).await;
    assert_eq!(w.verdict(&fine).await.status, RunStatus::Passed);
    assert_eq!(w.verdict(&broken).await.kind, Some(RunKind::ProbeFailed));
    assert_eq!(
        w.standing().await,
        standing_of(&[("probe_failed", &broken)]),
        "the customer's own incident, not the project's"
    );
    // Other customers keep passing: the broken customer's incident stays.
    w.sim.update_subscription(
        &fine_sub,
        SubscriptionChange {
            metadata: Some(vec![
                ("parityrail_user_id".into(), "u_fine".into()),
                ("n".into(), "1".into()),
            ]),
            ..Default::default()
        },
    );
    w.deliver(&fine).await;
    assert_eq!(w.verdict(&fine).await.status, RunStatus::Passed);
    assert_eq!(
        w.standing().await,
        standing_of(&[("probe_failed", &broken)])
    );
    // The app is fixed for that customer; its next check resolves it.
    w.app.set_failing(&broken, false);
    let run = w.t.check_now(&w.project, &broken, Trigger::Rerun).await;
    assert_eq!(run.status, RunStatus::Passed);
    assert!(w.standing().await.is_empty(), "{:?}", w.incidents().await);
    w.t.stop().await;
}
