//! The full scan: pagination inside the Stripe budget, batch probes, the
//! app's /list walk, summaries, resume after a crash, one scheduled scan per
//! day across instances, and the cron endpoint.

use std::collections::BTreeSet;

use parityrail::{
    access::{PlanRule, Selector},
    domain::{ProjectSettings, ScanTrigger, Trigger},
    ids::ProjectId,
    scan::{self, Slice, SlicePlan, schedule},
    store::{NewScan, ScanCheckpoint},
};
use sample_app::SampleApp;
use serde_json::Value;
use stripe_sim::StripeSim;

use crate::support::{Backend, TEST_KEY, TestApp, TestOptions};

crate::backend_tests!(
    scan_finds_every_kind_of_mismatch_and_summarises,
    scan_honours_rate_limits_and_retry_after,
    scan_resumes_from_its_checkpoint,
    scheduled_scan_runs_once_across_instances,
    cron_endpoint_needs_its_secret,
);

const PROBE_SECRET: &str = "probe_secret_for_scan_tests_0123";

struct World {
    t: TestApp,
    sim: StripeSim,
    app: SampleApp,
    _handles: (stripe_sim::SimHandle, sample_app::SampleHandle),
    project: ProjectId,
    pro: String,
    basic: String,
}

async fn world(backend: Backend, opts: TestOptions) -> Option<World> {
    let sim = StripeSim::new();
    sim.add_api_key(TEST_KEY);
    sim.set_emit_events(false);
    let sim_handle = sim.start().await;
    let app = SampleApp::new(PROBE_SECRET);
    let app_handle = app.start().await;
    let t = TestApp::spawn_with(
        backend,
        TestOptions {
            stripe_api_base: sim_handle.base_url(),
            ..opts
        },
    )
    .await?;
    let project = t.connected_project().await;
    t.set_probe(&project, &app_handle.probe_url(), PROBE_SECRET, None)
        .await;
    let product = sim.create_product("App");
    let basic = sim.create_price(&product, Some("basic"), 1000);
    let pro = sim.create_price(&product, Some("pro"), 3000);
    for (price, plan, rank) in [(&basic, "basic", 1), (&pro, "pro", 2)] {
        let rule = PlanRule {
            selector: Selector::Price(price.clone()),
            plan: plan.into(),
            rank,
            features: BTreeSet::new(),
            limits: Default::default(),
        };
        t.store().upsert_plan_rule(&project, &rule).await.unwrap();
    }
    let settings = ProjectSettings {
        stripe_budget_rps: Some(200),
        ..Default::default()
    };
    t.store()
        .update_project_settings(&project, &settings)
        .await
        .unwrap();
    Some(World {
        t,
        sim,
        app,
        _handles: (sim_handle, app_handle),
        project,
        pro,
        basic,
    })
}

impl World {
    /// `n` paying customers the app serves correctly.
    fn healthy(&self, n: usize) {
        for i in 0..n {
            let user = format!("u{i}");
            let c = self
                .sim
                .create_customer(&format!("{user}@example.com"), &[]);
            self.sim.create_subscription(
                &c,
                &[&self.pro],
                "active",
                &[("parityrail_user_id", &user)],
            );
            self.app.grant(&c, &user, Some("pro"), &[], &[]);
        }
    }

    fn customer(&self, user: &str, price: &str) -> (String, String) {
        let c = self
            .sim
            .create_customer(&format!("{user}@example.com"), &[]);
        let s =
            self.sim
                .create_subscription(&c, &[price], "active", &[("parityrail_user_id", user)]);
        (c, s)
    }

    async fn run_scan(&self) -> scan::ScanSummary {
        let started = scan::create(&self.t.app, &self.project, ScanTrigger::Manual)
            .await
            .unwrap();
        scan::run(&self.t.app, started.scan, &started.owner, None)
            .await
            .unwrap()
    }

    /// Page reads of the whole list (not a customer's, not the limit=1 planning reads).
    fn page_reads(&self) -> Vec<stripe_sim::RequestRecord> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.path == "/v1/subscriptions" && !r.query.contains("customer="))
            .filter(|r| r.query.contains("limit=100"))
            .collect()
    }
}

async fn scan_finds_every_kind_of_mismatch_and_summarises(backend: Backend) {
    let Some(w) = world(backend, TestOptions::default()).await else {
        return;
    };
    w.healthy(230);
    let (paid, _) = w.customer("u_paid", &w.pro); // no access in the app
    let (gone, sub) = w.customer("u_gone", &w.pro);
    w.app.grant(&gone, "u_gone", Some("pro"), &[], &[]);
    w.sim.cancel_subscription(&sub);
    let (down, _) = w.customer("u_down", &w.basic);
    w.app.grant(&down, "u_down", Some("pro"), &[], &[]);
    w.app
        .grant("cus_neverinstripe", "u_ghost", Some("pro"), &[], &[]);
    w.sim.reset_request_log();
    let summary = w.run_scan().await;
    assert_eq!(summary.status.as_str(), "completed");
    assert_eq!(summary.subscriptions_seen, 233);
    assert_eq!(
        summary.customers_checked, 234,
        "233 from Stripe + 1 found only by /list"
    );
    assert_eq!(
        summary.mismatches.get("unfulfilled"),
        Some(&1),
        "{:?}",
        summary.mismatches
    );
    assert_eq!(
        summary.mismatches.get("unpaid_access"),
        Some(&3),
        "{:?}",
        summary.mismatches
    );
    // 233 subscriptions = 3 full pages, plus at most one short page per time slice.
    let reads = w.page_reads().len();
    assert!((3..=3 + 8).contains(&reads), "{reads} page reads");
    assert!(
        summary.stripe_requests >= 3 + 4 * 3,
        "pages plus one confirming re-read per suspect"
    );
    assert!(summary.probe_requests > 3, "a batch plus the /list pages");
    let incidents =
        w.t.store()
            .list_incidents(w.project.as_str())
            .await
            .unwrap();
    let found: BTreeSet<(String, String)> = incidents
        .iter()
        .map(|i| (i.kind.as_str().to_string(), i.customer_id.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("unfulfilled".to_string(), paid),
        ("unpaid_access".to_string(), gone),
        ("unpaid_access".to_string(), down),
        ("unpaid_access".to_string(), "cus_neverinstripe".to_string()),
    ]
    .into();
    assert_eq!(found, expected);
    let runs =
        w.t.store()
            .list_runs(w.project.as_str(), None, 100)
            .await
            .unwrap();
    assert_eq!(
        runs.len(),
        4,
        "runs only for suspects: evidence without a run per healthy customer"
    );
    assert!(
        runs.iter()
            .all(|r| r.trigger == Trigger::Scan && r.status.as_str() == "failed")
    );
    // A second scan checks the same customers and opens nothing new.
    let again = w.run_scan().await;
    assert_eq!(again.mismatches.values().sum::<i64>(), 4);
    assert_eq!(
        w.t.store()
            .list_incidents(w.project.as_str())
            .await
            .unwrap()
            .len(),
        4
    );
    let scans =
        w.t.store()
            .list_scans(w.project.as_str(), 10)
            .await
            .unwrap();
    assert_eq!(scans.len(), 2);
    w.t.stop().await;
}

async fn scan_honours_rate_limits_and_retry_after(backend: Backend) {
    let Some(w) = world(backend, TestOptions::default()).await else {
        return;
    };
    w.healthy(250);
    // Stripe allows 4 requests a second; the project's budget says 200.
    w.sim.set_rate_limit(Some(4));
    w.sim.reset_request_log();
    let summary = w.run_scan().await;
    assert_eq!(summary.status.as_str(), "completed");
    assert_eq!(summary.subscriptions_seen, 250);
    let limited = w.sim.requests().iter().filter(|r| r.status == 429).count();
    assert!(limited > 0, "the rate limit was hit");
    let ok: Vec<String> = w
        .page_reads()
        .into_iter()
        .filter(|r| r.status == 200)
        .map(|r| r.query)
        .collect();
    let distinct: BTreeSet<&String> = ok.iter().collect();
    assert_eq!(
        distinct.len(),
        ok.len(),
        "no page was read twice successfully: {ok:?}"
    );
    assert!(summary.stripe_requests as usize >= ok.len() + limited);
    w.t.stop().await;
}

async fn scan_resumes_from_its_checkpoint(backend: Backend) {
    let Some(w) = world(backend, TestOptions::default()).await else {
        return;
    };
    w.healthy(250);
    // Find the id that ends page one (Stripe lists newest first).
    let page_one =
        w.t.app
            .stripe
            .subscriptions_page(&parityrail::config::Secret::new(TEST_KEY), None)
            .await
            .unwrap();
    let cursor = page_one.0.last().unwrap().id.clone();
    // A scan that got through page one (stored it), then its instance died.
    let now = parityrail::now_ms();
    w.t.store()
        .upsert_subscriptions(w.project.as_str(), &page_one.0, now)
        .await
        .unwrap();
    let (scan, _) =
        w.t.store()
            .create_scan(&NewScan {
                project_id: w.project.as_str(),
                trigger: ScanTrigger::Manual,
                scheduled_for: None,
                owner: "dead-instance",
                now,
                lease_until: now + 60_000,
            })
            .await
            .unwrap()
            .unwrap();
    let checkpoint = ScanCheckpoint {
        stripe_cursor: Some(
            SlicePlan {
                slices: vec![Slice {
                    gte: 0,
                    lt: i64::MAX,
                    after: Some(cursor),
                    done: false,
                }],
            }
            .to_checkpoint(),
        ),
        subscriptions_seen: 100,
        customers_checked: 100,
        mismatches: "{}".into(),
        stripe_requests: 1,
        ..ScanCheckpoint::default()
    };
    w.t.store()
        .checkpoint_scan(&scan.id, "dead-instance", &checkpoint, now - 1)
        .await
        .unwrap();
    w.sim.reset_request_log();
    let resumed = schedule::resume_stale(&w.t.app, parityrail::now_ms())
        .await
        .unwrap();
    assert!(resumed.contains(&scan.id), "{resumed:?}");
    let done = crate::support::eventually(std::time::Duration::from_secs(20), || async {
        let s = w.t.store().scan(&scan.id).await.unwrap().unwrap();
        (s.status.as_str() != "running").then_some(s)
    })
    .await;
    assert_eq!(done.status.as_str(), "completed", "{:?}", done.error);
    assert_eq!(
        done.subscriptions_seen, 250,
        "counters continue from the checkpoint"
    );
    let lists: Vec<String> = w.page_reads().into_iter().map(|r| r.query).collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert!(
        lists.iter().all(|q| q.contains("starting_after")),
        "page one was not read again: {lists:?}"
    );
    w.t.stop().await;
}

async fn scheduled_scan_runs_once_across_instances(backend: Backend) {
    let Some(w) = world(backend, TestOptions::default()).await else {
        return;
    };
    w.healthy(5);
    let settings = ProjectSettings {
        scan_at: Some("00:00".into()),
        ..Default::default()
    };
    w.t.store()
        .update_project_settings(&w.project, &settings)
        .await
        .unwrap();
    // A second instance on the same database.
    let config = crate::support::config_for(
        &w.t.db.url,
        &hex_of(&w.t),
        &TestOptions {
            stripe_api_base: w.t.app.config.stripe_api_base.clone(),
            ..TestOptions::default()
        },
    );
    let other = parityrail::App::start(config).await.unwrap();
    let now = parityrail::now_ms();
    let (a, b) = tokio::join!(
        schedule::start_due(&w.t.app, now),
        schedule::start_due(&other, now)
    );
    let started: Vec<String> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    assert_eq!(
        started.len(),
        1,
        "exactly one instance runs the day's scan: {started:?}"
    );
    // Later ticks the same day start nothing.
    assert!(
        schedule::start_due(&other, now + 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    crate::support::eventually(std::time::Duration::from_secs(20), || async {
        let s = w.t.store().scan(&started[0]).await.unwrap().unwrap();
        (s.status.as_str() == "completed").then_some(())
    })
    .await;
    assert_eq!(
        w.t.store()
            .list_scans(w.project.as_str(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    other.shutdown().await;
    w.t.stop().await;
}

fn hex_of(t: &TestApp) -> String {
    t.master_key_hex.clone()
}

async fn cron_endpoint_needs_its_secret(backend: Backend) {
    let opts = TestOptions {
        cron_secret: Some("cron-secret-value"),
        ..TestOptions::default()
    };
    let Some(w) = world(backend, opts).await else {
        return;
    };
    w.healthy(3);
    let url = w.t.url("/api/cron/scan");
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("cron-secret-value"),
        Some("Bearer cron-secret-valu"),
    ] {
        let mut req = w.t.http.post(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
    }
    assert!(
        w.t.store()
            .list_scans(w.project.as_str(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let resp =
        w.t.http
            .get(&url)
            .header("authorization", "Bearer cron-secret-value")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scans"].as_array().unwrap().len(), 1);
    crate::support::eventually(std::time::Duration::from_secs(20), || async {
        let scans =
            w.t.store()
                .list_scans(w.project.as_str(), 10)
                .await
                .unwrap();
        (scans.len() == 1 && scans[0].status.as_str() == "completed").then_some(())
    })
    .await;
    w.t.stop().await;
    // Without CRON_SECRET the endpoint is disabled with a clear message.
    let Some(w) = world(backend, TestOptions::default()).await else {
        return;
    };
    let resp =
        w.t.http
            .post(w.t.url("/api/cron/scan"))
            .header("authorization", "Bearer x")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CRON_SECRET")
    );
    w.t.stop().await;
}
