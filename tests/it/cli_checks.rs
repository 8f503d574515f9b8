//! `probe set`, `plan set`, `project config`, `check` and `scan` through the
//! real binary: JSON shapes, and bad input that changes nothing.

use parityrail::{crypto::MasterKey, ids::ProjectId, store::Store};
use sample_app::SampleApp;
use serde_json::Value;
use stripe_sim::StripeSim;

use crate::{
    process::{cli, database_url, stderr, stdout},
    support::{Backend, TestDb},
};

crate::backend_tests!(
    check_and_scan_from_the_command_line,
    bad_check_setup_is_refused_and_changes_nothing
);

const KEY: &str = "sk_test_cli_checks_0001";
const PROBE_SECRET: &str = "cli_probe_secret_0123456789abcdef";

async fn check_and_scan_from_the_command_line(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let sim = StripeSim::new();
    sim.add_api_key(KEY);
    let sim_handle = sim.start().await;
    let app = SampleApp::new(PROBE_SECRET);
    let app_handle = app.start().await;
    let product = sim.create_product("App");
    let price = sim.create_price(&product, Some("pro"), 3000);
    let good = sim.create_customer("good@example.com", &[]);
    sim.create_subscription(
        &good,
        &[&price],
        "active",
        &[("parityrail_user_id", "u_good")],
    );
    app.grant(&good, "u_good", Some("pro"), &["sso"], &[("seats", 5)]);
    let bad = sim.create_customer("bad@example.com", &[]);
    sim.create_subscription(
        &bad,
        &[&price],
        "active",
        &[("parityrail_user_id", "u_bad")],
    );
    let (url, key, base) = (
        database_url(&db.url),
        MasterKey::generate_hex(),
        sim_handle.base_url(),
    );
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("PARITYRAIL_MASTER_KEY", key.as_str()),
        ("STRIPE_API_BASE", base.as_str()),
    ];
    let run = |args: &[&str]| {
        let out = cli(&env, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()
    };
    let project = run(&["project", "create", "--name", "cli", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    run(&["stripe", "connect", &project, "--api-key", KEY, "--json"]);
    let probe = run(&[
        "probe",
        "set",
        &project,
        "--url",
        &app_handle.probe_url(),
        "--secret",
        PROBE_SECRET,
        "--json",
    ]);
    assert_eq!(probe["secret_last4"], "cdef");
    assert!(
        !probe.to_string().contains("0123456789"),
        "the probe secret never prints"
    );
    let rule = run(&[
        "plan",
        "set",
        &project,
        "--price",
        &price,
        "--plan",
        "pro",
        "--rank",
        "2",
        "--feature",
        "sso",
        "--limit",
        "seats=5",
        "--json",
    ]);
    assert_eq!(rule["limits"]["seats"], 5);
    let settings = run(&[
        "project",
        "config",
        &project,
        "--scan-at",
        "04:30",
        "--stripe-budget",
        "50",
        "--past-due-grace-days",
        "5",
        "--fulfillment-deadline",
        "60",
        "--json",
    ]);
    assert_eq!(
        (
            settings["scan_at"].as_str(),
            settings["stripe_budget"].as_i64()
        ),
        (Some("04:30"), Some(50))
    );
    assert_eq!(settings["past_due_grace_days"], 5);

    let passed = run(&["check", &project, &good, "--json"]);
    assert_eq!(passed["verdict"], "passed");
    assert!(passed["run_id"].as_str().unwrap().starts_with("run_"));
    assert_eq!(passed["expected"]["plan"], "pro");
    assert_eq!(passed["observed"]["plan"], "pro");
    let out = cli(&env, &["check", &project, &bad, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed verdict exits non-zero"
    );
    let failed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (failed["verdict"].as_str(), failed["kind"].as_str()),
        (Some("failed"), Some("unfulfilled"))
    );

    let summary = run(&["scan", &project, "--json"]);
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["subscriptions_seen"], 2);
    assert_eq!(summary["mismatches"]["unfulfilled"], 1);
    assert!(summary["stripe_requests"].as_i64().unwrap() >= 1);
    let incidents = run(&["incidents", "list", &project, "--json"]);
    let list = incidents.as_array().unwrap();
    assert_eq!(list.len(), 1);
    for field in [
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
        assert!(list[0].get(field).is_some(), "incidents list lacks {field}");
    }
    assert_eq!(
        list[0]["runs"].as_array().unwrap().len(),
        2,
        "the manual run and the scan run prove it"
    );
}

async fn bad_check_setup_is_refused_and_changes_nothing(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let (url, key) = (database_url(&db.url), MasterKey::generate_hex());
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("PARITYRAIL_MASTER_KEY", key.as_str()),
    ];
    let out = cli(&env, &["project", "create", "--name", "bad", "--json"]);
    let project: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let project = project["id"].as_str().unwrap().to_string();
    for (args, needle) in [
        (
            vec![
                "probe",
                "set",
                &project,
                "--url",
                "not a url",
                "--secret",
                PROBE_SECRET,
            ],
            "--url",
        ),
        (
            vec![
                "probe",
                "set",
                &project,
                "--url",
                "ftp://x.example",
                "--secret",
                PROBE_SECRET,
            ],
            "http",
        ),
        (
            vec![
                "probe",
                "set",
                &project,
                "--url",
                "https://app.example/p",
                "--secret",
                "short",
            ],
            "16 characters",
        ),
        (vec!["plan", "set", &project, "--plan", "pro"], "--price"),
        (
            vec![
                "plan", "set", &project, "--price", "price_1", "--plan", "pro", "--limit", "seats",
            ],
            "NAME=NUMBER",
        ),
        (
            vec![
                "plan", "set", &project, "--price", "price_1", "--plan", "pro", "--limit",
                "seats=x",
            ],
            "whole number",
        ),
        (
            vec!["project", "config", &project, "--scan-at", "25:00"],
            "HH:MM",
        ),
        (
            vec!["project", "config", &project, "--stripe-budget", "0"],
            "--stripe-budget",
        ),
        (
            vec!["project", "config", &project, "--past-due-grace-days=-1"],
            "negative",
        ),
        (vec!["check", &project, "cus_1"], "no app probe"),
        (vec!["scan", &project], "app probe"),
    ] {
        let out = cli(&env, &args);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    let store = Store::connect(&db.url).await.unwrap();
    let id = ProjectId::parse(&project).unwrap();
    assert!(store.probe_config(&id).await.unwrap().is_none());
    assert!(store.plan_map(&id, false).await.unwrap().rules.is_empty());
    let p = store.project(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            p.scan_at.as_str(),
            p.stripe_budget_rps,
            p.past_due_grace_secs
        ),
        ("03:00", None, 259_200)
    );
    assert!(
        store
            .list_runs(id.as_str(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.list_scans(id.as_str(), 10).await.unwrap().is_empty());
    store.close().await;
}
