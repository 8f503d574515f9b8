//! Retrieval endpoints, expansion, entitlements, events and the request log.

use std::time::{Duration, Instant};

use crate::{catalogue, env};

#[tokio::test]
async fn retrieves_subscriptions_with_expansion() {
    let env = env().await;
    let (product, price) = catalogue(&env.sim);
    let customer = env
        .sim
        .create_customer("a@example.com", &[("app_user_id", "user_42")]);
    let sub = env.sim.create_subscription(
        &customer,
        &[&price],
        "active",
        &[("app_user_id", "user_42")],
    );

    let plain = env.get(&format!("/v1/subscriptions/{sub}")).await;
    assert_eq!(plain.status, 200);
    assert!(
        plain.headers["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_eq!(plain.body, env.sim.subscription_json(&sub));
    assert_eq!(
        plain.body["items"]["data"][0]["price"]["product"],
        product.as_str()
    );

    let expanded = env
        .get(&format!(
            "/v1/subscriptions/{sub}?expand[]=items.data.price.product&expand[]=latest_invoice"
        ))
        .await;
    let product_json = &expanded.body["items"]["data"][0]["price"]["product"];
    assert_eq!(product_json["object"], "product");
    assert_eq!(product_json["id"], product.as_str());
    assert_eq!(product_json["name"], "Pro");
    assert_eq!(expanded.body["latest_invoice"]["object"], "invoice");

    let listed = env
        .get("/v1/subscriptions?expand%5B%5D=data.items.data.price.product")
        .await;
    assert_eq!(
        listed.body["data"][0]["items"]["data"][0]["price"]["product"]["object"],
        "product"
    );

    let invoice_id = plain.body["latest_invoice"].as_str().unwrap();
    let invoice = env.get(&format!("/v1/invoices/{invoice_id}")).await;
    assert_eq!(
        invoice.body["parent"]["subscription_details"]["subscription"],
        sub.as_str()
    );
}

#[tokio::test]
async fn missing_objects_are_404_resource_missing() {
    let env = env().await;
    let missing = env.get("/v1/subscriptions/sub_x").await;
    assert_eq!(missing.status, 404);
    assert!(missing.headers.contains_key("request-id"));
    let error = &missing.body["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "resource_missing");
    assert_eq!(error["message"], "No such subscription: 'sub_x'");
    assert_eq!(error["param"], "id");
    assert_eq!(env.get("/v1/events/evt_x").await.status, 404);
    assert_eq!(env.get("/v1/customers/cus_x").await.status, 404);
    let route = env.get("/v1/charges").await;
    assert_eq!(route.status, 404);
    assert!(
        route.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unrecognized request URL")
    );
}

#[tokio::test]
async fn customers_and_deleted_customers() {
    let env = env().await;
    let first = env
        .sim
        .create_customer("a@example.com", &[("app_user_id", "u1")]);
    let second = env.sim.create_customer("b@example.com", &[]);
    let got = env.get(&format!("/v1/customers/{first}")).await;
    assert_eq!(got.body["email"], "a@example.com");
    assert_eq!(got.body["metadata"]["app_user_id"], "u1");
    assert_eq!(got.body["object"], "customer");
    env.sim.delete_customer(&second);
    let deleted = env.get(&format!("/v1/customers/{second}")).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.body,
        serde_json::json!({"id": second, "object": "customer", "deleted": true})
    );
    let list = env.get("/v1/customers").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    let by_email = env.get("/v1/customers?email=b%40example.com").await;
    assert!(by_email.body["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn active_entitlements_list() {
    let env = env().await;
    let (product, price) = catalogue(&env.sim);
    env.sim
        .set_product_features(&product, &["a-feature", "b-feature", "c-feature"]);
    let customer = env.sim.create_customer("a@example.com", &[]);
    env.sim
        .create_subscription(&customer, &[&price], "active", &[]);

    let missing = env.get("/v1/entitlements/active_entitlements").await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["error"]["param"], "customer");

    let first = env
        .get(&format!(
            "/v1/entitlements/active_entitlements?customer={customer}&limit=2"
        ))
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["url"], "/v1/entitlements/active_entitlements");
    assert_eq!(first.body["has_more"], true);
    let items = first.body["data"].as_array().unwrap();
    assert_eq!(items[0]["object"], "entitlements.active_entitlement");
    assert_eq!(items[0]["lookup_key"], "a-feature");
    assert_eq!(items[0]["livemode"], false);
    assert!(items[0]["id"].as_str().unwrap().starts_with("ent_test_"));
    assert!(
        items[0]["feature"]
            .as_str()
            .unwrap()
            .starts_with("feat_test_")
    );
    let last = items[1]["id"].as_str().unwrap();
    let rest = env
        .get(&format!(
            "/v1/entitlements/active_entitlements?customer={customer}&limit=2&starting_after={last}"
        ))
        .await;
    assert_eq!(rest.body["data"][0]["lookup_key"], "c-feature");
    assert_eq!(rest.body["has_more"], false);
}

#[tokio::test]
async fn events_list_and_retrieve() {
    let env = env().await;
    let (_, price) = catalogue(&env.sim);
    let customer = env.sim.create_customer("a@example.com", &[]);
    let sub = env
        .sim
        .create_subscription(&customer, &[&price], "active", &[]);
    env.sim.cancel_subscription(&sub);

    let all = env.get("/v1/events?limit=100").await;
    let types: Vec<&str> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), env.sim.events().len());
    assert_eq!(types[0], "entitlements.active_entitlement_summary.updated");

    let subs = env.get("/v1/events?type=customer.subscription.*").await;
    let types: Vec<&str> = subs.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "customer.subscription.deleted",
            "customer.subscription.created"
        ]
    );

    let id = subs.body["data"][0]["id"].as_str().unwrap();
    let one = env.get(&format!("/v1/events/{id}")).await;
    assert_eq!(one.body, env.sim.event(id).unwrap());
    assert_eq!(one.body["data"]["object"]["status"], "canceled");
}

#[tokio::test]
async fn request_log_latency_and_account() {
    let env = env().await;
    let account = env.get("/v1/account").await;
    assert_eq!(account.body["id"], env.sim.account_id().as_str());
    assert_eq!(account.body["object"], "account");

    env.sim.reset_request_log();
    env.sim.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    env.get("/v1/subscriptions?status=all&limit=5").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    env.sim.set_latency(Duration::ZERO);
    env.get("/v1/subscriptions/sub_missing").await;

    let log = env.sim.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path, "/v1/subscriptions");
    assert_eq!(log[0].query, "status=all&limit=5");
    assert_eq!(log[0].status, 200);
    assert_eq!(log[1].status, 404);
    assert_eq!(env.sim.request_count(), 3);
}
