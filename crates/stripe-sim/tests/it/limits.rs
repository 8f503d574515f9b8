//! Rate limits and injected faults.

use std::time::Duration;

use stripe_sim::Fault;

use crate::{KEY, env};

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let env = env().await;
    env.sim.set_rate_limit(Some(5));
    let mut limited = None;
    for _ in 0..20 {
        let answer = env.get("/v1/subscriptions").await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.status, 200);
    }
    let limited = limited.expect("a 429 within 20 quick requests at 5/s");
    let error = &limited.body["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "rate_limit");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Request rate limit exceeded")
    );
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert!(limited.headers.contains_key("request-id"));

    env.sim.set_rate_limit(None);
    assert_eq!(env.get("/v1/subscriptions").await.status, 200);
}

#[tokio::test]
async fn injected_faults_answer_like_stripe_then_stop() {
    let env = env().await;
    env.sim.inject_faults(Fault::ServerError, 2);
    env.sim.inject_faults(Fault::LockTimeout, 1);
    env.sim.inject_faults(Fault::RateLimited, 1);
    env.sim.inject_faults(Fault::Unauthorized, 1);

    for _ in 0..2 {
        let answer = env.get("/v1/account").await;
        assert_eq!(answer.status, 500);
        assert_eq!(answer.body["error"]["type"], "api_error");
    }
    let lock = env.get("/v1/account").await;
    assert_eq!(lock.status, 429);
    assert_eq!(lock.body["error"]["code"], "lock_timeout");
    assert_eq!(
        lock.body["error"]["doc_url"],
        "https://stripe.com/docs/error-codes/lock-timeout"
    );
    assert!(
        lock.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("This object cannot be accessed right now")
    );
    let rate = env.get("/v1/account").await;
    assert_eq!(rate.status, 429);
    assert_eq!(rate.body["error"]["code"], "rate_limit");
    assert!(rate.headers.contains_key("retry-after"));
    let unauthorized = env.get("/v1/account").await;
    assert_eq!(unauthorized.status, 401);
    assert!(!unauthorized.body.to_string().contains(KEY));

    assert_eq!(env.get("/v1/account").await.status, 200);
    assert_eq!(env.sim.request_count(), 6);
    let statuses: Vec<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 429, 429, 401, 200]);
}

#[tokio::test]
async fn timeout_fault_stalls_until_shutdown() {
    let env = env().await;
    env.sim.inject_faults(Fault::Timeout, 1);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let sent = client
        .get(format!("{}/v1/account", env.handle.base_url()))
        .bearer_auth(KEY)
        .send()
        .await;
    assert!(sent.unwrap_err().is_timeout());
    // Shutting down ends the stalled request instead of waiting 30 s.
    tokio::time::timeout(Duration::from_secs(5), env.handle.shutdown())
        .await
        .expect("shutdown within 5 s");
}

#[tokio::test]
async fn the_rate_limit_is_per_api_key() {
    let env = env().await;
    let other = "sk_test_51AnotherKeyOfTheSameAccount000000wxyz";
    env.sim.add_api_key(other);
    env.sim.set_rate_limit(Some(3));
    let mut limited = false;
    for _ in 0..20 {
        if env.get("/v1/customers").await.status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the first key is limited");
    // The other key has its own bucket.
    assert_eq!(env.get_with("/v1/customers", Some(other)).await.status, 200);
}
