//! The run history and the webhook event log over real HTTP (issue 8):
//! filters in the query string, keyset pages, a run's every evidence step,
//! "Check a customer", an event's payload escaped, and replay (admin,
//! confirmed) linking to the new run.

use parityrail::{
    domain::{Role, Run, Trigger},
    store::{NewRun, RunFilter},
};
use reqwest::StatusCode;

use crate::{
    dashboard::{Dash, PASSWORD, manual, member, mismatch},
    support::{Backend, event_json},
    world::{World, world},
};

crate::backend_tests!(
    run_history_filters_by_verdict_and_customer_and_pages_without_overlap,
    a_run_shows_every_evidence_step_with_each_probe_status_and_latency,
    check_a_customer_starts_a_run_and_a_bad_id_comes_back_beside_the_field,
    the_event_log_filters_by_status_and_type_and_shows_the_payload_escaped,
    replay_needs_an_admin_and_a_confirmation_and_links_to_the_new_run,
    scans_show_the_running_one_with_progress_and_past_summaries,
);

async fn signed_in(w: &World, email: &str, role: Role) -> Dash {
    member(w, email, role).await;
    let mut d = Dash::new(&w.t);
    d.sign_in(email, PASSWORD).await;
    d
}

async fn all_runs(w: &World) -> Vec<Run> {
    w.t.store()
        .run_page(w.project.as_str(), &RunFilter::default(), 10_000)
        .await
        .unwrap()
}

/// Run ids linked from a history page, in order.
fn run_links(body: &str) -> Vec<String> {
    body.split("/runs/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|id| id.starts_with("run_"))
        .map(str::to_string)
        .collect()
}

/// A passing customer: subscribed to pro and granted it.
async fn healthy(w: &World, user: &str) -> String {
    let (customer, _) = w.subscribe(user, &w.pro);
    w.grant(&customer, user, "pro");
    w.deliver(&customer).await;
    w.verdict(&customer).await;
    customer
}

async fn run_history_filters_by_verdict_and_customer_and_pages_without_overlap(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (bad, _) = mismatch(&w, "u_bad").await;
    let good = healthy(&w, "u_good").await;
    let failed = w.runs(&bad).await[0].id.clone();
    let passed = w.runs(&good).await[0].id.clone();
    let mut d = signed_in(&w, "vera@example.com", Role::Viewer).await;
    let runs = format!("/projects/{}/runs", w.project);

    let page = d.get(&runs).await;
    assert_eq!(page.status, StatusCode::OK);
    let ids = run_links(&page.body);
    assert!(ids.contains(&failed) && ids.contains(&passed), "{ids:?}");

    let page = d.get(&format!("{runs}?verdict=failed")).await;
    assert_eq!(run_links(&page.body), vec![failed.clone()]);
    assert!(page.body.contains("<option value=\"failed\" selected>"));
    let page = d.get(&format!("{runs}?customer={good}")).await;
    assert_eq!(run_links(&page.body), vec![passed.clone()]);
    let page = d
        .get(&format!("{runs}?customer={good}&verdict=failed"))
        .await;
    assert!(run_links(&page.body).is_empty());
    assert!(page.body.contains("No failed runs for"));

    // 60 runs of one customer: 50 on the first page, 10 after it.
    let now = w.t.app.now_ms();
    for n in 0..60 {
        let external = format!("paging-{n}");
        w.t.store()
            .insert_run(&NewRun {
                project_id: w.project.as_str(),
                customer_id: "cus_paged",
                trigger: Trigger::Manual,
                external_id: Some(&external),
                event_id: None,
                deadline: now + 60_000,
                now: now + n,
                needs_sync: true,
            })
            .await
            .unwrap();
    }
    let first = d.get(&format!("{runs}?customer=cus_paged")).await;
    let first_ids = run_links(&first.body);
    assert_eq!(first_ids.len(), 50);
    let older = first
        .body
        .split("<a href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|href| href.contains("after="))
        .expect("an Older link")
        .replace("&#38;", "&");
    assert!(
        older.contains("customer=cus_paged"),
        "the filter is kept: {older}"
    );
    let second = d.get(&older).await;
    let second_ids = run_links(&second.body);
    assert_eq!(second_ids.len(), 10);
    assert!(!second.body.contains("after="), "no page after the last");
    assert!(
        first_ids.iter().all(|id| !second_ids.contains(id)),
        "no overlap"
    );
    // Newest first.
    let stored: Vec<String> =
        w.t.store()
            .run_page(
                w.project.as_str(),
                &RunFilter {
                    customer: Some("cus_paged".into()),
                    ..Default::default()
                },
                100,
            )
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
    assert_eq!([first_ids, second_ids].concat(), stored);
}

async fn a_run_shows_every_evidence_step_with_each_probe_status_and_latency(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    // Paid pro, granted basic: the app answers, with its deploy SHA.
    let (bad, _) = w.subscribe("u_bad", &w.pro);
    w.grant(&bad, "u_bad", "basic");
    w.deliver(&bad).await;
    let run = w.verdict(&bad).await;
    let mut d = signed_in(&w, "vera@example.com", Role::Viewer).await;
    let page = d
        .get(&format!("/projects/{}/runs/{}", w.project, run.id))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    for step in ["stripe_snapshot", "expected", "probe", "verdict"] {
        assert!(page.body.contains(&format!("step-{step}")), "{step}");
    }
    assert!(page.body.contains("1 subscription(s) read from Stripe"));
    assert!(
        page.body.contains("attempt 1 · HTTP 200 · "),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(" ms · observed: basic · 1 feature · 1 limit")
    );
    assert!(page.body.contains("failed (unfulfilled)"));
    assert!(
        page.body.contains("class=\"differs\""),
        "the differences are marked"
    );
    assert!(page.body.contains("abc123"), "the deploy SHA");
    assert!(page.body.contains(&bad));
    // The stored step carries what the page shows.
    let steps = w.steps(&run.id).await;
    let probe = &steps.iter().find(|s| s.0 == "probe").unwrap().1;
    assert_eq!(probe["http_status"], 200);
    assert!(probe["latency_ms"].is_u64());

    let missing = d
        .get(&format!("/projects/{}/runs/run_nosuchrun", w.project))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // A run of another project is not found here either.
    let other = w.t.project(parityrail::domain::ProjectMode::Test).await;
    let foreign = d.get(&format!("/projects/{other}/runs/{}", run.id)).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

async fn check_a_customer_starts_a_run_and_a_bad_id_comes_back_beside_the_field(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let good = healthy(&w, "u_good").await;
    let mut d = signed_in(&w, "vera@example.com", Role::Viewer).await;
    let runs = format!("/projects/{}/runs", w.project);
    let before = all_runs(&w).await.len();
    for bad in ["", "not a customer", "cus_<b>x</b>"] {
        let page = d.post(&runs, &[("customer", bad)]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        let field = page.body.find("id=\"check_customer\"").unwrap();
        let error = page.body[field..].find("class=\"field-error\"").unwrap();
        assert!(
            !page.body[field..field + error].contains("<input"),
            "beside its field"
        );
        assert!(page.body.contains("is not a Stripe customer id"));
        assert!(!page.body.contains("<b>x</b>"), "escaped");
        assert_eq!(all_runs(&w).await.len(), before, "{bad:?}: no run");
    }
    let started = d.post(&runs, &[("customer", &good)]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().rsplit('/').next().unwrap().to_string();
    let run = all_runs(&w)
        .await
        .into_iter()
        .find(|r| r.id == run_id)
        .unwrap();
    assert_eq!(run.trigger, Trigger::Manual);
    assert_eq!(run.customer_id, good);
    let page = d.get(started.location()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(">manual<"));
}

/// An event of a type ParityRail does not handle, with markup in it.
async fn ignored_event(w: &World) -> String {
    let id = "evt_ignored_markup_1";
    let mut body: serde_json::Value =
        serde_json::from_slice(&event_json(id, "invoice.created", "cus_markup", false)).unwrap();
    body["data"]["object"]["metadata"] = serde_json::json!({"note": "<b>planted</b>"});
    let body = serde_json::to_vec(&body).unwrap();
    assert_eq!(w.t.deliver(&w.project, &body).await.status(), 200);
    id.to_string()
}

async fn the_event_log_filters_by_status_and_type_and_shows_the_payload_escaped(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (bad, _) = mismatch(&w, "u_bad").await;
    let handled: Vec<String> =
        w.t.events(&w.project)
            .await
            .into_iter()
            .map(|e| e.event_id)
            .collect();
    assert!(!handled.is_empty());
    let ignored = ignored_event(&w).await;
    let mut d = signed_in(&w, "vera@example.com", Role::Viewer).await;
    let events = format!("/projects/{}/events", w.project);

    let page = d.get(&events).await;
    assert_eq!(page.status, StatusCode::OK);
    for id in handled.iter().chain([&ignored]) {
        assert!(page.body.contains(&format!("<code>{id}</code>")), "{id}");
    }
    assert!(page.body.contains("st-processed"));
    let only_ignored = d.get(&format!("{events}?status=ignored")).await;
    assert!(only_ignored.body.contains(&ignored));
    assert!(
        handled
            .iter()
            .all(|id| !only_ignored.body.contains(id.as_str()))
    );
    let by_type = d.get(&format!("{events}?type=invoice.created")).await;
    assert!(by_type.body.contains(&ignored));
    assert!(handled.iter().all(|id| !by_type.body.contains(id.as_str())));
    let none = d.get(&format!("{events}?status=dead")).await;
    assert!(none.body.contains("No dead events"));

    let detail = d.get(&format!("{events}/{ignored}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(
        detail.body.contains("&#60;b&#62;planted&#60;/b&#62;"),
        "{}",
        detail.body
    );
    assert!(!detail.body.contains("<b>planted"));
    assert!(
        detail
            .body
            .contains("\n  &#34;type&#34;: &#34;invoice.created&#34;"),
        "pretty-printed"
    );
    // A handled event lists the run that judged it.
    let judged = d.get(&format!("{events}/{}", handled[0])).await;
    let run = w.runs(&bad).await[0].id.clone();
    assert!(judged.body.contains(&run), "{}", judged.body);
    assert!(
        !judged.body.contains("/replay"),
        "viewers get no replay form"
    );

    let missing = d.get(&format!("{events}/evt_never_received")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn replay_needs_an_admin_and_a_confirmation_and_links_to_the_new_run(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (bad, _) = mismatch(&w, "u_bad").await;
    let event = w.t.events(&w.project).await[0].event_id.clone();
    let ignored = ignored_event(&w).await;
    let replay = format!("/projects/{}/events/{event}/replay", w.project);
    let before = all_runs(&w).await.len();

    let mut viewer = signed_in(&w, "vera@example.com", Role::Viewer).await;
    viewer
        .get(&format!("/projects/{}/events/{event}", w.project))
        .await;
    let refused = viewer.post(&replay, &[("confirm", "yes")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(all_runs(&w).await.len(), before, "a viewer replays nothing");

    let mut admin = signed_in(&w, "ada@example.com", Role::Admin).await;
    let page = admin
        .get(&format!("/projects/{}/events/{event}", w.project))
        .await;
    assert!(
        page.body.contains("name=\"confirm\""),
        "the admin sees the replay form"
    );
    let unconfirmed = admin.post(&replay, &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.body.contains("tick the confirmation first"));
    assert_eq!(
        all_runs(&w).await.len(),
        before,
        "nothing replayed unconfirmed"
    );
    let not_replayable = admin
        .post(
            &format!("/projects/{}/events/{ignored}/replay", w.project),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(not_replayable.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(not_replayable.body.contains("no replayable event"));
    assert_eq!(all_runs(&w).await.len(), before);

    let done = admin.post(&replay, &[("confirm", "yes")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let run_id = done
        .location()
        .split("run=")
        .nth(1)
        .expect("the new run")
        .to_string();
    let page = admin.get(done.location()).await;
    assert!(page.body.contains("id=\"new-run\""), "{}", page.body);
    assert!(page.body.contains(&format!("/runs/{run_id}")));
    let runs = all_runs(&w).await;
    assert_eq!(runs.len(), before + 1);
    let run = runs.iter().find(|r| r.id == run_id).unwrap();
    assert_eq!(run.trigger, Trigger::Rerun);
    assert_eq!(run.customer_id, bad);
    // The new run judges again: a verdict, the same mismatch.
    let verdict = w.verdict(&bad).await;
    assert_eq!(verdict.id, run_id);
    assert_eq!(verdict.status.as_str(), "failed");
}

async fn scans_show_the_running_one_with_progress_and_past_summaries(backend: Backend) {
    let Some(w) = world(backend, manual()).await else {
        return;
    };
    let (bad, _) = w.subscribe("u_bad", &w.pro);
    let good = healthy(&w, "u_good").await;
    let summary = w.scan().await.unwrap();
    assert_eq!(summary.customers_checked, 2, "{bad} and {good}");
    let mut d = signed_in(&w, "vera@example.com", Role::Viewer).await;
    let scans = format!("/projects/{}/scans", w.project);
    let page = d.get(&scans).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(&format!("<code>{}</code>", summary.scan_id))
    );
    assert!(page.body.contains("st-completed"));
    assert!(page.body.contains("unfulfilled 1"), "{}", page.body);
    assert!(page.body.contains("No scan is running"));
    assert!(!page.body.contains("http-equiv=\"refresh\""));

    // A running scan (another instance's): its progress, refreshed.
    let now = w.t.app.now_ms();
    let (running, _) =
        w.t.store()
            .create_scan(&parityrail::store::NewScan {
                project_id: w.project.as_str(),
                trigger: parityrail::domain::ScanTrigger::Cron,
                scheduled_for: None,
                owner: "another-instance",
                now,
                lease_until: now + 3_600_000,
            })
            .await
            .unwrap()
            .unwrap();
    let page = d.get(&scans).await;
    assert!(page.body.contains("id=\"running-scan\""));
    assert!(page.body.contains(&format!("<code>{}</code>", running.id)));
    assert!(page.body.contains("reading Stripe"));
    assert!(page.body.contains("http-equiv=\"refresh\""));
    // Scan now joins it; no second scan starts.
    let joined = d.post(&scans, &[]).await;
    assert_eq!(joined.status, StatusCode::SEE_OTHER, "{}", joined.body);
    assert!(joined.location().ends_with("done=joined"));
    let all =
        w.t.store()
            .list_scans(w.project.as_str(), 10)
            .await
            .unwrap();
    assert_eq!(all.len(), 2);
}
