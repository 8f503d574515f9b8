//! HTTP tests against a real simulator on 127.0.0.1:0.

mod api;
mod auth;
mod bin;
mod delivery;
mod event_log;
mod limits;
mod pagination;
mod retries;
mod scale;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use stripe_sim::{SimHandle, StripeSim};

pub const KEY: &str = "sk_test_51TestKeyForTheSimulator0000abcd";

/// A running simulator plus an HTTP client.
pub struct Env {
    pub sim: StripeSim,
    pub handle: SimHandle,
    pub http: reqwest::Client,
}

pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("client")
}

pub async fn env() -> Env {
    let sim = StripeSim::new();
    sim.add_api_key(KEY);
    let handle = sim.start().await;
    Env {
        sim,
        handle,
        http: http_client(),
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Env {
    pub async fn get_with(&self, path: &str, key: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.handle.base_url()));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.expect("JSON body");
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.get_with(path, Some(KEY)).await
    }
}

/// A product with one price whose subscriptions grant `pro-features`.
pub fn catalogue(sim: &StripeSim) -> (String, String) {
    let product = sim.create_product("Pro");
    let price = sim.create_price(&product, Some("pro_monthly"), 2000);
    sim.set_product_features(&product, &["pro-features"]);
    (product, price)
}
