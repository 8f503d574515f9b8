//! The `parityrail` command line (SPEC §8). Every command reads `DATABASE_URL`
//! and the other settings; `--json` makes output machine-readable; errors go
//! to stderr with a non-zero exit.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use tokio_util::sync::CancellationToken;

mod incident_cmd;
mod scan_cmd;
mod setup_cmd;
mod token_cmd;

pub use incident_cmd::IncidentsCommand;
pub use token_cmd::TokenCommand;

use crate::{
    app,
    config::{Config, Secret},
    crypto::MasterKey,
    setup::{self, ConnectRequest},
    store::{NewProject, Project, ProjectMode, Store},
    stripe::StripeClient,
};

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
    /// Apply database migrations.
    Migrate,
    /// Print a new master key for PARITYRAIL_MASTER_KEY.
    Keygen,
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
    /// Plan order: higher is a higher plan (tells an upgrade from a downgrade).
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
    #[arg(long)]
    pub past_due_grace_days: Option<i64>,
    /// Seconds after an event's creation before a mismatch becomes an incident.
    #[arg(long)]
    pub fulfillment_deadline: Option<i64>,
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
pub enum StripeCommand {
    /// Store the API key and webhook signing secrets ("Test & connect").
    Connect(ConnectArgs),
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Project id or name.
    pub project: String,
    /// Secret (sk_…) or restricted (rk_…) key.
    #[arg(long)]
    pub api_key: String,
    /// Webhook signing secret (whsec_…); repeat during a secret roll.
    #[arg(long = "webhook-secret")]
    pub webhook_secrets: Vec<String>,
    /// Store without checking the key against Stripe.
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Newest events first.
    List {
        project: String,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Process a stored event again.
    Replay { project: String, event_id: String },
}

/// Runs the parsed command; `Err` is printed to stderr by `main`.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    if let Command::Keygen = cli.command {
        let key = MasterKey::generate_hex();
        print(cli.json, json!({ "master_key": key }), || key.clone());
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Keygen => unreachable!("handled above"),
        Command::Serve => {
            let shutdown = CancellationToken::new();
            let on_signal = shutdown.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down");
                on_signal.cancel();
            });
            app::run(config, shutdown).await
        }
        Command::Migrate => {
            let store = open(&config).await?;
            print(
                cli.json,
                json!({"migrated": true, "backend": store.backend_name()}),
                || format!("migrations applied ({})", store.backend_name()),
            );
            Ok(())
        }
        Command::Project(cmd) => project(cli.json, &open(&config).await?, cmd).await,
        Command::Stripe(StripeCommand::Connect(args)) => connect(cli.json, &config, args).await,
        Command::Events(cmd) => events(cli.json, &open(&config).await?, cmd).await,
        Command::Probe(ProbeCommand::Set {
            project,
            url,
            secret,
            reconcile_url,
        }) => setup_cmd::probe_set(cli.json, &config, &project, &url, &secret, reconcile_url).await,
        Command::Plan(PlanCommand::Set(args)) => setup_cmd::plan_set(cli.json, &config, args).await,
        Command::Scan { project } => scan_cmd::scan(cli.json, config, &project).await,
        Command::Check { project, customer } => {
            setup_cmd::check(cli.json, config, &project, &customer).await
        }
        Command::Incidents(cmd) => incident_cmd::run(cli.json, config, cmd).await,
        Command::Token(cmd) => token_cmd::run(cli.json, &open(&config).await?, cmd).await,
    }
}

pub(crate) async fn open(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database).await?;
    store.migrate().await?;
    Ok(store)
}

pub(crate) async fn find(store: &Store, id_or_name: &str) -> anyhow::Result<Project> {
    store
        .find_project(id_or_name)
        .await?
        .with_context(|| format!("no project {id_or_name:?} (see `parityrail project list`)"))
}

async fn project(json_out: bool, store: &Store, cmd: ProjectCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectCommand::Create { name, mode } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 100 {
                bail!("--name must be 1 to 100 characters");
            }
            let mode = ProjectMode::parse(&mode).expect("clap restricts the values");
            let p = store.create_project(&NewProject { name, mode }).await?;
            print(
                json_out,
                json!({"id": p.id, "name": p.name, "mode": p.mode}),
                || p.id.to_string(),
            );
        }
        ProjectCommand::Config(args) => setup_cmd::config(json_out, store, args).await?,
        ProjectCommand::List => {
            let projects = store.list_projects().await?;
            let rows: Vec<_> = projects
                .iter()
                .map(|p| {
                    json!({"id": p.id, "name": p.name, "mode": p.mode,
                    "created_at": rfc3339(p.created_at)})
                })
                .collect();
            print(json_out, json!(rows), || {
                projects
                    .iter()
                    .map(|p| format!("{}  {:<5} {}", p.id, p.mode.as_str(), p.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

async fn connect(json_out: bool, config: &Config, args: ConnectArgs) -> anyhow::Result<()> {
    let master = config.master_key.as_ref().context(
        "PARITYRAIL_MASTER_KEY is required to store secrets (generate one with `parityrail keygen`)",
    )?;
    let store = open(config).await?;
    app::check_master_key(&store, Some(master), false).await?;
    let project = find(&store, &args.project).await?;
    let stripe = StripeClient::new(&config.stripe_api_base);
    let request = ConnectRequest {
        api_key: Secret::new(args.api_key.trim()),
        webhook_secrets: args
            .webhook_secrets
            .iter()
            .map(|s| Secret::new(s.trim()))
            .collect(),
        verify: !args.no_verify,
    };
    let connected = setup::connect_stripe(&store, &stripe, master, &project, request).await?;
    let webhook_url = format!("{}/api/webhooks/stripe/{}", config.public_url, project.id);
    print(
        json_out,
        json!({"project": project.id, "mode": connected.mode, "account_id": connected.account_id,
            "api_key_last4": connected.api_key_last4,
            "webhook_secrets": connected.webhook_secret_last4.len(),
            "webhook_url": webhook_url, "verified": !args.no_verify}),
        || {
            format!(
                "Stripe connected: {} key ending in {}{}, {} signing secret(s)\nWebhook endpoint: {webhook_url}",
                connected.mode.as_str(),
                connected.api_key_last4,
                connected
                    .account_id
                    .as_deref()
                    .map(|a| format!(" (account {a})"))
                    .unwrap_or_default(),
                connected.webhook_secret_last4.len()
            )
        },
    );
    Ok(())
}

async fn events(json_out: bool, store: &Store, cmd: EventsCommand) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::List { project, limit } => {
            let project = find(store, &project).await?;
            let events = store
                .list_events(project.id.as_str(), limit.clamp(1, 10_000))
                .await?;
            let rows: Vec<_> = events.iter().map(crate::views::event_json).collect();
            print(json_out, json!(rows), || {
                events
                    .iter()
                    .map(|e| {
                        format!(
                            "{}  {:<48} {:<10} {}",
                            e.event_id,
                            e.event_type,
                            e.status,
                            e.reason.as_deref().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        EventsCommand::Replay { project, event_id } => {
            let project = find(store, &project).await?;
            if !store
                .replay_event(project.id.as_str(), &event_id, crate::now_ms())
                .await?
            {
                bail!(
                    "no replayable event {event_id:?} in {} (unknown, ignored, or being processed now)",
                    project.id
                );
            }
            print(json_out, json!({"replayed": event_id}), || {
                format!("{event_id} queued again")
            });
        }
    }
    Ok(())
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
