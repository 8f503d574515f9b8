//! Security items found in review (issue 7, items 12–15): no URL secrets in
//! errors, bounded reads, secret rolls that can be finished, forged floods
//! that cost no database reads, customer ids checked before Stripe URLs.

use std::time::Duration;

use parityrail::domain::{Role, RunKind, Trigger};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    process::{cli, database_url, stderr, stdout},
    support::{Backend, TEST_SECRET, TestOptions, event_json, sign},
    world::{Options, PROBE_SECRET, world},
};

crate::backend_tests!(
    probe_errors_never_show_the_probe_urls_credentials_or_query,
    slow_clients_are_cut_off_at_the_header_and_body_timeouts,
    a_secret_roll_can_be_finished_and_the_last_secret_is_kept,
    a_flood_of_forged_signatures_costs_no_database_reads,
    customer_ids_are_checked_before_they_reach_a_stripe_url,
);

/// Item 12. An unreachable probe URL with credentials and a query: the run,
/// its evidence, the incident and the API answers never show them.
async fn probe_errors_never_show_the_probe_urls_credentials_or_query(backend: Backend) {
    let Some(w) = world(
        backend,
        Options {
            manual_clock: true,
            deadline_secs: 1,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    // A user name or password in either URL is refused before anything is
    // stored, and the refusal does not repeat it.
    let project = w.t.project_of(&w.project).await;
    let before = format!("{:?}", w.t.store().project(&w.project).await.unwrap());
    for (url, hook) in [
        (
            "http://probe-user:hunter2pass@127.0.0.1:9/parityrail/access",
            None,
        ),
        (
            "http://127.0.0.1:9/parityrail/access",
            Some("http://hook-user:hookpass77@127.0.0.1:9/reconcile"),
        ),
    ] {
        let refused = parityrail::usecase::projects::set_probe(
            &w.t.app,
            &project,
            url,
            &parityrail::config::Secret::new(PROBE_SECRET),
            hook,
        )
        .await
        .unwrap_err();
        let text = format!("{refused} {refused:?}");
        assert!(text.contains("user name or password"), "{text}");
        assert!(
            !text.contains("hunter2pass") && !text.contains("hookpass77"),
            "{text}"
        );
    }
    assert_eq!(
        format!("{:?}", w.t.store().project(&w.project).await.unwrap()),
        before,
        "nothing was stored"
    );
    // Port 9 (discard): nothing listens, the connection is refused.
    let url = "http://127.0.0.1:9/parityrail/access?token=sekrit123";
    let hook = "http://127.0.0.1:9/reconcile?key=hooksecret88";
    w.t.set_probe(&w.project, url, PROBE_SECRET, Some(hook))
        .await;
    let (customer, _) = w.subscribe("u_probe", &w.pro);
    let run = w.t.check_now(&w.project, &customer, Trigger::Manual).await;
    assert_eq!(run.kind, Some(RunKind::ProbeFailed));
    let token = w.t.token(&w.project, Role::Admin).await;
    let api = |path: String| {
        let (http, url, token) = (w.t.http.clone(), w.t.url(&path), token.clone());
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let mut seen = vec![
        format!("{run:?}"),
        format!("{:?}", w.steps(&run.id).await),
        format!("{:?}", w.incidents().await),
        api(format!("/api/v1/projects/{}/runs/{}", w.project, run.id)).await,
        api(format!("/api/v1/projects/{}/incidents", w.project)).await,
    ];
    // Reconcile an access incident through the hook (unreachable too).
    let incident = parityrail::store::NewIncident {
        project_id: w.project.to_string(),
        kind: parityrail::domain::IncidentKind::Unfulfilled,
        customer_id: customer.clone(),
        event_id: None,
        details: json!({}),
        count: None,
        now: parityrail::now_ms(),
        evidence: parityrail::store::Evidence {
            app_user_id: Some("u_probe".into()),
            expected: Some(json!({"active": true})),
            ..Default::default()
        },
    };
    let id = w.t.store().open_incident(&incident).await.unwrap();
    let resp =
        w.t.http
            .post(w.t.url(&format!(
                "/api/v1/projects/{}/incidents/{id}/reconcile",
                w.project
            )))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 502);
    seen.push(resp.text().await.unwrap());
    for text in &seen {
        for secret in ["hunter2pass", "sekrit123", "hookpass77", "hooksecret88"] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
    }
    assert!(
        seen[0].contains("unreachable"),
        "the error still says what happened: {}",
        seen[0]
    );
    w.t.stop().await;
}

/// Item 12. A client that trickles its headers, or stops sending its body,
/// is cut off at the read timeouts instead of holding a connection open.
async fn slow_clients_are_cut_off_at_the_header_and_body_timeouts(backend: Backend) {
    let Some(w) = world(
        backend,
        Options {
            test: TestOptions {
                env: vec![
                    ("PARITYRAIL_HEADER_READ_TIMEOUT_SECS", "0.5".into()),
                    ("PARITYRAIL_BODY_READ_TIMEOUT_SECS", "0.5".into()),
                ],
                ..TestOptions::default()
            },
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    // Headers that never end.
    let mut slow = tokio::net::TcpStream::connect(w.t.addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /api/webhooks/stripe/{} HTTP/1.1\r\nHost: x\r\n",
            w.project
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the connection was closed by the server");
    // A body that stops half-way.
    let mut slow = tokio::net::TcpStream::connect(w.t.addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /api/webhooks/stripe/{} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{\"id\":",
            w.project
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let answered = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(answered.is_ok(), "answered and closed within the timeout");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(w.t.events(&w.project).await.is_empty());
    w.t.stop().await;
}

/// Item 13. During a secret roll both secrets are held; the old one can be
/// removed once the roll is done (CLI and API), and the last one only on
/// purpose: without a secret every webhook is refused.
async fn a_secret_roll_can_be_finished_and_the_last_secret_is_kept(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let new_secret = "whsec_rolled_new_secret_0042";
    let vars = [
        ("DATABASE_URL", database_url(&w.t.db.url)),
        ("PARITYRAIL_MASTER_KEY", w.t.master_key_hex.clone()),
    ];
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let project = w.project.to_string();
    let out = cli(&env, &["stripe", "secrets", "add", &project, new_secret]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(&env, &["stripe", "secrets", "list", &project, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed.len(), 2);
    let text = stdout(&out);
    assert!(!text.contains(TEST_SECRET) && !text.contains(new_secret));
    assert_eq!(listed[1]["last4"], "0042");
    let old_id = listed[0]["id"].as_str().unwrap().to_string();
    // Both verify during the roll; the old one has matched.
    let a = event_json("evt_roll_a", "invoice.paid", "cus_roll", false);
    assert_eq!(w.t.deliver(&w.project, &a).await.status(), 200);
    let b = event_json("evt_roll_b", "invoice.paid", "cus_roll", false);
    let signed = sign(new_secret, &b);
    assert_eq!(
        w.t.post_webhook(&w.project, &b, Some(&signed))
            .await
            .status(),
        200
    );
    let out = cli(&env, &["stripe", "secrets", "list", &project, "--json"]);
    let listed: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        listed.iter().all(|s| !s["last_matched_at"].is_null()),
        "{listed:?}"
    );
    // Finish the roll: the old secret goes (through the API this time).
    let token = w.t.token(&w.project, Role::Admin).await;
    let secrets_url =
        w.t.url(&format!("/api/v1/projects/{}/stripe/secrets", w.project));
    let resp =
        w.t.http
            .delete(format!("{secrets_url}/{old_id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 204);
    // The old signature no longer verifies, at once.
    let c = event_json("evt_roll_c", "invoice.paid", "cus_roll", false);
    assert_eq!(w.t.deliver(&w.project, &c).await.status(), 400);
    // The last secret: refused without force, from the CLI and the API.
    let out = cli(&env, &["stripe", "secrets", "list", &project, "--json"]);
    let listed: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let last_id = listed[0]["id"].as_str().unwrap().to_string();
    let out = cli(&env, &["stripe", "secrets", "remove", &project, &last_id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let resp =
        w.t.http
            .delete(format!("{secrets_url}/{last_id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 409);
    let d = event_json("evt_roll_d", "invoice.paid", "cus_roll", false);
    let signed = sign(new_secret, &d);
    assert_eq!(
        w.t.post_webhook(&w.project, &d, Some(&signed))
            .await
            .status(),
        200,
        "the refused removals changed nothing"
    );
    // A viewer may not see or change secrets; an unknown id is 404.
    let viewer = parityrail::usecase::tokens::issue(
        &w.t.app,
        &w.t.project_of(&w.project).await,
        Role::Viewer,
    )
    .await
    .unwrap();
    let resp =
        w.t.http
            .get(&secrets_url)
            .bearer_auth(viewer.token.expose())
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 403);
    let out = cli(&env, &["stripe", "secrets", "remove", &project, "whs_999"]);
    assert!(
        stderr(&out).contains("no signing secret"),
        "{}",
        stderr(&out)
    );
    // With --force the last one goes, and webhooks are refused.
    let out = cli(
        &env,
        &["stripe", "secrets", "remove", &project, &last_id, "--force"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let e = event_json("evt_roll_e", "invoice.paid", "cus_roll", false);
    let signed = sign(new_secret, &e);
    let resp = w.t.post_webhook(&w.project, &e, Some(&signed)).await;
    assert_eq!(
        resp.status(),
        400,
        "no secret left: refused (Stripe retries)"
    );
    w.t.stop().await;
}

/// Item 14. Forged signatures for a known project cost HMACs, not a
/// database read each: the directory reloads the project at most once a
/// second on a miss.
async fn a_flood_of_forged_signatures_costs_no_database_reads(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let warm = event_json("evt_warm", "invoice.paid", "cus_flood", false);
    assert_eq!(w.t.deliver(&w.project, &warm).await.status(), 200);
    let before = w.t.app.intake.directory.loads();
    let started = std::time::Instant::now();
    for n in 0..300 {
        let body = event_json(
            &format!("evt_forged_{n}"),
            "invoice.paid",
            "cus_flood",
            false,
        );
        let forged = sign("whsec_not_the_projects_secret", &body);
        let resp = w.t.post_webhook(&w.project, &body, Some(&forged)).await;
        assert_eq!(resp.status(), 400);
    }
    let seconds = started.elapsed().as_secs() + 1;
    let loads = w.t.app.intake.directory.loads() - before;
    assert!(
        loads <= seconds + 1,
        "{loads} project reads for 300 forged requests in {seconds} s"
    );
    // A real delivery in the middle of it is still accepted.
    let real = event_json("evt_real", "invoice.paid", "cus_flood", false);
    assert_eq!(w.t.deliver(&w.project, &real).await.status(), 200);
    let metrics =
        w.t.http
            .get(w.t.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(metrics.contains("parityrail_directory_loads_total"));
    w.t.stop().await;
}

/// Item 15. A customer id that is not `cus_` and letters or digits never
/// reaches a Stripe URL, whichever way it came in.
async fn customer_ids_are_checked_before_they_reach_a_stripe_url(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let hostile = "cus_abc/../../v1/charges";
    // A webhook naming it: stored, ignored with the reason, never processed.
    let body = event_json("evt_hostile", "invoice.paid", hostile, false);
    let resp = w.t.deliver(&w.project, &body).await;
    assert_eq!(resp.status(), 200);
    w.t.drain_all().await;
    let events = w.t.events(&w.project).await;
    assert_eq!(events[0].status.as_str(), "ignored");
    assert!(
        events[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("not a Stripe customer id"),
        "{events:?}"
    );
    // The API: 400, no run.
    let token = w.t.token(&w.project, Role::Admin).await;
    for customer in [hostile, "cus_", "cus_a b", "sub_123"] {
        let resp =
            w.t.http
                .post(w.t.url(&format!("/api/v1/projects/{}/checks", w.project)))
                .bearer_auth(&token)
                .json(&json!({ "customer": customer }))
                .send()
                .await
                .unwrap();
        assert_eq!(resp.status(), 400, "{customer}");
    }
    // The CLI: an error, no run.
    let vars = [
        ("DATABASE_URL", database_url(&w.t.db.url)),
        ("PARITYRAIL_MASTER_KEY", w.t.master_key_hex.clone()),
    ];
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = cli(&env, &["check", w.project.as_str(), hostile]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a Stripe customer id"),
        "{}",
        stderr(&out)
    );
    assert!(
        w.t.store()
            .list_runs(w.project.as_str(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The app's /list: an id that is not a customer id is skipped.
    w.app.grant(
        hostile,
        "u_hostile",
        Some("pro"),
        &["export", "sso"],
        &[("seats", 10)],
    );
    w.sim.set_emit_events(false);
    let summary = w.scan().await.unwrap();
    assert_eq!(summary.customers_checked, 0, "{summary:?}");
    assert!(
        w.sim
            .requests()
            .iter()
            .all(|r| !r.path.contains("..") && !r.path.contains("charges")),
        "{:?}",
        w.sim.requests()
    );
    w.t.stop().await;
}
