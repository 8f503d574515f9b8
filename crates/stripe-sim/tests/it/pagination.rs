//! List semantics: order, cursors, limits and status filters.

use std::collections::HashSet;

use crate::{catalogue, env};

const T0: i64 = 1_767_225_600;

#[tokio::test]
async fn status_all_walks_250_subscriptions_once() {
    let env = env().await;
    env.sim.set_clock(T0);
    let (_, price) = catalogue(&env.sim);
    let customer = env.sim.create_customer("a@example.com", &[]);
    let statuses = [
        "active",
        "trialing",
        "past_due",
        "canceled",
        "incomplete_expired",
    ];
    let mut created = Vec::new();
    for i in 0..250 {
        // Several subscriptions share a second, so the id tie-break matters.
        if i % 7 == 0 {
            env.sim.advance_clock(1);
        }
        created.push(
            env.sim
                .create_subscription(&customer, &[&price], statuses[i % 5], &[]),
        );
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let after = if cursor.is_empty() {
            String::new()
        } else {
            format!("&starting_after={cursor}")
        };
        let page = env
            .get(&format!("/v1/subscriptions?status=all&limit=100{after}"))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.body["object"], "list");
        assert_eq!(page.body["url"], "/v1/subscriptions");
        let data = page.body["data"].as_array().unwrap();
        pages += 1;
        for sub in data {
            seen.push(sub["id"].as_str().unwrap().to_owned());
        }
        if !page.body["has_more"].as_bool().unwrap() {
            break;
        }
        cursor = seen.last().unwrap().clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 250);
    // Newest first.
    let mut expected = created.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    // ending_before walks back to the newer page.
    let back = env
        .get(&format!(
            "/v1/subscriptions?status=all&limit=100&ending_before={}",
            seen[100]
        ))
        .await;
    let back_ids: Vec<&str> = back.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        back_ids,
        seen[..100].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(back.body["has_more"], false);

    // The customer filter pages the same way.
    let own = env
        .get(&format!(
            "/v1/subscriptions?customer={customer}&status=all&limit=100&starting_after={}",
            seen[199]
        ))
        .await;
    assert_eq!(own.body["data"].as_array().unwrap().len(), 50);
    assert_eq!(own.body["has_more"], false);
}

#[tokio::test]
async fn status_filters_follow_stripe() {
    let env = env().await;
    let (_, price) = catalogue(&env.sim);
    let customer = env.sim.create_customer("a@example.com", &[]);
    for status in [
        "active",
        "trialing",
        "past_due",
        "canceled",
        "incomplete_expired",
        "unpaid",
    ] {
        env.sim
            .create_subscription(&customer, &[&price], status, &[]);
    }
    let statuses = |body: &serde_json::Value| {
        let mut s: Vec<String> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["status"].as_str().unwrap().to_owned())
            .collect();
        s.sort();
        s
    };
    let default = env.get("/v1/subscriptions").await;
    assert_eq!(
        statuses(&default.body),
        [
            "active",
            "incomplete_expired",
            "past_due",
            "trialing",
            "unpaid"
        ]
    );
    let ended = env.get("/v1/subscriptions?status=ended").await;
    assert_eq!(statuses(&ended.body), ["canceled", "incomplete_expired"]);
    let past_due = env
        .get(&format!(
            "/v1/subscriptions?status=past_due&customer={customer}"
        ))
        .await;
    assert_eq!(statuses(&past_due.body), ["past_due"]);
    assert_eq!(
        env.get("/v1/subscriptions?status=all").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    let limited = env.get("/v1/subscriptions?status=all&limit=2").await;
    assert_eq!(limited.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(limited.body["has_more"], true);

    let bad = env.get("/v1/subscriptions?status=nope").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["param"], "status");
}

#[tokio::test]
async fn bad_list_parameters_get_stripe_errors() {
    let env = env().await;
    for limit in ["0", "101", "ten"] {
        let answer = env.get(&format!("/v1/subscriptions?limit={limit}")).await;
        assert_eq!(answer.status, 400, "limit={limit}");
        assert_eq!(answer.body["error"]["type"], "invalid_request_error");
        assert_eq!(answer.body["error"]["param"], "limit");
    }
    let unknown = env.get("/v1/subscriptions?starting_after=sub_1nope").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["error"]["code"], "resource_missing");
    assert_eq!(unknown.body["error"]["param"], "starting_after");
    assert_eq!(
        unknown.body["error"]["message"],
        "No such subscription: 'sub_1nope'"
    );
    let no_customer = env.get("/v1/subscriptions?customer=cus_nope").await;
    assert_eq!(no_customer.status, 400);
    assert_eq!(no_customer.body["error"]["param"], "customer");
    // Unknown parameters are ignored.
    assert_eq!(
        env.get("/v1/subscriptions?price=x&foo=bar").await.status,
        200
    );
}

#[tokio::test]
async fn created_ranges_partition_the_list() {
    let env = env().await;
    env.sim.set_clock(T0);
    let (_, price) = catalogue(&env.sim);
    let customer = env.sim.create_customer("r@example.com", &[]);
    for _ in 0..30 {
        env.sim.advance_clock(10);
        env.sim
            .create_subscription(&customer, &[&price], "active", &[]);
    }
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = env.get("/v1/subscriptions?status=all&limit=100").await;
    let mid = T0 + 150;
    let newer = env
        .get(&format!(
            "/v1/subscriptions?status=all&limit=100&created[gte]={mid}"
        ))
        .await;
    let older = env
        .get(&format!(
            "/v1/subscriptions?status=all&limit=100&created[lt]={mid}"
        ))
        .await;
    let (newer, older) = (ids(&newer.body), ids(&older.body));
    assert_eq!(newer.len(), 16);
    assert_eq!(older.len(), 14);
    let joined: Vec<String> = newer.into_iter().chain(older).collect();
    assert_eq!(
        joined,
        ids(&all.body),
        "the two ranges are the whole list, in order"
    );
    // Cursors work inside a range.
    let first = env
        .get(&format!(
            "/v1/subscriptions?status=all&limit=5&created[lt]={mid}"
        ))
        .await;
    let last = ids(&first.body).pop().unwrap();
    let next = env
        .get(&format!(
            "/v1/subscriptions?status=all&limit=100&created[lt]={mid}&starting_after={last}"
        ))
        .await;
    assert_eq!(ids(&next.body).len(), 9);
    assert_eq!(next.body["has_more"], false);
}
