//! `parityrail demo` as a real process (issue 9): it prints a working
//! sign-in, reaches the seeded mismatches (and none for the healthy
//! customers), ignores live traffic to the demo project's public webhook
//! URL, and stops cleanly on SIGINT with its temporary database removed.
//! A taken address, an unwritable folder or a database with real projects
//! stops it with one clear line and changes nothing.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use parityrail::domain::ProjectMode;
use reqwest::StatusCode;

use crate::{
    dashboard::Dash,
    process::{BIN, cli, free_port, stderr},
};

/// The three customers the demo seeds wrong, by their app user.
const MISMATCHED: [&str; 3] = ["usr_ada", "usr_grace", "usr_alan"];
/// Customers the demo keeps right (trial and past_due inside grace among them).
const HEALTHY: [&str; 13] = [
    "usr_edsger",
    "usr_barbara",
    "usr_donald",
    "usr_margaret",
    "usr_ken",
    "usr_dennis",
    "usr_frances",
    "usr_john",
    "usr_radia",
    "usr_tim",
    "usr_shafi",
    "usr_leslie",
    "usr_niklaus",
];

struct Demo {
    child: Child,
    base: String,
    project: String,
    email: String,
    password: String,
    database: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo_command(port: u16) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("demo")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", std::env::temp_dir())
        .env("PARITYRAIL_LISTEN", format!("127.0.0.1:{port}"))
        .env("PARITYRAIL_LOG", "warn");
    cmd
}

/// Starts the demo and reads its banner.
fn start() -> Demo {
    let port = free_port();
    let mut child = demo_command(port)
        .args(["--every", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn parityrail demo");
    let out = BufReader::new(child.stdout.take().unwrap());
    let (mut project, mut sign_in, mut database, mut dashboard) = (None, None, None, None);
    for line in out.lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["dashboard", url] => dashboard = Some(url.to_string()),
            ["project", id] => project = Some(id.to_string()),
            ["sign", "in", email, password] => {
                sign_in = Some((email.to_string(), password.to_string()))
            }
            ["database", path, ..] => database = Some(path.to_string()),
            _ => {}
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let (email, password) = sign_in.expect("a sign-in line");
    let base = dashboard.expect("a dashboard line");
    assert_eq!(base, format!("http://127.0.0.1:{port}/"));
    Demo {
        child,
        base: base.trim_end_matches('/').to_string(),
        project: project.expect("a project line"),
        email,
        password,
        database: database.expect("a database line"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_its_mismatches_ignores_live_traffic_and_stops_on_ctrl_c() {
    parityrail::install_crypto_provider();
    let started = Instant::now();
    let mut demo = start();
    let banner = started.elapsed();
    assert!(
        std::path::Path::new(&demo.database)
            .join("demo.db")
            .exists(),
        "a fresh database in a temporary folder"
    );
    let mut d = Dash::at(&demo.base);
    let home = d.sign_in(&demo.email, &demo.password).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains(&demo.project),
        "the demo project is listed"
    );

    // The seeded mismatches open; the healthy customers never get one.
    let inbox = format!("/projects/{}/incidents?status=open", demo.project);
    let give_up = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let page = d.get(&inbox).await;
        assert_eq!(page.status, StatusCode::OK);
        if MISMATCHED.iter().all(|u| page.body.contains(u)) || Instant::now() > give_up {
            break page.body;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for user in MISMATCHED {
        assert!(body.contains(user), "{user} has an open incident: {body}");
    }
    let all = d
        .get(&format!(
            "/projects/{}/incidents?status=resolved",
            demo.project
        ))
        .await
        .body
        + &d.get(&inbox).await.body;
    for user in HEALTHY {
        assert!(!all.contains(user), "{user} is healthy");
    }
    // Checks keep happening: webhook runs appear.
    let runs = loop {
        let runs = d
            .get(&format!("/projects/{}/runs", demo.project))
            .await
            .body;
        if runs.contains(">webhook<") || Instant::now() > give_up {
            break runs;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(runs.contains(">webhook<"), "webhook-triggered runs: {runs}");

    // Live traffic to the public webhook URL is ignored: 200, nothing stored.
    let live = reqwest::Client::new()
        .post(format!(
            "{}/api/webhooks/stripe/{}",
            demo.base, demo.project
        ))
        .header("stripe-signature", "t=1,v1=00")
        .body(r#"{"id":"evt_live_traffic_0001","type":"customer.subscription.updated"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let answer = live.text().await.unwrap();
    assert!(answer.contains("demo project"), "{answer}");
    let events = d
        .get(&format!("/projects/{}/events", demo.project))
        .await
        .body;
    assert!(
        events.contains("customer.subscription"),
        "the simulator's events are there"
    );
    assert!(
        !events.contains("evt_live_traffic_0001"),
        "the live one is not"
    );

    // Ctrl-C: exit 0, promptly, the temporary folder gone.
    let stopping = Instant::now();
    let _ = Command::new("kill")
        .args(["-INT", &demo.child.id().to_string()])
        .status();
    let status = loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(15),
            "the demo did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit {status}");
    assert!(
        !std::path::Path::new(&demo.database).exists(),
        "the temporary folder is removed"
    );
    println!(
        "demo: banner after {:?}, stopped {:?} after SIGINT",
        banner,
        stopping.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_address_an_unwritable_folder_or_a_real_installation_stop_the_demo_with_one_line() {
    parityrail::install_crypto_provider();
    // The address is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = demo_command(port).output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // A database with a real project: refused, and the project is all it holds.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("real.db").display());
    let env = [("DATABASE_URL", url.as_str())];
    let made = cli(&env, &["project", "create", "--name", "billing"]);
    assert!(made.status.success(), "{}", stderr(&made));
    let out = demo_command(free_port())
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("real projects (billing)"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let config =
        parityrail::config::Config::from_lookup(|k| (k == "DATABASE_URL").then(|| url.clone()))
            .unwrap();
    let store = parityrail::store::Store::connect(&config.database)
        .await
        .unwrap();
    let projects = store.list_projects().await.unwrap();
    assert_eq!(projects.len(), 1, "no demo project was added");
    assert_ne!(projects[0].mode, ProjectMode::Demo);
    store.close().await;

    // An unwritable folder, for the temporary database or for DATABASE_URL.
    let out = demo_command(free_port())
        .env("TMPDIR", "/proc/parityrail-nowhere")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot create a temporary folder for the demo database"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let out = demo_command(free_port())
        .env("DATABASE_URL", "sqlite:///proc/parityrail-nowhere/demo.db")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cannot open the demo database"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // A bad interval is refused before anything starts.
    let out = demo_command(free_port())
        .args(["--every", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("from 0.1 to 3600"),
        "{}",
        stderr(&out)
    );
}
