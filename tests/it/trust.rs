//! No check lost or absorbed (issue 7, items 1–4): a newer event is never
//! judged on older state, a replay is a new run, a sync and its run commit
//! together, and leases are fenced and renewed.

use std::time::Duration;

use parityrail::{
    clock::Clock,
    domain::{RunKind, RunStatus, Trigger},
    store::{SyncCommit, WebhookCheck},
};
use serde_json::json;

use crate::{
    support::{Backend, TestOptions, eventually},
    world::{Options, standing_of, world},
};

crate::backend_tests!(
    a_cancel_during_a_slow_probe_is_judged_on_the_cancelled_state,
    a_replay_is_a_new_run_that_reads_stripe_and_probes_again,
    a_failed_run_insert_leaves_the_event_unfinished_never_unchecked,
    a_stripe_read_longer_than_the_lease_is_processed_once,
    a_late_settle_from_a_worker_that_lost_its_lease_changes_nothing,
);

fn manual() -> Options {
    Options {
        manual_clock: true,
        deadline_secs: 30,
        ..Options::default()
    }
}

/// Item 1. The checkout's check is re-probing a slow app; the customer
/// cancels; the cancel's sync extends the pending run while a probe is in
/// flight. That probe sees the access the app kept and would pass against
/// the pre-cancel expectation: its verdict must not land, and the newer
/// state must be judged.
async fn a_cancel_during_a_slow_probe_is_judged_on_the_cancelled_state(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (customer, sub) = w.subscribe("u_race", &w.pro);
    w.deliver(&customer).await;
    w.t.drain().await;
    // First probe: the app's own handler has not granted access yet.
    assert!(parityrail::check::advance(&w.t.app, "w1").await.unwrap());
    let run = w.runs(&customer).await.remove(0);
    assert!(run.is_pending(), "re-probing before the deadline: {run:?}");
    // The app grants pro, and answers slowly.
    w.grant(&customer, "u_race", "pro");
    w.app.set_delay(Duration::from_millis(1500));
    w.advance(Duration::from_secs(2));
    let before = w.app.request_count();
    let probing = tokio::spawn({
        let app = w.t.app.clone();
        async move { parityrail::check::advance(&app, "w2").await.unwrap() }
    });
    eventually(Duration::from_secs(5), || async {
        (w.app.request_count() > before).then_some(())
    })
    .await;
    // While that probe is in flight, the customer cancels; the app keeps access.
    w.sim.cancel_subscription(&sub);
    assert!(!w.deliver(&customer).await.is_empty());
    assert_eq!(w.t.drain().await, 1, "the cancel is synced");
    assert!(probing.await.unwrap(), "the slow attempt ran");
    w.app.set_delay(Duration::ZERO);
    let run = w.verdict(&customer).await;
    assert_eq!(
        (run.status, run.kind),
        (RunStatus::Failed, Some(RunKind::UnpaidAccess)),
        "{run:?}"
    );
    assert_eq!(w.runs(&customer).await.len(), 1, "one check, extended");
    assert_eq!(
        w.standing().await,
        standing_of(&[("unpaid_access", &customer)])
    );
    let incident = &w.incidents().await[0];
    assert_eq!(incident.subscription_status.as_deref(), Some("canceled"));
    // The evidence shows both states it judged.
    let snapshots: Vec<i64> = w
        .steps(&run.id)
        .await
        .into_iter()
        .filter(|(step, _)| step == "stripe_snapshot")
        .map(|(_, detail)| detail["generation"].as_i64().unwrap())
        .collect();
    assert_eq!(snapshots, [0, 1], "{snapshots:?}");
    w.t.stop().await;
}

/// Item 2. Replaying an event re-reads Stripe and probes the app again in a
/// run of its own (trigger `rerun`, an external id of its own).
async fn a_replay_is_a_new_run_that_reads_stripe_and_probes_again(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_replay", &w.pro);
    w.grant(&customer, "u_replay", "pro");
    let events = w.deliver(&customer).await;
    let first = w.verdict(&customer).await;
    assert_eq!(
        (first.status, first.trigger),
        (RunStatus::Passed, Trigger::Webhook)
    );
    // Since then the app lost the customer's access; replay the checkout.
    w.app.revoke(&customer);
    let event = events[0].clone();
    let token = parityrail::usecase::tokens::issue(
        &w.t.app,
        &w.t.project_of(&w.project).await,
        parityrail::domain::Role::Admin,
    )
    .await
    .unwrap();
    let replay = |event: String| {
        let url = w.t.url(&format!(
            "/api/v1/projects/{}/events/{event}/replay",
            w.project
        ));
        let token = token.token.expose().to_string();
        let http = w.t.http.clone();
        async move {
            let resp = http.post(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(resp.status(), 202);
            resp.json::<serde_json::Value>().await.unwrap()
        }
    };
    let answer = replay(event.clone()).await;
    let run_id = answer["run_id"].as_str().expect("a run id").to_string();
    assert_ne!(run_id, first.id);
    // Asked twice before it ran: still one replay.
    assert_eq!(replay(event.clone()).await["run_id"], run_id.as_str());
    w.sim.reset_request_log();
    let probes = w.app.request_count();
    let run = w.verdict(&customer).await;
    assert_eq!(run.id, run_id);
    assert_eq!(run.trigger, Trigger::Rerun);
    assert!(run.external_id.as_deref().unwrap().starts_with("replay:"));
    assert_eq!(run.event_id.as_deref(), Some(event.as_str()));
    assert_eq!(
        (run.status, run.kind),
        (RunStatus::Failed, Some(RunKind::Unfulfilled))
    );
    let steps: Vec<String> = w.steps(&run.id).await.into_iter().map(|s| s.0).collect();
    assert_eq!(steps, ["stripe_snapshot", "expected", "probe", "verdict"]);
    assert_eq!(w.stripe_reads("/v1/customers/"), 1, "Stripe read again");
    assert!(w.app.request_count() > probes, "the app probed again");
    assert_eq!(w.runs(&customer).await.len(), 2);
    let incident = &w.incidents().await[0];
    assert_eq!(incident.event_id.as_deref(), Some(event.as_str()));
    w.t.stop().await;
}

/// Item 3. The sync and the check it starts commit together: a database
/// failure while starting the run leaves the event unfinished (it is
/// processed again), never finished without a check.
async fn a_failed_run_insert_leaves_the_event_unfinished_never_unchecked(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_crash", &w.pro);
    w.grant(&customer, "u_crash", "pro");
    let fault = crate::support::Fault::install(&w.t, "runs").await;
    w.deliver(&customer).await;
    assert!(
        parityrail::worker::step(&w.t.app, "w1").await.is_err(),
        "the commit fails"
    );
    let events = w.t.events(&w.project).await;
    assert!(
        events.iter().all(|e| e.status.as_str() != "processed"),
        "no event finished without its check: {events:?}"
    );
    assert!(w.runs(&customer).await.is_empty());
    fault.remove(&w.t).await;
    // The worker's lease runs out; another claims the work and completes it.
    w.advance(Duration::from_secs(61));
    let run = w.verdict(&customer).await;
    assert_eq!(run.status, RunStatus::Passed);
    let events = w.t.events(&w.project).await;
    assert!(events.iter().all(|e| e.status.as_str() == "processed"));
    w.t.stop().await;
}

/// Item 4. A Stripe read slower than the lease: the worker renews its lease,
/// so no other worker claims the work meanwhile and the event is read,
/// synced and judged once. The hand clock moves past the lease several
/// times while the read is held; only renewals keep the work.
async fn a_stripe_read_longer_than_the_lease_is_processed_once(backend: Backend) {
    let Some(w) = world(
        backend,
        Options {
            test: TestOptions {
                lease_secs: 0.3,
                ..TestOptions::default()
            },
            ..manual()
        },
    )
    .await
    else {
        return;
    };
    let (customer, _) = w.subscribe("u_slow_stripe", &w.pro);
    w.grant(&customer, "u_slow_stripe", "pro");
    let event = w.deliver(&customer).await.remove(0);
    // A's customer read is answered only when the story says so.
    w.sim
        .hold_responses("/v1/customers/", "", Duration::from_secs(600), 1);
    let a = tokio::spawn({
        let app = w.t.app.clone();
        async move { parityrail::worker::step(&app, "A").await.unwrap() }
    });
    eventually(Duration::from_secs(30), || async {
        (w.sim.holds_pending() == 0).then_some(())
    })
    .await;
    let clock = w.clock.clone().unwrap();
    let store = w.t.store();
    for round in 0..5 {
        // Two thirds of a lease pass: by the second round the first lease
        // would have run out.
        clock.advance(Duration::from_millis(200));
        assert!(
            matches!(
                parityrail::worker::step(&w.t.app, "B").await.unwrap(),
                parityrail::worker::Step::Idle
            ),
            "round {round}: B claimed work A still holds"
        );
        // A renews at the new time (every third of the lease, on the wall clock).
        let now = clock.now_ms();
        eventually(Duration::from_secs(30), || async {
            let lease = store.event_lease(w.project.as_str(), &event).await.unwrap();
            lease.filter(|(owner, until)| owner == "A" && *until >= now + 200)
        })
        .await;
    }
    w.sim.release_holds();
    a.await.unwrap();
    let run = w.verdict(&customer).await;
    assert_eq!(run.status, RunStatus::Passed);
    assert_eq!(
        w.stripe_reads("/v1/customers/"),
        1,
        "one Stripe read: {:?}",
        w.sim.requests()
    );
    assert_eq!(w.runs(&customer).await.len(), 1);
    let verdicts = w
        .steps(&run.id)
        .await
        .into_iter()
        .filter(|s| s.0 == "verdict")
        .count();
    assert_eq!(verdicts, 1, "judged once");
    let events = w.t.events(&w.project).await;
    assert!(
        events.iter().all(|e| e.attempts == 1),
        "claimed once: {events:?}"
    );
    w.t.stop().await;
}

/// Item 4. A worker whose lease ran out and was taken over writes nothing
/// when it finally settles: not a sync, a retry, a dead letter, or a verdict.
async fn a_late_settle_from_a_worker_that_lost_its_lease_changes_nothing(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_late", &w.pro);
    w.grant(&customer, "u_late", "pro");
    w.deliver(&customer).await;
    let store = w.t.store();
    let clock = w.clock.clone().unwrap();
    let now = clock.now_ms();
    let a = store.claim("A", now, now + 1_000).await.unwrap().unwrap();
    w.advance(Duration::from_secs(2));
    let now = clock.now_ms();
    let b = store.claim("B", now, now + 60_000).await.unwrap().unwrap();
    assert_eq!(
        a.items[0].id, b.items[0].id,
        "B took the expired lease over"
    );
    // A finishes late: every settle it tries changes nothing.
    let state = parityrail::store::CustomerState {
        project_id: w.project.to_string(),
        customer_id: customer.clone(),
        app_user_id: Some("u_late".into()),
        deleted: false,
        entitlements: None,
        subscriptions: vec![],
        snapshot_at: now,
    };
    let commit = SyncCommit {
        state: &state,
        items: &a.items,
        owner: "A",
        now,
        check: Some(WebhookCheck {
            event_id: &a.items[0].event_id,
            deadline: now,
        }),
        drill: None,
    };
    assert_eq!(store.complete_sync(&commit).await.unwrap(), None);
    assert!(!store.retry_later(&a.items, "A", now, "late").await.unwrap());
    assert!(!store.dead_letter(&a.items, "A", now, "late").await.unwrap());
    assert!(w.runs(&customer).await.is_empty(), "no run from A");
    assert!(
        store
            .customer_row(w.project.as_str(), &customer)
            .await
            .unwrap()
            .is_none(),
        "no state from A"
    );
    let events = w.t.events(&w.project).await;
    assert_eq!(events[0].status.as_str(), "processing", "B still holds it");
    // B's own commit lands.
    let commit = SyncCommit {
        owner: "B",
        items: &b.items,
        ..commit
    };
    let outcome = store.complete_sync(&commit).await.unwrap().unwrap();
    let run_id = outcome.run_id.unwrap();
    // The same for runs: A claims, loses the lease to B, then settles late.
    let now = clock.now_ms();
    let ra = store
        .claim_run(&run_id, "A", now, now + 1_000)
        .await
        .unwrap()
        .unwrap();
    w.advance(Duration::from_secs(2));
    let now = clock.now_ms();
    let rb = store
        .claim_run(&run_id, "B", now, now + 60_000)
        .await
        .unwrap()
        .unwrap();
    let late = parityrail::store::RunSettlement {
        run_id: run_id.clone(),
        project_id: w.project.to_string(),
        owner: "A".into(),
        generation: ra.generation,
        now,
        outcome: parityrail::store::RunOutcome::Finish {
            status: RunStatus::Passed,
            kind: None,
        },
        app_user_id: None,
        expected: None,
        observed: None,
        deploy_sha: None,
        summary: Some("late".into()),
        steps: vec![(parityrail::domain::StepName::Verdict, json!({"late": true}))],
        open: vec![],
        resolve: vec![],
        probe_answered: false,
    };
    assert!(!store.settle_run(&late).await.unwrap());
    let run = store.run(&run_id).await.unwrap().unwrap();
    assert!(run.is_pending() && run.summary.is_none(), "{run:?}");
    assert!(store.run_steps(&run_id).await.unwrap().is_empty());
    let on_time = parityrail::store::RunSettlement {
        owner: "B".into(),
        generation: rb.generation,
        ..late
    };
    assert!(store.settle_run(&on_time).await.unwrap());
    assert!(w.standing().await.is_empty(), "{:?}", w.incidents().await);
    w.t.stop().await;
}
