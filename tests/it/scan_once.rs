//! A scan runs once and never ends silently incomplete (issue 7, items 9
//! and 10): a request while one runs gets that scan, a scan longer than its
//! lease keeps it, and customers the app could not be asked about end the
//! scan `partial` with their count and a `probe_failed` incident.

use std::time::Duration;

use parityrail::domain::{ScanStatus, ScanTrigger};
use serde_json::Value;

use crate::{
    support::{Backend, TestOptions, eventually},
    world::{Options, World, world},
};

crate::backend_tests!(
    a_scan_request_while_one_runs_gets_the_running_scan,
    a_scan_longer_than_its_lease_is_not_taken_over,
    a_failed_batch_probe_ends_the_scan_partial_with_a_count_and_an_incident,
);

const CRON: &str = "cron_secret_for_scan_once_tests";

async fn scan_world(backend: Backend, lease_secs: f64) -> Option<World> {
    let w = world(
        backend,
        Options {
            events: false,
            test: TestOptions {
                cron_secret: Some(CRON),
                lease_secs,
                ..TestOptions::default()
            },
            ..Options::default()
        },
    )
    .await?;
    for i in 0..3 {
        let user = format!("u{i}");
        let (customer, _) = w.subscribe(&user, &w.pro);
        w.grant(&customer, &user, "pro");
    }
    Some(w)
}

async fn cron(w: &World) -> Value {
    let resp =
        w.t.http
            .post(w.t.url("/api/cron/scan"))
            .bearer_auth(CRON)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 202);
    resp.json().await.unwrap()
}

/// Item 9. Cron, manual and scheduled requests for a project whose scan is
/// running get that scan; no second one starts.
async fn a_scan_request_while_one_runs_gets_the_running_scan(backend: Backend) {
    let Some(w) = scan_world(backend, 60.0).await else {
        return;
    };
    // The app answers slowly, so the first scan is still running below.
    w.app.set_delay(Duration::from_millis(1500));
    let first = cron(&w).await;
    let scan_id = first["scans"][0]["scan_id"].as_str().unwrap().to_string();
    assert_eq!(first["scans"][0]["created"], true);
    let again = cron(&w).await;
    assert_eq!(again["scans"][0]["scan_id"], scan_id.as_str());
    assert_eq!(again["scans"][0]["created"], false);
    let manual = parityrail::scan::create(&w.t.app, &w.project, ScanTrigger::Manual)
        .await
        .unwrap();
    assert_eq!(
        (manual.scan.id.as_str(), manual.created),
        (scan_id.as_str(), false)
    );
    let now = parityrail::now_ms() + 86_400_000;
    assert!(
        parityrail::scan::schedule::start_due(&w.t.app, now)
            .await
            .unwrap()
            .is_empty(),
        "the schedule does not start a second scan either"
    );
    let done = eventually(Duration::from_secs(30), || async {
        let scan = w.t.store().scan(&scan_id).await.unwrap().unwrap();
        (scan.status != ScanStatus::Running).then_some(scan)
    })
    .await;
    assert_eq!(done.status, ScanStatus::Completed, "{:?}", done.error);
    let scans =
        w.t.store()
            .list_scans(w.project.as_str(), 10)
            .await
            .unwrap();
    assert_eq!(scans.len(), 1, "{scans:?}");
    w.t.stop().await;
}

/// Item 9. A scan held up longer than its lease (a slow app) renews the
/// lease, so no instance takes it over and runs it a second time.
async fn a_scan_longer_than_its_lease_is_not_taken_over(backend: Backend) {
    // Lease 0.3 s: a scan's lease is 0.6 s; the app takes 2 s per batch.
    let Some(w) = scan_world(backend, 0.3).await else {
        return;
    };
    w.app.set_delay(Duration::from_secs(2));
    let started = parityrail::usecase::scans::start(
        &w.t.app,
        &w.t.project_of(&w.project).await,
        ScanTrigger::Manual,
    )
    .await
    .unwrap();
    assert!(started.created);
    let mut taken_over = Vec::new();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        taken_over.extend(
            parityrail::scan::schedule::resume_stale(&w.t.app, parityrail::now_ms())
                .await
                .unwrap(),
        );
    }
    assert!(taken_over.is_empty(), "taken over: {taken_over:?}");
    let done = eventually(Duration::from_secs(30), || async {
        let scan = w.t.store().scan(&started.scan.id).await.unwrap().unwrap();
        (scan.status != ScanStatus::Running).then_some(scan)
    })
    .await;
    assert_eq!(done.status, ScanStatus::Completed, "{:?}", done.error);
    assert_eq!(done.customers_checked, 3, "checked once each");
    w.t.stop().await;
}

/// Item 10. The app fails for every batch and `/list` page, even after
/// retries: the scan ends `partial`, counting the customers it could not
/// check, with a `probe_failed` incident that says so — never `completed`.
async fn a_failed_batch_probe_ends_the_scan_partial_with_a_count_and_an_incident(backend: Backend) {
    let Some(w) = scan_world(backend, 60.0).await else {
        return;
    };
    w.app.set_down(true);
    let summary = w.scan().await.unwrap();
    assert_eq!(summary.status, ScanStatus::Partial, "{summary:?}");
    assert_eq!(summary.customers_unchecked, 3);
    assert_eq!(summary.customers_checked, 0);
    let scan = w.t.store().scan(&summary.scan_id).await.unwrap().unwrap();
    assert_eq!(scan.status, ScanStatus::Partial);
    assert!(scan.error.unwrap().contains("could not"));
    let incidents = w.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].kind.as_str(), "probe_failed");
    assert!(
        incidents[0]
            .details
            .contains("3 customers could not be checked"),
        "{}",
        incidents[0].details
    );
    assert!(w.app.batch_requests() > 1, "the batch was tried again");
    w.t.stop().await;
}
