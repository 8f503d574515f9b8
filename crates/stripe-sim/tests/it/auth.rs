//! API keys: missing, unknown, revoked, restricted and other-mode keys.

use crate::{KEY, catalogue, env, http_client};
use stripe_sim::StripeSim;

#[tokio::test]
async fn unknown_and_missing_keys_get_401_without_the_key() {
    let env = env().await;
    let secret = "sk_test_51SecretThatMustNotLeak9876wxyz";
    let unknown = env.get_with("/v1/subscriptions", Some(secret)).await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.headers.contains_key("request-id"));
    let message = unknown.body["error"]["message"].as_str().unwrap();
    assert_eq!(unknown.body["error"]["type"], "invalid_request_error");
    assert_eq!(message, "Invalid API Key provided: sk_test_****wxyz");
    assert!(!unknown.body.to_string().contains("SecretThatMustNotLeak"));

    let missing = env.get_with("/v1/subscriptions", None).await;
    assert_eq!(missing.status, 401);
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not provide an API key")
    );
}

#[tokio::test]
async fn revoked_keys_get_401_expired() {
    let env = env().await;
    assert_eq!(env.get("/v1/account").await.status, 200);
    env.sim.revoke_api_key(KEY);
    let revoked = env.get("/v1/account").await;
    assert_eq!(revoked.status, 401);
    let message = revoked.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Expired API Key provided: sk_test_****abcd"),
        "{message}"
    );
    assert!(!revoked.body.to_string().contains(KEY));
}

#[tokio::test]
async fn basic_auth_with_the_key_as_user_name() {
    let env = env().await;
    let answer = env
        .http
        .get(format!("{}/v1/account", env.handle.base_url()))
        .basic_auth(KEY, None::<&str>)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn restricted_key_without_account_access() {
    let env = env().await;
    let restricted = "rk_test_51RestrictedKey00000000000000rk12";
    env.sim
        .add_restricted_key_without_account_access(restricted);
    let account = env.get_with("/v1/account", Some(restricted)).await;
    assert_eq!(account.status, 403);
    let message = account.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "The provided key 'rk_test_****rk12' does not have the required permissions"
        )
    );
    assert!(!message.contains(restricted));
    assert_eq!(
        env.get_with("/v1/subscriptions", Some(restricted))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn other_mode_keys_see_nothing() {
    let env = env().await;
    let (_, price) = catalogue(&env.sim);
    let customer = env.sim.create_customer("a@example.com", &[]);
    let sub = env
        .sim
        .create_subscription(&customer, &[&price], "active", &[]);
    let live = "sk_live_51LiveKey000000000000000000000live";
    env.sim.add_api_key(live);
    let missing = env
        .get_with(&format!("/v1/subscriptions/{sub}"), Some(live))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "resource_missing");
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exists in test mode")
    );
    let list = env
        .get_with("/v1/subscriptions?status=all", Some(live))
        .await;
    assert_eq!(list.status, 200);
    assert!(list.body["data"].as_array().unwrap().is_empty());

    // And the other way round: a live sim ignores test keys.
    let live_sim = StripeSim::new_live();
    live_sim.add_api_key(live);
    live_sim.add_api_key(KEY);
    let handle = live_sim.start().await;
    let cus = live_sim.create_customer("b@example.com", &[]);
    let http = http_client();
    let url = format!("{}/v1/customers/{cus}", handle.base_url());
    let as_live = http.get(&url).bearer_auth(live).send().await.unwrap();
    assert_eq!(as_live.status(), 200);
    let body: serde_json::Value = as_live.json().await.unwrap();
    assert_eq!(body["livemode"], true);
    let as_test = http.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(as_test.status(), 404);
}
