//! `parityrail incidents …`: list, and the actions of SPEC §6 (acknowledge,
//! resolve, rerun, reconcile, export), shared with the API.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::{find, open, print, setup_cmd};
use crate::{
    App,
    config::Config,
    incidents::{self, incident_json},
    store::IncidentStatus,
};

#[derive(Subcommand, Debug)]
pub enum IncidentsCommand {
    /// Incidents with their evidence, newest first.
    List { project: String },
    /// Acknowledge: someone is on it.
    #[command(alias = "acknowledge")]
    Ack {
        project: String,
        incident_id: String,
    },
    /// Mark resolved.
    Resolve {
        project: String,
        incident_id: String,
    },
    /// Rerun the customer's check now and print the verdict (idempotent:
    /// joins a rerun that is still pending).
    Rerun {
        project: String,
        incident_id: String,
    },
    /// Ask the app's reconcile hook to grant the expected access.
    Reconcile {
        project: String,
        incident_id: String,
    },
    /// Print the evidence (incident, proving runs with their steps) as JSON.
    Export {
        project: String,
        incident_id: String,
    },
}

pub async fn run(json_out: bool, config: Config, cmd: IncidentsCommand) -> anyhow::Result<()> {
    match cmd {
        IncidentsCommand::List { project } => {
            let store = open(&config).await?;
            let project = find(&store, &project).await?;
            setup_cmd::incidents_list(json_out, &store, &project).await
        }
        IncidentsCommand::Ack {
            project,
            incident_id,
        } => {
            set_status(
                json_out,
                &config,
                &project,
                &incident_id,
                IncidentStatus::Acknowledged,
            )
            .await
        }
        IncidentsCommand::Resolve {
            project,
            incident_id,
        } => {
            set_status(
                json_out,
                &config,
                &project,
                &incident_id,
                IncidentStatus::Resolved,
            )
            .await
        }
        IncidentsCommand::Export {
            project,
            incident_id,
        } => {
            let store = open(&config).await?;
            let project = find(&store, &project).await?;
            let evidence = incidents::export(&store, &project.id, &incident_id).await?;
            if json_out {
                println!("{evidence}");
            } else {
                println!("{}", serde_json::to_string_pretty(&evidence)?);
            }
            Ok(())
        }
        IncidentsCommand::Rerun {
            project,
            incident_id,
        } => rerun(json_out, config, &project, &incident_id).await,
        IncidentsCommand::Reconcile {
            project,
            incident_id,
        } => {
            let (app, writer) = App::start(config).await?;
            let result = async {
                let project = find(&app.store, &project).await?;
                let status = incidents::reconcile(&app, &project.id, &incident_id).await?;
                print(
                    json_out,
                    json!({"incident": incident_id, "reconciled": true, "app_status": status}),
                    || format!("reconcile hook accepted {incident_id} (HTTP {status}); rerun to confirm"),
                );
                anyhow::Ok(())
            }
            .await;
            app.inbox_stop.cancel();
            let _ = writer.await;
            result
        }
    }
}

async fn set_status(
    json_out: bool,
    config: &Config,
    project: &str,
    incident_id: &str,
    status: IncidentStatus,
) -> anyhow::Result<()> {
    let store = open(config).await?;
    let project = find(&store, project).await?;
    let incident = incidents::set_status(&store, &project.id, incident_id, status).await?;
    print(json_out, incident_json(&store, &incident).await?, || {
        format!("{} {}", incident.id, incident.status)
    });
    Ok(())
}

/// Like `parityrail check`: drives the rerun to its verdict here (a running
/// `serve` may take it instead; its lease keeps the two from overlapping),
/// prints it, and exits non-zero when the check failed.
async fn rerun(
    json_out: bool,
    config: Config,
    project: &str,
    incident_id: &str,
) -> anyhow::Result<()> {
    let (app, writer) = App::start(config).await?;
    let result = async {
        let project = find(&app.store, project).await?;
        let (incident, run_id, created) = incidents::rerun(&app, &project.id, incident_id).await?;
        let run = crate::check::drive(&app, &run_id, std::time::Duration::from_secs(60))
            .await?
            .context("the run vanished")?;
        anyhow::Ok((incident, run, created))
    }
    .await;
    app.inbox_stop.cancel();
    let _ = writer.await;
    let (incident, run, created) = result?;
    let extra =
        json!({"created": created, "incident": incident.id, "customer": incident.customer_id});
    setup_cmd::report_verdict(json_out, &run, extra);
    Ok(())
}
