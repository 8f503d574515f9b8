//! The event log as ParityRail reads it to find missed deliveries:
//! `/v1/events` with `created` ranges and cursor pagination, newest first;
//! and `/v1/webhook_endpoints` listed a page at a time.

use std::collections::HashSet;

use serde_json::Value;

use crate::{catalogue, env};

const T0: i64 = 1_767_225_600;

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn events_page_newest_first_within_a_created_range() {
    let env = env().await;
    env.sim.set_clock(T0);
    let (_, price) = catalogue(&env.sim);
    // Thirty customers a minute apart, each emitting its events.
    for i in 0..30 {
        let customer = env.sim.create_customer(&format!("c{i}@example.com"), &[]);
        env.sim
            .create_subscription(&customer, &[&price], "active", &[]);
        env.sim.advance_clock(60);
    }
    let all = env.sim.events();
    let window: Vec<&Value> = all
        .iter()
        .filter(|e| {
            let t = e["created"].as_i64().unwrap();
            (T0 + 600..T0 + 1200).contains(&t)
        })
        .collect();
    assert!(window.len() > 10, "{} events in the window", window.len());

    // Pages of 4 across the window: each once, newest first, all inside.
    let range = format!("created[gte]={}&created[lt]={}", T0 + 600, T0 + 1200);
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let after = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&starting_after={c}"));
        let page = env.get(&format!("/v1/events?limit=4&{range}{after}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let data = page.body["data"].as_array().unwrap();
        for event in data {
            let t = event["created"].as_i64().unwrap();
            assert!((T0 + 600..T0 + 1200).contains(&t), "{t} outside the range");
        }
        seen.extend(ids(&page.body));
        pages += 1;
        if page.body["has_more"] != true {
            break;
        }
        cursor = seen.last().cloned();
    }
    assert_eq!(seen.len(), window.len());
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        seen.len(),
        "no repeats"
    );
    assert_eq!(pages, window.len().div_ceil(4));
    let created: Vec<i64> = seen
        .iter()
        .map(|id| env.sim.event(id).unwrap()["created"].as_i64().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // An exact second, and a bad bound.
    let exact = env
        .get(&format!("/v1/events?limit=100&created={}", T0 + 600))
        .await;
    assert!(
        ids(&exact.body)
            .iter()
            .all(|id| { env.sim.event(id).unwrap()["created"].as_i64() == Some(T0 + 600) })
    );
    let bad = env.get("/v1/events?created[gt]=soon").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["param"], "created[gt]");
}

#[tokio::test]
async fn webhook_endpoints_list_a_page_at_a_time() {
    let env = env().await;
    let made: Vec<String> = (0..5)
        .map(|i| {
            env.sim
                .add_webhook_endpoint(&format!("https://app.example.com/hook/{i}"), "whsec_x")
        })
        .collect();
    let first = env.get("/v1/webhook_endpoints?limit=2").await;
    assert_eq!(
        ids(&first.body),
        [made[4].clone(), made[3].clone()],
        "newest first"
    );
    assert_eq!(first.body["has_more"], true);
    let next = env
        .get(&format!(
            "/v1/webhook_endpoints?limit=2&starting_after={}",
            made[3]
        ))
        .await;
    assert_eq!(ids(&next.body), [made[2].clone(), made[1].clone()]);
    let last = env
        .get(&format!(
            "/v1/webhook_endpoints?limit=2&starting_after={}",
            made[1]
        ))
        .await;
    assert_eq!(ids(&last.body), [made[0].clone()]);
    assert_eq!(last.body["has_more"], false);
    let back = env
        .get(&format!(
            "/v1/webhook_endpoints?limit=2&ending_before={}",
            made[1]
        ))
        .await;
    assert_eq!(ids(&back.body), [made[3].clone(), made[2].clone()]);
    assert_eq!(back.body["has_more"], true);
    let unknown = env
        .get("/v1/webhook_endpoints?starting_after=we_nope")
        .await;
    assert_eq!(unknown.status, 400);
}
