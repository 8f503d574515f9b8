//! Webhook ingest benchmark: signed Stripe events against the real
//! `parityrail serve` (release build, child process) on SQLite and
//! PostgreSQL, reporting ack throughput and latency, how long the workers
//! take to drain the queue, and whether any acknowledged event was lost.
//!
//! `cargo bench --bench webhook_ingest -- --help` lists the options; with
//! none it runs the standard scenarios (closed loop at 64 senders, then
//! 1,000 events/s for 10 s) on each backend and prints a summary table.

// Helpers live under `webhook_ingest/` so cargo's bench auto-discovery,
// which takes every `benches/*.rs` for a bench, does not pick them up.
#[path = "webhook_ingest/cpu.rs"]
mod cpu;
#[path = "webhook_ingest/load.rs"]
mod load;
#[path = "webhook_ingest/report.rs"]
mod report;
#[path = "webhook_ingest/server.rs"]
mod server;

use std::{
    collections::{HashMap, HashSet},
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::bail;
use clap::{Parser, ValueEnum};
use load::{LoadResult, Mode, Plan};
use report::Outcome;
use server::{Database, PgDatabase, Server, Target};
use stripe_sim::StripeSim;

const CUSTOMERS: usize = 200;

#[derive(Parser, Debug)]
#[command(
    name = "webhook_ingest",
    about = "Load ParityRail's webhook endpoint with signed Stripe events"
)]
struct Options {
    /// Which database backs the spawned server.
    #[arg(long, value_enum, default_value = "both")]
    backend: BackendChoice,
    /// Sends per scenario, re-sends included (default 20000; 10 s worth with --rate).
    #[arg(long)]
    events: Option<usize>,
    /// Closed loop: this many senders, each waiting for its answer.
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open loop: this many sends per second, latency counted from the schedule.
    #[arg(long)]
    rate: Option<f64>,
    /// Share of sends that re-send an event already sent (0 to <1).
    #[arg(long, default_value_t = 0.1)]
    duplicates: f64,
    /// Also send this many forged signatures per second for the project
    /// while the load runs (a flood must not delay real acks).
    #[arg(long)]
    forged_rate: Option<f64>,
    /// Load this already-running server instead of spawning one.
    #[arg(long, requires_all = ["project", "secret"])]
    target: Option<String>,
    /// Project id on --target.
    #[arg(long)]
    project: Option<String>,
    /// Webhook signing secret of --project.
    #[arg(long)]
    secret: Option<String>,
    /// Check the flags and exit without running (CI checks every
    /// benchmark line of the README so).
    #[arg(long)]
    check: bool,
    /// Passed by `cargo bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

struct Scenario {
    mode: Mode,
    sends: usize,
    /// Forged signatures per second beside the load.
    forged: Option<f64>,
    /// A standard scenario for the SQLite target only (PostgreSQL would
    /// just queue requests it cannot take that fast).
    sqlite_only: bool,
}

impl Options {
    fn scenarios(&self) -> Vec<Scenario> {
        let closed = |concurrency| Scenario {
            mode: Mode::Closed { concurrency },
            sends: self.events.unwrap_or(20_000),
            forged: self.forged_rate,
            sqlite_only: false,
        };
        let open = |rate: f64, sends: Option<usize>| Scenario {
            mode: Mode::Open { rate },
            sends: sends.unwrap_or((rate * 10.0).round() as usize),
            forged: self.forged_rate,
            sqlite_only: false,
        };
        match (self.concurrency, self.rate) {
            (_, Some(rate)) => vec![open(rate, self.events)],
            (Some(c), None) => vec![closed(c)],
            // Throughput at two concurrencies (group commit grows with the
            // number waiting), the latency point, the issue's
            // throughput target as a steady rate, and the latency point and
            // a closed loop again under a flood of forged signatures.
            (None, None) => vec![
                closed(64),
                closed(256),
                open(1000.0, None),
                Scenario {
                    sqlite_only: true,
                    ..open(5000.0, None)
                },
                Scenario {
                    forged: Some(1000.0),
                    ..open(1000.0, None)
                },
                Scenario {
                    forged: Some(1000.0),
                    sqlite_only: true,
                    ..closed(64)
                },
            ],
        }
    }
}

fn main() -> ExitCode {
    let opts = Options::parse();
    if !(0.0..1.0).contains(&opts.duplicates) {
        eprintln!("--duplicates must be at least 0 and below 1");
        return ExitCode::from(2);
    }
    if opts.check {
        println!("{opts:?}");
        return ExitCode::SUCCESS;
    }
    parityrail::install_crypto_provider();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(opts)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)` when an acknowledged event was lost.
async fn run(opts: Options) -> anyhow::Result<bool> {
    let fixtures = load::load_fixtures()?;
    let scenarios = opts.scenarios();
    let mut outcomes = Vec::new();
    if let Some(base_url) = &opts.target {
        let target = Target {
            base_url: base_url.clone(),
            project: opts.project.clone().unwrap_or_default(),
            secret: opts.secret.clone().unwrap_or_default(),
        };
        // The target's Stripe account is unknown: its workers may dead-letter these.
        let customers: Vec<String> = (0..CUSTOMERS).map(|k| format!("cus_bench{k}")).collect();
        for scenario in &scenarios {
            let plan = Plan::build(&fixtures, scenario.sends, opts.duplicates, &customers);
            outcomes.push(measure("external", &target, None, plan, scenario).await?);
        }
    } else {
        let sim = StripeSim::new();
        sim.add_api_key(server::API_KEY);
        let customers = seed_customers(&sim);
        let sim_handle = sim.start().await;
        let backends: &[&str] = match opts.backend {
            BackendChoice::Sqlite => &["sqlite"],
            BackendChoice::Postgres => &["postgres"],
            BackendChoice::Both => &["sqlite", "postgres"],
        };
        'backends: for &backend in backends {
            for scenario in &scenarios {
                if scenario.sqlite_only && backend != "sqlite" {
                    continue;
                }
                // A fresh database and server per scenario: no scenario
                // inherits another's rows, connections or queue.
                let db = match backend {
                    "sqlite" => Database::sqlite()?,
                    _ => match PgDatabase::create().await? {
                        Some(db) => db,
                        None => continue 'backends,
                    },
                };
                let server = Server::start(db, &sim_handle.base_url()).await?;
                let plan = Plan::build(&fixtures, scenario.sends, opts.duplicates, &customers);
                let outcome = measure(backend, &server.target, Some(&server), plan, scenario).await;
                server.stop().await?;
                outcomes.push(outcome?);
            }
        }
    }
    println!("\nSummary (acks/s counts every 2xx, re-sends included):\n");
    report::print_table(&outcomes);
    print_targets(&outcomes);
    Ok(outcomes.iter().all(|o| o.lost.unwrap_or(0) == 0))
}

/// Customers with an active subscription, so every sync reads and writes
/// real state. Emission is off: these setup changes are not under test.
fn seed_customers(sim: &StripeSim) -> Vec<String> {
    sim.set_emit_events(false);
    let product = sim.create_product("Bench plan");
    let price = sim.create_price(&product, Some("bench_monthly"), 1000);
    (0..CUSTOMERS)
        .map(|k| {
            let customer = sim.create_customer(&format!("bench{k}@example.com"), &[]);
            sim.create_subscription(&customer, &[&price], "active", &[]);
            customer
        })
        .collect()
}

async fn measure(
    backend: &str,
    target: &Target,
    server: Option<&Server>,
    plan: Plan,
    scenario: &Scenario,
) -> anyhow::Result<Outcome> {
    let mode = scenario.mode;
    println!(
        "\n== {backend}: {mode}{}, {} sends, {} distinct events",
        scenario
            .forged
            .map(|r| format!(" + {r} forged/s"))
            .unwrap_or_default(),
        plan.sends.len(),
        plan.bodies.len()
    );
    let plan = Arc::new(plan);
    let cpu_start = cpu::snapshot(server.and_then(Server::pid));
    let http = reqwest::Client::new();
    let loads_before = server::directory_loads(&http, &target.base_url).await.ok();
    let stop_forging = tokio_util::sync::CancellationToken::new();
    let forger = scenario.forged.map(|rate| {
        let (target, plan, stop) = (target.clone(), plan.clone(), stop_forging.clone());
        tokio::spawn(async move { load::forge(&target, plan, rate, stop).await })
    });
    let result = load::run(target, plan.clone(), mode).await?;
    stop_forging.cancel();
    let last_ack = Instant::now();
    let mut outcome = Outcome::new(backend, mode, &result);
    if let Some(forger) = forger {
        outcome.forged = Some(forger.await??);
        let loads_after = server::directory_loads(&http, &target.base_url).await.ok();
        outcome.directory_loads = loads_before.zip(loads_after).map(|(a, b)| b - a);
    }
    outcome.cpu = cpu::snapshot(server.and_then(Server::pid)).usage_since(&cpu_start);
    match wait_drained(&http, &target.base_url).await {
        Ok(counts) => {
            outcome.drain = Some(last_ack.elapsed());
            outcome.work_done = counts.get("done").copied().unwrap_or(0);
            outcome.work_dead = counts.get("dead").copied().unwrap_or(0);
            if let Some(server) = server {
                let work_items = counts.values().sum();
                outcome.lost = Some(check_stored(server, &plan, &result, work_items).await?);
            }
        }
        Err(e) => println!("note: queue drain not measured: {e:#}"),
    }
    outcome.print();
    Ok(outcome)
}

/// Polls `/metrics` until no work item is queued or leased. Gives up when
/// nothing finishes for 30 s: items waiting out a retry delay (a target
/// whose Stripe cannot serve our customers) would otherwise hold it for hours.
async fn wait_drained(
    http: &reqwest::Client,
    base_url: &str,
) -> anyhow::Result<HashMap<String, i64>> {
    let mut finished = -1;
    let mut progress_at = Instant::now();
    loop {
        let counts = server::work_counts(http, base_url).await?;
        let count =
            |statuses: &[&str]| -> i64 { statuses.iter().filter_map(|s| counts.get(*s)).sum() };
        let pending = count(&["queued", "leased"]);
        if pending == 0 {
            return Ok(counts);
        }
        if count(&["done", "dead"]) != finished {
            finished = count(&["done", "dead"]);
            progress_at = Instant::now();
        } else if progress_at.elapsed() > Duration::from_secs(30) {
            bail!("{pending} work items pending and none finished for 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every acknowledged event must be stored exactly once, with exactly one
/// work item per stored event. Returns how many acknowledged events are
/// missing; a stored duplicate is an error.
async fn check_stored(
    server: &Server,
    plan: &Plan,
    result: &LoadResult,
    work_items: i64,
) -> anyhow::Result<usize> {
    let stored = server.stored_event_ids().await?;
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for id in &stored {
        *copies.entry(id.as_str()).or_default() += 1;
    }
    let doubled = copies.values().filter(|&&n| n > 1).count();
    if doubled > 0 {
        bail!("{doubled} events are stored more than once");
    }
    if work_items != stored.len() as i64 {
        bail!(
            "{} events stored but {work_items} work items: expected one each",
            stored.len()
        );
    }
    let acked: HashSet<u32> = result
        .samples
        .iter()
        .filter(|s| (200..300).contains(&s.status))
        .map(|s| s.event)
        .collect();
    let lost = acked
        .iter()
        .filter(|&&e| !copies.contains_key(plan.ids[e as usize].as_str()))
        .count();
    if lost > 0 {
        eprintln!("LOST: {lost} acknowledged events are not in the store");
    }
    Ok(lost)
}

fn print_targets(outcomes: &[Outcome]) {
    println!("\nTargets (issue; 2-core machine):");
    let best_closed = outcomes
        .iter()
        .filter(|o| o.backend == "sqlite" && matches!(o.mode, Mode::Closed { .. }))
        .max_by(|a, b| a.throughput().total_cmp(&b.throughput()));
    if let Some(o) = best_closed {
        let met = o.throughput() >= 5000.0 && o.failures.is_empty();
        println!(
            "  SQLite max throughput >= 5000 acks/s: {:.0} ({}) -> {}",
            o.throughput(),
            o.mode,
            verdict(met)
        );
    }
    for o in outcomes {
        let failed = !o.failures.is_empty();
        match o.mode {
            Mode::Open { rate: 5000.0 } if o.backend == "sqlite" => {
                // Kept up: every send acknowledged at the offered rate, and
                // latency bounded rather than growing with a queue.
                let met = o.throughput() >= 4900.0 && o.latency_ms[2] <= 250.0 && !failed;
                println!(
                    "  SQLite sustains 5000 events/s: {:.0} acks/s, p99 {:.2} ms -> {}",
                    o.throughput(),
                    o.latency_ms[2],
                    verdict(met)
                );
            }
            Mode::Open { rate: 1000.0 } => {
                let met = o.latency_ms[2] <= 20.0 && !failed;
                println!(
                    "  {} p99 <= 20 ms at 1000 events/s{}: {:.2} ms -> {}",
                    o.backend,
                    o.forged
                        .map(|f| format!(" beside {:.0} forged/s", f.rate))
                        .unwrap_or_default(),
                    o.latency_ms[2],
                    verdict(met)
                );
            }
            _ => {}
        }
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
