//! Onboarding steps 3 and 4 over real HTTP (issue 8): the probe is saved
//! only once the app answered it and "Test probe" shows what the app said;
//! the plan map's rules are added, edited and removed; every bad input
//! comes back beside its field and changes nothing; viewers change nothing.

use parityrail::domain::Role;
use reqwest::StatusCode;

use crate::{
    dashboard::{Dash, PASSWORD, member},
    support::Backend,
    world::{Options, PROBE_SECRET, World, world},
};

crate::backend_tests!(
    the_probe_is_saved_only_once_the_app_answered_and_bad_input_changes_nothing,
    test_probe_shows_what_the_app_answered_and_viewers_cannot_change_the_probe,
    plan_rules_are_added_edited_and_removed_and_bad_rules_change_nothing,
);

async fn signed_in(w: &World, email: &str, role: Role) -> Dash {
    member(w, email, role).await;
    let mut d = Dash::new(&w.t);
    d.sign_in(email, PASSWORD).await;
    d
}

async fn probe(w: &World) -> (String, String) {
    let p = w.t.store().probe_config(&w.project).await.unwrap().unwrap();
    (p.url, p.secret_last4)
}

/// The message sits right after its field: no other input between.
fn beside(body: &str, field: &str) {
    let at = body.find(&format!("id=\"{field}\"")).expect(field);
    let error = body[at..]
        .find("class=\"field-error\"")
        .expect("a field error");
    assert!(
        !body[at..at + error].contains("<input"),
        "the error follows {field}"
    );
}

async fn the_probe_is_saved_only_once_the_app_answered_and_bad_input_changes_nothing(
    backend: Backend,
) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let mut d = signed_in(&w, "ada@example.com", Role::Admin).await;
    let step3 = format!("/projects/{}/onboarding/probe", w.project);
    let before = probe(&w).await;
    let page = d.get(&step3).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("<code>{}</code>", before.0)));
    assert!(page.body.contains("Test probe &amp; save"));

    let good_url = before.0.clone();
    let other_secret = "another_probe_secret_0000";
    let cases: [(&str, &str, &str, &str, &str); 5] = [
        (
            "ftp://example.com/probe",
            PROBE_SECRET,
            "",
            "url",
            "must be an http(s) URL",
        ),
        ("not a url", PROBE_SECRET, "", "url", "is not a URL"),
        (
            "http://127.0.0.1:9/nobody",
            PROBE_SECRET,
            "",
            "url",
            "the test probe failed",
        ),
        (&good_url, "short", "", "secret", "at least 16 characters"),
        (
            &good_url,
            PROBE_SECRET,
            "nope",
            "customer",
            "is not a Stripe customer id",
        ),
    ];
    for (url, secret, customer, field, message) in cases {
        let page = d
            .post(
                &step3,
                &[("url", url), ("secret", secret), ("customer", customer)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert!(page.body.contains(message), "{url}: {}", page.body);
        beside(&page.body, field);
        assert!(!page.body.contains(PROBE_SECRET), "no secret on the page");
        assert_eq!(probe(&w).await, before, "{url}: the probe stays");
    }
    // The app rejects a probe signed with a secret it does not know.
    let wrong = d
        .post(&step3, &[("url", &good_url), ("secret", other_secret)])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong.body.contains("the app answered HTTP 401"),
        "{}",
        wrong.body
    );
    assert_eq!(probe(&w).await, before);

    let (customer, _) = w.subscribe("u_pro", &w.pro);
    w.grant(&customer, "u_pro", "pro");
    // Synced once, so ParityRail knows the customer's app user.
    w.deliver(&customer).await;
    w.verdict(&customer).await;
    let saved = d
        .post(
            &step3,
            &[
                ("url", &format!("{good_url}/")),
                ("secret", PROBE_SECRET),
                ("customer", &customer),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(saved.body.contains("The app answered: probe saved."));
    assert!(saved.body.contains("id=\"probe-answer\""));
    assert!(saved.body.contains("HTTP 200"));
    assert!(saved.body.contains("abc123"), "the deploy SHA");
    assert!(!saved.body.contains(PROBE_SECRET));
    assert_eq!(
        probe(&w).await,
        (good_url, before.1),
        "saved (trailing slash trimmed)"
    );
}

async fn test_probe_shows_what_the_app_answered_and_viewers_cannot_change_the_probe(
    backend: Backend,
) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_pro", &w.pro);
    w.grant(&customer, "u_pro", "pro");
    // Synced once, so ParityRail knows the customer's app user.
    w.deliver(&customer).await;
    w.verdict(&customer).await;
    let mut d = signed_in(&w, "vera@example.com", Role::Viewer).await;
    let step3 = format!("/projects/{}/onboarding/probe", w.project);
    let page = d.get(&step3).await;
    assert!(
        !page.body.contains("id=\"probe-form\""),
        "no form for a viewer"
    );
    let answered = d
        .post(&format!("{step3}/test"), &[("customer", &customer)])
        .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    assert!(answered.body.contains("HTTP 200"), "{}", answered.body);
    assert!(
        answered.body.contains("pro · 2 features · 1 limit"),
        "{}",
        answered.body
    );
    // No customer: the test customer, whom the app does not know.
    let unknown = d.post(&format!("{step3}/test"), &[]).await;
    assert!(unknown.body.contains("cus_parityrail_probe_test"));
    assert!(unknown.body.contains("user not found"));
    let bad = d
        .post(&format!("{step3}/test"), &[("customer", "x<b>")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    beside(&bad.body, "customer_test");
    assert!(!bad.body.contains("x<b>"));

    let before = probe(&w).await;
    let refused = d
        .post(
            &step3,
            &[("url", "http://127.0.0.1:1/x"), ("secret", PROBE_SECRET)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(probe(&w).await, before);
}

async fn plan_rules_are_added_edited_and_removed_and_bad_rules_change_nothing(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let mut d = signed_in(&w, "ada@example.com", Role::Admin).await;
    let step4 = format!("/projects/{}/onboarding/plans", w.project);
    let map = || async {
        w.t.store()
            .plan_map(&w.project, false)
            .await
            .unwrap()
            .rules
            .into_iter()
            .map(|r| {
                (
                    format!("{:?}", r.selector),
                    r.plan,
                    r.rank,
                    r.features,
                    r.limits,
                )
            })
            .collect::<Vec<_>>()
    };
    let before = map().await;
    let page = d.get(&step4).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("<code>{}</code>", w.pro)));
    assert!(page.body.contains("seats=10"));

    let cases: [(&str, &str, &str, &str, &str, &str); 6] = [
        (
            "price",
            "",
            "pro",
            "1",
            "value",
            "give a price id, a product id or a lookup key",
        ),
        (
            "lookup_key",
            "team",
            "",
            "1",
            "plan",
            "must be 1 to 100 characters",
        ),
        (
            "lookup_key",
            "team",
            "team",
            "high",
            "rank",
            "the rank must be a whole number",
        ),
        (
            "lookup_key",
            "team",
            "team",
            "1",
            "limits",
            "\"lots\" is not a whole number",
        ),
        (
            "lookup_key",
            "team",
            "team",
            "1",
            "limits",
            "must be NAME=NUMBER",
        ),
        (
            "plan",
            "team",
            "team",
            "1",
            "value",
            "choose price, product or lookup key",
        ),
    ];
    for (n, (kind, value, plan, rank, field, message)) in cases.into_iter().enumerate() {
        let limits = if n == 4 { "seats" } else { "seats=lots" };
        let limits = if field == "limits" { limits } else { "seats=3" };
        let page = d
            .post(
                &step4,
                &[
                    ("kind", kind),
                    ("value", value),
                    ("plan", plan),
                    ("rank", rank),
                    ("limits", limits),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{n}");
        assert!(
            page.body.contains(&message.replace('"', "&#34;")),
            "{n}: {}",
            page.body
        );
        beside(&page.body, field);
        assert_eq!(map().await, before, "{n}: the map stays");
    }

    let added = d
        .post(
            &step4,
            &[
                ("kind", "lookup_key"),
                ("value", "team_monthly"),
                ("plan", "team"),
                ("rank", "3"),
                ("features", "export, audit"),
                ("limits", "seats=3"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let rules = map().await;
    assert_eq!(rules.len(), before.len() + 1);
    let team = rules.iter().find(|r| r.1 == "team").unwrap();
    assert_eq!(team.2, 3);
    assert_eq!(
        team.3.iter().cloned().collect::<Vec<_>>(),
        ["audit", "export"]
    );

    let edit = d
        .get(&format!("{step4}?edit=lookup_key:team_monthly"))
        .await;
    assert!(edit.body.contains("value=\"team_monthly\""));
    assert!(edit.body.contains("value=\"audit, export\""));
    let edited = d
        .post(
            &step4,
            &[
                ("kind", "lookup_key"),
                ("value", "team_monthly"),
                ("plan", "team"),
                ("rank", "4"),
            ],
        )
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER);
    let rules = map().await;
    assert_eq!(rules.len(), before.len() + 1, "replaced, not added");
    assert_eq!(rules.iter().find(|r| r.1 == "team").unwrap().2, 4);

    // A viewer changes nothing.
    let mut viewer = signed_in(&w, "vera@example.com", Role::Viewer).await;
    let page = viewer.get(&step4).await;
    assert!(!page.body.contains("id=\"rule-form\""));
    let refused = viewer
        .post(
            &format!("{step4}/remove"),
            &[("kind", "lookup_key"), ("value", "team_monthly")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(map().await.len(), before.len() + 1);

    let removed = d
        .post(
            &format!("{step4}/remove"),
            &[("kind", "lookup_key"), ("value", "team_monthly")],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(map().await, before);
    let again = d
        .post(
            &format!("{step4}/remove"),
            &[("kind", "lookup_key"), ("value", "team_monthly")],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}
