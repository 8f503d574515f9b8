//! The app-probe examples of `docs/app-probe.md` (issue 9), run as real
//! processes: the Python and Node servers verify `ParityRail-Signature`,
//! answer single and batch probes, and ParityRail's checks and scan agree
//! with what they answer. Without `python3` or `node` the story skips,
//! except under `CI=true`, where it fails.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use parityrail::{
    config::Secret,
    domain::{RunKind, RunStatus, ScanStatus, Trigger},
    usecase::projects,
};
use serde_json::json;

use crate::{
    process::free_port,
    support::Backend,
    world::{Options, PROBE_SECRET, world},
};

crate::backend_tests!(the_python_and_node_probe_examples_answer_checks_and_scans,);

struct Example(Child);

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn the_python_and_node_probe_examples_answer_checks_and_scans(backend: Backend) {
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples");
    for (program, file) in [("python3", "probe_server.py"), ("node", "probe_server.mjs")] {
        if !have(program) {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{program} is needed under CI=true"
            );
            eprintln!("skipping the {file} example: no {program}");
            continue;
        }
        let Some(w) = world(backend, Options::default()).await else {
            return;
        };
        let (paid, _) = w.subscribe("u_paid", &w.pro);
        let (missing, _) = w.subscribe("u_missing", &w.pro);
        let users = json!({
            paid.clone(): {"user": "u_paid", "plan": "pro", "features": ["export", "sso"], "limits": {"seats": 10}},
        });
        let port = free_port();
        let _example = Example(
            Command::new(program)
                .arg(format!("{docs}/{file}"))
                .env("PORT", port.to_string())
                .env("PROBE_SECRET", PROBE_SECRET)
                .env("USERS_JSON", users.to_string())
                .env("DEPLOY_SHA", "docs123")
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let url = format!("http://127.0.0.1:{port}/parityrail/access");
        // Wait for it to listen.
        let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < give_up,
                "{file} never listened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Unsigned, or signed with another secret: refused.
        let unsigned =
            w.t.http
                .get(format!("{url}?customer={paid}"))
                .send()
                .await
                .unwrap();
        assert_eq!(unsigned.status(), 401, "{file}");
        let project = w.t.project_of(&w.project).await;
        let wrong = projects::set_probe_tested(
            &w.t.app,
            &project,
            &url,
            &Secret::new("not_the_example_secret_000"),
            None,
            &paid,
        )
        .await;
        assert!(wrong.is_err(), "{file}: a wrong secret does not verify");
        // "Test probe & save" with the right secret.
        let (_, test) = projects::set_probe_tested(
            &w.t.app,
            &project,
            &url,
            &Secret::new(PROBE_SECRET),
            None,
            &paid,
        )
        .await
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(test.http_status, 200, "{file}");

        let run = w.t.check_now(&w.project, &paid, Trigger::Manual).await;
        assert_eq!(run.status, RunStatus::Passed, "{file}: {run:?}");
        assert_eq!(run.deploy_sha.as_deref(), Some("docs123"));
        let run = w.t.check_now(&w.project, &missing, Trigger::Manual).await;
        assert_eq!(run.kind, Some(RunKind::Unfulfilled), "{file}: {run:?}");
        // A scan asks in batches.
        let scan = w.scan().await.unwrap();
        assert_eq!(scan.status, ScanStatus::Completed, "{file}: {scan:?}");
        assert_eq!(scan.customers_checked, 2, "{file}: {scan:?}");
        assert_eq!(scan.mismatches.values().sum::<i64>(), 1, "{file}: {scan:?}");
        w.t.stop().await;
    }
}
