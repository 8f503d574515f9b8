//! `POST /api/webhooks/stripe/{projectId}`: every row of SPEC §2, each
//! showing what was, or was not, stored.

use parityrail::{
    domain::{IncidentKind, ProjectMode},
    ids::ProjectId,
    ingress::verify::compute_signature,
};
use serde_json::Value;

use crate::support::{Backend, TEST_SECRET, TestApp, event_json, sign};

crate::backend_tests!(
    unknown_project_is_404,
    demo_project_is_200_and_stores_nothing,
    oversize_body_is_413,
    project_without_secret_is_400,
    bad_signatures_are_400_and_never_stored,
    signed_garbage_is_400,
    livemode_mismatch_is_stored_as_ignored,
    unhandled_type_is_stored_as_ignored,
    handled_event_is_stored_byte_exact_with_one_work_item,
    duplicates_make_one_event_and_one_work_item,
    concurrent_duplicates_make_one_event_and_one_work_item,
    secret_roll_accepts_old_and_new,
    secret_added_while_running_works_at_once,
    database_down_is_500_and_stripe_redelivers,
    lagging_redelivery_is_500_requeued_with_incident,
);

async fn error_code(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.unwrap();
    body["error"]["code"].as_str().unwrap().to_string()
}

async fn assert_nothing_stored(t: &TestApp, project: &ProjectId) {
    assert!(t.events(project).await.is_empty(), "no event may be stored");
    assert_eq!(t.work_total().await, 0, "no work may be queued");
}

async fn unknown_project_is_404(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let body = event_json("evt_1", "invoice.paid", "cus_1", false);
    let ghost = ProjectId::generate();
    let resp = t.deliver(&ghost, &body).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(error_code(resp).await, "unknown_project");
    let resp = t.post_webhook_raw("not-a-project-id", &body).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(t.work_total().await, 0);
    t.stop().await;
}

async fn demo_project_is_200_and_stores_nothing(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let demo = t.project(ProjectMode::Demo).await;
    let body = event_json("evt_demo", "invoice.paid", "cus_1", true);
    let resp = t.deliver(&demo, &body).await;
    assert_eq!(resp.status(), 200);
    // Not even a valid signature is needed: nothing is read or stored.
    let resp = t.post_webhook(&demo, b"junk", None).await;
    assert_eq!(resp.status(), 200);
    assert_nothing_stored(&t, &demo).await;
    t.stop().await;
}

async fn oversize_body_is_413(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    let mut body = event_json("evt_big", "invoice.paid", "cus_1", false);
    body.truncate(body.len() - 2);
    body.extend_from_slice(br#","padding":""#);
    body.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    body.extend_from_slice(b"\"}");
    let resp = t.deliver(&project, &body).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(error_code(resp).await, "body_too_large");
    assert_nothing_stored(&t, &project).await;
    t.stop().await;
}

async fn project_without_secret_is_400(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let bare = t.project(ProjectMode::Test).await;
    let body = event_json("evt_1", "invoice.paid", "cus_1", false);
    let resp = t.deliver(&bare, &body).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(error_code(resp).await, "no_signing_secret");
    // A key without any signing secret is still not webhook-configured.
    t.connect(&bare, crate::support::TEST_KEY, &[]).await;
    let resp = t.deliver(&bare, &body).await;
    assert_eq!(resp.status(), 400);
    assert_nothing_stored(&t, &bare).await;
    t.stop().await;
}

async fn bad_signatures_are_400_and_never_stored(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    let body = event_json("evt_sig", "invoice.paid", "cus_1", false);
    let now = parityrail::now_ms() / 1000;
    let good = compute_signature(TEST_SECRET, now, &body);
    let old = now - 301;
    let cases = [
        None,
        Some(String::new()),
        Some("garbage".to_string()),
        Some(format!("t={now}")),
        Some(format!(
            "t={now},v1={}",
            compute_signature("whsec_other", now, &body)
        )),
        Some(format!(
            "t={old},v1={}",
            compute_signature(TEST_SECRET, old, &body)
        )),
        Some(format!("t={now},v1={}", good.to_uppercase())),
        Some(format!("t={now}, v1={good}")),
        Some(format!("t={now},v1={good},")),
    ];
    for header in &cases {
        let resp = t.post_webhook(&project, &body, header.as_deref()).await;
        assert_eq!(resp.status(), 400, "header {header:?}");
        assert_eq!(error_code(resp).await, "invalid_signature");
    }
    // A signature over other bytes than those sent (tampered body).
    let mut tampered = body.clone();
    tampered.push(b'\n');
    let resp = t
        .post_webhook(&project, &tampered, Some(&format!("t={now},v1={good}")))
        .await;
    assert_eq!(resp.status(), 400);
    assert_nothing_stored(&t, &project).await;
    t.stop().await;
}

async fn signed_garbage_is_400(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    for body in [
        &b"not json at all"[..],
        b"",
        b"[]",
        br#"{"object":"event"}"#,
        br#"{"id":"evt_1","object":"event"}"#,
        br#"{"type":"invoice.paid","object":"event"}"#,
        br#"{"id":"evt_1","type":"x","object":"v2.core.event"}"#,
    ] {
        let resp = t.deliver(&project, body).await;
        assert_eq!(resp.status(), 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(error_code(resp).await, "invalid_event");
    }
    assert_nothing_stored(&t, &project).await;
    t.stop().await;
}

async fn livemode_mismatch_is_stored_as_ignored(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await; // a test-mode key
    let body = event_json("evt_live", "invoice.paid", "cus_1", true);
    let resp = t.deliver(&project, &body).await;
    assert_eq!(resp.status(), 200);
    let events = t.events(&project).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status.as_str(), "ignored");
    assert!(
        events[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("livemode mismatch")
    );
    assert_eq!(
        t.work_total().await,
        0,
        "ignored events are never processed"
    );
    t.stop().await;
}

async fn unhandled_type_is_stored_as_ignored(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    let body = event_json("evt_cu", "customer.updated", "cus_1", false);
    let resp = t.deliver(&project, &body).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ignored");
    let events = t.events(&project).await;
    assert_eq!(events[0].status.as_str(), "ignored");
    assert!(events[0].reason.as_deref().unwrap().contains("not handled"));
    assert_eq!(t.work_total().await, 0);
    t.stop().await;
}

async fn handled_event_is_stored_byte_exact_with_one_work_item(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    for fixture in [
        &include_bytes!("../fixtures/stripe/events/customer.subscription.created.json")[..],
        include_bytes!("../fixtures/stripe/events/invoice.paid.json"),
        include_bytes!("../fixtures/stripe/events/checkout.session.completed.json"),
        include_bytes!(
            "../fixtures/stripe/events/entitlements.active_entitlement_summary.updated.json"
        ),
        include_bytes!("../fixtures/stripe/events-pre-basil/invoice.paid.json"),
    ] {
        let resp = t.deliver(&project, fixture).await;
        assert_eq!(resp.status(), 200);
        let v: Value = serde_json::from_slice(fixture).unwrap();
        let id = v["id"].as_str().unwrap();
        let stored = t.store().event_body(project.as_str(), id).await.unwrap();
        assert_eq!(
            stored.as_deref(),
            Some(fixture),
            "raw body must be byte-exact"
        );
    }
    let events = t.events(&project).await;
    assert_eq!(events.len(), 5);
    assert!(
        events
            .iter()
            .all(|e| e.status.as_str() == "received" && e.attempts == 0)
    );
    assert!(
        events
            .iter()
            .all(|e| e.customer.as_deref() == Some("cus_QXg1o8vcGmoR32"))
    );
    assert_eq!(t.work_total().await, 5);
    t.stop().await;
}

async fn duplicates_make_one_event_and_one_work_item(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    let body = event_json("evt_dup", "invoice.paid", "cus_1", false);
    for _ in 0..3 {
        let resp = t.deliver(&project, &body).await;
        assert_eq!(resp.status(), 200);
    }
    let resp = t.deliver(&project, &body).await;
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["status"], "duplicate");
    assert_eq!(t.events(&project).await.len(), 1);
    assert_eq!(t.work_total().await, 1);
    t.stop().await;
}

async fn concurrent_duplicates_make_one_event_and_one_work_item(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    let body = event_json("evt_race", "customer.subscription.updated", "cus_1", false);
    let sends = (0..40).map(|_| t.deliver(&project, &body));
    let statuses: Vec<u16> = futures::future::join_all(sends)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(t.events(&project).await.len(), 1);
    assert_eq!(t.work_total().await, 1);
    t.stop().await;
}

async fn secret_roll_accepts_old_and_new(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.project(ProjectMode::Test).await;
    t.connect(
        &project,
        crate::support::TEST_KEY,
        &["whsec_old_one", "whsec_new_one"],
    )
    .await;
    let a = event_json("evt_a", "invoice.paid", "cus_1", false);
    let b = event_json("evt_b", "invoice.paid", "cus_1", false);
    let resp = t
        .post_webhook(&project, &a, Some(&sign("whsec_old_one", &a)))
        .await;
    assert_eq!(resp.status(), 200);
    let resp = t
        .post_webhook(&project, &b, Some(&sign("whsec_new_one", &b)))
        .await;
    assert_eq!(resp.status(), 200);
    // Stripe sends both signatures during a roll.
    let c = event_json("evt_c", "invoice.paid", "cus_1", false);
    let t_now = parityrail::now_ms() / 1000;
    let both = format!(
        "t={t_now},v1={},v1={}",
        compute_signature("whsec_retired", t_now, &c),
        compute_signature("whsec_new_one", t_now, &c)
    );
    assert_eq!(
        t.post_webhook(&project, &c, Some(&both)).await.status(),
        200
    );
    assert_eq!(t.events(&project).await.len(), 3);
    t.stop().await;
}

async fn secret_added_while_running_works_at_once(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    let warm = event_json("evt_warm", "invoice.paid", "cus_1", false);
    assert_eq!(t.deliver(&project, &warm).await.status(), 200);
    t.connect(&project, crate::support::TEST_KEY, &["whsec_added_later"])
        .await;
    let body = event_json("evt_new_secret", "invoice.paid", "cus_1", false);
    let resp = t
        .post_webhook(&project, &body, Some(&sign("whsec_added_later", &body)))
        .await;
    assert_eq!(
        resp.status(),
        200,
        "the cached secrets must be refreshed on a miss"
    );
    t.stop().await;
}

async fn database_down_is_500_and_stripe_redelivers(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    let warm = event_json("evt_before", "invoice.paid", "cus_1", false);
    assert_eq!(t.deliver(&project, &warm).await.status(), 200);
    // The database goes away under a running server.
    t.store().close().await;
    let body = event_json("evt_during_outage", "invoice.paid", "cus_1", false);
    let resp = t.deliver(&project, &body).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(error_code(resp).await, "inbox_unavailable");
    // Reopen the same database: the refused event was not stored, the earlier one was.
    let store = parityrail::store::Store::connect(&t.db.url).await.unwrap();
    let events = store.list_events(project.as_str(), 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, "evt_before");
    store.close().await;
    t.stop().await;
}

async fn lagging_redelivery_is_500_requeued_with_incident(backend: Backend) {
    let Some(t) = TestApp::spawn(backend).await else {
        return;
    };
    let project = t.connected_project().await;
    t.store().set_lag_threshold(&project, 0).await.unwrap();
    let body = event_json("evt_lag", "invoice.paid", "cus_lag", false);
    assert_eq!(t.deliver(&project, &body).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // Nothing processed it (no workers): a redelivery past the threshold.
    let resp = t.deliver(&project, &body).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(error_code(resp).await, "event_lagging");
    let incidents = t.store().list_incidents(project.as_str()).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::WebhookLag);
    assert_eq!(incidents[0].customer_id, "cus_lag");
    assert_eq!(incidents[0].event_id.as_deref(), Some("evt_lag"));
    assert_eq!(incidents[0].status.as_str(), "open");
    // Still one event and one work item; a second redelivery bumps the same incident.
    assert_eq!(t.deliver(&project, &body).await.status(), 500);
    let incidents = t.store().list_incidents(project.as_str()).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].count, 2);
    assert_eq!(t.events(&project).await.len(), 1);
    assert_eq!(t.work_total().await, 1);
    t.stop().await;
}

/// SQLite: the WAL is copied back into the database file in the background
/// while webhooks arrive, well before the write connection's own backstop
/// (thousands of pages) would do it on an ack's critical path.
#[tokio::test]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    let t = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("SQLite needs nothing installed");
    let parityrail::config::DatabaseUrl::Sqlite(path) = &t.db.url else {
        unreachable!("a SQLite test database")
    };
    let path = std::path::PathBuf::from(path);
    let db_bytes = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let project = t.connected_project().await;
    // ~2 KiB of padding per body: 200 events are ~100 pages, far below the
    // writer's 8,192-page backstop.
    let padding = "x".repeat(2048);
    for i in 0..200 {
        let mut event: Value = serde_json::from_slice(&event_json(
            &format!("evt_wal_{i}"),
            "invoice.paid",
            "cus_wal",
            false,
        ))
        .unwrap();
        event["data"]["object"]["description"] = Value::String(padding.clone());
        let resp = t
            .deliver(&project, &serde_json::to_vec(&event).unwrap())
            .await;
        assert_eq!(resp.status(), 200);
    }
    let grown = crate::support::eventually(std::time::Duration::from_secs(10), || async {
        (db_bytes() > 200 * 2048).then(db_bytes)
    })
    .await;
    assert!(
        grown > 400_000,
        "the database file holds the checkpointed events ({grown} bytes)"
    );
    t.stop().await;
}
