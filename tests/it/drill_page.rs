//! "Run drill" on the project page and `POST /api/v1/projects/{id}/drill`
//! (issue 9): admins only; not ready answers 409 and sends nothing; with a
//! customer it runs through PARITYRAIL_PUBLIC_URL and shows every stage
//! passing; `parityrail drill --json` reports the same.

use crate::{
    drill::known_customer,
    process::{cli, stderr, stdout},
    support::Backend,
    world::{Options, world},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_drill_button_and_the_api_need_an_admin_and_show_the_stages() {
    let mut options = Options::default();
    options.test.public_url_is_server = true;
    let Some(w) = world(Backend::Sqlite, options).await else {
        return;
    };
    let drill_page = format!("/projects/{}/drill", w.project);
    crate::dashboard::member(&w, "vic@example.com", parityrail::domain::Role::Viewer).await;
    crate::dashboard::member(&w, "ada@example.com", parityrail::domain::Role::Admin).await;
    let events = || async {
        w.t.store()
            .list_events(w.project.as_str(), 1000)
            .await
            .unwrap()
            .len()
    };
    // A viewer sees no button and may not run one.
    let mut viewer = crate::dashboard::Dash::new(&w.t);
    viewer
        .sign_in("vic@example.com", crate::dashboard::PASSWORD)
        .await;
    let overview = viewer.get(&format!("/projects/{}", w.project)).await;
    assert!(!overview.body.contains("Run drill"));
    let refused = viewer.post(&drill_page, &[]).await;
    assert_eq!(refused.status, reqwest::StatusCode::FORBIDDEN);
    // An admin without a customer yet: 409, what is missing, nothing sent.
    let mut admin = crate::dashboard::Dash::new(&w.t);
    admin
        .sign_in("ada@example.com", crate::dashboard::PASSWORD)
        .await;
    let overview = admin.get(&format!("/projects/{}", w.project)).await;
    assert!(overview.body.contains("Run drill"));
    let not_ready = admin.post(&drill_page, &[]).await;
    assert_eq!(not_ready.status, reqwest::StatusCode::CONFLICT);
    assert!(
        not_ready.body.contains("nothing was sent"),
        "{}",
        not_ready.body
    );
    assert!(not_ready.body.contains("parityrail scan"));
    assert_eq!(events().await, 0);
    // The same over the API.
    let project = w.t.project_of(&w.project).await;
    let token = |role| {
        let (app, project) = (w.t.app.clone(), project.clone());
        async move {
            parityrail::usecase::tokens::issue(&app, &project, role)
                .await
                .unwrap()
                .token
                .expose()
                .to_string()
        }
    };
    let api = w.t.url(&format!("/api/v1/projects/{}/drill", w.project));
    let viewer_token = token(parityrail::domain::Role::Viewer).await;
    let resp =
        w.t.http
            .post(&api)
            .bearer_auth(&viewer_token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 403);
    let admin_token = token(parityrail::domain::Role::Admin).await;
    let resp =
        w.t.http
            .post(&api)
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 409);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "drill_not_ready");
    // With a customer, the page runs it through PARITYRAIL_PUBLIC_URL (this
    // server; its workers run) and shows each stage passing.
    known_customer(&w, "u_page").await;
    let ran = w.t.working(admin.post(&drill_page, &[])).await;
    assert_eq!(ran.status, reqwest::StatusCode::OK, "{}", ran.body);
    assert!(ran.body.contains("id=\"drill-stages\""), "{}", ran.body);
    assert!(ran.body.contains("id=\"drill-verdict\""));
    for stage in [
        "accepted",
        "processed",
        "probed",
        "compared",
        "incident_opened",
    ] {
        assert!(
            ran.body.contains(&format!("<code>{stage}</code>")),
            "{stage}"
        );
    }
    assert!(ran.body.contains("Monitoring works"), "{}", ran.body);
    assert!(!ran.body.contains(">broke<"), "{}", ran.body);
    // The CLI's --json says the same, as one JSON report.
    let base = w.t.url("");
    let args: Vec<String> = [
        "drill",
        "--json",
        "--url",
        base.as_str(),
        w.project.as_str(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let vars = w.t.cli_env();
    let drilled = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&env, &args)
    });
    let out = w.t.working(drilled).await.unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["caught"], true, "{report}");
    assert_eq!(report["drill"], true);
    assert_eq!(report["stages"].as_array().unwrap().len(), 7, "{report}");
    w.t.stop().await;
}
