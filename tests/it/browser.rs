//! The dashboard in a real browser (issue 8): Debian's Chromium driven
//! through chromedriver (a child process) over WebDriver. Stories: first
//! run and sign-in; onboarding steps 1 and 2 against the Stripe simulator; a
//! viewer and a forged cross-origin post; an incident from a real mismatch
//! resolved; replay from the event log. Screenshots of the main pages go
//! to `target/screenshots/`.
//!
//! Without `/usr/bin/chromedriver` the stories skip, except under
//! `CI=true`, where they fail.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};
use parityrail::domain::{IncidentStatus, Role};

use crate::{
    dashboard::{PASSWORD, manual, member, mismatch},
    support::{Backend, TEST_KEY},
    world::{Options, World, world},
};

const DRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(10);

/// Chromium under chromedriver, stopped (with its browser) on drop.
struct Browser {
    client: Option<Client>,
    driver: Child,
    base: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    async fn start(w: &World) -> Option<Self> {
        if !std::path::Path::new(DRIVER).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI needs Chromium: apt-get install chromium chromium-driver"
            );
            eprintln!("skipping a browser story: no {DRIVER}");
            return None;
        }
        let port = free_port();
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--window-size=1360,900", "--disable-gpu"],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut browser = Self {
            client: None,
            driver,
            base: w.t.url(""),
        };
        let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    browser.client = Some(client);
                    return Some(browser);
                }
                Err(e) => {
                    assert!(tokio::time::Instant::now() < give_up, "chromedriver: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    async fn goto(&self, path: &str) {
        self.c()
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        self.c()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("{selector}: {e}"))
    }

    async fn has(&self, selector: &str) -> bool {
        self.c().find(Locator::Css(selector)).await.is_ok()
    }

    async fn text(&self, selector: &str) -> String {
        self.css(selector).await.text().await.unwrap()
    }

    /// The element's text once it contains `needle` (a submitted form's
    /// answer may still be loading: the old page is there until it lands).
    async fn text_with(&self, selector: &str, needle: &str) -> String {
        let give_up = tokio::time::Instant::now() + WAIT;
        loop {
            let text = match self.c().find(Locator::Css(selector)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) || tokio::time::Instant::now() > give_up {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn fill(&self, selector: &str, value: &str) {
        let field = self.css(selector).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn click(&self, selector: &str) {
        self.css(selector).await.click().await.unwrap();
    }

    async fn body(&self) -> String {
        self.c().source().await.unwrap()
    }

    /// Keeps a screenshot of the page under `target/screenshots/`.
    async fn screenshot(&self, name: &str) {
        let png = self.c().screenshot().await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn sign_in(&self, email: &str, password: &str) {
        self.goto("/login").await;
        self.fill("input[name=email]", email).await;
        self.fill("input[name=password]", password).await;
        self.click("button[type=submit]").await;
        self.css("header .who .email").await;
    }

    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_in_the_browser_creates_the_admin_and_signs_in() {
    let Some(w) = world(Backend::Sqlite, Options::default()).await else {
        return;
    };
    let Some(b) = Browser::start(&w).await else {
        return;
    };
    b.goto("/").await;
    // No user yet: sign-in points to the one-time setup.
    b.goto("/setup").await;
    b.screenshot("setup").await;
    b.fill("input[name=email]", "ada@example.com").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.click("button[type=submit]").await;
    assert_eq!(b.text("header .who .email").await, "ada@example.com");
    assert!(
        b.body().await.contains(w.project.as_str()),
        "the project is listed"
    );
    b.screenshot("projects").await;
    // Sign out, and back in through the form.
    b.click("header .who button").await;
    b.css("input[name=password]").await;
    b.screenshot("login").await;
    b.sign_in("ada@example.com", PASSWORD).await;
    // /setup is gone once a user exists.
    b.goto("/setup").await;
    assert!(!b.has("form input[name=password]").await || b.body().await.contains("already"));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_two_in_the_browser_copies_the_endpoint_connects_and_survives_a_reconnect() {
    let Some(w) = world(Backend::Sqlite, Options::default()).await else {
        return;
    };
    let Some(b) = Browser::start(&w).await else {
        return;
    };
    member(&w, "ada@example.com", Role::Admin).await;
    b.sign_in("ada@example.com", PASSWORD).await;
    // Step 1: change the scan time, and follow "Next" to step 2.
    b.goto(&format!("/projects/{}/onboarding/project", w.project))
        .await;
    b.fill("#scan_at", "04:15").await;
    b.click("#settings-form button[type=submit]").await;
    let saved = b.text_with("p.notice", "Settings saved.").await;
    assert_eq!(saved, "Settings saved.");
    let stored = w.t.store().project(&w.project).await.unwrap().unwrap();
    assert_eq!(stored.scan_at, "04:15");
    b.screenshot("onboarding-project").await;
    b.click("a[href$=\"/onboarding/stripe\"].next").await;
    let endpoint = b.text("#endpoint-url").await;
    let public = w.t.app.config.public_url.trim_end_matches('/');
    assert_eq!(
        endpoint,
        format!("{public}/api/webhooks/stripe/{}", w.project)
    );
    let copy = format!("button.copy[data-copy=\"{endpoint}\"]");
    b.click(&copy).await;
    assert_eq!(
        b.text(&copy).await,
        "Copied",
        "the copy button says it copied"
    );

    // Test & connect with a second key of the account and a new secret.
    w.sim.add_api_key("sk_test_browser_second_key_4242");
    b.click("#reconnect summary").await;
    b.fill("#api_key", "sk_test_browser_second_key_4242").await;
    b.fill("#webhook_secret", "whsec_browser_secret_9876").await;
    b.click("#connect-form button[type=submit]").await;
    let card = b.text_with("#stripe-connected", "…4242").await;
    assert!(card.contains("…4242"), "{card}");
    assert!(card.contains(&w.sim.account_id()), "{card}");
    b.screenshot("onboarding-stripe").await;
    // Reconnect with the first key: the card stays, with the new key.
    b.click("#reconnect summary").await;
    b.fill("#api_key", TEST_KEY).await;
    b.click("#connect-form button[type=submit]").await;
    let last4 = format!("…{}", &TEST_KEY[TEST_KEY.len() - 4..]);
    let card = b.text_with("#stripe-connected", &last4).await;
    assert!(card.contains(&last4), "{card}");
    assert!(
        !b.body().await.contains("whsec_browser_secret_9876"),
        "no secret on the page"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_secret_form_and_a_cross_origin_post_is_refused() {
    let Some(w) = world(Backend::Sqlite, Options::default()).await else {
        return;
    };
    let Some(b) = Browser::start(&w).await else {
        return;
    };
    member(&w, "vera@example.com", Role::Viewer).await;
    b.sign_in("vera@example.com", PASSWORD).await;
    let step2 = format!("/projects/{}/onboarding/stripe", w.project);
    b.goto(&step2).await;
    b.css("#stripe-connected").await;
    assert!(!b.has("#connect-form").await, "no secret form for a viewer");
    assert!(!b.has("input[name=secret]").await);
    b.screenshot("onboarding-stripe-viewer").await;

    // An admin's browser on a page of another origin that posts to the dashboard.
    b.click("header .who button").await;
    member(&w, "ada@example.com", Role::Admin).await;
    b.sign_in("ada@example.com", PASSWORD).await;
    let secrets = w.t.store().webhook_secrets(&w.project).await.unwrap().len();
    let action = format!("{}{step2}/secrets", b.base);
    let html = format!(
        "<form method=post action=\"{action}\"><input name=secret value=whsec_forged_secret_0000>\
         <button id=go>go</button></form>"
    );
    let data = format!("data:text/html,{}", parityrail_encode(&html));
    b.c().goto(&data).await.unwrap();
    b.click("#go").await;
    b.css("body").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = b.body().await;
    assert!(
        body.contains("this form was posted from another site"),
        "{body}"
    );
    assert_eq!(
        w.t.store().webhook_secrets(&w.project).await.unwrap().len(),
        secrets,
        "nothing changed"
    );
    b.close().await;
}

fn parityrail_encode(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_from_a_real_mismatch_shows_its_evidence_resolves_and_replay_makes_a_run() {
    let Some(w) = world(Backend::Sqlite, manual()).await else {
        return;
    };
    let Some(b) = Browser::start(&w).await else {
        return;
    };
    let (customer, incident) = mismatch(&w, "u_paid_no_access").await;
    let (healthy, _) = w.subscribe("u_fine", &w.pro);
    w.grant(&healthy, "u_fine", "pro");
    w.deliver(&healthy).await;
    w.verdict(&healthy).await;
    member(&w, "ada@example.com", Role::Admin).await;
    b.sign_in("ada@example.com", PASSWORD).await;

    b.goto(&format!("/projects/{}", w.project)).await;
    b.css("main h1").await;
    b.screenshot("overview").await;
    b.goto(&format!("/projects/{}/incidents", w.project)).await;
    assert!(b.text("table.inbox").await.contains(&customer));
    b.screenshot("incidents").await;
    b.click(&format!("a[href$=\"/incidents/{incident}\"]"))
        .await;
    let evidence = b.text_with("main", "What to do").await;
    for needle in [
        customer.as_str(),
        "u_paid_no_access",
        "What to do",
        "differs",
    ] {
        assert!(evidence.contains(needle), "{needle}: {evidence}");
    }
    b.screenshot("incident").await;
    b.click("form[action$=\"/resolve\"] button").await;
    assert!(b.text("p.notice").await.contains("Resolved."));
    let stored = w
        .incidents()
        .await
        .into_iter()
        .find(|i| i.id == incident)
        .unwrap();
    assert_eq!(stored.status, IncidentStatus::Resolved);

    // Replay the customer's event from the log: a new run.
    let event =
        w.t.events(&w.project)
            .await
            .into_iter()
            .find(|e| e.customer.as_deref() == Some(customer.as_str()))
            .unwrap();
    b.goto(&format!("/projects/{}/events", w.project)).await;
    b.screenshot("events").await;
    b.click(&format!("a[href$=\"/events/{}\"]", event.event_id))
        .await;
    let runs_before = w.runs(&customer).await.len();
    b.click("form.replay input[name=confirm]").await;
    b.click("form.replay button").await;
    b.click("#new-run").await;
    b.css("ol.evidence").await;
    assert_eq!(w.runs(&customer).await.len(), runs_before + 1);
    w.verdict(&customer).await;
    b.c().refresh().await.unwrap();
    b.css("li.step-verdict").await;
    b.screenshot("run").await;
    b.goto(&format!("/projects/{}/runs", w.project)).await;
    b.screenshot("runs").await;
    b.close().await;
}
