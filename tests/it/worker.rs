//! Processing: leased claims, one Stripe read per customer burst,
//! forward-only state, retries with backoff, dead letters, lag incidents.

use std::time::Duration;

use parityrail::{
    domain::IncidentKind,
    domain::{Subscription, SubscriptionItem},
    ids::ProjectId,
    store::{CustomerState, SyncCommit},
    worker,
};
use serde_json::Value;
use stripe_sim::{Fault, StripeSim, SubscriptionChange};

use crate::support::{Backend, TEST_KEY, TestApp, TestOptions};

crate::backend_tests!(
    handled_event_syncs_the_customer_from_stripe,
    a_burst_for_one_customer_costs_one_stripe_read,
    new_work_waits_out_the_coalescing_window,
    state_only_moves_forward,
    past_due_since_is_stripes_record_of_the_failed_payment,
    transient_failures_retry_with_backoff_then_succeed,
    rate_limits_honour_retry_after,
    revoked_key_dead_letters_and_opens_stripe_auth,
    exhausted_schedule_dead_letters_and_replay_recovers,
    expired_leases_are_reclaimed,
    concurrent_claims_take_different_customers,
    lag_sweeper_opens_and_resolves_webhook_lag,
    background_workers_process_without_being_driven,
);

struct World {
    t: TestApp,
    sim: StripeSim,
    _handle: stripe_sim::SimHandle,
    project: ProjectId,
}

async fn world(backend: Backend, workers: usize) -> Option<World> {
    world_with(backend, workers, TestOptions::default().retry_schedule).await
}

async fn world_with(
    backend: Backend,
    workers: usize,
    retry_schedule: &'static str,
) -> Option<World> {
    let sim = StripeSim::new();
    sim.add_api_key(TEST_KEY);
    let handle = sim.start().await;
    let t = TestApp::spawn_with(
        backend,
        TestOptions {
            workers,
            stripe_api_base: handle.base_url(),
            retry_schedule,
            ..TestOptions::default()
        },
    )
    .await?;
    let project = t.connected_project().await;
    Some(World {
        t,
        sim,
        _handle: handle,
        project,
    })
}

/// A paying customer in the simulator: returns (customer, subscription).
fn paying_customer(sim: &StripeSim, user: &str) -> (String, String) {
    let product = sim.create_product("Pro");
    let price = sim.create_price(&product, Some("pro_monthly"), 2000);
    let customer = sim.create_customer(&format!("{user}@example.com"), &[]);
    let sub = sim.create_subscription(
        &customer,
        &[&price],
        "active",
        &[("parityrail_user_id", user)],
    );
    (customer, sub)
}

/// The simulator's newest event of `event_type`, as the raw bytes Stripe would send.
fn sim_event(sim: &StripeSim, event_type: &str) -> Vec<u8> {
    let event = sim
        .events()
        .into_iter()
        .rev()
        .find(|e| e["type"] == event_type)
        .unwrap_or_else(|| panic!("simulator emitted no {event_type}"));
    serde_json::to_vec(&event).unwrap()
}

async fn handled_event_syncs_the_customer_from_stripe(backend: Backend) {
    let Some(w) = world(backend, 0).await else {
        return;
    };
    let (customer, sub) = paying_customer(&w.sim, "user_42");
    let body = sim_event(&w.sim, "customer.subscription.created");
    assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
    assert_eq!(w.t.drain().await, 1);
    let events = w.t.events(&w.project).await;
    assert_eq!(events[0].status.as_str(), "processed");
    assert!(events[0].processed_at.is_some());
    let subs =
        w.t.store()
            .subscriptions_of(w.project.as_str(), &customer)
            .await
            .unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].subscription_id, sub);
    assert_eq!(subs[0].status.as_str(), "active");
    assert!(subs[0].current_period_end.is_some());
    let items: Vec<SubscriptionItem> = serde_json::from_str(&subs[0].items).unwrap();
    assert_eq!(items[0].lookup_key.as_deref(), Some("pro_monthly"));
    let (user, _, _) =
        w.t.store()
            .customer_row(w.project.as_str(), &customer)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        user.as_deref(),
        Some("user_42"),
        "mapped through subscription metadata"
    );
    // The state follows Stripe, not the (older) event payload.
    w.sim.cancel_subscription(&sub);
    let body = sim_event(&w.sim, "customer.subscription.deleted");
    assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
    w.t.drain().await;
    let subs =
        w.t.store()
            .subscriptions_of(w.project.as_str(), &customer)
            .await
            .unwrap();
    assert_eq!(subs[0].status.as_str(), "canceled");
    w.t.stop().await;
}

async fn a_burst_for_one_customer_costs_one_stripe_read(backend: Backend) {
    let Some(w) = world(backend, 0).await else {
        return;
    };
    let (customer, sub) = paying_customer(&w.sim, "user_burst");
    for n in 0..5 {
        w.sim.update_subscription(
            &sub,
            SubscriptionChange {
                metadata: Some(vec![("n".into(), n.to_string())]),
                ..Default::default()
            },
        );
    }
    let bodies: Vec<Vec<u8>> = w
        .sim
        .events()
        .iter()
        .filter(|e| e["data"]["object"]["customer"] == customer.as_str())
        .filter(|e| parityrail::stripe::event::is_handled(e["type"].as_str().unwrap()))
        .map(|e| serde_json::to_vec(e).unwrap())
        .collect();
    assert!(bodies.len() >= 6, "created + 5 updates");
    for body in &bodies {
        assert_eq!(w.t.deliver(&w.project, body).await.status(), 200);
    }
    w.sim.reset_request_log();
    assert_eq!(w.t.drain().await, 1, "one claim takes the whole burst");
    let paths: Vec<String> = w.sim.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths
            .iter()
            .filter(|p| p.as_str() == "/v1/subscriptions")
            .count(),
        1,
        "{paths:?}"
    );
    assert_eq!(
        paths.len(),
        2,
        "customer and subscriptions (entitlements only in Entitlements mode): {paths:?}"
    );
    assert!(
        w.t.events(&w.project)
            .await
            .iter()
            .all(|e| e.status.as_str() == "processed")
    );
    w.t.stop().await;
}

/// Events arriving one by one within the window are still one claim and one
/// Stripe read: nothing is due until the window after the first has passed.
async fn new_work_waits_out_the_coalescing_window(backend: Backend) {
    let sim = StripeSim::new();
    sim.add_api_key(TEST_KEY);
    let handle = sim.start().await;
    let Some(t) = TestApp::spawn_with(
        backend,
        TestOptions {
            stripe_api_base: handle.base_url(),
            coalesce_ms: 2000,
            ..TestOptions::default()
        },
    )
    .await
    else {
        return;
    };
    let project = t.connected_project().await;
    let (_, sub) = paying_customer(&sim, "user_window");
    let created = sim_event(&sim, "customer.subscription.created");
    let started = std::time::Instant::now();
    assert_eq!(t.deliver(&project, &created).await.status(), 200);
    sim.reset_request_log();
    assert_eq!(t.drain().await, 0, "nothing is due inside the window");
    sim.update_subscription(
        &sub,
        SubscriptionChange {
            metadata: Some(vec![("seat".into(), "2".into())]),
            ..Default::default()
        },
    );
    let updated = sim_event(&sim, "customer.subscription.updated");
    assert_eq!(t.deliver(&project, &updated).await.status(), 200);
    assert_eq!(
        t.drain().await,
        0,
        "a second event does not make the first due"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "the story ran too slowly to observe the window"
    );
    assert!(
        sim.requests().is_empty(),
        "no Stripe read inside the window"
    );
    let steps = crate::support::eventually(Duration::from_secs(5), || async {
        Some(t.drain().await).filter(|&n| n > 0)
    })
    .await;
    assert_eq!(steps, 1, "one claim takes both events");
    let reads = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/subscriptions")
        .count();
    assert_eq!(reads, 1, "one Stripe read for the burst");
    let events = t.events(&project).await;
    assert_eq!(events.len(), 2);
    assert!(
        events.iter().all(|e| e.status.as_str() == "processed"),
        "{events:?}"
    );
    t.stop().await;
}

fn state(project: &ProjectId, status: &str, snapshot_at: i64) -> CustomerState {
    CustomerState {
        project_id: project.to_string(),
        customer_id: "cus_fwd".into(),
        app_user_id: Some(format!("user_at_{snapshot_at}")),
        deleted: false,
        entitlements: Some(vec![]),
        subscriptions: vec![Subscription {
            id: "sub_fwd".into(),
            customer: "cus_fwd".into(),
            status: status.into(),
            cancel_at_period_end: false,
            current_period_end: Some(2_000_000_000),
            created: 1,
            metadata: Default::default(),
            items: vec![],
            unpaid_since: None,
            latest_invoice: None,
        }],
        snapshot_at,
    }
}

/// Stores a customer's state as a check's own Stripe read does.
async fn save(store: &parityrail::store::Store, state: &CustomerState) {
    store
        .complete_sync(&SyncCommit {
            state,
            items: &[],
            owner: "",
            now: state.snapshot_at,
            check: None,
            drill: None,
        })
        .await
        .unwrap()
        .unwrap();
}

async fn state_only_moves_forward(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    let store = t.store();
    save(store, &state(&project, "active", 200)).await;
    // An older snapshot finishing late must not overwrite the newer one.
    save(store, &state(&project, "canceled", 100)).await;
    let subs = store
        .subscriptions_of(project.as_str(), "cus_fwd")
        .await
        .unwrap();
    assert_eq!(
        (subs[0].status.as_str(), subs[0].snapshot_at),
        ("active", 200)
    );
    let (user, _, at) = store
        .customer_row(project.as_str(), "cus_fwd")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((user.as_deref(), at), (Some("user_at_200"), 200));
    save(store, &state(&project, "past_due", 300)).await;
    let subs = store
        .subscriptions_of(project.as_str(), "cus_fwd")
        .await
        .unwrap();
    assert_eq!(subs[0].status.as_str(), "past_due");
    t.stop().await;
}

async fn transient_failures_retry_with_backoff_then_succeed(backend: Backend) {
    // A retry delay long enough that "not yet due" is observable on a loaded machine.
    let Some(w) = world_with(backend, 0, "1").await else {
        return;
    };
    paying_customer(&w.sim, "user_retry");
    let body = sim_event(&w.sim, "customer.subscription.created");
    assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
    w.sim.inject_faults(Fault::ServerError, 1);
    let before = parityrail::now_ms();
    assert_eq!(w.t.drain().await, 1);
    let event = &w.t.events(&w.project).await[0];
    assert_eq!(
        event.status.as_str(),
        "failed",
        "a failed attempt waits for its retry"
    );
    assert_eq!(event.attempts, 1);
    assert!(
        event.reason.as_deref().unwrap().contains("500"),
        "{:?}",
        event.reason
    );
    // The retry is scheduled in the future (1 s ± 25 %), not immediately.
    assert_eq!(w.t.drain().await, 0);
    let waited = crate::support::eventually(Duration::from_secs(5), || async {
        (w.t.drain().await == 1).then_some(parityrail::now_ms() - before)
    })
    .await;
    assert!(waited >= 750, "retried after {waited} ms");
    let event = &w.t.events(&w.project).await[0];
    assert_eq!((event.status.as_str(), event.attempts), ("processed", 2));
    w.t.stop().await;
}

async fn rate_limits_honour_retry_after(backend: Backend) {
    let Some(w) = world(backend, 0).await else {
        return;
    };
    paying_customer(&w.sim, "user_429");
    let body = sim_event(&w.sim, "customer.subscription.created");
    assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
    w.sim.inject_faults(Fault::RateLimited, 1);
    let before = parityrail::now_ms();
    assert_eq!(w.t.drain().await, 1);
    let event = &w.t.events(&w.project).await[0];
    assert_eq!(event.status.as_str(), "failed");
    assert!(event.reason.as_deref().unwrap().contains("429"));
    // Retry-After (at least 1 s) beats the 50 ms schedule.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.t.drain().await, 0, "retried before Retry-After elapsed");
    let waited = crate::support::eventually(Duration::from_secs(5), || async {
        (w.t.drain().await == 1).then_some(parityrail::now_ms() - before)
    })
    .await;
    assert!(waited >= 1000, "retried after {waited} ms");
    assert_eq!(w.t.events(&w.project).await[0].status.as_str(), "processed");
    w.t.stop().await;
}

async fn revoked_key_dead_letters_and_opens_stripe_auth(backend: Backend) {
    let Some(w) = world(backend, 0).await else {
        return;
    };
    paying_customer(&w.sim, "user_auth");
    let body = sim_event(&w.sim, "customer.subscription.created");
    assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
    w.sim.revoke_api_key(TEST_KEY);
    assert_eq!(w.t.drain().await, 1);
    let event = &w.t.events(&w.project).await[0];
    assert_eq!(
        event.status.as_str(),
        "dead",
        "retrying a rejected key cannot help"
    );
    let reason = event.reason.clone().unwrap();
    assert!(reason.starts_with("stripe_auth"), "{reason}");
    assert!(
        !reason.contains(TEST_KEY),
        "the key never reaches error text"
    );
    let incidents = crate::support::eventually(Duration::from_secs(5), || async {
        let list =
            w.t.store()
                .list_incidents(w.project.as_str())
                .await
                .unwrap();
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(incidents[0].kind, IncidentKind::StripeAuth);
    assert!(!incidents[0].details.contains(TEST_KEY));
    w.t.stop().await;
}

async fn exhausted_schedule_dead_letters_and_replay_recovers(backend: Backend) {
    let Some(w) = world(backend, 0).await else {
        return;
    };
    paying_customer(&w.sim, "user_dead");
    let body = sim_event(&w.sim, "customer.subscription.created");
    let event_id = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
    // Each attempt fails on its first request, so four faults fail four attempts.
    w.sim.inject_faults(Fault::ServerError, 4);
    // Schedule of 3 retries: 4 attempts, then dead. (Under load one drain may
    // run two attempts, so drive until the outcome rather than counting drains.)
    crate::support::eventually(Duration::from_secs(10), || async {
        w.t.drain().await;
        (w.t.events(&w.project).await[0].status.as_str() == "dead").then_some(())
    })
    .await;
    let event = &w.t.events(&w.project).await[0];
    assert_eq!((event.status.as_str(), event.attempts), ("dead", 4));
    assert!(
        event
            .reason
            .as_deref()
            .unwrap()
            .contains("gave up after 4 attempts")
    );
    assert!(
        w.t.store()
            .replay_event(w.project.as_str(), &event_id, false, parityrail::now_ms())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(w.t.drain().await, 1);
    assert_eq!(w.t.events(&w.project).await[0].status.as_str(), "processed");
    w.t.stop().await;
}

async fn expired_leases_are_reclaimed(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    let body = crate::support::event_json("evt_lease", "invoice.paid", "cus_lease", false);
    assert_eq!(t.deliver(&project, &body).await.status(), 200);
    let store = t.store();
    let now = parityrail::now_ms();
    // A worker claims and then dies (its lease runs to now + 100 ms).
    let first = store
        .claim("dead-worker", now, now + 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.items.len(), 1);
    assert!(
        store
            .claim("other", now, now + 100)
            .await
            .unwrap()
            .is_none(),
        "live lease held"
    );
    assert_eq!(t.events(&project).await[0].status.as_str(), "processing");
    let later = now + 101;
    let again = store
        .claim("other", later, later + 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.items[0].event_id, "evt_lease");
    assert_eq!(again.items[0].attempts, 2);
    t.stop().await;
}

async fn concurrent_claims_take_different_customers(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    for n in 0..20 {
        let body = crate::support::event_json(
            &format!("evt_c{n}"),
            "invoice.paid",
            &format!("cus_{n}"),
            false,
        );
        assert_eq!(t.deliver(&project, &body).await.status(), 200);
    }
    let now = parityrail::now_ms();
    let claims = futures::future::join_all((0..8).map(|i| {
        let store = t.store().clone();
        async move {
            store
                .claim(&format!("w{i}"), now, now + 60_000)
                .await
                .unwrap()
        }
    }))
    .await;
    let mut customers: Vec<String> = claims
        .into_iter()
        .flatten()
        .map(|c| c.customer_id)
        .collect();
    let claimed = customers.len();
    customers.sort();
    customers.dedup();
    assert_eq!(
        customers.len(),
        claimed,
        "two workers claimed the same customer"
    );
    assert!(claimed >= 1);
    t.stop().await;
}

async fn lag_sweeper_opens_and_resolves_webhook_lag(backend: Backend) {
    let Some(w) = world(backend, 0).await else {
        return;
    };
    w.t.store().set_lag_threshold(&w.project, 0).await.unwrap();
    paying_customer(&w.sim, "user_lag");
    let body = sim_event(&w.sim, "customer.subscription.created");
    assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(worker::lag::sweep(&w.t.app).await.unwrap(), 1);
    let incidents =
        w.t.store()
            .list_incidents(w.project.as_str())
            .await
            .unwrap();
    assert_eq!(
        (incidents[0].kind.as_str(), incidents[0].status.as_str()),
        ("webhook_lag", "open")
    );
    // Sweeping again does not duplicate the incident.
    worker::lag::sweep(&w.t.app).await.unwrap();
    assert_eq!(
        w.t.store()
            .list_incidents(w.project.as_str())
            .await
            .unwrap()
            .len(),
        1
    );
    w.t.drain().await;
    assert_eq!(worker::lag::sweep(&w.t.app).await.unwrap(), 0);
    let incidents =
        w.t.store()
            .list_incidents(w.project.as_str())
            .await
            .unwrap();
    assert_eq!(incidents[0].status.as_str(), "resolved");
    w.t.stop().await;
}

async fn background_workers_process_without_being_driven(backend: Backend) {
    let Some(w) = world(backend, 2).await else {
        return;
    };
    paying_customer(&w.sim, "user_bg");
    let body = sim_event(&w.sim, "customer.subscription.created");
    assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
    crate::support::eventually(Duration::from_secs(10), || async {
        let events = w.t.events(&w.project).await;
        (events[0].status.as_str() == "processed").then_some(())
    })
    .await;
    w.t.stop().await;
}

async fn past_due_since_is_stripes_record_of_the_failed_payment(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    let store = t.store();
    // Syncs the subscription in `status` at `at` ms, Stripe's record of the
    // unpaid invoice's first failed payment being `unpaid`; returns the
    // stored past_due_since.
    let sync = |status: &'static str, unpaid: Option<i64>, at: i64| {
        let project = project.clone();
        async move {
            let mut s = state(&project, status, at);
            s.subscriptions[0].unpaid_since = unpaid;
            save(store, &s).await;
            store
                .subscription_views(project.as_str(), "cus_fwd")
                .await
                .unwrap()[0]
                .past_due_since
        }
    };
    assert_eq!(sync("active", None, 100_000).await, None);
    // First seen past due long after the payment failed: Stripe's time counts.
    assert_eq!(sync("past_due", Some(150), 200_000).await, Some(150));
    // A read that could not see the invoice keeps what Stripe said before.
    assert_eq!(sync("past_due", None, 300_000).await, Some(150));
    // Paid again: cleared, so a later failure starts a new grace period.
    assert_eq!(sync("active", None, 400_000).await, None);
    assert_eq!(sync("past_due", Some(450), 450_000).await, Some(450));
    // The page upsert of a scan follows the same rule.
    let mut sub = state(&project, "past_due", 500_000).subscriptions.remove(0);
    sub.unpaid_since = Some(480);
    store
        .upsert_subscriptions(project.as_str(), std::slice::from_ref(&sub), 500_000)
        .await
        .unwrap();
    sub.unpaid_since = None;
    store
        .upsert_subscriptions(project.as_str(), &[sub], 600_000)
        .await
        .unwrap();
    let views = store
        .subscription_views(project.as_str(), "cus_fwd")
        .await
        .unwrap();
    assert_eq!(views[0].past_due_since, Some(480));
    t.stop().await;
}
