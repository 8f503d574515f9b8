//! The client against the sample app over real HTTP on 127.0.0.1:0.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sample_app::{SampleApp, SampleHandle};
use serde_json::json;

use super::*;
use crate::{backoff::Backoff, config::Secret};

const SECRET: &str = "psk_test_0123456789";

async fn app() -> (SampleApp, SampleHandle, ProbeTarget) {
    let app = SampleApp::new(SECRET);
    let handle = app.start().await;
    let target = ProbeTarget {
        url: handle.probe_url(),
        secret: Secret::new(SECRET),
        reconcile_url: None,
    };
    (app, handle, target)
}

fn client() -> ProbeClient {
    ProbeClient::new(Duration::from_secs(5)).with_retry(
        Backoff::exponential(Duration::from_millis(10), Duration::from_secs(2))
            .retries(2)
            .jitter(0.5, 1.0)
            .give_up_beyond(Duration::from_secs(2)),
    )
}

fn pair(customer: &str, user: &str) -> (String, String) {
    (customer.to_string(), user.to_string())
}

#[tokio::test]
async fn single_probe_found_revoked_and_missing() {
    let (app, _handle, target) = app().await;
    app.grant(
        "cus_1",
        "u1",
        Some("pro"),
        &["sso", "export"],
        &[("seats", 10)],
    );
    app.set_deploy_sha("abc123");
    let observed = client().probe(&target, "cus_1", "u1").await.unwrap();
    assert!(observed.found && observed.access.active);
    assert_eq!(observed.access.plan.as_deref(), Some("pro"));
    assert_eq!(
        observed.access.features,
        BTreeSet::from(["export".into(), "sso".into()])
    );
    assert_eq!(observed.access.limits.get("seats"), Some(&10));
    assert_eq!(observed.deploy_sha.as_deref(), Some("abc123"));

    app.revoke("cus_1");
    let observed = client().probe(&target, "cus_1", "u1").await.unwrap();
    assert!(observed.found && !observed.access.active && observed.access.plan.is_none());

    app.remove("cus_1");
    let observed = client().probe(&target, "cus_1", "u1").await.unwrap();
    assert_eq!(observed, crate::access::ObservedAccess::default());
    assert!(!observed.found);
}

#[tokio::test]
async fn batch_matches_answers_and_reports_found_false() {
    let (app, _handle, target) = app().await;
    app.grant("cus_a", "ua", Some("team"), &["sso"], &[]);
    app.grant("cus_c", "uc", None, &[], &[("seats", 2)]);
    let pairs = [
        pair("cus_c", "uc"),
        pair("cus_b", "ub"),
        pair("cus_a", "ua"),
    ];
    let answers = client().probe_batch(&target, &pairs).await.unwrap();
    let customers: Vec<&str> = answers.iter().map(|a| a.customer.as_str()).collect();
    assert_eq!(customers, ["cus_c", "cus_b", "cus_a"]);
    assert!(answers[0].observed.found && answers[0].observed.access.plan.is_none());
    assert!(!answers[1].observed.found);
    assert_eq!(answers[2].observed.access.plan.as_deref(), Some("team"));
    assert_eq!(answers[2].user.as_deref(), Some("ua"));
    assert_eq!(app.batch_requests(), 1);
}

#[tokio::test]
async fn batch_over_500_is_rejected_before_sending() {
    let (app, _handle, target) = app().await;
    let pairs: Vec<_> = (0..=MAX_BATCH)
        .map(|i| pair(&format!("cus_{i}"), "u"))
        .collect();
    let err = client().probe_batch(&target, &pairs).await.unwrap_err();
    assert!(matches!(err, ProbeError::TooMany { count: 501 }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(app.request_count(), 0);
    // Exactly the limit goes through.
    let answers = client()
        .probe_batch(&target, &pairs[..MAX_BATCH])
        .await
        .unwrap();
    assert_eq!(answers.len(), MAX_BATCH);
}

#[tokio::test]
async fn list_pages_walk_every_active_user_exactly_once() {
    let (app, _handle, target) = app().await;
    for i in 0..250 {
        app.grant(
            &format!("cus_{i:04}"),
            &format!("u{i}"),
            Some("pro"),
            &[],
            &[],
        );
    }
    app.revoke("cus_0100");
    app.remove("cus_0200");
    let client = client();
    let (mut seen, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let page = client
            .list_page(&target, cursor.as_deref())
            .await
            .unwrap()
            .unwrap();
        pages += 1;
        seen.extend(page.answers.into_iter().map(|a| a.customer));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..250)
        .filter(|i| *i != 100 && *i != 200)
        .map(|i| format!("cus_{i:04}"))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);

    app.set_list_enabled(false);
    assert_eq!(client.list_page(&target, None).await.unwrap(), None);
}

#[tokio::test]
async fn a_wrong_secret_gets_401_and_is_not_retried() {
    let (app, _handle, mut target) = app().await;
    app.grant("cus_1", "u1", Some("pro"), &[], &[]);
    target.secret = Secret::new("psk_wrong_secret_value");
    let err = client().probe(&target, "cus_1", "u1").await.unwrap_err();
    assert!(
        matches!(err, ProbeError::Status { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(app.request_count(), 1);
    let printed = format!("{err} {err:?} {target:?}");
    assert!(!printed.contains("psk_wrong_secret_value"), "{printed}");
}

#[tokio::test]
async fn a_down_app_is_retried_then_reported_transient() {
    let (app, _handle, target) = app().await;
    app.set_down(true);
    let err = client().probe(&target, "cus_1", "u1").await.unwrap_err();
    assert!(
        matches!(err, ProbeError::Status { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(app.request_count(), 3, "one attempt and two retries");
}

#[tokio::test]
async fn a_slow_app_times_out() {
    let (app, _handle, target) = app().await;
    app.grant("cus_1", "u1", Some("pro"), &[], &[]);
    app.set_delay(Duration::from_secs(3));
    let client = ProbeClient::new(Duration::from_millis(200)).with_retry(
        Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1))
            .retries(1)
            .give_up_beyond(Duration::from_secs(1)),
    );
    let started = Instant::now();
    let err = client.probe(&target, "cus_1", "u1").await.unwrap_err();
    assert!(matches!(err, ProbeError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.request_count(), 2);
}

#[tokio::test]
async fn a_wrong_app_is_malformed_naming_the_field() {
    let (app, _handle, target) = app().await;
    app.grant("cus_1", "u1", Some("pro"), &["sso"], &[]);
    app.set_wrong(true);
    let err = client().probe(&target, "cus_1", "u1").await.unwrap_err();
    let ProbeError::Malformed { reason } = &err else {
        panic!("{err:?}");
    };
    assert!(reason.starts_with("features:"), "{reason}");
    assert!(!err.is_transient());
    let err = client()
        .probe_batch(&target, &[pair("cus_1", "u1")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("customers[0].features"), "{err}");
    let err = client().list_page(&target, None).await.unwrap_err();
    assert!(err.to_string().contains("data[0].features"), "{err}");
}

#[tokio::test]
async fn reconcile_is_signed_and_recorded() {
    let (app, handle, target) = app().await;
    let body =
        json!({"customer": "cus_1", "user": "u1", "expected": {"plan": "pro", "active": true}});
    let status = client()
        .reconcile(&handle.reconcile_url(), &target.secret, &body)
        .await
        .unwrap();
    assert_eq!(status, 202);
    assert_eq!(app.reconcile_calls(), vec![body.clone()]);
    let err = client()
        .reconcile(&handle.reconcile_url(), &Secret::new("nope"), &body)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::Status { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(app.reconcile_calls().len(), 1);
}

#[tokio::test]
async fn the_signed_target_is_the_query_exactly_as_sent() {
    let (app, _handle, target) = app().await;
    let user = "a b+c/é&x=1";
    app.grant("cus_1", user, Some("pro"), &[], &[]);
    let observed = client().probe(&target, "cus_1", user).await.unwrap();
    assert!(
        observed.found,
        "the app decoded the same user and accepted the signature"
    );
    assert_eq!(
        app.last_target().as_deref(),
        Some("/parityrail/access?customer=cus_1&user=a+b%2Bc%2F%C3%A9%26x%3D1")
    );
}

#[tokio::test]
async fn retry_after_is_honoured_as_a_floor() {
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let router = axum::Router::new().route(
        "/p",
        axum::routing::get(move |_: HeaderMap| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "{}")
                } else {
                    (StatusCode::NOT_FOUND, [("retry-after", "0")], "{}")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/p", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let target = ProbeTarget {
        url,
        secret: Secret::new(SECRET),
        reconcile_url: None,
    };
    let started = Instant::now();
    let observed = client().probe(&target, "cus_1", "u1").await.unwrap();
    assert!(!observed.found);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.abort();
}

#[test]
fn signatures_round_trip_and_match_a_known_vector() {
    let t = 1_700_000_000;
    let target = "/parityrail/access?customer=cus_1&user=a+b%2Bc";
    // Computed independently with Python's hmac module.
    assert_eq!(
        sign("psk_test", t, target, b""),
        "t=1700000000,v1=66e1253c7457b348650a754a3387ce21629010457fde1472c299193465ddc556"
    );
    let header = sign(SECRET, t, "/r", br#"{"a":1}"#);
    assert!(verify(
        &header,
        SECRET,
        "/r",
        br#"{"a":1}"#,
        t + 300,
        TOLERANCE_SECS
    ));
    assert!(!verify(
        &header,
        SECRET,
        "/r",
        br#"{"a":1}"#,
        t + 301,
        TOLERANCE_SECS
    ));
    assert!(!verify(
        &header,
        SECRET,
        "/r",
        br#"{"a":2}"#,
        t,
        TOLERANCE_SECS
    ));
    assert!(!verify(
        &header,
        SECRET,
        "/r?",
        br#"{"a":1}"#,
        t,
        TOLERANCE_SECS
    ));
    assert!(!verify(
        &header,
        "other",
        "/r",
        br#"{"a":1}"#,
        t,
        TOLERANCE_SECS
    ));
    for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,t=1,v1=00", "garbage"] {
        assert!(
            !verify(bad, SECRET, "/r", b"", 1, TOLERANCE_SECS),
            "{bad:?}"
        );
    }
}

mod limits;
