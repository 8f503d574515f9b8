//! Webhook signing and delivery with retries.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use stripe_sim::{StripeSim, sign_header};

use crate::catalogue;

/// Vector `valid_basic` of shared/stripe/signature-vectors.json.
#[test]
fn sign_header_matches_the_valid_basic_vector() {
    let secret = "whsec_vectorsSecret0123456789abcdefABCDEF";
    let payload = "{\n  \"id\": \"evt_1TestVectors0000000000\",\n  \"object\": \"event\",\n  \"api_version\": \"2026-03-25.dahlia\",\n  \"created\": 1767225590,\n  \"data\": {\n    \"object\": {\n      \"id\": \"cus_TestVectors00\",\n      \"object\": \"customer\",\n      \"email\": \"jenny.rosen@example.com\",\n      \"livemode\": false,\n      \"metadata\": {}\n    }\n  },\n  \"livemode\": false,\n  \"pending_webhooks\": 1,\n  \"request\": {\n    \"id\": null,\n    \"idempotency_key\": null\n  },\n  \"type\": \"customer.updated\"\n}";
    assert_eq!(
        sign_header(secret, 1_767_225_600, payload.as_bytes()),
        "t=1767225600,v1=363c0aa54954f7a37c7e3d8c0d232565962e62e104d8df9da150bde91f236e68"
    );
}

const SECRET: &str = "whsec_testDeliverySecret";

#[derive(Default)]
struct Received {
    /// Answers to give, front first; 200 once exhausted.
    script: Vec<StatusCode>,
    bodies: Vec<Bytes>,
    signatures: Vec<String>,
}

type Shared = Arc<Mutex<Received>>;

/// Verifies independently of `sign_header`, like a receiver would.
fn verify(header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1.push(value.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now - t).abs() <= 300 && v1.contains(&expected)
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers["stripe-signature"].to_str().unwrap().to_owned();
    let ok = verify(&signature, &body);
    let mut received = shared.lock().unwrap();
    received.signatures.push(signature);
    received.bodies.push(body);
    if !ok {
        return StatusCode::BAD_REQUEST;
    }
    if received.script.is_empty() {
        StatusCode::OK
    } else {
        received.script.remove(0)
    }
}

async fn receiver(script: Vec<StatusCode>) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Received {
        script,
        ..Default::default()
    }));
    let app = Router::new()
        .route("/webhooks", post(receive))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, shared)
}

#[tokio::test]
async fn delivers_signed_events_and_retries_after_a_500() {
    let sim = StripeSim::new();
    let (_, price) = catalogue(&sim);
    let before = sim.create_customer("before@example.com", &[]);
    let (url, received) = receiver(vec![StatusCode::INTERNAL_SERVER_ERROR]).await;
    let endpoint = sim.add_webhook_endpoint(&url, SECRET);
    assert!(endpoint.starts_with("we_"));
    sim.create_subscription(&before, &[&price], "active", &[]);
    let emitted: Vec<String> = sim.events()[1..]
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(emitted.len(), 3, "created, invoice.paid, entitlements");
    assert_eq!(sim.pending_deliveries(), 3);

    let reports = sim.deliver_pending(3).await;
    assert_eq!(reports.len(), 3);
    assert_eq!(
        reports
            .iter()
            .map(|r| r.event_id.clone())
            .collect::<Vec<_>>(),
        emitted
    );
    assert!(
        reports
            .iter()
            .all(|r| r.delivered && r.endpoint == url && r.last_status == Some(200))
    );
    assert_eq!(reports[0].attempts, 2, "the first answer was a 500");
    assert_eq!(reports[1].attempts, 1);
    assert_eq!(sim.pending_deliveries(), 0);

    {
        let received = received.lock().unwrap();
        assert_eq!(received.bodies.len(), 4);
        // The retry carried the same body, signed afresh.
        let first = &received.bodies[0];
        assert_eq!(received.bodies.iter().filter(|b| *b == first).count(), 2);
        assert!(
            received
                .signatures
                .iter()
                .all(|s| s.starts_with("t=") && s.contains(",v1="))
        );
        let event: serde_json::Value = serde_json::from_slice(&received.bodies[0]).unwrap();
        assert_eq!(event["type"], "customer.subscription.created");
        assert_eq!(event["object"], "event");
        assert_eq!(event["pending_webhooks"], 1);
    }

    // Redelivery on request, for at-least-once tests.
    assert!(sim.requeue_event(&emitted[0]));
    let again = sim.deliver_pending(1).await;
    assert_eq!(again.len(), 1);
    assert!(again[0].delivered);
}

#[tokio::test]
async fn gives_up_after_max_attempts_on_connection_errors() {
    let sim = StripeSim::new();
    sim.set_delivery_timing(
        std::time::Duration::from_millis(1),
        std::time::Duration::from_secs(2),
    );
    // A port nothing listens on: bind, read the address, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    drop(listener);
    sim.add_webhook_endpoint(&url, SECRET);
    sim.emit_event(
        "customer.updated",
        serde_json::json!({"id": "cus_x", "object": "customer"}),
        None,
    );
    let reports = sim.deliver_pending(3).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].attempts, 3);
    assert_eq!(reports[0].last_status, None);
    assert!(!reports[0].delivered);
    assert_eq!(sim.pending_deliveries(), 0);
}

#[tokio::test]
async fn webhook_endpoints_are_created_over_http_filter_events_and_stop_when_deleted() {
    let env = crate::env().await;
    let (_, price) = catalogue(&env.sim);
    let base = env.handle.base_url();
    let post = |body: &'static str| {
        env.http
            .post(format!("{base}/v1/webhook_endpoints"))
            .bearer_auth(crate::KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // Bad input: no URL, no events, not a URL.
    for (body, param) in [
        ("enabled_events[]=*", "url"),
        ("url=https%3A%2F%2Fapp.example.com%2Fhook", "enabled_events"),
        ("url=ftp%3A%2F%2Fx&enabled_events[]=*", "url"),
    ] {
        let resp = post(body).await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["param"], param, "{err}");
    }
    assert_eq!(
        env.get("/v1/webhook_endpoints").await.body["data"],
        serde_json::json!([])
    );

    // Created with the SDKs' indexed arrays; the secret comes back once.
    let resp =
        post("url=https%3A%2F%2Fapp.example.com%2Fhook&enabled_events[0]=customer.subscription.*")
            .await
            .unwrap();
    assert_eq!(resp.status(), 200);
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("we_"));
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        created["enabled_events"],
        serde_json::json!(["customer.subscription.*"])
    );
    let listed = env.get("/v1/webhook_endpoints").await.body;
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert!(listed["data"][0].get("secret").is_none(), "shown once");
    let shown = env.get(&format!("/v1/webhook_endpoints/{id}")).await;
    assert_eq!(shown.status, 200);
    assert!(shown.body.get("secret").is_none());

    // Only the events it asked for are queued for it.
    let customer = env.sim.create_customer("e@example.com", &[]);
    env.sim
        .create_subscription(&customer, &[&price], "active", &[]);
    assert_eq!(
        env.sim.pending_deliveries(),
        1,
        "customer.subscription.created only"
    );
    let event = env
        .sim
        .events()
        .into_iter()
        .find(|e| e["type"] == "customer.subscription.created")
        .unwrap();
    assert_eq!(event["pending_webhooks"], 1);

    // Deleted: what was pending is dropped and nothing more is queued.
    let deleted: Value = env
        .http
        .delete(format!("{base}/v1/webhook_endpoints/{id}"))
        .bearer_auth(crate::KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["deleted"], true);
    assert_eq!(env.sim.pending_deliveries(), 0);
    env.sim.create_customer("f@example.com", &[]);
    let sub = env
        .sim
        .create_subscription(&customer, &[&price], "active", &[]);
    env.sim.cancel_subscription(&sub);
    assert_eq!(env.sim.pending_deliveries(), 0);
    assert_eq!(
        env.get(&format!("/v1/webhook_endpoints/{id}")).await.status,
        404
    );
    assert_eq!(
        env.get("/v1/webhook_endpoints").await.body["data"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn delivery_faults_drop_duplicate_and_reorder_like_the_network_does() {
    let sim = StripeSim::new();
    let (url, received) = receiver(Vec::new()).await;
    sim.add_webhook_endpoint(&url, SECRET);
    let ids = |bodies: &[Bytes]| -> Vec<String> {
        bodies
            .iter()
            .map(|b| {
                serde_json::from_slice::<Value>(b).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        sim.create_customer(email, &[]);
    }
    let emitted: Vec<String> = sim
        .events()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    // The first is dropped, the second arrives twice.
    sim.inject_delivery_faults(stripe_sim::DeliveryFault::Drop, 1);
    sim.inject_delivery_faults(stripe_sim::DeliveryFault::Duplicate, 1);
    let reports = sim.deliver_pending(1).await;
    assert!(
        !reports[0].delivered && reports[0].attempts == 0,
        "{reports:?}"
    );
    assert_eq!(
        ids(&received.lock().unwrap().bodies),
        [emitted[1].clone(), emitted[1].clone(), emitted[2].clone()]
    );
    // Out of order: the next batch arrives newest first.
    received.lock().unwrap().bodies.clear();
    for email in ["d@example.com", "e@example.com", "f@example.com"] {
        sim.create_customer(email, &[]);
    }
    let newer: Vec<String> = sim.events()[3..]
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    sim.inject_delivery_faults(stripe_sim::DeliveryFault::Reorder, 1);
    sim.deliver_pending(1).await;
    let mut reversed = newer.clone();
    reversed.reverse();
    assert_eq!(ids(&received.lock().unwrap().bodies), reversed);
    // The faults are spent: the next delivery is plain.
    received.lock().unwrap().bodies.clear();
    sim.create_customer("g@example.com", &[]);
    sim.deliver_pending(1).await;
    assert_eq!(received.lock().unwrap().bodies.len(), 1);
}
