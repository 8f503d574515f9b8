//! The dashboard over real HTTP (issue 8): first run, sign-in and its rate
//! limit, sessions, CSRF, roles, security headers, escaping, and the
//! incident inbox and detail on a real mismatch.

use std::time::Duration;

use parityrail::{
    domain::{IncidentStatus, Role},
    usecase::accounts,
};
use reqwest::{StatusCode, header};

use crate::{
    support::{Backend, TestApp},
    world::{Options, World, world},
};

crate::backend_tests!(
    first_run_creates_one_admin_of_every_project_and_signs_in,
    sign_in_is_rate_limited_and_never_says_which_accounts_exist,
    forms_from_another_origin_or_without_the_session_token_change_nothing,
    viewers_may_read_and_rerun_but_not_resolve_and_foreign_projects_are_404,
    sessions_expire_and_sign_out_ends_them_here_or_everywhere,
    pages_carry_security_headers_and_show_markup_from_stripe_and_the_app_escaped,
    the_inbox_filters_pages_and_acts_in_bulk_and_the_detail_shows_evidence,
);

pub const PASSWORD: &str = "correct horse battery staple";

/// A browser-like client: keeps one session cookie and the page's form
/// token, sends `Origin` like a browser does on a post, follows nothing.
pub struct Dash {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
    pub csrf: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Dash {
    pub fn new(t: &TestApp) -> Self {
        Self::at(&t.url(""))
    }

    /// A client of the dashboard served at `base` (`http://host:port`).
    pub fn at(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.trim_end_matches('/').to_string(),
            cookie: None,
            csrf: None,
        }
    }

    async fn page(&mut self, response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(set) = headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            let pair = set.split(';').next().unwrap_or_default();
            self.cookie = pair
                .split_once('=')
                .filter(|(_, v)| !v.is_empty())
                .map(|_| pair.to_string());
        }
        let body = response.text().await.unwrap();
        if let Some(token) = form_token(&body) {
            self.csrf = Some(token);
        }
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        self.page(response).await
    }

    /// Posts a form as this dashboard's own page would (same origin, the
    /// session's form token added).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let csrf = self.csrf.clone();
        if let Some(token) = &csrf
            && !form.iter().any(|(k, _)| *k == "csrf")
        {
            fields.push(("csrf", token));
        }
        let origin = self.base.clone();
        self.post_raw(path, &fields, &[("origin", &origin)]).await
    }

    /// Posts exactly these fields with exactly these extra headers.
    pub async fn post_raw(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            );
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        self.page(response).await
    }

    /// Signs in and loads the projects page (which holds a form token).
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let page = self
            .post("/login", &[("email", email), ("password", password)])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        self.get("/").await
    }

    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    pub fn set_cookie(&mut self, cookie: Option<String>) {
        self.cookie = cookie;
    }
}

/// The first `name="csrf" value="…"` of a page.
fn form_token(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    body[at..].split('"').next().map(str::to_string)
}

/// A user with `role` in the world's project.
pub async fn member(w: &World, email: &str, role: Role) {
    let project = w.t.project_of(&w.project).await;
    parityrail::usecase::members::create_member(&w.t.app, &project, email, PASSWORD, role)
        .await
        .unwrap();
}

/// A real mismatch: a pro subscriber the app never granted. Returns the
/// customer and its `unfulfilled` incident.
pub async fn mismatch(w: &World, user: &str) -> (String, String) {
    let (customer, _) = w.subscribe(user, &w.pro);
    w.deliver(&customer).await;
    w.verdict(&customer).await;
    let incident = w
        .incidents()
        .await
        .into_iter()
        .find(|i| i.customer_id == customer)
        .expect("an incident for the mismatch");
    (customer, incident.id)
}

pub fn manual() -> Options {
    Options {
        manual_clock: true,
        deadline_secs: 1,
        ..Options::default()
    }
}

async fn user_count(t: &TestApp) -> i64 {
    t.store().user_count().await.unwrap()
}

async fn first_run_creates_one_admin_of_every_project_and_signs_in(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let mut d = Dash::new(&w.t);
    let home = d.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/login");
    assert_eq!(d.get("/login").await.location(), "/setup");
    let form = d.get("/setup").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("Create the first admin"));

    // Bad input: the form again, the message beside the field, no user.
    let bad = d
        .post(
            "/setup",
            &[("email", "not-an-email"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("is not an email address"), "{}", bad.body);
    assert!(bad.body.contains("class=\"field-error\""));
    let short = d
        .post(
            "/setup",
            &[("email", "ada@example.com"), ("password", "short pw")],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        short.body.contains("at least 12 characters"),
        "{}",
        short.body
    );
    assert!(
        short.body.contains("value=\"ada@example.com\""),
        "the email is kept"
    );
    assert_eq!(user_count(&w.t).await, 0);

    let created = d
        .post(
            "/setup",
            &[("email", "Ada@Example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location(), "/");
    let cookie = created.headers[header::SET_COOKIE].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: no Secure flag");
    assert!(cookie.starts_with("parityrail_session=prs_"), "{cookie}");
    // Only the token's hash is stored.
    let token = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    let hash = parityrail::usecase::tokens::hash(token);
    assert!(w.t.store().session(&hash).await.unwrap().is_some());

    // The first admin is admin of the project that already existed.
    let projects = d.get("/").await;
    assert_eq!(projects.status, StatusCode::OK);
    assert!(
        projects.body.contains(w.project.as_str()),
        "{}",
        projects.body
    );
    assert!(projects.body.contains("ada@example.com"));
    let project = w.t.project_of(&w.project).await;
    let members = parityrail::usecase::members::members(&w.t.app, &project)
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].role, Role::Admin);

    // Setup works once.
    let mut other = Dash::new(&w.t);
    assert_eq!(other.get("/setup").await.location(), "/login");
    let again = other
        .post(
            "/setup",
            &[("email", "eve@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert_eq!(user_count(&w.t).await, 1);

    // Creating a project makes its creator its admin; a taken name is refused.
    let made = d
        .post("/projects", &[("name", "billing"), ("mode", "test")])
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let overview = d.get(made.location()).await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains("not connected"), "{}", overview.body);
    let taken = d
        .post("/projects", &[("name", "billing"), ("mode", "test")])
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.body.contains("already exists"), "{}", taken.body);
    let bad_mode = d
        .post("/projects", &[("name", "other"), ("mode", "prod")])
        .await;
    assert_eq!(bad_mode.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.t.store().list_projects().await.unwrap().len(), 2);
}

async fn sign_in_is_rate_limited_and_never_says_which_accounts_exist(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    member(&w, "ada@example.com", Role::Admin).await;
    let mut d = Dash::new(&w.t);
    let wrong = d
        .post(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    let unknown = d
        .post(
            "/login",
            &[("email", "nobody@example.com"), ("password", PASSWORD)],
        )
        .await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body.contains("wrong email or password"),
            "{}",
            page.body
        );
        assert!(page.headers.get(header::SET_COOKIE).is_none());
    }
    // The right password works, with any case and spacing of the email.
    let mut ok = Dash::new(&w.t);
    ok.sign_in("  ADA@example.com ", PASSWORD).await;
    assert!(ok.cookie().is_some());

    // Ten attempts a minute per email: the eleventh is refused even with
    // the right password, and nothing signs in.
    for _ in 0..8 {
        d.post(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    }
    let limited = d
        .post(
            "/login",
            &[("email", "ada@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert!(limited.body.contains("too many sign-in attempts"));
    assert!(limited.headers.get(header::SET_COOKIE).is_none());
    // Another email from the same address still gets its answer.
    let other = d
        .post(
            "/login",
            &[("email", "bob@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
}

async fn forms_from_another_origin_or_without_the_session_token_change_nothing(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (_, incident) = mismatch(&w, "u_csrf").await;
    member(&w, "ada@example.com", Role::Admin).await;
    let mut d = Dash::new(&w.t);
    d.sign_in("ada@example.com", PASSWORD).await;
    let path = format!("/projects/{}/incidents/{incident}/resolve", w.project);
    let token = d.csrf.clone().unwrap();
    let status = || async {
        let i =
            w.t.store()
                .incident(w.project.as_str(), &incident)
                .await
                .unwrap()
                .unwrap();
        i.status
    };
    // A form on another site, posted with the user's cookie.
    let evil = d
        .post_raw(
            &path,
            &[("csrf", &token)],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(evil.status, StatusCode::FORBIDDEN);
    assert!(
        evil.body.contains("posted from another site"),
        "{}",
        evil.body
    );
    let cross = d
        .post_raw(
            &path,
            &[("csrf", &token)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let no_origin = d.post_raw(&path, &[("csrf", &token)], &[]).await;
    assert_eq!(no_origin.status, StatusCode::FORBIDDEN);
    // Same origin but without, or with another session's, form token.
    let origin = w.t.url("");
    let missing = d.post_raw(&path, &[], &[("origin", &origin)]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let forged = d
        .post_raw(
            &path,
            &[("csrf", "0123456789abcdef")],
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(status().await, IncidentStatus::Open, "nothing changed");
    assert!(
        accounts::activity(&w.t.app, &w.t.project_of(&w.project).await, &incident)
            .await
            .unwrap()
            .is_empty()
    );

    // The dashboard's own form works.
    let done = d.post(&path, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(status().await, IncidentStatus::Resolved);
    let detail = d.get(done.location()).await;
    assert!(detail.body.contains("Resolved."));
    assert!(
        detail.body.contains("user:ada@example.com"),
        "the activity log names who"
    );

    // Webhooks and bearer-token API calls need no origin or form token.
    let (customer, _) = w.subscribe("u_api", &w.pro);
    w.deliver(&customer).await;
    let project = w.t.project_of(&w.project).await;
    let token = parityrail::usecase::tokens::issue(&w.t.app, &project, Role::Viewer)
        .await
        .unwrap();
    let api =
        w.t.http
            .post(w.t.url(&format!("/api/v1/projects/{}/checks", w.project)))
            .bearer_auth(token.token.expose())
            .json(&serde_json::json!({"customer": customer}))
            .send()
            .await
            .unwrap();
    assert_eq!(api.status(), StatusCode::ACCEPTED);
}

async fn viewers_may_read_and_rerun_but_not_resolve_and_foreign_projects_are_404(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (_, incident) = mismatch(&w, "u_roles").await;
    member(&w, "vera@example.com", Role::Viewer).await;
    let mut d = Dash::new(&w.t);
    d.sign_in("vera@example.com", PASSWORD).await;
    let base = format!("/projects/{}/incidents", w.project);
    let detail = d.get(&format!("{base}/{incident}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Rerun check"));
    assert!(
        !detail.body.contains(">Resolve<"),
        "a viewer sees no resolve button"
    );
    let inbox = d.get(&base).await;
    assert!(!inbox.body.contains("Resolve selected"));
    assert!(
        !inbox.body.contains("/members\""),
        "no members tab for a viewer"
    );

    for action in ["acknowledge", "resolve", "reconcile"] {
        let page = d.post(&format!("{base}/{incident}/{action}"), &[]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{action}");
        assert!(page.body.contains("a viewer may not"), "{}", page.body);
    }
    let bulk = d
        .post(
            &format!("{base}/bulk"),
            &[("action", "resolve"), ("incident", &incident)],
        )
        .await;
    assert_eq!(bulk.status, StatusCode::FORBIDDEN);
    let stored =
        w.t.store()
            .incident(w.project.as_str(), &incident)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(stored.status, IncidentStatus::Open, "nothing changed");

    let rerun = d.post(&format!("{base}/{incident}/rerun"), &[]).await;
    assert_eq!(rerun.status, StatusCode::SEE_OTHER, "{}", rerun.body);
    let activity = accounts::activity(&w.t.app, &w.t.project_of(&w.project).await, &incident)
        .await
        .unwrap();
    assert_eq!(activity.len(), 1);
    assert_eq!(
        (activity[0].actor.as_str(), activity[0].action.as_str()),
        ("user:vera@example.com", "rerun")
    );

    // A project of no role of hers, and one that does not exist: both 404.
    let other = w.t.project(parityrail::domain::ProjectMode::Test).await;
    for id in [
        other.to_string(),
        "prj_00000000000000000000".into(),
        "nope".into(),
    ] {
        for path in [
            format!("/projects/{id}"),
            format!("/projects/{id}/incidents"),
        ] {
            assert_eq!(d.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        let post = d
            .post(&format!("/projects/{id}/incidents/{incident}/resolve"), &[])
            .await;
        assert_eq!(post.status, StatusCode::NOT_FOUND);
    }
    // Another project's incident id under her project: 404 as well.
    let missing = d.get(&format!("{base}/inc_00000000000000000000")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn sessions_expire_and_sign_out_ends_them_here_or_everywhere(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    member(&w, "ada@example.com", Role::Admin).await;
    let overview = format!("/projects/{}", w.project);
    let mut d = Dash::new(&w.t);
    d.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(d.get(&overview).await.status, StatusCode::OK);
    // Idle for 11 hours: still signed in (and the idle clock restarts).
    w.advance(Duration::from_secs(11 * 3600));
    assert_eq!(d.get(&overview).await.status, StatusCode::OK);
    // Idle for 13 hours: signed out, sent to sign in and back here after.
    w.advance(Duration::from_secs(13 * 3600));
    let expired = d.get(&overview).await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER);
    assert_eq!(
        expired.location(),
        format!("/login?next=%2Fprojects%2F{}", w.project)
    );
    // A post with the expired session changes nothing either.
    let before = w.t.store().list_projects().await.unwrap().len();
    let post = d
        .post("/projects", &[("name", "late"), ("mode", "test")])
        .await;
    assert_eq!(post.status, StatusCode::SEE_OTHER);
    assert_eq!(post.location(), "/login");
    assert_eq!(w.t.store().list_projects().await.unwrap().len(), before);

    // Sign-in honours `next`, but only a path of this site.
    let back = d
        .post(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", &overview),
            ],
        )
        .await;
    assert_eq!(back.location(), overview);
    let mut evil = Dash::new(&w.t);
    let away = evil
        .post(
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", "//evil.example/x"),
            ],
        )
        .await;
    assert_eq!(away.location(), "/");

    // Sign out: the cookie is cleared and the old token no longer works.
    d.get("/").await;
    let old = d.cookie().unwrap().to_string();
    let out = d.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    d.set_cookie(Some(old));
    assert_eq!(d.get(&overview).await.status, StatusCode::SEE_OTHER);

    // Sign out everywhere ends the other device's session too.
    let mut laptop = Dash::new(&w.t);
    laptop.sign_in("ada@example.com", PASSWORD).await;
    let mut phone = Dash::new(&w.t);
    phone.sign_in("ada@example.com", PASSWORD).await;
    let everywhere = laptop.post("/logout/everywhere", &[]).await;
    assert_eq!(everywhere.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.get(&overview).await.status, StatusCode::SEE_OTHER);
    // Seven days after sign-in a session ends however busy it was.
    let mut busy = Dash::new(&w.t);
    busy.sign_in("ada@example.com", PASSWORD).await;
    for _ in 0..15 {
        w.advance(Duration::from_secs(11 * 3600 + 1200));
        busy.get(&overview).await;
    }
    assert_eq!(busy.get(&overview).await.status, StatusCode::SEE_OTHER);
}

async fn pages_carry_security_headers_and_show_markup_from_stripe_and_the_app_escaped(
    backend: Backend,
) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    // Markup in the customer's metadata (its app user id) …
    let (marked, _) = w.subscribe("u_<img src=x onerror=alert(1)>", &w.pro);
    w.deliver(&marked).await;
    w.verdict(&marked).await;
    // … and in what the app answers: a plan name and a feature.
    let (customer, _) = w.subscribe("u_plain", &w.pro);
    w.app.grant(
        &customer,
        "u_plain",
        Some("<script>alert('plan')</script>"),
        &["<b>bold</b>"],
        &[("seats", 10)],
    );
    w.deliver(&customer).await;
    w.verdict(&customer).await;
    let incidents = w.incidents().await;
    let of = |c: &str| {
        incidents
            .iter()
            .find(|i| i.customer_id == c)
            .expect("an incident")
            .id
            .clone()
    };
    let (marked_incident, plan_incident) = (of(&marked), of(&customer));
    member(&w, "ada@example.com", Role::Admin).await;
    let mut d = Dash::new(&w.t);
    d.sign_in("ada@example.com", PASSWORD).await;
    let detail = d
        .get(&format!(
            "/projects/{}/incidents/{plan_incident}",
            w.project
        ))
        .await;
    assert!(
        detail
            .body
            .contains("&#60;script&#62;alert(&#39;plan&#39;)&#60;/script&#62;"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("&#60;b&#62;bold&#60;/b&#62;"));
    assert!(!detail.body.contains("<script>alert") && !detail.body.contains("<b>bold"));
    for path in [
        format!("/projects/{}/incidents", w.project),
        format!("/projects/{}/incidents/{marked_incident}", w.project),
    ] {
        let page = d.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script>alert"), "{path}: raw markup");
        assert!(!page.body.contains("<img src=x"), "{path}: raw markup");
        assert!(
            page.body.contains("u_&#60;img src=x onerror=alert(1)&#62;"),
            "{path}: {}",
            page.body
        );
        let h = &page.headers;
        assert_eq!(
            h["content-security-policy"],
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["cache-control"], "no-store");
        assert!(
            h.get("strict-transport-security").is_none(),
            "plain http: no HSTS"
        );
    }
    // No inline script anywhere: the one script is a file.
    let page = d.get(&format!("/projects/{}", w.project)).await;
    assert_eq!(page.body.matches("<script").count(), 1);
    assert!(
        page.body
            .contains("<script src=\"/static/app.js\" defer></script>")
    );
    let login = Dash::new(&w.t).get("/login").await;
    assert_eq!(login.headers["x-content-type-options"], "nosniff");
    let js = Dash::new(&w.t).get("/static/app.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(
        js.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
}

async fn the_inbox_filters_pages_and_acts_in_bulk_and_the_detail_shows_evidence(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(mismatch(&w, &format!("u_inbox{n}")).await);
    }
    member(&w, "ada@example.com", Role::Admin).await;
    let mut d = Dash::new(&w.t);
    d.sign_in("ada@example.com", PASSWORD).await;
    let base = format!("/projects/{}/incidents", w.project);
    let inbox = d.get(&base).await;
    assert_eq!(inbox.status, StatusCode::OK);
    for (customer, id) in &ids {
        assert!(inbox.body.contains(customer.as_str()) && inbox.body.contains(id.as_str()));
    }
    assert!(
        inbox.body.contains("pro · 2 features · 1 limit"),
        "{}",
        inbox.body
    );
    assert!(
        inbox.body.contains("Open <span class=\"count\">3</span>"),
        "{}",
        inbox.body
    );

    // Filters live in the query string.
    let (one_customer, one_id) = &ids[1];
    let filtered = d.get(&format!("{base}?customer={one_customer}")).await;
    assert!(filtered.body.contains(one_id.as_str()));
    assert!(!filtered.body.contains(ids[0].1.as_str()));
    let by_kind = d.get(&format!("{base}?kind=unpaid_access")).await;
    assert!(
        by_kind
            .body
            .contains("No open incidents of kind unpaid_access"),
        "{}",
        by_kind.body
    );

    // Bulk: acknowledge two; they move to the acknowledged tab.
    let page = d
        .post(
            &format!("{base}/bulk"),
            &[
                ("action", "acknowledge"),
                ("incident", &ids[0].1),
                ("incident", &ids[2].1),
                ("status", "open"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let acked = d.get(&format!("{base}?status=acknowledged")).await;
    assert!(acked.body.contains(ids[0].1.as_str()) && acked.body.contains(ids[2].1.as_str()));
    assert!(!acked.body.contains(ids[1].1.as_str()));
    assert!(
        acked
            .body
            .contains("Acknowledged <span class=\"count\">2</span>")
    );
    // Bad bulk input: the inbox with a message, nothing changed.
    let none = d
        .post(&format!("{base}/bulk"), &[("action", "resolve")])
        .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.body.contains("select at least one incident"));
    let odd = d
        .post(
            &format!("{base}/bulk"),
            &[("action", "delete"), ("incident", &ids[1].1)],
        )
        .await;
    assert_eq!(odd.status, StatusCode::UNPROCESSABLE_ENTITY);
    let stored =
        w.t.store()
            .incident(w.project.as_str(), &ids[1].1)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(stored.status, IncidentStatus::Open);

    // The detail: evidence, the difference marked, the runs, the guidance.
    let detail = d.get(&format!("{base}/{one_id}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    let body = &detail.body;
    assert!(body.contains("unfulfilled"));
    assert!(body.contains(one_customer.as_str()));
    assert!(body.contains("u_inbox1"));
    assert!(body.contains("class=\"differs\""));
    assert!(body.contains("What to do:"));
    let incident =
        w.t.store()
            .incident(w.project.as_str(), one_id)
            .await
            .unwrap()
            .unwrap();
    let event = incident.event_id.expect("the triggering event");
    assert!(body.contains(&event), "the triggering event is shown");
    let runs = w.t.store().incident_runs(one_id).await.unwrap();
    assert!(!runs.is_empty() && runs.iter().all(|r| body.contains(r.as_str())));

    // Keyset pages: 50 a page, "Older" continues where the page ended.
    for n in 3..53 {
        mismatch(&w, &format!("u_page{n}")).await;
    }
    let first = d.get(&format!("{base}?status=open")).await;
    let older = first
        .body
        .split("<p class=\"pager\"><a href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an Older link")
        .replace("&#38;", "&");
    let second = d.get(&older).await;
    assert_eq!(second.status, StatusCode::OK);
    let rows = |body: &str| body.matches("name=\"incident\" value=\"").count();
    assert_eq!(rows(&first.body), 50);
    assert_eq!(rows(&second.body), 1, "51 open incidents in all");
    assert!(!second.body.contains("class=\"pager\""));
}
