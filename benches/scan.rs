//! Scan benchmark: a full `parityrail scan` (release binary, child process)
//! of N subscriptions in the Stripe simulator under a request budget,
//! printed against the pagination bound (pages ÷ budget), with the Stripe
//! and probe requests it spent and the child's peak memory.
//!
//! `cargo bench --bench scan -- --subscriptions 100000 --budget 100`
//! (defaults: 100,000 and 1,000,000 subscriptions, budget 100/s, SQLite).

#[allow(dead_code)]
#[path = "webhook_ingest/server.rs"]
mod server;

use std::{process::Stdio, time::Duration};

use anyhow::{Context, bail};
use clap::Parser;
use parityrail::crypto::MasterKey;
use sample_app::SampleApp;
use serde_json::Value;
use server::{API_KEY, Database, PgDatabase};
use stripe_sim::StripeSim;
use tokio::process::Command;

const PROBE_SECRET: &str = "bench_probe_secret_0123456789abcdef";

#[derive(Parser, Debug)]
#[command(
    name = "scan",
    about = "Time a full ParityRail scan against the Stripe simulator"
)]
struct Options {
    /// Subscription counts to scan (repeatable).
    #[arg(long = "subscriptions")]
    sizes: Vec<usize>,
    /// The project's Stripe request budget, requests per second.
    #[arg(long, default_value_t = 100)]
    budget: u32,
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "postgres"])]
    backend: String,
    /// Check the flags and exit without running (CI checks every
    /// benchmark line of the README so).
    #[arg(long)]
    check: bool,
    /// Accepted for `cargo bench` compatibility.
    #[arg(long, hide = true)]
    bench: bool,
}

struct Figures {
    size: usize,
    backend: String,
    seconds: f64,
    bound: f64,
    stripe_requests: i64,
    probe_requests: i64,
    peak_rss_mb: f64,
    customers: i64,
    mismatches: i64,
}

fn main() -> anyhow::Result<()> {
    let mut opts = Options::parse();
    if opts.sizes.is_empty() {
        opts.sizes = vec![100_000, 1_000_000];
    }
    if opts.check {
        println!("{opts:?}");
        return Ok(());
    }
    parityrail::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for &size in &opts.sizes {
        rows.push(rt.block_on(one(size, &opts))?);
    }
    println!(
        "\n| backend | subscriptions | budget | bound (pages ÷ budget) | scan | ratio | Stripe requests | probe requests | peak RSS | customers checked | mismatches |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for f in &rows {
        println!(
            "| {} | {} | {}/s | {:.1} s | {:.1} s | {:.2}× | {} | {} | {:.0} MB | {} | {} |",
            f.backend,
            f.size,
            opts.budget,
            f.bound,
            f.seconds,
            f.seconds / f.bound,
            f.stripe_requests,
            f.probe_requests,
            f.peak_rss_mb,
            f.customers,
            f.mismatches
        );
    }
    Ok(())
}

async fn one(size: usize, opts: &Options) -> anyhow::Result<Figures> {
    println!("seeding {size} subscriptions in the simulator and {size} users in the sample app…");
    let sim = StripeSim::new();
    sim.add_api_key(API_KEY);
    sim.set_emit_events(false);
    let product = sim.create_product("App");
    let price = sim.create_price(&product, Some("pro"), 3000);
    let app = SampleApp::new(PROBE_SECRET);
    app.set_page_size(1000);
    // Subscriptions arrive over time in a real account: one second per 100,
    // ending now (the scan slices the account by `created`).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    sim.set_clock(now - (size as i64) / 100);
    for i in 0..size {
        if i % 100 == 0 {
            sim.advance_clock(1);
        }
        let user = format!("u{i}");
        let customer = sim.create_customer("", &[]);
        sim.create_subscription(
            &customer,
            &[&price],
            "active",
            &[("parityrail_user_id", &user)],
        );
        // One customer in 10,000 was never given access: the scan must find them.
        if i % 10_000 != 7 {
            app.grant(&customer, &user, Some("pro"), &[], &[]);
        }
    }
    let sim_handle = sim.start().await;
    let app_handle = app.start().await;
    let db = match opts.backend.as_str() {
        "sqlite" => Database::sqlite()?,
        "postgres" => PgDatabase::create()
            .await?
            .context("PostgreSQL is unreachable")?,
        other => bail!("unknown backend {other}"),
    };
    let key = MasterKey::generate_hex();
    let base = sim_handle.base_url();
    let env = [
        ("DATABASE_URL", db.url().to_string()),
        ("PARITYRAIL_MASTER_KEY", key),
        ("STRIPE_API_BASE", base),
        // SCAN_BENCH_LOG=info shows the scan's phase timings on stderr.
        (
            "PARITYRAIL_LOG",
            std::env::var("SCAN_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        ),
    ];
    let created: Value = serde_json::from_str(
        &cli(&env, &["project", "create", "--name", "bench", "--json"]).await?,
    )?;
    let project = created["id"].as_str().context("project id")?.to_string();
    cli(
        &env,
        &[
            "stripe",
            "connect",
            &project,
            "--api-key",
            API_KEY,
            "--no-verify",
        ],
    )
    .await?;
    cli(
        &env,
        &[
            "probe",
            "set",
            &project,
            "--url",
            &app_handle.probe_url(),
            "--secret",
            PROBE_SECRET,
        ],
    )
    .await?;
    cli(
        &env,
        &[
            "plan", "set", &project, "--price", &price, "--plan", "pro", "--rank", "1",
        ],
    )
    .await?;
    let budget = opts.budget.to_string();
    cli(
        &env,
        &["project", "config", &project, "--stripe-budget", &budget],
    )
    .await?;

    println!("scanning…");
    let mut cmd = Command::new(binary());
    cmd.args(["scan", &project, "--json"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id().context("child pid")?;
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        tokio::select! {
            status = child.wait() => break status?,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use tokio::io::AsyncReadExt;
        stdout.read_to_string(&mut out).await?;
    }
    if !status.success() {
        bail!("parityrail scan failed: {status}");
    }
    let summary: Value = serde_json::from_str(out.trim()).context("scan summary")?;
    let pages = size.div_ceil(100) as f64;
    Ok(Figures {
        size,
        backend: opts.backend.clone(),
        seconds: summary["duration_ms"].as_f64().unwrap_or_default() / 1000.0,
        bound: pages / f64::from(opts.budget),
        stripe_requests: summary["stripe_requests"].as_i64().unwrap_or_default(),
        probe_requests: summary["probe_requests"].as_i64().unwrap_or_default(),
        peak_rss_mb: peak_kb as f64 / 1024.0,
        customers: summary["customers_checked"].as_i64().unwrap_or_default(),
        mismatches: summary["mismatches"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_i64).sum())
            .unwrap_or(0),
    })
}

/// The `parityrail` under test: this build, or `PARITYRAIL_BENCH_BIN` (to
/// measure another build the same way).
fn binary() -> String {
    std::env::var("PARITYRAIL_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_parityrail").to_string())
}

/// Peak resident set of a process (`VmHWM`), in KiB.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn cli(env: &[(&str, String)], args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(binary())
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "parityrail {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
