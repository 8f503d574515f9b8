//! `parityrail incidents …`: list, and the actions of SPEC §6 (acknowledge,
//! resolve, rerun, reconcile, export), shared with the API.

use clap::Subcommand;
use serde_json::json;

use super::{find, print, rfc3339, setup_cmd};
use crate::{App, domain::IncidentStatus, usecase::incidents};

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

pub async fn run(json_out: bool, app: &App, cmd: IncidentsCommand) -> anyhow::Result<()> {
    match cmd {
        IncidentsCommand::List { project } => {
            let project = find(app, &project).await?;
            let list = incidents::list(app, &project).await?;
            let rows: Vec<_> = list.iter().map(|i| i.json()).collect();
            print(json_out, json!(rows), || {
                list.iter()
                    .map(|v| {
                        let i = &v.incident;
                        format!(
                            "{}  {:<18} {:<12} {:<22} x{}  last {}{}",
                            i.id,
                            i.kind.as_str(),
                            i.status.as_str(),
                            i.customer_id,
                            i.count,
                            rfc3339(i.last_seen),
                            if i.drill { "  [drill]" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        IncidentsCommand::Ack {
            project,
            incident_id,
        } => {
            set_status(
                json_out,
                app,
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
                app,
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
            let project = find(app, &project).await?;
            let evidence = incidents::export(app, &project, &incident_id).await?;
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
        } => rerun(json_out, app, &project, &incident_id).await,
        IncidentsCommand::Reconcile {
            project,
            incident_id,
        } => {
            let project = find(app, &project).await?;
            let status = incidents::reconcile(app, &project, &incident_id, "cli").await?;
            print(
                json_out,
                json!({"incident": incident_id, "reconciled": true, "app_status": status}),
                || {
                    format!(
                        "reconcile hook accepted {incident_id} (HTTP {status}); rerun to confirm"
                    )
                },
            );
            Ok(())
        }
    }
}

async fn set_status(
    json_out: bool,
    app: &App,
    project: &str,
    incident_id: &str,
    status: IncidentStatus,
) -> anyhow::Result<()> {
    let project = find(app, project).await?;
    let view = incidents::set_status(app, &project, incident_id, status, "cli").await?;
    print(json_out, view.json(), || {
        format!("{} {}", view.incident.id, view.incident.status)
    });
    Ok(())
}

/// Like `parityrail check`: drives the rerun to its verdict here (a running
/// `serve` may take it instead; its lease keeps the two from overlapping),
/// prints it, and exits non-zero when the check failed.
async fn rerun(json_out: bool, app: &App, project: &str, incident_id: &str) -> anyhow::Result<()> {
    let project = find(app, project).await?;
    let (incident, run_id, created) = incidents::rerun(app, &project, incident_id, "cli").await?;
    let run = crate::usecase::checks::drive(app, &run_id, std::time::Duration::from_secs(60))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the run vanished"))?;
    let extra =
        json!({"created": created, "incident": incident.id, "customer": incident.customer_id});
    setup_cmd::report_verdict(json_out, &run, extra)
}
