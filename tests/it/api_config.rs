//! JSON API parity with the pages (issue 8): the Stripe connection, the
//! probe, the plan map, members, tokens and scans over `/api/v1`, with bad
//! input refused and nothing changed; runs, events and incidents paged by
//! cursor without overlap; and the OpenAPI document, served and committed.

use std::collections::BTreeSet;

use parityrail::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    support::{Backend, TEST_KEY},
    world::{Options, PROBE_SECRET, World, world},
};

crate::backend_tests!(
    stripe_connection_and_probe_over_the_api_and_bad_input_changes_nothing,
    plan_map_members_tokens_and_scans_over_the_api,
    runs_events_and_incidents_page_by_cursor_without_overlap,
);

struct Api<'a> {
    w: &'a World,
    admin: String,
    viewer: String,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

impl<'a> Api<'a> {
    async fn new(w: &'a World) -> Self {
        Self {
            w,
            admin: w.t.token(&w.project, Role::Admin).await,
            viewer: w.t.token(&w.project, Role::Viewer).await,
        }
    }

    async fn call(&self, method: Method, rest: &str, token: &str, body: Option<Value>) -> Answer {
        let url = self
            .w
            .t
            .url(&format!("/api/v1/projects/{}{rest}", self.w.project));
        let mut req = self.w.t.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    async fn get(&self, rest: &str) -> Answer {
        self.call(Method::GET, rest, &self.viewer, None).await
    }
}

async fn stripe_connection_and_probe_over_the_api_and_bad_input_changes_nothing(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let api = Api::new(&w).await;
    let card = api.get("/stripe").await;
    assert_eq!(card.status, 200, "{:?}", card.body);
    assert_eq!(card.body["api_key_last4"], &TEST_KEY[TEST_KEY.len() - 4..]);
    assert_eq!(card.body["mode"], "test");
    assert_eq!(card.body["webhook_secrets"].as_array().unwrap().len(), 1);
    let bad = [
        (json!({"api_key": "pk_test_123"}), "invalid_request"),
        (json!({"api_key": ""}), "invalid_request"),
        (json!({"api_key": "sk_live_abcdefgh"}), "invalid_request"),
        (
            json!({"api_key": TEST_KEY, "webhook_secret": "nope"}),
            "invalid_request",
        ),
        (
            json!({"api_key": "sk_test_unknown_to_stripe"}),
            "stripe_rejected",
        ),
        (json!(["sk_test_x"]), "invalid_request"),
        (json!({"key": TEST_KEY}), "invalid_request"),
    ];
    for (body, code) in bad {
        let a = api
            .call(Method::PUT, "/stripe", &api.admin, Some(body.clone()))
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, code),
            "{body}: {:?}",
            a.body
        );
        let message = a.body["error"]["message"].as_str().unwrap();
        assert!(!message.contains("sk_test_unknown_to_stripe"), "{message}");
    }
    let a = api
        .call(
            Method::PUT,
            "/stripe",
            &api.viewer,
            Some(json!({"api_key": TEST_KEY})),
        )
        .await;
    assert_eq!((a.status, a.code()), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(api.get("/stripe").await.body, card.body, "nothing changed");
    // Reconnect with a new signing secret: the card stays, a secret is added.
    let a = api
        .call(
            Method::PUT,
            "/stripe",
            &api.admin,
            Some(json!({"api_key": TEST_KEY, "webhook_secret": "whsec_rolled_secret_9876"})),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let secrets = a.body["webhook_secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert!(secrets.iter().any(|s| s["last4"] == "9876"));
    assert!(
        !a.body.to_string().contains("whsec_rolled"),
        "only the last 4"
    );

    // The probe: shown with the secret's last 4; saved only once the app answered.
    let probe = api.get("/probe").await;
    assert_eq!(probe.status, 200);
    let url = probe.body["url"].as_str().unwrap().to_string();
    assert_eq!(
        probe.body["secret_last4"],
        &PROBE_SECRET[PROBE_SECRET.len() - 4..]
    );
    let bad = [
        json!({"url": url, "secret": "short"}),
        json!({"url": "ftp://example.com/probe", "secret": PROBE_SECRET}),
        json!({"url": "not a url", "secret": PROBE_SECRET}),
        json!({"url": "http://127.0.0.1:9/probe", "secret": PROBE_SECRET}),
        json!({"url": url, "secret": "the_wrong_secret_0123456789"}),
        json!({"url": url, "secret": PROBE_SECRET, "customer": "bob"}),
        json!({"secret": PROBE_SECRET}),
    ];
    for body in bad {
        let a = api
            .call(Method::PUT, "/probe", &api.admin, Some(body.clone()))
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body}"
        );
        assert!(!a.body.to_string().contains(PROBE_SECRET));
    }
    assert_eq!(api.get("/probe").await.body, probe.body, "nothing changed");
    let a = api
        .call(
            Method::PUT,
            "/probe",
            &api.viewer,
            Some(json!({"url": url, "secret": PROBE_SECRET})),
        )
        .await;
    assert_eq!(a.status, 403);
    let a = api
        .call(
            Method::PUT,
            "/probe",
            &api.admin,
            Some(json!({"url": url, "secret": PROBE_SECRET})),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["probe"]["url"], url.as_str());
    assert!(a.body["test"]["http_status"].as_u64().is_some());
    assert_eq!(
        a.body["test"]["observed"]["found"], false,
        "a made-up customer"
    );
    // "Test probe" is for viewers too; it changes nothing.
    let (customer, _) = w.subscribe("u_probe", &w.pro);
    w.grant(&customer, "u_probe", "pro");
    w.deliver(&customer).await;
    w.verdict(&customer).await;
    let a = api
        .call(
            Method::POST,
            "/probe/test",
            &api.viewer,
            Some(json!({"customer": customer})),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["observed"]["plan"], "pro", "{}", a.body);
    assert!(a.body["latency_ms"].as_u64().is_some());
    let a = api
        .call(
            Method::POST,
            "/probe/test",
            &api.viewer,
            Some(json!({"customer": "x"})),
        )
        .await;
    assert_eq!(a.status, 400);
    w.t.stop().await;
}

async fn plan_map_members_tokens_and_scans_over_the_api(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let api = Api::new(&w).await;
    let map = api.get("/plans").await;
    assert_eq!(map.status, 200);
    assert_eq!(map.body["rules"].as_array().unwrap().len(), 2);
    let rule = json!({"selector": {"kind": "lookup_key", "value": "team_monthly"},
        "plan": "team", "rank": 3, "features": ["export", "audit"], "limits": {"seats": 25}});
    let bad = [
        json!({"selector": {"kind": "coupon", "value": "x"}, "plan": "team"}),
        json!({"selector": {"kind": "price", "value": " "}, "plan": "team"}),
        json!({"selector": {"kind": "price", "value": "price_x"}, "plan": ""}),
        json!({"selector": {"kind": "price", "value": "price_x"}, "plan": "team", "rank": "high"}),
        json!({"selector": {"kind": "price", "value": "price_x"}, "plan": "team", "limits": {"seats": "many"}}),
        json!({"plan": "team"}),
    ];
    for body in bad {
        let a = api
            .call(Method::PUT, "/plans", &api.admin, Some(body.clone()))
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body}"
        );
    }
    let a = api
        .call(Method::PUT, "/plans", &api.viewer, Some(rule.clone()))
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(api.get("/plans").await.body, map.body, "nothing changed");
    let a = api
        .call(Method::PUT, "/plans", &api.admin, Some(rule.clone()))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["limits"]["seats"], 25);
    let mut edited = rule.clone();
    edited["plan"] = json!("team_plus");
    let a = api
        .call(Method::PUT, "/plans", &api.admin, Some(edited))
        .await;
    assert_eq!(a.status, 200);
    let rules = api.get("/plans").await.body["rules"].clone();
    assert_eq!(
        rules.as_array().unwrap().len(),
        3,
        "the same selector replaces"
    );
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["plan"] == "team_plus")
    );
    let remove = "/plans?kind=lookup_key&value=team_monthly";
    assert_eq!(
        api.call(Method::DELETE, remove, &api.viewer, None)
            .await
            .status,
        403
    );
    assert_eq!(
        api.call(Method::DELETE, remove, &api.admin, None)
            .await
            .status,
        204
    );
    assert_eq!(
        api.call(Method::DELETE, remove, &api.admin, None)
            .await
            .status,
        404
    );
    let a = api
        .call(
            Method::DELETE,
            "/plans?kind=coupon&value=x",
            &api.admin,
            None,
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(api.get("/plans").await.body, map.body);

    // Members: invite (a generated password shown once), roles, the last admin.
    let members = |a: &Answer| a.body.as_array().map_or(0, Vec::len);
    let before = api.call(Method::GET, "/members", &api.admin, None).await;
    assert_eq!(before.status, 200);
    assert_eq!(
        api.call(Method::GET, "/members", &api.viewer, None)
            .await
            .status,
        403
    );
    let a = api
        .call(
            Method::POST,
            "/members",
            &api.admin,
            Some(json!({"email": "Ada@Example.com", "role": "admin"})),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["member"]["email"], "ada@example.com");
    assert_eq!(a.body["password"].as_str().unwrap().len(), 24);
    let ada = a.body["member"]["user_id"].as_str().unwrap().to_string();
    for (body, status) in [
        (
            json!({"email": "ada@example.com", "role": "viewer"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"email": "not-an-email", "role": "viewer"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": "bo@example.com", "role": "viewer", "password": "short"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": "bo@example.com", "role": "owner"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let a = api
            .call(Method::POST, "/members", &api.admin, Some(body.clone()))
            .await;
        assert_eq!(a.status, status, "{body}: {:?}", a.body);
    }
    let after = api.call(Method::GET, "/members", &api.admin, None).await;
    assert_eq!(
        members(&after),
        members(&before) + 1,
        "one user was created"
    );
    let role = |r: &str| Some(json!({ "role": r }));
    let path = format!("/members/{ada}");
    let a = api
        .call(Method::PUT, &path, &api.admin, role("viewer"))
        .await;
    assert_eq!((a.status, a.code()), (StatusCode::CONFLICT, "last_admin"));
    let a = api.call(Method::PUT, &path, &api.admin, role("boss")).await;
    assert_eq!(a.status, 400);
    let a = api
        .call(
            Method::PUT,
            "/members/usr_nobody",
            &api.admin,
            role("viewer"),
        )
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(
        api.call(Method::PUT, &path, &api.viewer, role("admin"))
            .await
            .status,
        403
    );

    // Tokens: shown once, work, and stop working when revoked.
    let listed = api.call(Method::GET, "/tokens", &api.admin, None).await;
    let count = listed.body.as_array().unwrap().len();
    assert!(
        !listed.body.to_string().contains(&api.admin),
        "never the token"
    );
    let a = api
        .call(Method::POST, "/tokens", &api.admin, role("superuser"))
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        api.call(Method::POST, "/tokens", &api.viewer, role("admin"))
            .await
            .status,
        403
    );
    assert_eq!(
        api.call(Method::GET, "/tokens", &api.admin, None)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        count,
        "no token was created"
    );
    let a = api
        .call(Method::POST, "/tokens", &api.admin, role("viewer"))
        .await;
    assert_eq!(a.status, 201);
    let new = a.body["token"].as_str().unwrap().to_string();
    let id = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(api.call(Method::GET, "/runs", &new, None).await.status, 200);
    let revoke = format!("/tokens/{id}");
    assert_eq!(
        api.call(Method::DELETE, &revoke, &api.admin, None)
            .await
            .status,
        204
    );
    assert_eq!(api.call(Method::GET, "/runs", &new, None).await.status, 401);
    assert_eq!(
        api.call(Method::DELETE, "/tokens/tok_nope", &api.admin, None)
            .await
            .status,
        404
    );

    // Scans: "Scan now" (viewers may), then the scan with its summary.
    let a = api.call(Method::POST, "/scans", &api.viewer, None).await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    let scan = a.body["scan"]["id"].as_str().unwrap().to_string();
    let done = crate::support::eventually(std::time::Duration::from_secs(20), || async {
        let a = api.get(&format!("/scans/{scan}")).await;
        (a.body["status"] != "running").then_some(a.body)
    })
    .await;
    assert!(done["finished_at"].is_string(), "{done}");
    let list = api.get("/scans").await;
    assert_eq!(list.body[0]["id"], scan.as_str());
    assert_eq!(api.get("/scans?limit=0").await.status, 400);
    assert_eq!(api.get("/scans/scn_nope").await.status, 404);
    w.t.stop().await;
}

async fn runs_events_and_incidents_page_by_cursor_without_overlap(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let api = Api::new(&w).await;
    for i in 0..5 {
        let (customer, _) = w.subscribe(&format!("u_page{i}"), &w.pro);
        w.deliver(&customer).await;
        let a = api
            .call(
                Method::POST,
                "/checks",
                &api.viewer,
                Some(json!({ "customer": customer })),
            )
            .await;
        assert_eq!(a.status, 202);
        // A paid customer without access: a finished run and an incident.
        w.t.check_now(&w.project, &customer, parityrail::domain::Trigger::Manual)
            .await;
    }
    for (list, total) in [
        ("/runs", None),
        ("/events", None),
        ("/incidents", None::<usize>),
    ] {
        let all = api.get(&format!("{list}?limit=1000")).await.body["data"]
            .as_array()
            .unwrap()
            .len();
        assert!(all >= 2, "{list}: {all}");
        let _ = total;
        let mut seen = BTreeSet::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("{list}?limit=2&cursor={c}"),
                None => format!("{list}?limit=2"),
            };
            let a = api.get(&path).await;
            assert_eq!(a.status, 200, "{path}: {:?}", a.body);
            let rows = a.body["data"].as_array().unwrap();
            assert!(rows.len() <= 2);
            for row in rows {
                let id = row["id"].as_str().or(row["event_id"].as_str()).unwrap();
                assert!(seen.insert(id.to_string()), "{list}: {id} on two pages");
            }
            pages += 1;
            match a.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), all, "{list}: every row once");
        assert_eq!(pages, all.div_ceil(2), "{list}");
        for bad in [
            "cursor=garbage",
            "cursor=12.abc_x",
            "status=nonsense",
            "limit=0",
        ] {
            let a = api.get(&format!("{list}?{bad}")).await;
            assert_eq!(
                (a.status, a.code()),
                (StatusCode::BAD_REQUEST, "invalid_request"),
                "{list}?{bad}"
            );
        }
    }
    let unfulfilled = api.get("/incidents?kind=unfulfilled&status=open").await;
    assert!(!unfulfilled.body["data"].as_array().unwrap().is_empty());
    let failed = api.get("/runs?status=failed").await.body["data"].clone();
    assert!(
        failed
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "failed")
    );
    let event = api.get("/events?limit=1").await.body["data"][0].clone();
    let id = event["event_id"].as_str().unwrap();
    let detail = api.get(&format!("/events/{id}")).await;
    assert_eq!(detail.status, 200);
    assert_eq!(detail.body["payload"]["id"], id);
    assert_eq!(detail.body["type"], event["type"]);
    assert_eq!(api.get("/events/evt_nope").await.status, 404);
    w.t.stop().await;
}

/// The document served at `/api/v1/openapi.json` is the committed
/// `docs/openapi.json`: a route added without regenerating the copy fails
/// here (`cargo run -- openapi > docs/openapi.json`).
#[test]
fn the_committed_openapi_document_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = parityrail::web::api::openapi_json();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: run `cargo run -- openapi > docs/openapi.json`"
    );
    let doc: Value = serde_json::from_str(generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
