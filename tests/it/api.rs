//! The JSON API `/api/v1` and API tokens: bearer auth and the role matrix
//! (refused requests change nothing), checks and runs with their evidence,
//! incident actions (rerun idempotent, reconcile signed), export, events and
//! replay; and the `token` / `incidents` CLI commands on the same database.

use std::{collections::BTreeSet, time::Duration};

use parityrail::{
    access::{PlanRule, Selector},
    domain::{IncidentKind, ProjectMode, Role, Trigger},
    ids::ProjectId,
    store::NewIncident,
};
use reqwest::{Method, StatusCode, header::HeaderMap};
use sample_app::SampleApp;
use serde_json::{Value, json};
use stripe_sim::StripeSim;

use crate::{
    process::{cli, database_url, stderr, stdout},
    support::{Backend, TEST_KEY, TestApp, TestOptions, eventually},
};

crate::backend_tests!(
    tokens_gate_every_route_and_refusals_change_nothing,
    viewer_reads_and_reruns_but_may_not_manage,
    check_over_the_api_runs_to_a_verdict_with_evidence,
    bad_check_requests_are_refused_and_create_nothing,
    incident_list_and_detail_match_the_cli_shape,
    acknowledge_and_resolve_follow_the_incident_lifecycle,
    rerun_is_idempotent_while_pending,
    reconcile_calls_the_app_hook_signed,
    export_is_an_attachment_with_every_proving_run,
    events_list_and_replay,
    token_cli_creates_lists_and_revokes,
    incident_cli_actions,
);

const PROBE_SECRET: &str = "probe_secret_for_api_tests_012345";

struct World {
    t: TestApp,
    sim: StripeSim,
    app: SampleApp,
    sim_handle: stripe_sim::SimHandle,
    _app_handle: sample_app::SampleHandle,
    project: ProjectId,
    pro: String,
    admin: String,
    viewer: String,
}

async fn world(backend: Backend) -> Option<World> {
    world_with(backend, 0).await
}

/// Stripe simulator + sample app + a project with probe, reconcile hook and
/// plan map, and an admin and a viewer token for it.
async fn world_with(backend: Backend, workers: usize) -> Option<World> {
    let sim = StripeSim::new();
    sim.add_api_key(TEST_KEY);
    let sim_handle = sim.start().await;
    let app = SampleApp::new(PROBE_SECRET);
    app.set_deploy_sha("abc123");
    let app_handle = app.start().await;
    let opts = TestOptions {
        stripe_api_base: sim_handle.base_url(),
        workers,
        ..TestOptions::default()
    };
    let t = TestApp::spawn_with(backend, opts).await?;
    let project = t.connected_project().await;
    t.set_probe(
        &project,
        &app_handle.probe_url(),
        PROBE_SECRET,
        Some(&app_handle.reconcile_url()),
    )
    .await;
    let product = sim.create_product("App");
    let pro = sim.create_price(&product, Some("pro"), 3000);
    let rule = PlanRule {
        selector: Selector::Price(pro.clone()),
        plan: "pro".into(),
        rank: 2,
        features: ["export".to_string(), "sso".to_string()].into(),
        limits: [("seats".to_string(), 10)].into(),
    };
    t.store().upsert_plan_rule(&project, &rule).await.unwrap();
    let admin = t.token(&project, Role::Admin).await;
    let viewer = t.token(&project, Role::Viewer).await;
    Some(World {
        t,
        sim,
        app,
        sim_handle,
        _app_handle: app_handle,
        project,
        pro,
        admin,
        viewer,
    })
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

impl World {
    fn path(&self, rest: &str) -> String {
        format!("/api/v1/projects/{}{rest}", self.project)
    }

    /// Calls the API with `token` as the bearer (none when `None`).
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        let mut req = self.t.http.request(method, self.t.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, rest: &str, token: &str) -> Answer {
        self.call(Method::GET, &self.path(rest), Some(token), None)
            .await
    }

    async fn post(&self, rest: &str, token: &str) -> Answer {
        self.call(Method::POST, &self.path(rest), Some(token), None)
            .await
    }

    /// A customer mapped to `user`, paying for pro.
    fn subscribe(&self, user: &str) -> String {
        let customer = self
            .sim
            .create_customer(&format!("{user}@example.com"), &[]);
        self.sim.create_subscription(
            &customer,
            &[&self.pro],
            "active",
            &[("parityrail_user_id", user)],
        );
        customer
    }

    fn grant_pro(&self, customer: &str, user: &str) {
        self.app.grant(
            customer,
            user,
            Some("pro"),
            &["export", "sso"],
            &[("seats", 10)],
        );
    }

    /// A paying customer without access, checked now: its open
    /// `unfulfilled` incident. `(customer, incident id)`.
    async fn unfulfilled(&self, user: &str) -> (String, String) {
        let customer = self.subscribe(user);
        let run = self
            .t
            .check_now(&self.project, &customer, Trigger::Manual)
            .await;
        assert_eq!(run.kind.map(|k| k.as_str()), Some("unfulfilled"), "{run:?}");
        let incident = self
            .t
            .store()
            .list_incidents(self.project.as_str())
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.customer_id == customer && i.kind.as_str() == "unfulfilled")
            .unwrap();
        (customer, incident.id)
    }

    async fn incident_status(&self, id: &str) -> String {
        self.t
            .store()
            .incident(self.project.as_str(), id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str()
            .to_string()
    }

    async fn run_count(&self) -> usize {
        self.t
            .store()
            .list_runs(self.project.as_str(), None, 10_000)
            .await
            .unwrap()
            .len()
    }

    /// `DATABASE_URL` and friends for the CLI on this world's database.
    fn cli_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), database_url(&self.t.db.url)),
            (
                "PARITYRAIL_MASTER_KEY".into(),
                self.t.master_key_hex.clone(),
            ),
            ("STRIPE_API_BASE".into(), self.sim_handle.base_url()),
        ]
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let env = self.cli_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        cli(&env, args)
    }
}

/// Every operation of the served OpenAPI document, as `(method, path)` with
/// the project's id and `incident` filled in (other ids made up).
async fn documented_routes(w: &World, incident: &str) -> Vec<(Method, String)> {
    let doc = w
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(doc.status, 200, "the document needs no token");
    let doc = doc.body;
    let committed: Value = serde_json::from_str(parityrail::web::api::openapi_json()).unwrap();
    assert_eq!(doc, committed, "the served document is the generated one");
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let path = path
            .replace("{id}", w.project.as_str())
            .replace("{incident_id}", incident)
            .replace("{run_id}", "run_x")
            .replace("{event_id}", "evt_x")
            .replace("{scan_id}", "scn_x")
            .replace("{secret_id}", "whs_1")
            .replace("{user_id}", "usr_x")
            .replace("{token_id}", "tok_x");
        assert!(
            !path.contains('{'),
            "a path parameter this test does not know: {path}"
        );
        for method in item.as_object().unwrap().keys() {
            routes.push((method.to_uppercase().parse().unwrap(), path.clone()));
        }
    }
    routes
}

async fn tokens_gate_every_route_and_refusals_change_nothing(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (_, incident) = w.unfulfilled("u_gate").await;
    let other = w.t.connected_project().await;
    let other_admin = w.t.token(&other, Role::Admin).await;
    let issued = parityrail::usecase::tokens::issue(
        &w.t.app,
        &w.t.project_of(&w.project).await,
        Role::Admin,
    )
    .await
    .unwrap();
    let revoked = issued.token.expose().to_string();
    w.t.store()
        .revoke_api_token(&w.project, &issued.record.id, parityrail::now_ms())
        .await
        .unwrap()
        .unwrap();
    // Every route the OpenAPI document lists: a missing entry is a route
    // this test cannot see, so the document is the list.
    let routes = documented_routes(&w, &incident).await;
    assert!(routes.len() >= 30, "{} documented operations", routes.len());
    let runs_before = w.run_count().await;
    let body = Some(r#"{"customer":"cus_gate"}"#);
    for (method, path) in &routes {
        for bearer in [None, Some("prt_wrong"), Some(revoked.as_str())] {
            let a = w.call(method.clone(), path, bearer, body).await;
            assert_eq!(a.status, 401, "{method} {path} with {bearer:?}");
            assert_eq!(a.code(), "unauthorized");
            assert_eq!(a.headers["www-authenticate"], "Bearer");
        }
        let a = w.call(method.clone(), path, Some(&other_admin), body).await;
        assert_eq!(
            a.status, 403,
            "{method} {path} with another project's token"
        );
        assert_eq!(a.code(), "forbidden");
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("another project")
        );
    }
    // Not a bearer token at all.
    let basic =
        w.t.http
            .get(w.t.url(&w.path("/incidents")))
            .header("authorization", format!("Basic {}", w.admin))
            .send()
            .await
            .unwrap();
    assert_eq!(basic.status(), 401);
    // Another project's token on its own project works: the 403 was about the project.
    let own = w
        .call(
            Method::GET,
            &format!("/api/v1/projects/{other}/incidents"),
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(
        (own.status, own.body.clone()),
        (StatusCode::OK, json!({"data": [], "next_cursor": null}))
    );
    assert_eq!(w.incident_status(&incident).await, "open");
    assert_eq!(w.run_count().await, runs_before, "no run was created");
    assert!(
        w.app.reconcile_calls().is_empty(),
        "the app was never called"
    );
    // The admin token passes the same gate.
    assert_eq!(w.get("/incidents", &w.admin).await.status, 200);
    w.t.stop().await;
}

async fn viewer_reads_and_reruns_but_may_not_manage(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, incident) = w.unfulfilled("u_viewer").await;
    for rest in [
        "/runs".to_string(),
        "/incidents".into(),
        format!("/incidents/{incident}"),
        format!("/incidents/{incident}/export"),
        "/events".into(),
    ] {
        assert_eq!(
            w.get(&rest, &w.viewer).await.status,
            200,
            "viewer GET {rest}"
        );
    }
    let runs_before = w.run_count().await;
    for action in ["acknowledge", "resolve", "reconcile"] {
        let a = w
            .post(&format!("/incidents/{incident}/{action}"), &w.viewer)
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{action}"
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("viewer"),
            "{}",
            a.body
        );
    }
    let a = w.post("/events/evt_any/replay", &w.viewer).await;
    assert_eq!(a.status, 403);
    assert_eq!(w.incident_status(&incident).await, "open");
    assert_eq!(w.run_count().await, runs_before);
    assert!(w.app.reconcile_calls().is_empty());
    // Rerun and checks are open to viewers.
    let a = w
        .post(&format!("/incidents/{incident}/rerun"), &w.viewer)
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let a = w
        .call(
            Method::POST,
            &w.path("/checks"),
            Some(&w.viewer),
            Some(&json!({ "customer": customer }).to_string()),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(w.run_count().await, runs_before + 2);
    w.t.stop().await;
}

async fn check_over_the_api_runs_to_a_verdict_with_evidence(backend: Backend) {
    // Background workers carry the run: the handler only starts it.
    let Some(w) = world_with(backend, 1).await else {
        return;
    };
    let customer = w.subscribe("u_api");
    w.grant_pro(&customer, "u_api");
    let a = w
        .call(
            Method::POST,
            &w.path("/checks"),
            Some(&w.admin),
            Some(&json!({ "customer": customer }).to_string()),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let run_id = a.body["run_id"].as_str().unwrap().to_string();
    assert!(run_id.starts_with("run_"));
    assert_eq!(a.body["status"], "pending");
    assert_eq!(
        a.headers["location"].to_str().unwrap(),
        w.path(&format!("/runs/{run_id}"))
    );
    let run = eventually(Duration::from_secs(20), || async {
        let a = w.get(&format!("/runs/{run_id}"), &w.viewer).await;
        assert_eq!(a.status, 200);
        (a.body["status"] != "pending").then_some(a.body)
    })
    .await;
    assert_eq!(run["status"], "passed", "{run}");
    assert_eq!(
        (run["trigger"].as_str(), run["customer"].as_str()),
        (Some("manual"), Some(customer.as_str()))
    );
    assert_eq!(run["user"], "u_api");
    assert_eq!(run["deploy_sha"], "abc123");
    assert_eq!(run["expected"]["plan"], "pro");
    assert_eq!(run["observed"]["plan"], "pro");
    assert!(run["finished_at"].is_string());
    let steps: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["stripe_snapshot", "expected", "probe", "verdict"]);
    assert!(run["steps"][0]["detail"]["subscriptions"].is_array());
    assert!(run["steps"][0]["at"].is_string());

    // The list: newest first, narrowed by customer, bounded by limit.
    let other = w.subscribe("u_api_2");
    let a = w
        .call(
            Method::POST,
            &w.path("/checks"),
            Some(&w.admin),
            Some(&json!({ "customer": other }).to_string()),
        )
        .await;
    assert_eq!(a.status, 202);
    let all = w.get("/runs", &w.viewer).await.body["data"].clone();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["customer"], other.as_str(), "newest first");
    assert!(all[0].get("steps").is_none(), "the list carries no steps");
    let mine = w
        .get(&format!("/runs?customer={customer}"), &w.viewer)
        .await
        .body["data"]
        .clone();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], run_id.as_str());
    assert_eq!(
        w.get("/runs?limit=1", &w.viewer).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for bad in ["0", "1001", "ten"] {
        let a = w.get(&format!("/runs?limit={bad}"), &w.viewer).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{bad}"
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("limit")
        );
    }
    let a = w.get("/runs/run_doesnotexist", &w.viewer).await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not_found"));
    // A run of another project is not found through this one.
    let second = w.t.connected_project().await;
    let second_admin = w.t.token(&second, Role::Admin).await;
    let a = w
        .call(
            Method::GET,
            &format!("/api/v1/projects/{second}/runs/{run_id}"),
            Some(&second_admin),
            None,
        )
        .await;
    assert_eq!(a.status, 404);
    w.t.stop().await;
}

async fn bad_check_requests_are_refused_and_create_nothing(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    for body in [
        "",
        "not json",
        "{}",
        r#"{"customer":""}"#,
        r#"{"customer":"   "}"#,
        r#"{"customer":42}"#,
        r#"{"customer":"cus_a b"}"#,
        r#"["cus_x"]"#,
    ] {
        let a = w
            .call(Method::POST, &w.path("/checks"), Some(&w.admin), Some(body))
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body:?}: {}",
            a.body
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("customer")
        );
    }
    // No probe configured: a clear conflict, no run.
    let bare = w.t.project(ProjectMode::Test).await;
    let bare_admin = w.t.token(&bare, Role::Admin).await;
    let a = w
        .call(
            Method::POST,
            &format!("/api/v1/projects/{bare}/checks"),
            Some(&bare_admin),
            Some(r#"{"customer":"cus_123"}"#),
        )
        .await;
    assert_eq!((a.status, a.code()), (StatusCode::CONFLICT, "no_probe"));
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("probe set")
    );
    assert_eq!(w.run_count().await, 0);
    assert!(
        w.t.store()
            .list_runs(bare.as_str(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    w.t.stop().await;
}

async fn incident_list_and_detail_match_the_cli_shape(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, incident) = w.unfulfilled("u_shape").await;
    let list = w.get("/incidents", &w.viewer).await;
    assert_eq!(list.status, 200);
    let rows = list.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let stored =
        w.t.store()
            .incident(w.project.as_str(), &incident)
            .await
            .unwrap()
            .unwrap();
    let runs = w.t.store().incident_runs(&stored.id).await.unwrap();
    let shared = parityrail::views::incident_json(&stored, &runs);
    assert_eq!(rows[0], shared, "the API and the CLI build one shape");
    let keys: BTreeSet<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "id",
        "kind",
        "status",
        "customer",
        "user",
        "subscription",
        "subscription_status",
        "expected",
        "observed",
        "deploy_sha",
        "event_id",
        "first_seen",
        "last_seen",
        "count",
        "guidance",
        "runs",
    ] {
        assert!(keys.contains(key), "SPEC §8 field {key} missing");
    }
    assert_eq!(
        (rows[0]["customer"].as_str(), rows[0]["user"].as_str()),
        (Some(customer.as_str()), Some("u_shape"))
    );
    assert_eq!(rows[0]["expected"]["plan"], "pro");
    assert_eq!(rows[0]["runs"].as_array().unwrap().len(), 1);
    let detail = w.get(&format!("/incidents/{incident}"), &w.viewer).await;
    assert_eq!((detail.status, &detail.body), (StatusCode::OK, &rows[0]));
    let a = w
        .get("/incidents/inc_aaaaaaaaaaaaaaaaaaaa", &w.viewer)
        .await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not_found"));
    // The CLI prints the same rows.
    let out = w.cli(&["incidents", "list", w.project.as_str(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cli_rows: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(cli_rows, list.body["data"]);
    w.t.stop().await;
}

async fn acknowledge_and_resolve_follow_the_incident_lifecycle(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (_, incident) = w.unfulfilled("u_life").await;
    for _ in 0..2 {
        let a = w
            .post(&format!("/incidents/{incident}/acknowledge"), &w.admin)
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["status"], "acknowledged");
        assert_eq!(a.body["id"], incident.as_str());
    }
    let a = w
        .post(&format!("/incidents/{incident}/resolve"), &w.admin)
        .await;
    assert_eq!(
        (a.status, a.body["status"].as_str()),
        (StatusCode::OK, Some("resolved"))
    );
    for action in ["resolve", "acknowledge", "reconcile"] {
        let a = w
            .post(&format!("/incidents/{incident}/{action}"), &w.admin)
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::CONFLICT, "already_resolved"),
            "{action}"
        );
    }
    assert_eq!(w.incident_status(&incident).await, "resolved");
    let a = w
        .post("/incidents/inc_aaaaaaaaaaaaaaaaaaaa/acknowledge", &w.admin)
        .await;
    assert_eq!(a.status, 404);
    w.t.stop().await;
}

async fn rerun_is_idempotent_while_pending(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, incident) = w.unfulfilled("u_rerun").await;
    let runs_before = w.run_count().await;
    let first = w
        .post(&format!("/incidents/{incident}/rerun"), &w.viewer)
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.body["created"], true);
    assert_eq!(first.body["customer"], customer.as_str());
    let second = w
        .post(&format!("/incidents/{incident}/rerun"), &w.admin)
        .await;
    assert_eq!(second.status, 202);
    assert_eq!(second.body["created"], false);
    assert_eq!(second.body["run_id"], first.body["run_id"]);
    // Concurrent requests share the one pending run too.
    let path = format!("/incidents/{incident}/rerun");
    let answers = futures::future::join_all((0..4).map(|_| w.post(&path, &w.admin))).await;
    for a in &answers {
        assert_eq!(
            (a.status, &a.body["run_id"]),
            (StatusCode::ACCEPTED, &first.body["run_id"])
        );
    }
    assert_eq!(
        w.run_count().await,
        runs_before + 1,
        "two reruns → one pending run"
    );
    // The app is fixed; the rerun passes and resolves the incident.
    w.grant_pro(&customer, "u_rerun");
    w.t.drain_all().await;
    let run = w
        .get(
            &format!("/runs/{}", first.body["run_id"].as_str().unwrap()),
            &w.viewer,
        )
        .await
        .body;
    assert_eq!(
        (run["status"].as_str(), run["trigger"].as_str()),
        (Some("passed"), Some("rerun"))
    );
    assert_eq!(w.incident_status(&incident).await, "resolved");
    // Once it has finished, a rerun is a new run.
    let third = w
        .post(&format!("/incidents/{incident}/rerun"), &w.admin)
        .await;
    assert_eq!(third.body["created"], true);
    assert_ne!(third.body["run_id"], first.body["run_id"]);
    // A project-wide incident has no customer to rerun.
    let probe_failed =
        w.t.store()
            .open_incident(&NewIncident {
                project_id: w.project.to_string(),
                kind: IncidentKind::ProbeFailed,
                customer_id: String::new(),
                event_id: None,
                details: json!({}),
                count: None,
                now: parityrail::now_ms(),
                evidence: Default::default(),
            })
            .await
            .unwrap();
    let runs_before = w.run_count().await;
    let a = w
        .post(&format!("/incidents/{probe_failed}/rerun"), &w.admin)
        .await;
    assert_eq!((a.status, a.code()), (StatusCode::CONFLICT, "no_customer"));
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("probe_failed")
    );
    assert_eq!(w.run_count().await, runs_before);
    let a = w
        .post("/incidents/inc_aaaaaaaaaaaaaaaaaaaa/rerun", &w.admin)
        .await;
    assert_eq!(a.status, 404);
    w.t.stop().await;
}

async fn reconcile_calls_the_app_hook_signed(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, incident) = w.unfulfilled("u_fixme").await;
    let a = w
        .post(&format!("/incidents/{incident}/reconcile"), &w.admin)
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["app_status"], 202);
    // The sample app records only calls whose ParityRail-Signature verified.
    let calls = w.app.reconcile_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (
            calls[0]["customer"].as_str(),
            calls[0]["user"].as_str(),
            calls[0]["incident"].as_str()
        ),
        (
            Some(customer.as_str()),
            Some("u_fixme"),
            Some(incident.as_str())
        )
    );
    assert_eq!(calls[0]["expected"]["plan"], "pro");
    assert_eq!(
        w.incident_status(&incident).await,
        "open",
        "a rerun confirms, not reconcile"
    );
    // The app refusing is a gateway error, not a success.
    w.app.set_down(true);
    let a = w
        .post(&format!("/incidents/{incident}/reconcile"), &w.admin)
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_GATEWAY, "reconcile_failed")
    );
    assert!(!a.body.to_string().contains(PROBE_SECRET));
    w.app.set_down(false);
    // Without a hook: a clear conflict, and nothing is sent.
    let mut probe = w.t.store().probe_config(&w.project).await.unwrap().unwrap();
    probe.reconcile_url = None;
    w.t.store().save_probe(&w.project, &probe).await.unwrap();
    let a = w
        .post(&format!("/incidents/{incident}/reconcile"), &w.admin)
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::CONFLICT, "no_reconcile_hook")
    );
    assert_eq!(w.app.reconcile_calls().len(), 1);
    w.t.stop().await;
}

async fn export_is_an_attachment_with_every_proving_run(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, incident) = w.unfulfilled("u_export").await;
    // A second failing check proves it again.
    let run_id =
        w.t.check_now(&w.project, &customer, Trigger::Manual)
            .await
            .id;
    let a = w
        .get(&format!("/incidents/{incident}/export"), &w.viewer)
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.headers["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{incident}.json\"")
    );
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let e = &a.body;
    assert_eq!(e["project"], w.project.as_str());
    assert_eq!(e["incident"]["id"], incident.as_str());
    assert_eq!(e["incident"]["count"], 2);
    let runs = e["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "every proving run");
    assert_eq!(runs[1]["id"], run_id.as_str(), "oldest first");
    for run in runs {
        assert_eq!(run["kind"], "unfulfilled");
        let steps: Vec<&str> = run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["stripe_snapshot", "expected", "probe", "verdict"]);
    }
    let ids: BTreeSet<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let linked: BTreeSet<&str> = e["incident"]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(ids, linked);
    let a = w
        .get("/incidents/inc_aaaaaaaaaaaaaaaaaaaa/export", &w.viewer)
        .await;
    assert_eq!(a.status, 404);
    w.t.stop().await;
}

async fn events_list_and_replay(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let customer = w.subscribe("u_events");
    w.grant_pro(&customer, "u_events");
    let mut delivered = Vec::new();
    for event in w.sim.events() {
        let handled = parityrail::stripe::event::is_handled(event["type"].as_str().unwrap());
        if handled && event["data"]["object"]["customer"] == customer.as_str() {
            let body = serde_json::to_vec(&event).unwrap();
            assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
            delivered.push(event["id"].as_str().unwrap().to_string());
        }
    }
    assert!(!delivered.is_empty());
    w.t.drain_all().await;
    let a = w.get("/events", &w.viewer).await;
    assert_eq!(a.status, 200);
    let expected: Vec<Value> =
        w.t.events(&w.project)
            .await
            .iter()
            .map(parityrail::views::event_json)
            .collect();
    assert_eq!(
        a.body["data"],
        Value::Array(expected),
        "the shape of `events list --json`"
    );
    assert_eq!(a.body["next_cursor"], Value::Null);
    assert_eq!(a.body["data"][0]["status"], "processed");
    let out = w.cli(&["events", "list", w.project.as_str(), "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        a.body["data"]
    );
    assert_eq!(
        w.get("/events?limit=1", &w.viewer).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(w.get("/events?limit=0", &w.viewer).await.status, 400);

    let event_id = &delivered[0];
    let a = w
        .post(&format!("/events/{event_id}/replay"), &w.admin)
        .await;
    assert_eq!(
        (a.status, a.body["replayed"].as_str()),
        (StatusCode::ACCEPTED, Some(event_id.as_str()))
    );
    let record =
        w.t.events(&w.project)
            .await
            .into_iter()
            .find(|e| &e.event_id == event_id)
            .unwrap();
    assert_ne!(
        record.status.as_str(),
        "processed",
        "queued again: {record:?}"
    );
    w.t.drain_all().await;
    let a = w.post("/events/evt_unknown/replay", &w.admin).await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not_found"));
    w.t.stop().await;
}

async fn token_cli_creates_lists_and_revokes(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let project = w.project.as_str();
    let before = w.t.store().list_api_tokens(&w.project).await.unwrap().len();
    // Bad input: a clear error, nothing stored.
    for (args, needle) in [
        (
            vec!["token", "create", "--project", project, "--role", "owner"],
            "owner",
        ),
        (
            vec![
                "token",
                "create",
                "--project",
                "prj_aaaaaaaaaaaaaaaaaaaa",
                "--role",
                "admin",
            ],
            "no project",
        ),
        (vec!["token", "create", "--project", project], "--role"),
        (
            vec!["token", "revoke", "--project", project, "tok_unknown"],
            "no token",
        ),
    ] {
        let out = w.cli(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    assert_eq!(
        w.t.store().list_api_tokens(&w.project).await.unwrap().len(),
        before
    );

    let out = w.cli(&[
        "token",
        "create",
        "--project",
        project,
        "--role",
        "viewer",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let secret = created["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("prt_") && secret.len() == 44, "{secret}");
    assert_eq!(created["role"], "viewer");
    let id = created["id"].as_str().unwrap().to_string();
    // Plain output is the token alone, for scripts.
    let out = w.cli(&["token", "create", "--project", project, "--role", "admin"]);
    assert!(stdout(&out).trim().starts_with("prt_"));

    // Stored only as a hash; listed without it.
    let out = w.cli(&["token", "list", "--project", project, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains(&secret),
        "a listed token is never shown"
    );
    let listed: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed.len(), before + 2);
    let mine = listed.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!(
        (mine["role"].as_str(), &mine["revoked_at"]),
        (Some("viewer"), &Value::Null)
    );
    assert!(mine.get("token").is_none());
    assert!(
        w.t.store()
            .api_token_by_hash(&parityrail::usecase::tokens::hash(&secret))
            .await
            .unwrap()
            .is_some()
    );

    // It works, until it is revoked.
    assert_eq!(w.get("/incidents", &secret).await.status, 200);
    let out = w.cli(&["token", "revoke", "--project", project, &id, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let revoked: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(w.get("/incidents", &secret).await.status, 401);
    let out = w.cli(&["token", "list", "--project", project]);
    assert!(
        stdout(&out).contains(&format!("{id}  viewer")),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("revoked"));
    // A token of one project cannot be revoked through another.
    let other = w.t.connected_project().await;
    let other_id =
        parityrail::usecase::tokens::issue(&w.t.app, &w.t.project_of(&other).await, Role::Admin)
            .await
            .unwrap()
            .record
            .id;
    let out = w.cli(&["token", "revoke", "--project", project, &other_id]);
    assert!(!out.status.success());
    assert!(
        w.t.store().list_api_tokens(&other).await.unwrap()[0]
            .revoked_at
            .is_none()
    );
    w.t.stop().await;
}

async fn incident_cli_actions(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (customer, incident) = w.unfulfilled("u_cli").await;
    let project = w.project.as_str();

    let out = w.cli(&["incidents", "export", project, &incident, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let evidence: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(evidence["incident"]["id"], incident.as_str());
    assert_eq!(evidence["runs"].as_array().unwrap().len(), 1);
    assert!(!stdout(&out).contains(PROBE_SECRET));

    let out = w.cli(&["incidents", "ack", project, &incident, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let acked: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(w.incident_status(&incident).await, "acknowledged");

    // Still failing: the rerun prints the verdict and exits non-zero.
    let out = w.cli(&["incidents", "rerun", project, &incident, "--json"]);
    assert!(!out.status.success());
    let rerun: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (rerun["verdict"].as_str(), rerun["kind"].as_str()),
        (Some("failed"), Some("unfulfilled"))
    );
    assert_eq!(rerun["created"], true);
    // Fixed in the app: the rerun passes and resolves the incident.
    w.grant_pro(&customer, "u_cli");
    let out = w.cli(&["incidents", "rerun", project, &incident]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).starts_with("passed"), "{}", stdout(&out));
    assert_eq!(w.incident_status(&incident).await, "resolved");

    let out = w.cli(&["incidents", "resolve", project, &incident]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already resolved"),
        "{}",
        stderr(&out)
    );
    let out = w.cli(&["incidents", "ack", project, "inc_aaaaaaaaaaaaaaaaaaaa"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no incident"), "{}", stderr(&out));

    let (_, second) = w.unfulfilled("u_cli_2").await;
    let out = w.cli(&["incidents", "reconcile", project, &second, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(w.app.reconcile_calls().len(), 1);
    let out = w.cli(&["incidents", "resolve", project, &second]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("{second} resolved"));
    w.t.stop().await;
}
