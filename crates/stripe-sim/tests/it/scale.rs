//! The scan benchmark's scale: a million subscriptions, pages stay cheap.
//! Ignored by default (slow in debug builds); run with
//! `cargo test -p stripe-sim --release -- --ignored scale`.

use std::time::{Duration, Instant};

use crate::{catalogue, env};

#[tokio::test]
#[ignore = "seeds a million subscriptions"]
async fn scale_million_subscriptions_page_in_constant_time() {
    let env = env().await;
    let (_, price) = catalogue(&env.sim);
    env.sim.set_emit_events(false);
    let started = Instant::now();
    for i in 0..1_000_000u32 {
        let user = format!("user_{i}");
        let customer = env
            .sim
            .create_customer("u@example.com", &[("app_user_id", &user)]);
        env.sim
            .create_subscription(&customer, &[&price], "active", &[("app_user_id", &user)]);
    }
    eprintln!("seeded 1M in {:?}", started.elapsed());
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status
            .lines()
            .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        {
            eprintln!("{line}");
        }
    }
    let first = env.get("/v1/subscriptions?status=all&limit=100").await;
    let cursor = first.body["data"][99]["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let mut cursor = cursor;
    for _ in 0..20 {
        let page = env
            .get(&format!(
                "/v1/subscriptions?status=all&limit=100&starting_after={cursor}"
            ))
            .await;
        cursor = page.body["data"][99]["id"].as_str().unwrap().to_owned();
    }
    let per_page = started.elapsed() / 20;
    eprintln!("{per_page:?} per page of 100");
    assert!(per_page < Duration::from_millis(500));
}
