//! The walks of `docs_run`: every document's shell lines in order, each
//! from a fresh database, with what each command printed checked.

use parityrail::crypto::MasterKey;
use serde_json::Value;

use crate::{
    docs_run::{Fixture, Walk, first_id, have, lines_of, wait_for},
    process::BIN,
    support::{Backend, TestDb},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_getting_started_runs_as_written() {
    let fixture = Fixture::new().await;
    let mut walk = Walk::new(Backend::Sqlite, &fixture).await.unwrap();
    let mut printed = Vec::new();
    for line in lines_of("README.md") {
        let out = walk.run(&line).await;
        if line.text.contains("project create") {
            walk.sub("prj_…", &first_id(&out, "prj_"));
        }
        printed.push((line.text, out));
    }
    let said = |command: &str| {
        printed
            .iter()
            .find(|(text, _)| text.contains(command))
            .map(|(_, out)| out.clone())
            .unwrap_or_else(|| panic!("the README has no `{command}` any more"))
    };
    // The customer pays for pro and the app grants it: the check passes.
    let check = said("-- check ");
    assert!(check.contains("passed"), "{check}");
    let scan = said("-- scan ");
    assert!(scan.contains("completed"), "{scan}");
    assert_eq!(walk.server_count(), 1, "the README starts one server");
    walk.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_runs_as_written_and_its_drill_is_caught() {
    let fixture = Fixture::new().await;
    let mut walk = Walk::new(Backend::Sqlite, &fixture).await.unwrap();
    let mut project = None;
    let mut drill = None;
    for line in lines_of("docs/quickstart.md") {
        if line.text.contains("PROJECT") && project.is_none() {
            // Onboarding, which the page does in the dashboard, in its CLI
            // form (the README's "Getting started").
            let id = walk.project().await;
            walk.sub("PROJECT", &id);
            project = Some(id);
        }
        let out = walk.run(&line).await;
        if line.text.contains("-- drill ") {
            drill = Some(out);
        }
    }
    let drill = drill.expect("the quick start has no drill any more");
    assert!(drill.contains("monitoring works"), "{drill}");
    for stage in [
        "accepted",
        "stored",
        "processed",
        "probed",
        "incident_opened",
    ] {
        assert!(drill.contains(stage), "{stage} missing from:\n{drill}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_pages_curl_commands_run_with_a_token() {
    if !have("curl") {
        return;
    }
    let fixture = Fixture::new().await;
    let mut walk = Walk::new(Backend::Sqlite, &fixture).await.unwrap();
    walk.set("PARITYRAIL_MASTER_KEY", &MasterKey::generate_hex());
    let base = walk.base.clone();
    walk.set("PARITYRAIL_PUBLIC_URL", &base);
    let id = walk.project().await;
    walk.sub("prj_…", &id);
    walk.serve();
    let token = walk
        .ok(
            "setup",
            &format!("{BIN} token create --project {id} --role admin"),
        )
        .await;
    walk.set("TOKEN", &first_id(&token, "prt_"));
    let mut answers = Vec::new();
    for line in lines_of("docs/api.md") {
        let out = walk.run(&line).await;
        let answer: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {out}", line.text));
        answers.push(answer);
    }
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(answers[0]["data"].is_array(), "incidents: {}", answers[0]);
    // The check is queued; its run passes.
    let run = answers[1]["run_id"].as_str().expect("a run id").to_string();
    let (token, http) = (walk.env_value("TOKEN"), reqwest::Client::new());
    wait_for("the API's check passes", async || {
        let answer: Value = http
            .get(format!("{base}/api/v1/projects/{id}/runs/{run}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["status"] == "passed"
    })
    .await;
    assert_eq!(answers[2]["caught"], true, "drill: {}", answers[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_cron_and_two_instances_on_postgres_run_as_written() {
    if !have("curl") {
        return;
    }
    let fixture = Fixture::new().await;
    let mut walk = Walk::new(Backend::Sqlite, &fixture).await.unwrap();
    let key = MasterKey::generate_hex();
    walk.set("PARITYRAIL_MASTER_KEY", &key);
    walk.set("CRON_SECRET", "docs_walk_cron_secret_0001");
    walk.project().await;
    walk.serve();
    let mut postgres = None;
    let mut cron = None;
    for line in lines_of("docs/operations.md") {
        if line.text.starts_with("export DATABASE_URL=") {
            let Some(db) = TestDb::create(Backend::Postgres).await else {
                return;
            };
            walk.stop_servers();
            walk.sub(
                "postgres://parityrail@db.internal/parityrail",
                &crate::process::database_url(&db.url),
            );
            walk.sub(
                "PARITYRAIL_MASTER_KEY=…",
                &format!("PARITYRAIL_MASTER_KEY={key}"),
            );
            postgres = Some(db);
        }
        let out = walk.run(&line).await;
        if line.text.contains("/api/cron/scan") {
            cron = Some(out);
        }
        if line.text.contains("-- serve") && postgres.is_some() {
            // "On each machine": a second instance on the same database,
            // both migrating on start.
            walk.run(&line).await;
        }
    }
    let cron: Value = serde_json::from_str(&cron.expect("no cron line any more")).unwrap();
    assert!(
        cron.to_string().contains("prj_"),
        "cron scanned no project: {cron}"
    );
    assert!(postgres.is_some(), "the PostgreSQL section is gone");
    walk.settle().await;
    assert_eq!(walk.server_count(), 2);
    // Both instances share the one database.
    let listed = walk
        .ok("check", &format!("{BIN} project list --json"))
        .await;
    assert_eq!(listed.trim(), "[]", "a fresh PostgreSQL database: {listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_stripe_runs_as_written_and_finishes_a_secret_roll() {
    let fixture = Fixture::new().await;
    let mut walk = Walk::new(Backend::Sqlite, &fixture).await.unwrap();
    walk.set("PARITYRAIL_MASTER_KEY", &MasterKey::generate_hex());
    // "Before you start": the project, here with the secret being rolled
    // away from (it becomes whs_1).
    walk.ok(
        "setup",
        &format!("{BIN} project create --name billing --mode test"),
    )
    .await;
    walk.ok(
        "setup",
        &format!(
            "{BIN} stripe connect billing --api-key {} --webhook-secret whsec_docs_walk_old_0001",
            crate::docs_run::KEY
        ),
    )
    .await;
    let mut listed = None;
    for line in lines_of("docs/connecting-stripe.md") {
        let out = walk.run(&line).await;
        if line.text.contains("secrets list") {
            listed = Some(out);
        }
    }
    let listed = listed.expect("no `secrets list` any more");
    assert!(
        listed.contains("whs_1") && listed.contains("whs_2"),
        "{listed}"
    );
    let after = walk
        .ok("check", &format!("{BIN} stripe secrets list billing"))
        .await;
    assert!(
        !after.contains("whs_1") && after.contains("whs_2"),
        "{after}"
    );
}
