//! The `parityrail` command line (SPEC §8). Every command reads `DATABASE_URL`
//! and the other settings; `--json` makes output machine-readable; errors go
//! to stderr with a non-zero exit. Commands parse, call a use case, render.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use tokio_util::sync::CancellationToken;

mod incident_cmd;
mod project_cmd;
mod scan_cmd;
mod setup_cmd;
mod stripe_cmd;
mod token_cmd;
mod user_cmd;

pub use incident_cmd::IncidentsCommand;
pub use stripe_cmd::StripeCommand;
pub use token_cmd::TokenCommand;
pub use user_cmd::UserCommand;

use crate::{App, app, config::Config, crypto::MasterKey, domain::Project, usecase::projects};

#[derive(Parser, Debug)]
#[command(
    name = "parityrail",
    version,
    about = "Proves every Stripe customer has exactly the access they paid for."
)]
pub struct Cli {
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    /// An env-style settings file (KEY=VALUE lines); the environment wins over it.
    #[arg(long, global = true, env = "PARITYRAIL_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// HTTP server + workers (migrates on start).
    Serve,
    /// Everything on the embedded default with a simulated Stripe and app
    /// (SPEC §8a): prints the dashboard URL and a sign-in.
    Demo {
        /// Keep the temporary database folder on exit.
        #[arg(long)]
        keep: bool,
        /// Seconds between simulated subscription changes.
        #[arg(long, default_value_t = 4.0, value_parser = positive_secs)]
        every: f64,
        /// Seconds the demo's app has to follow a change before an incident
        /// opens (the demo project's fulfillment deadline).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=3600))]
        deadline: u32,
    },
    /// Apply database migrations.
    Migrate,
    /// Print a new master key for PARITYRAIL_MASTER_KEY.
    Keygen,
    /// Print the OpenAPI 3.1 document of the JSON API (as `/api/v1/openapi.json` serves it).
    Openapi,
    /// Projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// The Stripe integration of a project.
    #[command(subcommand)]
    Stripe(StripeCommand),
    /// The webhook event log.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Incidents and their actions.
    #[command(subcommand)]
    Incidents(IncidentsCommand),
    /// API tokens of a project.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Dashboard users.
    #[command(subcommand)]
    User(UserCommand),
    /// The app probe of a project.
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// The plan map of a project.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Run one fulfillment check now and print the verdict.
    Check { project: String, customer: String },
    /// Full scan of every customer now, with a progress bar.
    Scan { project: String },
    /// Prove monitoring works end to end (SPEC §8b): one labelled event for a
    /// real customer through the running service's webhook URL, whose check
    /// must open an incident. Exit 0 only when it did.
    Drill {
        project: String,
        /// The running service (default: PARITYRAIL_PUBLIC_URL).
        #[arg(long)]
        url: Option<String>,
        /// Seconds to wait for the check and its incident.
        #[arg(long, default_value_t = 60.0, value_parser = positive_secs)]
        wait: f64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProbeCommand {
    /// Set the probe URL and its signing secret.
    Set {
        project: String,
        #[arg(long)]
        url: String,
        #[arg(long)]
        secret: String,
        /// Optional reconcile hook, signed like the probe.
        #[arg(long)]
        reconcile_url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// Add or replace one plan-map rule.
    Set(PlanSetArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("selector").required(true).args(["price", "product", "lookup_key"])))]
pub struct PlanSetArgs {
    pub project: String,
    /// Stripe price id the rule matches.
    #[arg(long)]
    pub price: Option<String>,
    /// Stripe product id the rule matches.
    #[arg(long)]
    pub product: Option<String>,
    /// Stripe price lookup_key the rule matches.
    #[arg(long)]
    pub lookup_key: Option<String>,
    #[arg(long)]
    pub plan: String,
    /// Plan order: higher is a higher plan (tells an upgrade from a
    /// downgrade). Without ranks, a plan whose features and limits contain
    /// another's is the higher one.
    #[arg(long, default_value_t = 0)]
    pub rank: i64,
    #[arg(long = "feature")]
    pub features: Vec<String>,
    /// NAME=NUMBER, repeatable.
    #[arg(long = "limit")]
    pub limits: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// Create a project and print its id.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "test", value_parser = ["test", "live", "demo"])]
        mode: String,
    },
    /// List projects.
    List,
    /// Per-project settings.
    Config(ConfigArgs),
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    pub project: String,
    /// Days a past_due subscription keeps access, counted from Stripe's
    /// failed payment.
    #[arg(long)]
    pub past_due_grace_days: Option<i64>,
    /// Seconds after an event's creation before a mismatch becomes an incident.
    #[arg(long)]
    pub fulfillment_deadline: Option<i64>,
    /// The Stripe metadata key that holds the app's user id.
    #[arg(long)]
    pub user_metadata_key: Option<String>,
    /// Require an explicit user mapping (no fallback to the customer id).
    #[arg(long)]
    pub require_mapping: Option<Option<bool>>,
    /// Seconds an event may stay unfinished before a webhook_lag incident.
    #[arg(long)]
    pub lag_threshold: Option<i64>,
    /// Features come from Stripe Entitlements.
    #[arg(long)]
    pub use_entitlements: Option<Option<bool>>,
    /// Daily scan time, HH:MM UTC.
    #[arg(long)]
    pub scan_at: Option<String>,
    /// Stripe requests per second a scan may spend.
    #[arg(long)]
    pub stripe_budget: Option<i64>,
}

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Newest events first.
    List {
        project: String,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Process a stored event again: Stripe is re-read and a new check runs.
    Replay { project: String, event_id: String },
}

/// A check that ran and failed: the verdict is printed, the exit is 1.
#[derive(Debug, thiserror::Error)]
#[error("the check failed")]
pub struct CheckFailed;

/// Runs the parsed command; `Err` is printed to stderr by `main` (except
/// [`CheckFailed`], whose verdict was already printed).
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    if let Command::Openapi = cli.command {
        print!("{}", crate::web::api::openapi_json());
        return Ok(());
    }
    if let Command::Keygen = cli.command {
        let key = MasterKey::generate_hex();
        print(cli.json, json!({ "master_key": key }), || key.clone());
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    if let Command::Serve = cli.command {
        return app::run(config, on_signal()).await;
    }
    if let Command::Demo {
        keep,
        every,
        deadline,
    } = cli.command
    {
        let options = crate::demo::DemoOptions {
            database_set: std::env::var_os("DATABASE_URL").is_some(),
            keep,
            every: std::time::Duration::from_secs_f64(every),
            deadline: std::time::Duration::from_secs(u64::from(deadline)),
        };
        return crate::demo::run(config, options, on_signal()).await;
    }
    let app = App::open(config).await?;
    let result = dispatch(cli.json, &app, cli.command).await;
    app.shutdown().await;
    result.map_err(name_flags)
}

/// A setup error names its field; on the command line that is a flag.
fn name_flags(err: anyhow::Error) -> anyhow::Error {
    match err.downcast_ref::<projects::SetupError>() {
        Some(projects::SetupError::Invalid { field, message }) => {
            anyhow::anyhow!("--{}: {message}", field.replace('_', "-"))
        }
        _ => err,
    }
}

async fn dispatch(json_out: bool, app: &App, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Keygen | Command::Openapi | Command::Serve | Command::Demo { .. } => {
            unreachable!("handled before")
        }
        Command::Migrate => {
            let backend = crate::usecase::health::backend(app);
            print(
                json_out,
                json!({"migrated": true, "backend": backend}),
                || format!("migrations applied ({backend})"),
            );
            Ok(())
        }
        Command::Project(cmd) => project_cmd::project(json_out, app, cmd).await,
        Command::Stripe(cmd) => stripe_cmd::run(json_out, app, cmd).await,
        Command::Events(cmd) => project_cmd::events_cmd(json_out, app, cmd).await,
        Command::Probe(ProbeCommand::Set {
            project,
            url,
            secret,
            reconcile_url,
        }) => {
            setup_cmd::probe_set(
                json_out,
                app,
                &project,
                &url,
                &secret,
                reconcile_url.as_deref(),
            )
            .await
        }
        Command::Plan(PlanCommand::Set(args)) => setup_cmd::plan_set(json_out, app, args).await,
        Command::Scan { project } => scan_cmd::scan(json_out, app, &project).await,
        Command::Check { project, customer } => {
            setup_cmd::check(json_out, app, &project, &customer).await
        }
        Command::Drill { project, url, wait } => {
            let url = url.unwrap_or_else(|| app.config.public_url.clone());
            setup_cmd::drill(json_out, app, &project, &url, wait).await
        }
        Command::Incidents(cmd) => incident_cmd::run(json_out, app, cmd).await,
        Command::Token(cmd) => token_cmd::run(json_out, app, cmd).await,
        Command::User(cmd) => user_cmd::run(json_out, app, cmd).await,
    }
}

pub(crate) async fn find(app: &App, id_or_name: &str) -> anyhow::Result<Project> {
    Ok(projects::find(app, id_or_name).await?)
}

pub(crate) fn print(json_out: bool, value: serde_json::Value, human: impl FnOnce() -> String) {
    if json_out {
        println!("{value}");
    } else {
        let text = human();
        if !text.is_empty() {
            println!("{text}");
        }
    }
}

pub use crate::rfc3339;

/// Cancelled on Ctrl-C or SIGTERM.
fn on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let cancel = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        cancel.cancel();
    });
    shutdown
}

fn positive_secs(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.1..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "must be a number of seconds from 0.1 to 3600, got {raw:?}"
        )),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
