//! `parityrail user create EMAIL --role R --project P [--password-stdin]`:
//! a dashboard user with a role in one project. Without `--password-stdin`
//! a random password is printed once.

use std::io::BufRead;

use clap::Subcommand;
use serde_json::json;

use super::{find, print};
use crate::{App, domain::Role, usecase::members};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user who signs in to the dashboard, with a role in a project.
    Create {
        email: String,
        /// admin: integrations, secrets, members, tokens, every incident action; viewer: read, rerun.
        #[arg(long, value_parser = ["admin", "viewer"])]
        role: String,
        /// Project id or name.
        #[arg(long)]
        project: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

pub async fn run(json_out: bool, app: &App, cmd: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Create {
        email,
        role,
        project,
        password_stdin,
    } = cmd;
    let role = Role::parse(&role).expect("clap restricts the values");
    let project = find(app, &project).await?;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        (line.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (members::random_password().expose().to_string(), true)
    };
    let user = members::create_member(app, &project, &email, &password, role)
        .await
        .map_err(|e| match e.field() {
            Some("password") => anyhow::anyhow!("--password-stdin: {e}"),
            Some(field) => anyhow::anyhow!("{}: {e}", field.to_uppercase()),
            None => anyhow::anyhow!("{e}"),
        })?;
    let mut out = json!({"id": user.id, "email": user.email, "role": role, "project": project.id});
    if generated {
        out["password"] = json!(password);
    }
    print(json_out, out, || {
        let mut line = format!(
            "created {} ({}) as {} of {}",
            user.email,
            user.id,
            role.as_str(),
            project.name
        );
        if generated {
            line.push_str(&format!("\npassword (shown once): {password}"));
        }
        line
    });
    Ok(())
}
