//! `parityrail stripe …`: "Test & connect" a key, and the webhook signing
//! secrets (list, add, remove to finish a secret roll).

use clap::{Args, Subcommand};
use serde_json::json;

use super::{find, print, rfc3339};
use crate::{
    App,
    config::Secret,
    usecase::connection::{self, ConnectRequest, SecretView},
};

#[derive(Subcommand, Debug)]
pub enum StripeCommand {
    /// Store the API key and webhook signing secrets ("Test & connect").
    Connect(ConnectArgs),
    /// The webhook signing secrets of a project.
    #[command(subcommand)]
    Secrets(SecretsCommand),
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
pub enum SecretsCommand {
    /// The secrets: id, last 4 characters, added, last matched.
    List { project: String },
    /// Add a secret (Stripe shows a new one when you roll the endpoint's secret).
    Add { project: String, secret: String },
    /// Remove a secret, e.g. the old one once a roll is done; the last one
    /// only with --force (every webhook is then refused).
    Remove {
        project: String,
        secret_id: String,
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(json_out: bool, app: &App, cmd: StripeCommand) -> anyhow::Result<()> {
    match cmd {
        StripeCommand::Connect(args) => connect(json_out, app, args).await,
        StripeCommand::Secrets(SecretsCommand::List { project }) => {
            let project = find(app, &project).await?;
            let secrets = connection::secrets(app, &project).await?;
            print_secrets(json_out, &secrets);
            Ok(())
        }
        StripeCommand::Secrets(SecretsCommand::Add { project, secret }) => {
            let project = find(app, &project).await?;
            let secrets =
                connection::add_secrets(app, &project, &[Secret::new(secret.trim())]).await?;
            print_secrets(json_out, &secrets);
            Ok(())
        }
        StripeCommand::Secrets(SecretsCommand::Remove {
            project,
            secret_id,
            force,
        }) => {
            let project = find(app, &project).await?;
            connection::remove_secret(app, &project, &secret_id, force).await?;
            print(json_out, json!({"removed": secret_id}), || {
                format!("signing secret {secret_id} removed")
            });
            Ok(())
        }
    }
}

fn print_secrets(json_out: bool, secrets: &[SecretView]) {
    print(json_out, json!(secrets), || {
        secrets
            .iter()
            .map(|s| {
                format!(
                    "{}  …{}  added {}  last matched {}",
                    s.id,
                    s.last4,
                    rfc3339(s.added_at),
                    s.last_matched_at.map_or("never".to_string(), rfc3339)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
}

async fn connect(json_out: bool, app: &App, args: ConnectArgs) -> anyhow::Result<()> {
    let project = find(app, &args.project).await?;
    let request = ConnectRequest {
        api_key: Secret::new(args.api_key.trim()),
        webhook_secrets: args
            .webhook_secrets
            .iter()
            .map(|s| Secret::new(s.trim()))
            .collect(),
        verify: !args.no_verify,
    };
    let connected = connection::connect_stripe(app, &project, request).await?;
    let webhook_url = format!(
        "{}/api/webhooks/stripe/{}",
        app.config.public_url, project.id
    );
    print(
        json_out,
        json!({"project": project.id, "mode": connected.mode, "account_id": connected.account_id,
            "api_key_last4": connected.api_key_last4,
            "webhook_secrets": connected.webhook_secrets.len(),
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
                connected.webhook_secrets.len()
            )
        },
    );
    Ok(())
}
