//! `parityrail demo` (SPEC §8a): ParityRail on an embedded SQLite file with
//! a built-in Stripe simulator and sample app on loopback ports. Demo
//! projects read the simulator through the vault ([`Simulated`]); the
//! simulator's signed webhooks reach the real pipeline through a loopback
//! intake of the demo's own, while the public webhook URL of a demo project
//! still ignores live traffic.

mod seed;
mod traffic;

use std::time::Duration;

use anyhow::Context;
use rand::{Rng, distr::Alphanumeric};
use sample_app::SampleApp;
use stripe_sim::{RetrySchedule, StripeSim};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    App,
    config::{Config, DatabaseUrl, Secret},
    domain::{Role, ScanTrigger},
    probe::ProbeTarget,
    store::{Installation, Store},
    usecase::{accounts, members, scans},
    vault::Simulated,
};

/// What `demo` was asked for.
pub struct DemoOptions {
    /// `DATABASE_URL` was set: use it instead of a temporary file.
    pub database_set: bool,
    /// Keep the temporary folder on exit.
    pub keep: bool,
    /// Seconds between simulated subscription changes.
    pub every: Duration,
    /// The demo project's fulfillment deadline: how long the app may take.
    pub deadline: Duration,
}

fn random(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// The demo's first sign-in; a kept database gets `demo-…@parityrail.local`.
const DEMO_EMAIL: &str = "demo@parityrail.local";

fn is_demo_user(email: &str) -> bool {
    email == DEMO_EMAIL || (email.starts_with("demo-") && email.ends_with("@parityrail.local"))
}

/// Refuses, before writing anything (not even a migration), a database
/// that is not ParityRail's or holds a real installation: real projects,
/// or dashboard users the demo did not make.
async fn refuse_real_installation(database: &DatabaseUrl) -> anyhow::Result<()> {
    // A SQLite file that is not there yet is made in its folder: that
    // folder must take it.
    if let DatabaseUrl::Sqlite(path) = database
        && !std::path::Path::new(path).exists()
    {
        let folder = std::path::Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        tempfile::tempfile_in(folder).with_context(|| {
            format!(
                "cannot open the demo database: {} cannot hold it",
                folder.display()
            )
        })?;
    }
    let found = Store::installation(database)
        .await
        .context("cannot open the demo database")?;
    let fresh = " (unset DATABASE_URL to use a fresh temporary file)";
    match found {
        Installation::Empty => Ok(()),
        Installation::Foreign => anyhow::bail!(
            "DATABASE_URL holds tables that are not ParityRail's; the demo never writes into another program's database{fresh}"
        ),
        Installation::ParityRail { real_projects, .. } if !real_projects.is_empty() => {
            anyhow::bail!(
                "DATABASE_URL holds a ParityRail installation with real projects ({}); the demo never writes into one{fresh}",
                real_projects.join(", ")
            )
        }
        Installation::ParityRail { users, .. } if !users.iter().all(|u| is_demo_user(u)) => {
            anyhow::bail!(
                "DATABASE_URL holds a ParityRail installation with dashboard users; the demo never writes into one{fresh}"
            )
        }
        Installation::ParityRail { .. } => Ok(()),
    }
}

/// Runs the demo until `shutdown`.
pub async fn run(
    mut config: Config,
    options: DemoOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let folder = if options.database_set {
        None
    } else {
        let dir = tempfile::Builder::new()
            .prefix("parityrail-demo-")
            .tempdir()
            .context("cannot create a temporary folder for the demo database")?;
        config.database = DatabaseUrl::Sqlite(dir.path().join("demo.db").display().to_string());
        Some(dir)
    };
    // Bind before writing anything: a taken address changes nothing.
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    refuse_real_installation(&config.database).await?;

    let api_key = format!("sk_test_demo_{}", random(24));
    let webhook_secret = format!("whsec_demo_{}", random(32));
    let probe_secret = format!("demo_probe_{}", random(32));
    let sim = StripeSim::new();
    sim.add_api_key(&api_key);
    sim.set_delivery_timing(Duration::from_millis(500), Duration::from_secs(5));
    // Stripe's test-mode retries, an hour a second: 0.08 s, 1 s, then 2 s.
    sim.set_retry_schedule(RetrySchedule::stripe_test(3600.0).map_err(anyhow::Error::msg)?);
    let sim_handle = sim.start().await;
    let sample = SampleApp::new(&probe_secret);
    sample.set_deploy_sha("demo-4f2c9e1");
    let sample_handle = sample.start().await;
    config.stripe_api_base = sim_handle.base_url();
    let simulated = Simulated {
        api_key: Secret::new(api_key),
        webhook_secret: Secret::new(webhook_secret.clone()),
        probe: ProbeTarget {
            url: sample_handle.probe_url(),
            secret: Secret::new(probe_secret),
            reconcile_url: Some(sample_handle.reconcile_url()),
        },
    };
    let header_timeout = config.header_read_timeout;
    let app = App::start_simulated(config, simulated).await?;

    let seeded = seed::seed(&app, &sim, &sample, options.deadline).await?;
    let project = seeded.project.clone();
    app.vault
        .record_simulated(&app.store, &project, Some(sim.account_id()), app.now_ms())
        .await?;
    let email = DEMO_EMAIL;
    let password = random(20);
    let email = if accounts::needs_setup(&app).await? {
        accounts::setup_first_admin(&app, email, &password).await?;
        email.to_string()
    } else {
        // A kept demo database: one more demo user, admin of the new project.
        let email = format!("demo-{}@parityrail.local", random(6).to_lowercase());
        members::create_member(&app, &project, &email, &password, Role::Admin).await?;
        email
    };

    // The simulator delivers to the demo's loopback intake, signed.
    let intake = TcpListener::bind("127.0.0.1:0").await?;
    let intake_url = format!(
        "http://{}/simulated/webhooks/stripe/{}",
        intake.local_addr()?,
        project.id
    );
    sim.add_webhook_endpoint(&intake_url, &webhook_secret);
    let stop = shutdown.clone();
    tokio::spawn(crate::web::serve(
        intake,
        crate::web::simulated_router(app.clone()),
        header_timeout,
        stop.clone(),
    ));
    tokio::spawn({
        let (sim, stop) = (sim.clone(), stop.clone());
        async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                // Retries wait on their own task, so later events go out.
                let sim = sim.clone();
                tokio::spawn(async move { sim.deliver_pending(u32::MAX).await });
            }
        }
    });
    tokio::spawn(traffic::run(
        sim.clone(),
        sample.clone(),
        seeded.plans,
        seeded.customers,
        options.every,
        options.deadline,
        stop.clone(),
    ));
    scans::start(&app, &project, ScanTrigger::Manual).await?;
    // The daily scan, compressed: it re-checks what no event does (a
    // cancelled customer whose app revoked access late).
    tokio::spawn({
        let (app, project, stop) = (app.clone(), project.clone(), stop.clone());
        let every = (options.deadline * 3).clamp(Duration::from_secs(15), Duration::from_secs(120));
        async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                if let Err(error) = scans::start(&app, &project, ScanTrigger::Schedule).await {
                    tracing::warn!(%error, "the demo's periodic scan did not start");
                }
            }
        }
    });

    let url = app.config.public_url.trim_end_matches('/').to_string();
    println!("ParityRail demo is running.");
    println!("  dashboard  {url}/");
    println!("  project    {}", project.id);
    println!("  sign in    {email}  {password}");
    match &folder {
        Some(dir) if options.keep => println!("  database   {} (kept)", dir.path().display()),
        Some(dir) => println!(
            "  database   {} (removed on exit; --keep keeps it)",
            dir.path().display()
        ),
        None => println!("  database   DATABASE_URL"),
    }
    println!("Press Ctrl-C to stop.");

    let served = crate::app::serve(app, listener, shutdown).await;
    sample_handle.shutdown().await;
    sim_handle.shutdown().await;
    if let Some(dir) = folder
        && options.keep
    {
        let _ = dir.keep();
    }
    served
}
