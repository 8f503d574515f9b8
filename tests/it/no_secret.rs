//! No secret anywhere (issue 8): a whole session against the real binary,
//! logging at debug — the first admin, a project, a key Stripe rejects,
//! connect, reconnect with a second signing secret, a third added over the
//! API, a probe URL carrying a password (refused), the probe set and tested
//! on the page and over the API, tokens created on the page and over the
//! API, webhooks signed with each secret, a scan — then every page, every
//! API answer and every log line is searched for each secret used. At most
//! a secret's last 4 characters may appear.

use std::time::Duration;

use parityrail::crypto::MasterKey;
use reqwest::{Method, StatusCode};
use sample_app::SampleApp;
use serde_json::{Value, json};
use stripe_sim::StripeSim;

use crate::{
    dashboard::{Dash, PASSWORD},
    process::{Server, database_url, free_port},
    support::{Backend, TestDb, eventually, sign},
};

crate::backend_tests!(a_whole_session_shows_no_secret_in_pages_api_answers_or_logs);

/// A secret the story uses: its public prefix and its private part.
struct Planted {
    name: &'static str,
    prefix: String,
    private: String,
}

impl Planted {
    fn new(name: &'static str, prefix: &str) -> Self {
        Self {
            name,
            prefix: prefix.to_string(),
            private: MasterKey::generate_hex()[..32].to_string(),
        }
    }
    fn value(&self) -> String {
        format!("{}{}", self.prefix, self.private)
    }
    /// Where any 12 characters of the private part appear in `text`.
    fn leak_in(&self, text: &str) -> Option<usize> {
        let chars: Vec<char> = self.private.chars().collect();
        chars
            .windows(12)
            .find_map(|w| text.find(&w.iter().collect::<String>()))
    }
}

/// Everything the session saw, by where it came from.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn page(&mut self, what: &str, status: StatusCode, body: &str) {
        self.0
            .push((format!("page {what} ({status})"), body.to_string()));
    }
    fn api(&mut self, what: &str, status: StatusCode, body: &str) {
        self.0
            .push((format!("api {what} ({status})"), body.to_string()));
    }
}

async fn a_whole_session_shows_no_secret_in_pages_api_answers_or_logs(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let key = Planted::new("API key", "sk_test_");
    let restricted = Planted::new("restricted key", "rk_test_");
    let rejected = Planted::new("rejected key", "sk_test_");
    let whsec = [
        Planted::new("signing secret 1", "whsec_"),
        Planted::new("signing secret 2", "whsec_"),
        Planted::new("signing secret 3", "whsec_"),
    ];
    let probe_secret = Planted::new("probe secret", "probe_");
    let probe_secret2 = Planted::new("probe secret 2", "probe_");
    let url_password = Planted::new("password in a probe URL", "");
    let wrong_password = Planted::new("a mistyped password", "");
    let master = MasterKey::generate_hex();

    let sim = StripeSim::new();
    sim.add_api_key(&key.value());
    sim.add_api_key(&restricted.value());
    sim.set_emit_events(true);
    let sim_handle = sim.start().await;
    let app = SampleApp::new(&probe_secret.value());
    let app_handle = app.start().await;
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("serve.log");
    let port = free_port();
    let url = database_url(&db.url);
    let stripe = sim_handle.base_url();
    let mut server = Server::spawn_logged(
        &[
            ("DATABASE_URL", &url),
            ("PARITYRAIL_MASTER_KEY", &master),
            ("STRIPE_API_BASE", &stripe),
            ("PARITYRAIL_LOG", "debug"),
            ("PARITYRAIL_WORKERS", "2"),
        ],
        port,
        &log,
    );
    server.ready().await;
    let base = server.base.clone();
    let mut seen = Seen::default();
    let mut d = Dash::at(&base);

    // First run: the admin, then a project.
    let setup = d
        .post(
            "/setup",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(setup.status, StatusCode::SEE_OTHER, "{}", setup.body);
    let home = d.get("/").await;
    seen.page("/", home.status, &home.body);
    let created = d
        .post("/projects", &[("name", "Acme"), ("mode", "test")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let project = created
        .location()
        .trim_start_matches("/projects/")
        .to_string();
    let at = |path: &str| format!("/projects/{project}{path}");

    // A sign-in with a mistyped password, from another client.
    let mut other = Dash::at(&base);
    let login = other.get("/login").await;
    seen.page("/login", login.status, &login.body);
    let denied = other
        .post(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", &wrong_password.value()),
            ],
        )
        .await;
    seen.page("/login (wrong password)", denied.status, &denied.body);

    // Step 2: a key Stripe rejects, then connect, then reconnect.
    let step2 = at("/onboarding/stripe");
    let page = d.get(&step2).await;
    seen.page(&step2, page.status, &page.body);
    let refused = d
        .post(
            &step2,
            &[
                ("api_key", &rejected.value()),
                ("webhook_secret", &whsec[0].value()),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    seen.page("step 2 (rejected key)", refused.status, &refused.body);
    for (api_key, secret) in [
        (key.value(), whsec[0].value()),
        (restricted.value(), whsec[1].value()),
    ] {
        let connected = d
            .post(
                &step2,
                &[("api_key", &api_key), ("webhook_secret", &secret)],
            )
            .await;
        assert_eq!(
            connected.status,
            StatusCode::SEE_OTHER,
            "{}",
            connected.body
        );
        let page = d.get(connected.location()).await;
        assert!(page.body.contains("Stripe connected"));
        seen.page("step 2 (connected)", page.status, &page.body);
    }

    // Step 3: a URL with a password is refused and not shown back; then the
    // probe is saved and tested.
    let step3 = at("/onboarding/probe");
    let probe_url = app_handle.probe_url();
    let with_password = probe_url.replacen(
        "http://",
        &format!("http://ops:{}@", url_password.value()),
        1,
    );
    let refused = d
        .post(
            &step3,
            &[("url", &with_password), ("secret", &probe_secret.value())],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("must not carry a user name or password"),
        "{}",
        refused.body
    );
    seen.page("step 3 (password in URL)", refused.status, &refused.body);
    let saved = d
        .post(
            &step3,
            &[("url", &probe_url), ("secret", &probe_secret.value())],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(saved.body.contains("probe saved"), "{}", saved.body);
    seen.page("step 3 (saved)", saved.status, &saved.body);
    let tested = d.post(&format!("{step3}/test"), &[]).await;
    seen.page("step 3 (tested)", tested.status, &tested.body);

    // A token on the page (shown once: that answer is the one place it may be).
    let made = d.post(&at("/tokens"), &[("role", "admin")]).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let token = once_value(&made.body);
    let token = Planted {
        name: "API token (page)",
        prefix: "prt_".into(),
        private: token.trim_start_matches("prt_").to_string(),
    };
    // The search finds what it looks for: here the token is meant to be.
    assert!(token.leak_in(&made.body).is_some());

    // The API, with that token: reconnect, add a secret, set the probe,
    // create a second token, start a scan.
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("{base}/api/v1/projects/{project}"),
        token: token.value(),
    };
    let mut api_seen = Vec::new();
    for (method, path, body) in [
        (Method::PUT, "/stripe", json!({"api_key": rejected.value()})),
        (Method::PUT, "/stripe", json!({"api_key": key.value()})),
        (
            Method::POST,
            "/stripe/secrets",
            json!({"secret": whsec[2].value()}),
        ),
        (
            Method::PUT,
            "/probe",
            json!({"url": with_password, "secret": probe_secret2.value()}),
        ),
        (
            Method::PUT,
            "/probe",
            json!({"url": probe_url, "secret": probe_secret.value()}),
        ),
        (Method::POST, "/probe/test", json!({})),
    ] {
        api_seen.push(api.call(method, path, Some(body)).await);
    }
    let (status, minted, _) = api
        .call(Method::POST, "/tokens", Some(json!({"role": "viewer"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let minted: Value = serde_json::from_str(&minted).unwrap();
    let token2 = Planted {
        name: "API token (API)",
        prefix: "prt_".into(),
        private: minted["token"]
            .as_str()
            .unwrap()
            .trim_start_matches("prt_")
            .to_string(),
    };

    // Webhooks signed with each stored secret, and one with none of them.
    let customer = sim.create_customer("u_secret@example.com", &[]);
    let price = sim.create_price(&sim.create_product("App"), Some("pro"), 3000);
    sim.create_subscription(
        &customer,
        &[&price],
        "active",
        &[("parityrail_user_id", "u_secret")],
    );
    app.grant(
        &customer,
        "u_secret",
        Some("pro"),
        &["sso"],
        &[("seats", 10)],
    );
    let http = &api.http;
    let hook = format!("{base}/api/webhooks/stripe/{project}");
    let events: Vec<Value> = sim.events();
    assert!(!events.is_empty());
    for (i, event) in events.iter().enumerate() {
        let body = serde_json::to_vec(event).unwrap();
        let secret = whsec[i % 3].value();
        let response = http
            .post(&hook)
            .header("stripe-signature", sign(&secret, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let forged = http
        .post(&hook)
        .header("stripe-signature", sign(&rejected.value(), b"{}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    api_seen.push(api.call(Method::POST, "/scans", Some(json!({}))).await);
    // Wait for the events and the check to finish.
    let run_id = eventually(Duration::from_secs(30), || async {
        let (_, runs, _) = api.call(Method::GET, "/runs", None).await;
        let runs: Value = serde_json::from_str(&runs).ok()?;
        runs["data"]
            .as_array()?
            .iter()
            .find(|r| r["status"] != "pending")
            .and_then(|r| r["id"].as_str().map(str::to_string))
    })
    .await;
    let event_id = events[0]["id"].as_str().unwrap().to_string();

    // Every read of the API, and every page.
    let reads = [
        "/stripe",
        "/stripe/secrets",
        "/probe",
        "/plans",
        "/members",
        "/tokens",
        "/events",
        "/runs",
        "/incidents",
        "/scans",
    ];
    for path in reads
        .iter()
        .map(|p| p.to_string())
        .chain([format!("/events/{event_id}"), format!("/runs/{run_id}")])
    {
        api_seen.push(api.call(Method::GET, &path, None).await);
    }
    for (status, body, what) in &api_seen {
        seen.api(what, *status, body);
    }
    let http = &api.http;
    let openapi = http
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    seen.api(
        "openapi.json",
        openapi.status(),
        &openapi.text().await.unwrap(),
    );
    for path in [
        String::new(),
        "/onboarding/stripe".into(),
        "/onboarding/probe".into(),
        "/onboarding/plans".into(),
        "/incidents".into(),
        "/runs".into(),
        format!("/runs/{run_id}"),
        "/events".into(),
        format!("/events/{event_id}"),
        "/scans".into(),
        "/members".into(),
    ] {
        let page = d.get(&at(&path)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        seen.page(&at(&path), page.status, &page.body);
    }
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    seen.api("/metrics", metrics.status(), &metrics.text().await.unwrap());

    // Stop the server so its log is complete, then search everything.
    interrupt(&server);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while server.child.try_wait().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("customer synced"),
        "the log saw the session: {log_text}"
    );
    let master = Planted {
        name: "master key",
        prefix: String::new(),
        private: master,
    };
    let mut sources = seen.0;
    sources.extend(
        log_text
            .lines()
            .enumerate()
            .map(|(i, l)| (format!("log line {}", i + 1), l.to_string())),
    );
    let planted = [
        &key,
        &restricted,
        &rejected,
        &whsec[0],
        &whsec[1],
        &whsec[2],
        &probe_secret,
        &probe_secret2,
        &url_password,
        &wrong_password,
        &token,
        &token2,
        &master,
    ];
    let mut leaks = Vec::new();
    for (source, text) in &sources {
        for secret in planted {
            if let Some(at) = secret.leak_in(text) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(40)
                    .map_or(0, |(i, _)| i);
                leaks.push(format!(
                    "{} in {source}: …{}…",
                    secret.name,
                    &text[from..(at + 16).min(text.len())]
                ));
            }
        }
        assert!(!text.contains(PASSWORD), "the admin password in {source}");
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    // The last 4 are what identifies a secret to its owner.
    let step2 = sources
        .iter()
        .rev()
        .find(|(s, _)| s.starts_with("page /projects/") && s.contains("/onboarding/stripe"))
        .unwrap();
    assert!(step2.1.contains(&key.value()[key.value().len() - 4..]));
}

/// The JSON API as one token holder calls it.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// (status, body, "METHOD path").
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, String, String) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (
            status,
            response.text().await.unwrap(),
            format!("{method} {path}"),
        )
    }
}

/// The value a page shows once (a new token or password).
fn once_value(body: &str) -> String {
    let at =
        body.find("id=\"once-value\">").expect("a value shown once") + "id=\"once-value\">".len();
    body[at..].split('<').next().unwrap().to_string()
}

/// SIGINT, as Ctrl-C would: the server drains and exits.
fn interrupt(server: &Server) {
    let _ = std::process::Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status();
}
