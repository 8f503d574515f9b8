//! `stripe listen --forward-to localhost:8080/api/webhooks/stripe/{id}`
//! (issue 9): the Stripe CLI re-signs each event with its own `whsec_`
//! (added as one more signing secret) and forwards Stripe's request as it
//! was: the raw body at the account's API version, Stripe's headers, and
//! the Go client's own. ParityRail takes it like a direct delivery.

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    support::{Backend, sign},
    world::{Options, world},
};

crate::backend_tests!(what_the_stripe_cli_forwards_is_verified_stored_and_checked,);

/// The secret `stripe listen` prints (constant for a CLI login).
const CLI_SECRET: &str = "whsec_0b2c6e1f8a9d4e3b7c5a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c";

async fn what_the_stripe_cli_forwards_is_verified_stored_and_checked(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let project = w.t.project_of(&w.project).await;
    parityrail::usecase::connection::add_secrets(
        &w.t.app,
        &project,
        &[parityrail::config::Secret::new(CLI_SECRET)],
    )
    .await
    .unwrap();
    let (customer, _) = w.subscribe("u_cli", &w.pro);
    w.grant(&customer, "u_cli", "pro");
    let event: Value = w
        .sim
        .events()
        .into_iter()
        .rev()
        .find(|e| {
            e["type"] == "customer.subscription.created"
                && e["data"]["object"]["customer"] == customer
        })
        .expect("the simulator's event");
    // Stripe's pretty-printed body, byte for byte, at the account's version.
    let body = serde_json::to_vec_pretty(&event).unwrap();
    assert_eq!(event["api_version"], stripe_sim::API_VERSION);
    let forward_body = |body: Vec<u8>, signature: String| {
        w.t.http
            .post(w.t.url(&format!("/api/webhooks/stripe/{}", w.project)))
            // Stripe's headers, as the CLI passes them on…
            .header("accept", "*/*; q=0.5, application/xml")
            .header("cache-control", "no-cache")
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("stripe-signature", signature)
            // …and what Go's HTTP client adds.
            .header("accept-encoding", "gzip")
            .body(body)
            .send()
    };
    let forward = |signature: String| forward_body(body.clone(), signature);
    let resp = forward(sign(CLI_SECRET, &body)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["status"], "queued", "{answer}");
    // The CLI never retries, but a second forward (a re-run `stripe events
    // resend`) is a duplicate, not a second event.
    let again: Value = forward(sign(CLI_SECRET, &body))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["status"], "duplicate", "{again}");
    // Signed with a secret the project does not hold: refused.
    let refused = forward(sign("whsec_not_this_projects_secret_000", &body))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let run = w.verdict(&customer).await;
    assert_eq!(
        run.event_id.as_deref(),
        event["id"].as_str(),
        "the check judges the forwarded event"
    );
    assert_eq!(run.status, parityrail::domain::RunStatus::Passed, "{run:?}");
    // The matched secret is the CLI's: its "last matched" is set.
    let secrets = w.t.store().webhook_secrets(&w.project).await.unwrap();
    let cli = secrets
        .iter()
        .find(|s| s.last4 == CLI_SECRET[CLI_SECRET.len() - 4..])
        .expect("the CLI's secret");
    assert!(cli.last_matched_at.is_some(), "{secrets:?}");

    // An account pinned to an older API version: the CLI forwards the event
    // as that version shapes it; it is stored, processed and checked.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stripe/events-pre-basil/customer.subscription.updated.json"
    );
    let mut older: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    older["id"] = "evt_cli_older_account_version_01".into();
    older["data"]["object"]["customer"] = customer.clone().into();
    assert_ne!(older["api_version"], stripe_sim::API_VERSION);
    let older_body = serde_json::to_vec_pretty(&older).unwrap();
    let resp = forward_body(older_body.clone(), sign(CLI_SECRET, &older_body))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    w.t.drain_all().await;
    let stored =
        w.t.events(&w.project)
            .await
            .into_iter()
            .find(|e| e.event_id == "evt_cli_older_account_version_01")
            .expect("stored");
    assert_eq!(
        stored.status,
        parityrail::domain::EventStatus::Processed,
        "{stored:?}"
    );
    let run = w.verdict(&customer).await;
    assert_eq!(run.status, parityrail::domain::RunStatus::Passed, "{run:?}");
    w.t.stop().await;
}
