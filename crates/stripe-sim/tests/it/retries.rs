//! Stripe's retry schedule, compressed by a time scale: the attempts of a
//! failing delivery are spaced as the schedule says, and one failing
//! endpoint holds back no other delivery.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use stripe_sim::{RetrySchedule, StripeSim};

/// Every POST to `/{name}`: to which name, with which event, when.
#[derive(Default)]
struct Log {
    /// How many 500s `/{name}` answers before a 200 (`u32::MAX`: always).
    failures: Vec<(String, u32)>,
    arrivals: Vec<(String, String, Instant)>,
}

type Shared = Arc<Mutex<Log>>;

async fn receive(
    State(log): State<Shared>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = event["id"].as_str().unwrap().to_owned();
    let mut log = log.lock().unwrap();
    log.arrivals.push((name.clone(), id, Instant::now()));
    match log.failures.iter_mut().find(|(n, _)| *n == name) {
        Some((_, left)) if *left > 0 => {
            *left = left.saturating_sub(u32::from(*left != u32::MAX));
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::OK,
    }
}

async fn receiver(failures: &[(&str, u32)]) -> (String, Shared) {
    let log: Shared = Arc::new(Mutex::new(Log {
        failures: failures
            .iter()
            .map(|(n, f)| ((*n).to_owned(), *f))
            .collect(),
        ..Log::default()
    }));
    let app = Router::new()
        .route("/{name}", post(receive))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, log)
}

/// When `/{name}` was called, for `event` if given.
fn arrivals(log: &Shared, name: &str, event: Option<&str>) -> Vec<Instant> {
    let log = log.lock().unwrap();
    log.arrivals
        .iter()
        .filter(|(n, id, _)| n == name && event.is_none_or(|e| e == id))
        .map(|(_, _, at)| *at)
        .collect()
}

#[tokio::test]
async fn a_failing_delivery_is_retried_on_stripes_test_mode_schedule_compressed() {
    let sim = StripeSim::new();
    // Ten simulated hours a second: 5 min, 1 h and 2 h become 8, 100 and
    // 200 ms.
    let schedule = RetrySchedule::stripe_test(36_000.0).unwrap();
    sim.set_retry_schedule(schedule);
    let (base, log) = receiver(&[("flaky", 3)]).await;
    sim.add_webhook_endpoint(&format!("{base}/flaky"), "whsec_retries");
    sim.create_customer("flaky@example.com", &[]);

    let reports = sim.deliver_pending(u32::MAX).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].attempts, 4,
        "the first attempt and three retries"
    );
    assert!(reports[0].delivered);

    let at = arrivals(&log, "flaky", None);
    assert_eq!(at.len(), 4);
    for (retry, pair) in (1..).zip(at.windows(2)) {
        let gap = pair[1] - pair[0];
        let wait = schedule.wait(retry).unwrap();
        assert!(gap >= wait, "retry {retry}: {gap:?} before its {wait:?}");
    }

    // Always failing: test mode gives up after its three retries, whatever
    // the caller allows.
    let (base, _log) = receiver(&[("down", u32::MAX)]).await;
    sim.add_webhook_endpoint(&format!("{base}/down"), "whsec_retries");
    sim.create_customer("down@example.com", &[]);
    let reports = sim.deliver_pending(u32::MAX).await;
    let down: Vec<_> = reports
        .iter()
        .filter(|r| r.endpoint.ends_with("/down"))
        .collect();
    assert_eq!(down.len(), 1);
    assert_eq!((down[0].attempts, down[0].delivered), (4, false));
    assert_eq!(down[0].last_status, Some(500));
}

#[tokio::test]
async fn one_failing_endpoint_holds_back_no_other_delivery() {
    let sim = StripeSim::new();
    sim.set_retry_schedule(RetrySchedule::stripe_test(36_000.0).unwrap());
    let (base, log) = receiver(&[("down", u32::MAX)]).await;
    // The failing endpoint is first, so its deliveries are queued first.
    sim.add_webhook_endpoint(&format!("{base}/down"), "whsec_down");
    sim.add_webhook_endpoint(&format!("{base}/up"), "whsec_up");
    sim.create_customer("one@example.com", &[]);
    sim.create_customer("two@example.com", &[]);

    let reports = sim.deliver_pending(u32::MAX).await;
    assert_eq!(arrivals(&log, "up", None).len(), 2, "{reports:?}");
    assert_eq!(
        arrivals(&log, "down", None).len(),
        8,
        "two events, four attempts each"
    );
    // Each event reached the healthy endpoint before the failing one had
    // spent its retries on it (about 300 ms): those wait on their own.
    for event in sim.events() {
        let id = event["id"].as_str().unwrap();
        let up = arrivals(&log, "up", Some(id));
        let down = arrivals(&log, "down", Some(id));
        assert_eq!((up.len(), down.len()), (1, 4), "{id}");
        assert!(up[0] < down[3], "{id}: up waited for down's retries");
    }
    assert_eq!(reports.iter().filter(|r| r.delivered).count(), 2);
}
