//! Onboarding step 1 and its API twin (issue 8): the project's id and
//! mode, and the settings that shape every verdict. A field left as shown
//! keeps its stored value; each bad value comes back beside its field and
//! changes nothing; viewers read and change nothing.

use parityrail::domain::{Project, ProjectSettings, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    dashboard::{Dash, PASSWORD, member},
    support::Backend,
    world::{Options, World, world},
};

crate::backend_tests!(
    step_one_saves_what_changed_and_bad_values_change_nothing,
    viewers_see_the_settings_but_cannot_change_them,
    settings_over_the_api_match_the_page_and_refusals_change_nothing,
);

async fn project(w: &World) -> Project {
    w.t.store().project(&w.project).await.unwrap().unwrap()
}

/// What the settings are, compared whole.
fn settings(p: &Project) -> String {
    format!(
        "{} {} {} {} {} {} {} {:?}",
        p.past_due_grace_secs,
        p.fulfillment_deadline_secs,
        p.user_metadata_key,
        p.require_mapping,
        p.lag_threshold_secs,
        p.use_entitlements,
        p.scan_at,
        p.stripe_budget_rps
    )
}

async fn signed_in(w: &World, email: &str, role: Role) -> Dash {
    member(w, email, role).await;
    let mut d = Dash::new(&w.t);
    d.sign_in(email, PASSWORD).await;
    d
}

/// The message sits right after its field: no other input between.
fn beside(body: &str, field: &str) {
    let at = body.find(&format!("id=\"{field}\"")).expect(field);
    let error = body[at..]
        .find("class=\"field-error\"")
        .unwrap_or_else(|| panic!("a field error after {field}"));
    assert!(
        !body[at + 1..at + error].contains("<input"),
        "the error follows {field}"
    );
}

/// The form as the page shows it, with `changes` applied.
fn form<'a>(
    p: &'a Project,
    grace: &'a str,
    changes: &[(&'a str, &'a str)],
) -> Vec<(&'a str, String)> {
    let mut fields: Vec<(&str, String)> = vec![
        ("past_due_grace_days", grace.to_string()),
        (
            "fulfillment_deadline",
            p.fulfillment_deadline_secs.to_string(),
        ),
        ("user_metadata_key", p.user_metadata_key.clone()),
        ("lag_threshold", p.lag_threshold_secs.to_string()),
        ("scan_at", p.scan_at.clone()),
        (
            "stripe_budget",
            p.stripe_budget_rps
                .map(|b| b.to_string())
                .unwrap_or_default(),
        ),
    ];
    if p.require_mapping {
        fields.push(("require_mapping", "on".into()));
    }
    if p.use_entitlements {
        fields.push(("use_entitlements", "on".into()));
    }
    for (name, value) in changes {
        fields.retain(|(n, _)| n != name);
        if !value.is_empty() || *name == "stripe_budget" {
            fields.push((name, value.to_string()));
        }
    }
    fields
}

async fn post(d: &mut Dash, path: &str, fields: &[(&str, String)]) -> crate::dashboard::Page {
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    d.post(path, &pairs).await
}

async fn step_one_saves_what_changed_and_bad_values_change_nothing(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    // A grace set in seconds (as `project config` can't, but the store
    // allows): the page shows it as a fraction and keeps it when untouched.
    w.settings(ProjectSettings {
        past_due_grace_secs: Some(90),
        ..ProjectSettings::default()
    })
    .await;
    let mut d = signed_in(&w, "ada@example.com", Role::Admin).await;
    let step1 = format!("/projects/{}/onboarding/project", w.project);
    let page = d.get(&step1).await;
    assert_eq!(page.status, StatusCode::OK);
    let before = project(&w).await;
    for shown in [
        format!("<code>{}</code>", w.project),
        "value=\"0.001\"".into(),
        format!("value=\"{}\"", before.scan_at),
        "Save settings".into(),
        "aria-current=\"step\">1 Project".into(),
    ] {
        assert!(page.body.contains(&shown), "{shown} in {}", page.body);
    }
    // Every other step links back to step 1.
    for step in ["stripe", "probe", "plans"] {
        let other = d
            .get(&format!("/projects/{}/onboarding/{step}", w.project))
            .await;
        assert!(
            other.body.contains(&format!("href=\"{step1}\">1 Project")),
            "{step}"
        );
    }

    // Each bad value: 422, the message beside its field, what was typed kept,
    // nothing stored.
    let cases = [
        ("past_due_grace_days", "three", "whole number of days"),
        ("past_due_grace_days", "1.5", "whole number of days"),
        ("past_due_grace_days", "-1", "not negative"),
        ("fulfillment_deadline", "2m", "whole number of seconds"),
        ("fulfillment_deadline", "-5", "not negative"),
        ("user_metadata_key", " ", "1 to 40 characters"),
        ("user_metadata_key", &"k".repeat(41), "1 to 40 characters"),
        ("lag_threshold", "soon", "whole number of seconds"),
        ("scan_at", "25:00", "must be HH:MM (UTC)"),
        ("scan_at", "3pm", "must be HH:MM (UTC)"),
        ("stripe_budget", "0", "1 to 1000 requests per second"),
        (
            "stripe_budget",
            "fast",
            "whole number of requests per second",
        ),
    ];
    for (field, value, message) in cases {
        let sent = form(&before, "0.001", &[(field, value)]);
        let answer = post(&mut d, &step1, &sent).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value:?}"
        );
        assert!(
            answer.body.contains(message),
            "{field}={value:?}: {}",
            answer.body
        );
        beside(&answer.body, field);
        assert_eq!(
            answer.body.matches("class=\"field-error\"").count(),
            1,
            "one message"
        );
        if !value.trim().is_empty() {
            assert!(
                answer.body.contains(&format!("value=\"{value}\"")),
                "what was typed stays"
            );
        }
        assert_eq!(settings(&project(&w).await), settings(&before), "{field}");
    }
    // One bad field among good ones: none of them is saved.
    let sent = form(
        &before,
        "0.001",
        &[("fulfillment_deadline", "300"), ("scan_at", "nope")],
    );
    assert_eq!(
        post(&mut d, &step1, &sent).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(settings(&project(&w).await), settings(&before));

    // Changing the scan time alone keeps the 90-second grace.
    let sent = form(&before, "0.001", &[("scan_at", "04:30")]);
    let saved = post(&mut d, &step1, &sent).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(saved.location(), format!("{step1}?done=saved"));
    let after = project(&w).await;
    assert_eq!(after.scan_at, "04:30");
    assert_eq!(after.past_due_grace_secs, 90);
    assert_eq!(
        after.fulfillment_deadline_secs,
        before.fulfillment_deadline_secs
    );
    assert!(
        d.get(saved.location())
            .await
            .body
            .contains("Settings saved.")
    );

    // Every field at once, both checkboxes flipped; a blank budget keeps it.
    let sent = form(
        &after,
        "0.001",
        &[
            ("past_due_grace_days", "7"),
            ("fulfillment_deadline", "600"),
            ("user_metadata_key", "account_id"),
            ("lag_threshold", "90"),
            ("stripe_budget", "40"),
        ],
    );
    let mut sent = sent;
    sent.retain(|(n, _)| *n != "require_mapping" && *n != "use_entitlements");
    if !after.require_mapping {
        sent.push(("require_mapping", "on".into()));
    }
    if !after.use_entitlements {
        sent.push(("use_entitlements", "on".into()));
    }
    assert_eq!(
        post(&mut d, &step1, &sent).await.status,
        StatusCode::SEE_OTHER
    );
    let all = project(&w).await;
    assert_eq!(
        (
            all.past_due_grace_secs,
            all.fulfillment_deadline_secs,
            all.user_metadata_key.as_str(),
            all.lag_threshold_secs,
            all.stripe_budget_rps,
        ),
        (7 * 86_400, 600, "account_id", 90, Some(40))
    );
    assert_eq!(all.require_mapping, !after.require_mapping);
    assert_eq!(all.use_entitlements, !after.use_entitlements);
    let blank = form(&all, "7", &[("stripe_budget", "")]);
    assert_eq!(
        post(&mut d, &step1, &blank).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        settings(&project(&w).await),
        settings(&all),
        "blank keeps it"
    );
    w.t.stop().await;
}

async fn viewers_see_the_settings_but_cannot_change_them(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let mut d = signed_in(&w, "vic@example.com", Role::Viewer).await;
    let step1 = format!("/projects/{}/onboarding/project", w.project);
    let page = d.get(&step1).await;
    assert_eq!(page.status, StatusCode::OK);
    let before = project(&w).await;
    assert!(!page.body.contains("id=\"settings-form\""), "no form");
    assert!(page.body.contains(&format!("{} UTC", before.scan_at)));
    assert!(
        page.body
            .contains(&format!("{} s", before.fulfillment_deadline_secs))
    );
    // The viewer's own session token, so only the role refuses it.
    let sent = form(&before, "3", &[("scan_at", "05:00")]);
    let answer = post(&mut d, &step1, &sent).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert_eq!(settings(&project(&w).await), settings(&before));
    // Signed out: sent to sign in, nothing changed.
    let mut out = Dash::new(&w.t);
    let away = out.get(&step1).await;
    assert!(
        away.location().starts_with("/login?next="),
        "{}",
        away.location()
    );
    w.t.stop().await;
}

async fn call(w: &World, method: Method, token: &str, body: Option<&str>) -> (StatusCode, Value) {
    let mut req =
        w.t.http
            .request(
                method,
                w.t.url(&format!("/api/v1/projects/{}/settings", w.project)),
            )
            .bearer_auth(token);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn settings_over_the_api_match_the_page_and_refusals_change_nothing(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let (admin, viewer) = (
        w.t.token(&w.project, Role::Admin).await,
        w.t.token(&w.project, Role::Viewer).await,
    );
    let (status, shown) = call(&w, Method::GET, &viewer, None).await;
    assert_eq!(status, StatusCode::OK);
    let before = project(&w).await;
    assert_eq!(shown["id"], w.project.to_string());
    assert_eq!(shown["scan_at"], before.scan_at.as_str());
    assert_eq!(
        shown["past_due_grace_days"],
        before.past_due_grace_secs / 86_400
    );
    assert_eq!(
        shown["fulfillment_deadline"],
        before.fulfillment_deadline_secs
    );
    assert_eq!(shown["mode"], "test");
    for (body, why) in [
        ("", "the body is empty"),
        ("not json", "expected"),
        ("[1]", "not an object"),
        (r#"{"scan_time":"04:00"}"#, "unknown field"),
        (r#"{"past_due_grace_days":"3"}"#, "invalid type"),
        (r#"{"past_due_grace_days":-1}"#, "not negative"),
        (r#"{"fulfillment_deadline":-1}"#, "not negative"),
        (r#"{"scan_at":"24:00"}"#, "HH:MM"),
        (r#"{"stripe_budget":5000}"#, "1 to 1000"),
        (r#"{"user_metadata_key":""}"#, "1 to 40"),
        (r#"{"lag_threshold":10,"scan_at":"x"}"#, "HH:MM"),
    ] {
        let (status, answer) = call(&w, Method::PATCH, &admin, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request", "{body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{body}: {message}");
        assert_eq!(settings(&project(&w).await), settings(&before), "{body}");
    }
    let (status, answer) = call(&w, Method::PATCH, &viewer, Some(r#"{"scan_at":"04:00"}"#)).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("forbidden"))
    );
    assert_eq!(settings(&project(&w).await), settings(&before));

    let (status, answer) = call(
        &w,
        Method::PATCH,
        &admin,
        Some(r#"{"scan_at":"04:00","past_due_grace_days":5,"stripe_budget":30}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let after = project(&w).await;
    assert_eq!(
        (
            after.scan_at.as_str(),
            after.past_due_grace_secs,
            after.stripe_budget_rps
        ),
        ("04:00", 5 * 86_400, Some(30))
    );
    assert_eq!(
        after.fulfillment_deadline_secs, before.fulfillment_deadline_secs,
        "left out, kept"
    );
    assert_eq!(
        answer,
        call(&w, Method::GET, &viewer, None).await.1,
        "answers what is stored"
    );
    // The page shows what the API set.
    let mut d = signed_in(&w, "ada@example.com", Role::Admin).await;
    let page = d
        .get(&format!("/projects/{}/onboarding/project", w.project))
        .await;
    assert!(page.body.contains("value=\"04:00\"") && page.body.contains("value=\"30\""));
    w.t.stop().await;
}
