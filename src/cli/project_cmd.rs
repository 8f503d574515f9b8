//! `project create|list|config` and `events list|replay`.

use serde_json::json;

use super::{EventsCommand, ProjectCommand, find, print, rfc3339, setup_cmd};
use crate::{
    App,
    domain::ProjectMode,
    usecase::{events, projects},
};

pub(super) async fn project(json_out: bool, app: &App, cmd: ProjectCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectCommand::Create { name, mode } => {
            let mode = ProjectMode::parse(&mode).expect("clap restricts the values");
            let p = projects::create(app, &name, mode).await?;
            print(
                json_out,
                json!({"id": p.id, "name": p.name, "mode": p.mode}),
                || p.id.to_string(),
            );
        }
        ProjectCommand::Config(args) => setup_cmd::config(json_out, app, args).await?,
        ProjectCommand::List => {
            let projects = projects::list(app).await?;
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

pub(super) async fn events_cmd(
    json_out: bool,
    app: &App,
    cmd: EventsCommand,
) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::List { project, limit } => {
            let project = find(app, &project).await?;
            let events = events::list(app, &project, limit).await?;
            let rows: Vec<_> = events.iter().map(crate::views::event_json).collect();
            print(json_out, json!(rows), || {
                events
                    .iter()
                    .map(|e| {
                        format!(
                            "{}  {:<48} {:<10} {}{}",
                            e.event_id,
                            e.event_type,
                            e.status.as_str(),
                            e.reason.as_deref().unwrap_or(""),
                            if crate::domain::is_drill_event(&e.event_id) {
                                "  [drill]"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        EventsCommand::Replay { project, event_id } => {
            let project = find(app, &project).await?;
            let replayed = events::replay(app, &project, &event_id, "cli").await?;
            print(
                json_out,
                json!({"replayed": event_id, "run_id": replayed.run_id}),
                || match &replayed.run_id {
                    Some(run) => format!("{event_id} queued again; its check will be {run}"),
                    None => format!("{event_id} queued again (no app probe: nothing to check)"),
                },
            );
        }
    }
    Ok(())
}
