//! `parityrail token create|list|revoke`: API tokens of a project. A token
//! is printed once, at creation; only its hash is stored.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use super::{find, print, rfc3339};
use crate::{
    App,
    domain::{ApiToken, Role},
    usecase::tokens,
};

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token and print it (the only time it is shown).
    Create {
        /// Project id or name.
        #[arg(long)]
        project: String,
        /// admin: everything; viewer: read, start checks and reruns.
        #[arg(long, value_parser = ["admin", "viewer"])]
        role: String,
    },
    /// List the project's tokens (never the tokens themselves).
    List {
        #[arg(long)]
        project: String,
    },
    /// Revoke a token by its id (`tok_…`): it stops working at once.
    Revoke {
        #[arg(long)]
        project: String,
        token_id: String,
    },
}

fn token_json(t: &ApiToken) -> serde_json::Value {
    json!({"id": t.id, "project": t.project_id, "role": t.role,
        "created_at": rfc3339(t.created_at), "revoked_at": t.revoked_at.map(rfc3339)})
}

pub async fn run(json_out: bool, app: &App, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { project, role } => {
            let role = Role::parse(&role).expect("clap restricts the values");
            let project = find(app, &project).await?;
            let issued = tokens::issue(app, &project, role).await?;
            let mut out = token_json(&issued.record);
            out["token"] = json!(issued.token.expose());
            print(json_out, out, || issued.token.expose().to_string());
        }
        TokenCommand::List { project } => {
            let project = find(app, &project).await?;
            let tokens = tokens::list(app, &project).await?;
            print(json_out, tokens.iter().map(token_json).collect(), || {
                tokens
                    .iter()
                    .map(|t| {
                        let state = t.revoked_at.map_or("active".to_string(), |at| {
                            format!("revoked {}", rfc3339(at))
                        });
                        format!(
                            "{}  {:<6}  created {}  {state}",
                            t.id,
                            t.role.as_str(),
                            rfc3339(t.created_at)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        TokenCommand::Revoke { project, token_id } => {
            let project = find(app, &project).await?;
            let Some(token) = tokens::revoke(app, &project, &token_id).await? else {
                bail!(
                    "no token {token_id:?} in {} (see `parityrail token list --project {}`)",
                    project.id,
                    project.id
                );
            };
            print(json_out, token_json(&token), || {
                format!("{} revoked", token.id)
            });
        }
    }
    Ok(())
}
