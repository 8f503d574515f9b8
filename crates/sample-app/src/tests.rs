use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::signature::now;
use crate::store::Render;
use crate::{SampleApp, verify_signature};

const SECRET: &str = "psk_test";
const T: i64 = 1_700_000_000;

fn sign(secret: &str, t: i64, target: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{target}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn signature_matches_a_known_vector() {
    // Computed independently with Python's hmac module.
    let header = "t=1700000000,v1=66e1253c7457b348650a754a3387ce21629010457fde1472c299193465ddc556";
    let target = "/parityrail/access?customer=cus_1&user=a+b%2Bc";
    assert!(verify_signature(header, SECRET, target, b"", T));
    let header = "t=1700000000,v1=33454d6c63c375770709f75c65ba574de4fe8e74e09e7fc869db711d76f67ccf";
    let body = br#"{"customer":"cus_1"}"#;
    assert!(verify_signature(
        header,
        SECRET,
        "/parityrail/reconcile",
        body,
        T
    ));
}

#[test]
fn signature_rejects_tampering_staleness_and_garbage() {
    let target = "/parityrail/access?customer=cus_1&user=u1";
    let good = sign(SECRET, T, target, b"");
    assert!(verify_signature(&good, SECRET, target, b"", T + 300));
    assert!(!verify_signature(&good, SECRET, target, b"", T + 301));
    assert!(!verify_signature(&good, SECRET, target, b"", T - 301));
    assert!(!verify_signature(&good, "other", target, b"", T));
    assert!(!verify_signature(&good, SECRET, target, b"x", T));
    // The decoded or re-encoded form of the query is a different target.
    assert!(!verify_signature(
        &good,
        SECRET,
        "/parityrail/access?customer=cus_1&user=u%31",
        b"",
        T
    ));
    let v1 = good.split_once(",v1=").unwrap().1;
    for bad in [
        "",
        "t=,v1=00",
        &format!("t=-{T},v1={v1}"),
        &format!("v1={v1}"),
        &format!("t={T},t={T},v1={v1}"),
        &format!("t={T},v1"),
        &format!("t={T},v1=zz"),
    ] {
        assert!(!verify_signature(bad, SECRET, target, b"", T), "{bad:?}");
    }
    // Any one matching v1 is enough (secret rotation).
    let rotated = format!("t={T},v1=00ff,v1={v1}");
    assert!(verify_signature(&rotated, SECRET, target, b"", T));
}

fn render() -> Render<'static> {
    Render {
        deploy_sha: "abc",
        wrong: false,
    }
}

#[test]
fn store_answers_revokes_and_removes() {
    let app = SampleApp::new(SECRET);
    app.grant(
        "cus_1",
        "u1",
        Some("pro"),
        &["sso", "export", "sso"],
        &[("seats", 10)],
    );
    let answer = app.store().answer("cus_1", "u1", render()).unwrap();
    assert_eq!(
        answer,
        json!({"customer": "cus_1", "user": "u1", "plan": "pro", "features": ["export", "sso"],
               "limits": {"seats": 10}, "active": true, "deploy_sha": "abc"})
    );
    // A probe naming another user of the app does not find this one.
    assert!(app.store().answer("cus_1", "u2", render()).is_none());
    assert!(app.store().answer("cus_1", "", render()).is_some());
    app.revoke("cus_1");
    let answer = app.store().answer("cus_1", "u1", render()).unwrap();
    assert_eq!(answer["active"], false);
    assert_eq!(answer["plan"], Value::Null);
    assert_eq!(answer["features"], json!([]));
    app.remove("cus_1");
    assert!(app.store().answer("cus_1", "u1", render()).is_none());
    let wrong = Render {
        deploy_sha: "abc",
        wrong: true,
    };
    app.grant("cus_2", "u2", None, &["a", "b"], &[]);
    assert_eq!(
        app.store().answer("cus_2", "u2", wrong).unwrap()["features"],
        "a,b"
    );
}

#[test]
fn pages_walk_every_active_user_once_in_id_order() {
    let app = SampleApp::new(SECRET);
    for i in 0..25 {
        app.grant(
            &format!("cus_{i:03}"),
            &format!("u{i}"),
            Some("pro"),
            &[],
            &[],
        );
    }
    app.revoke("cus_003");
    app.revoke("cus_024");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (data, next) = app.store().page(cursor.as_deref(), 7, render());
        assert!(data.len() <= 7);
        seen.extend(
            data.iter()
                .map(|a| a["customer"].as_str().unwrap().to_string()),
        );
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..24)
        .filter(|i| *i != 3)
        .map(|i| format!("cus_{i:03}"))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn holds_a_million_users() {
    let app = SampleApp::new(SECRET);
    let started = Instant::now();
    for i in 0..1_000_000u32 {
        let plan = if i % 3 == 0 { "team" } else { "pro" };
        app.grant(
            &format!("cus_{i:014}"),
            &format!("user_{i}"),
            Some(plan),
            &["sso"],
            &[("seats", 5)],
        );
    }
    assert_eq!(app.user_count(), 1_000_000);
    let (data, next) = app.store().page(Some("cus_00000000999990"), 100, render());
    assert_eq!(data.len(), 9);
    assert_eq!(next, None);
    eprintln!("1,000,000 users stored in {:?}", started.elapsed());
}

// --- over HTTP ------------------------------------------------------------

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn get(app_url: &str, target: &str, secret: &str) -> (u16, Value) {
    let header = sign(secret, now(), target, b"");
    let response = client()
        .get(format!("{app_url}{target}"))
        .header("ParityRail-Signature", header)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(app_url: &str, target: &str, body: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(body).unwrap();
    let header = sign(SECRET, now(), target, &body);
    let response = client()
        .post(format!("{app_url}{target}"))
        .header("ParityRail-Signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn serves_the_probe_protocol_behind_the_signature() {
    let app = SampleApp::new(SECRET);
    app.grant("cus_1", "u 1", Some("pro"), &["sso"], &[("seats", 3)]);
    let handle = app.start().await;
    let base = format!("http://{}", handle.addr());
    assert_eq!(handle.probe_url(), format!("{base}/parityrail/access"));

    let (status, body) = get(&base, "/parityrail/access?customer=cus_1&user=u+1", SECRET).await;
    assert_eq!((status, body["plan"].as_str()), (200, Some("pro")));
    assert_eq!(
        app.last_target().as_deref(),
        Some("/parityrail/access?customer=cus_1&user=u+1")
    );
    let (status, _) = get(&base, "/parityrail/access?customer=cus_9&user=x", SECRET).await;
    assert_eq!(status, 404);
    let (status, _) = get(&base, "/parityrail/access?customer=cus_1&user=u+1", "wrong").await;
    assert_eq!(status, 401);
    let unsigned = client().get(handle.probe_url()).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);

    let batch = json!({"customers": [{"customer": "cus_1", "user": "u 1"}, {"customer": "cus_2", "user": "x"}]});
    let (status, body) = post(&base, "/parityrail/access/batch", &batch).await;
    assert_eq!(status, 200);
    assert_eq!(body["customers"][0]["active"], true);
    assert_eq!(
        body["customers"][1],
        json!({"customer": "cus_2", "found": false})
    );
    let too_many: Vec<Value> = (0..501)
        .map(|i| json!({"customer": format!("cus_{i}")}))
        .collect();
    let (status, _) = post(
        &base,
        "/parityrail/access/batch",
        &json!({ "customers": too_many }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(app.batch_requests(), 2);

    let (status, body) = get(&base, "/parityrail/access/list", SECRET).await;
    assert_eq!((status, body["next_cursor"].clone()), (200, Value::Null));
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    app.set_list_enabled(false);
    assert_eq!(get(&base, "/parityrail/access/list", SECRET).await.0, 404);

    let (status, _) = post(
        &base,
        "/parityrail/reconcile",
        &json!({"customer": "cus_1"}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(app.reconcile_calls(), vec![json!({"customer": "cus_1"})]);
    assert_eq!(app.request_count(), 8);

    app.set_down(true);
    assert_eq!(
        get(&base, "/parityrail/access?customer=cus_1&user=u+1", SECRET)
            .await
            .0,
        503
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn slow_answers_and_later_changes() {
    let app = SampleApp::new(SECRET);
    let handle = app.start().await;
    let base = format!("http://{}", handle.addr());
    app.apply_after(Duration::from_millis(100), |app| {
        app.grant("cus_1", "u1", None, &[], &[])
    });
    assert_eq!(
        get(&base, "/parityrail/access?customer=cus_1&user=u1", SECRET)
            .await
            .0,
        404
    );
    app.set_delay(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(
        get(&base, "/parityrail/access?customer=cus_1&user=u1", SECRET)
            .await
            .0,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    // A stalled request does not hold shutdown.
    app.set_delay(Duration::from_secs(60));
    let stalled = tokio::spawn(async move {
        get(&base, "/parityrail/access?customer=cus_1&user=u1", SECRET)
            .await
            .0
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), handle.shutdown())
        .await
        .unwrap();
    assert_eq!(stalled.await.unwrap(), 503);
}
