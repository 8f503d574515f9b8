//! The standalone `stripe-sim` binary: its help, its seeded account over
//! HTTP, time passing (periods renew), and webhooks retried on the
//! compressed schedule.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_stripe-sim");

#[test]
fn help_and_bad_flags() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in ["--listen", "--key", "--webhook", "--time-scale", "--seed"] {
        assert!(text.contains(flag), "{flag} missing from: {text}");
    }
    let bad = Command::new(BIN)
        .args(["--time-scale", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("time scale"));
}

/// A GET of the simulator's API with the test key, as JSON.
async fn get_json(url: &str) -> Value {
    crate::http_client()
        .get(url)
        .bearer_auth(crate::KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Kills the child on drop, so a failing test leaves nothing running.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_its_seed_and_retries_a_failed_delivery() {
    // A receiver whose first answer is a 500.
    let hits: Arc<Mutex<Vec<StatusCode>>> = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(async |State(hits): State<Arc<Mutex<Vec<StatusCode>>>>| {
                let mut hits = hits.lock().unwrap();
                let status = if hits.is_empty() {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                };
                hits.push(status);
                status
            }),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut child = Child(
        Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--key",
                crate::KEY,
                "--seed",
                "2",
            ])
            // Thirty simulated days a second.
            .args([
                "--webhook",
                &format!("{hook},whsec_bin"),
                "--time-scale",
                "2592000",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");

    let customers: Value = get_json(&format!("{base}/v1/customers")).await;
    assert_eq!(
        customers["data"].as_array().unwrap().len(),
        2,
        "{customers}"
    );

    // The endpoint is registered before the seed, so the seed's events are
    // delivered; the first answer is a 500, so that delivery is retried.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let seen = hits.lock().unwrap().clone();
        if seen.len() >= 2 && seen[1..].contains(&StatusCode::OK) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "deliveries: {seen:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Months pass: each subscription renews with a paid invoice.
    loop {
        let paid: Value = get_json(&format!("{base}/v1/events?type=invoice.paid&limit=100")).await;
        if paid["data"].as_array().unwrap().len() >= 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no renewal: {paid}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
