//! Dashboard page latency on a seeded project: 100,000 webhook events,
//! 10,000 runs and 1,000 incidents in a fresh SQLite file (or PostgreSQL
//! with `--backend postgres`), served over real HTTP by the release build,
//! signed in as an admin. Each page is fetched `--requests` times one after
//! another; p50 and p99 are printed per page (target: p99 ≤ 50 ms on SQLite).
//!
//! `cargo bench --bench dashboard [-- --events 100000 --runs 10000 --incidents 1000 --requests 300]`

use std::{sync::Arc, time::Instant};

use clap::Parser;
use parityrail::{
    App,
    config::Config,
    crypto::MasterKey,
    domain::{IncidentKind, ProjectMode, Role, Trigger},
    store::{Evidence, NewEvent, NewIncident, NewRun},
    usecase::{members, projects},
};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
struct Options {
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    #[arg(long, default_value_t = 10_000)]
    runs: usize,
    #[arg(long, default_value_t = 1_000)]
    incidents: usize,
    /// Requests per page.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// `sqlite` (a temp file) or `postgres` (a fresh database on
    /// `PARITYRAIL_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432`).
    #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "postgres"])]
    backend: String,
    /// Keep the PostgreSQL database afterwards (to inspect plans).
    #[arg(long)]
    keep: bool,
    /// Check the flags and exit without running (CI checks every
    /// benchmark line of the README so).
    #[arg(long)]
    check: bool,
    #[arg(long, hide = true)]
    bench: bool,
}

const PASSWORD: &str = "dashboard bench password";

fn main() -> anyhow::Result<()> {
    let opts = Options::parse();
    if opts.check {
        println!("{opts:?}");
        return Ok(());
    }
    parityrail::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(opts))
}

async fn run(opts: Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (url, pg) = match opts.backend.as_str() {
        "sqlite" => (
            format!("sqlite://{}", dir.path().join("bench.db").display()),
            None,
        ),
        "postgres" => {
            let base = std::env::var("PARITYRAIL_TEST_POSTGRES")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
            let name = format!("parityrail_dash_{}", std::process::id());
            let admin = format!("{base}/postgres");
            let status = std::process::Command::new("psql")
                .args([&admin, "-qc", &format!("CREATE DATABASE {name}")])
                .status()?;
            anyhow::ensure!(status.success(), "could not create {name} on {base}");
            (format!("{base}/{name}"), Some((admin, name)))
        }
        other => anyhow::bail!("--backend is sqlite or postgres, not {other}"),
    };
    let result = measure(&opts, &url, pg.as_ref().map(|_| url.as_str())).await;
    if let Some((admin, name)) = pg.filter(|_| !opts.keep) {
        std::process::Command::new("psql")
            .args([&admin, "-qc", &format!("DROP DATABASE {name} WITH (FORCE)")])
            .status()?;
    }
    result
}

async fn measure(opts: &Options, url: &str, analyze: Option<&str>) -> anyhow::Result<()> {
    let master = MasterKey::generate_hex();
    let vars = [
        ("DATABASE_URL", url.to_string()),
        ("PARITYRAIL_MASTER_KEY", master),
        ("PARITYRAIL_PUBLIC_URL", "http://127.0.0.1:8080".to_string()),
    ];
    let config = Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })?;
    let app = App::start(config).await?;
    let project = projects::create(&app, "bench", ProjectMode::Test).await?;
    members::create_member(&app, &project, "bench@example.com", PASSWORD, Role::Admin).await?;
    let seeded = Instant::now();
    let incident = seed(&app, &project.id.to_string(), opts).await?;
    println!(
        "seeded {} events, {} runs, {} incidents in {:.1} s ({})",
        opts.events,
        opts.runs,
        opts.incidents,
        seeded.elapsed().as_secs_f64(),
        opts.backend
    );

    if let Some(url) = analyze {
        // A bulk load leaves PostgreSQL's statistics empty until autovacuum
        // gets to it; a table that grew over weeks has them. Without them
        // the prepared event-log query's generic plan sorts every event
        // (≈ 0.5 s at 100k); with them it walks `events_log_idx` (< 1 ms).
        let status = std::process::Command::new("psql")
            .args([url, "-qc", "ANALYZE"])
            .status()?;
        anyhow::ensure!(status.success(), "ANALYZE failed");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(parityrail::app::serve_http(
        app.clone(),
        listener,
        shutdown.clone(),
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login = http
        .post(format!("{base}/login"))
        .header("origin", &base)
        .form(&[("email", "bench@example.com"), ("password", PASSWORD)])
        .send()
        .await?;
    anyhow::ensure!(login.status() == 303, "sign-in answered {}", login.status());
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");

    let p = format!("/projects/{}", project.id);
    let pages = [
        ("incident inbox", format!("{p}/incidents")),
        (
            "inbox, one kind",
            format!("{p}/incidents?status=open&kind=unfulfilled"),
        ),
        ("incident detail", format!("{p}/incidents/{incident}")),
        ("run history", format!("{p}/runs")),
        (
            "runs, one customer",
            format!("{p}/runs?customer=cus_bench00042"),
        ),
        ("event log", format!("{p}/events")),
        ("events, one type", format!("{p}/events?type=invoice.paid")),
        ("project at a glance", p.clone()),
    ];
    println!("\n| page | p50 | p99 | max | bytes |");
    println!("|---|---|---|---|---|");
    let mut worst = 0.0f64;
    for (name, path) in &pages {
        let mut times = Vec::with_capacity(opts.requests);
        let mut bytes = 0;
        for i in 0..opts.requests + 10 {
            let started = Instant::now();
            let resp = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            anyhow::ensure!(status == 200, "{path} answered {status}");
            bytes = body.len();
            if i >= 10 {
                times.push(ms); // the first ten warm the caches
            }
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1)];
        worst = worst.max(at(0.99));
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {bytes} |",
            at(0.50),
            at(0.99),
            times[times.len() - 1]
        );
    }
    println!(
        "\nworst p99 {worst:.1} ms over {} requests per page (target ≤ 50 ms on SQLite)",
        opts.requests
    );
    shutdown.cancel();
    let _ = server.await;
    Ok(())
}

/// Seeds the store the way the service fills it (the store's own inserts);
/// returns one incident's id.
async fn seed(app: &App, project: &str, opts: &Options) -> anyhow::Result<String> {
    let template = include_str!("../tests/fixtures/stripe/events/invoice.paid.json");
    let types = [
        "invoice.paid",
        "customer.subscription.updated",
        "customer.subscription.created",
        "invoice.payment_failed",
        "customer.subscription.deleted",
    ];
    let start = parityrail::now_ms() - opts.events as i64 * 1000;
    let body: Arc<[u8]> = template.as_bytes().into();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..opts.events {
        let at = start + i as i64 * 1000;
        batch.push(NewEvent {
            project_id: project.to_string(),
            event_id: format!("evt_bench{i:09}"),
            event_type: types[i % types.len()].to_string(),
            livemode: false,
            api_version: Some("2024-06-20".into()),
            created: at / 1000,
            customer_id: Some(format!("cus_bench{:05}", i % 5000)),
            raw_body: bytes::Bytes::copy_from_slice(&body),
            ignored_reason: None,
            received_at: at,
            due_at: at,
            matched_secret: None,
        });
        if batch.len() == 1000 {
            app.store.insert_events(&batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        app.store.insert_events(&batch).await?;
    }
    let mut run_ids = Vec::with_capacity(opts.runs);
    for i in 0..opts.runs {
        let customer = format!("cus_bench{:05}", i % 5000);
        let event = format!("evt_bench{:09}", i * 10);
        let (id, _) = app
            .store
            .insert_run(&NewRun {
                project_id: project,
                customer_id: &customer,
                trigger: Trigger::Webhook,
                external_id: Some(&event),
                event_id: Some(&event),
                deadline: start + i as i64 * 10_000 + 60_000,
                now: start + i as i64 * 10_000,
                needs_sync: false,
            })
            .await?;
        run_ids.push(id);
    }
    let kinds = [IncidentKind::Unfulfilled, IncidentKind::UnpaidAccess];
    let mut first = String::new();
    for i in 0..opts.incidents {
        let id = app
            .store
            .open_incident(&NewIncident {
                project_id: project.to_string(),
                kind: kinds[i % 2],
                customer_id: format!("cus_bench{i:05}"),
                event_id: Some(format!("evt_bench{:09}", i * 10)),
                details: json!({"summary": "access missing", "differences": [{"type": "access_missing"}]}),
                count: None,
                now: start + i as i64 * 60_000,
                evidence: Evidence {
                    app_user_id: Some(format!("user_{i}")),
                    subscription_id: Some(format!("sub_bench{i:05}")),
                    subscription_status: Some("active".into()),
                    expected: Some(json!({"active": true, "plan": "pro", "features": ["export", "sso"], "limits": {"seats": 10}})),
                    observed: Some(json!({"found": true, "active": false, "plan": null, "features": [], "limits": {}})),
                    deploy_sha: Some("abc1234".into()),
                    run_id: run_ids.get(i).cloned(),
                    drill: false,
                },
            })
            .await?;
        if first.is_empty() {
            first = id;
        }
    }
    Ok(first)
}
