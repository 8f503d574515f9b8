//! Incidents and their actions (SPEC §6): acknowledge, resolve, rerun
//! (idempotent), reconcile, export evidence.

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde_json::{Value, json};

use super::{
    ApiError, Authorized,
    auth::{Check, Manage, Read},
};
use crate::{App, domain::IncidentStatus, usecase::incidents};

/// `GET /api/v1/projects/{id}/incidents`, newest first (the shape of
/// `parityrail incidents list --json`).
pub async fn list(
    State(app): State<App>,
    caller: Authorized<Read>,
) -> Result<Json<Value>, ApiError> {
    let list = incidents::list(&app, &caller.project).await?;
    Ok(Json(list.iter().map(|i| i.json()).collect()))
}

/// `GET /api/v1/projects/{id}/incidents/{incident_id}`.
pub async fn show(
    State(app): State<App>,
    caller: Authorized<Read>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let view = incidents::get(&app, &caller.project, &id).await?;
    Ok(Json(view.json()))
}

async fn set_status(
    app: &App,
    caller: &Authorized<Manage>,
    id: &str,
    status: IncidentStatus,
) -> Result<Json<Value>, ApiError> {
    let view = incidents::set_status(app, &caller.project, id, status, &caller.actor()).await?;
    tracing::info!(project_id = %caller.project.id, incident_id = id, %status, token_id = %caller.token_id,
        "incident status set over the API");
    Ok(Json(view.json()))
}

/// `POST …/incidents/{incident_id}/acknowledge` → the incident; 409 if resolved.
pub async fn acknowledge(
    State(app): State<App>,
    caller: Authorized<Manage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    set_status(&app, &caller, &id, IncidentStatus::Acknowledged).await
}

/// `POST …/incidents/{incident_id}/resolve` → the incident; 409 if resolved.
pub async fn resolve(
    State(app): State<App>,
    caller: Authorized<Manage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    set_status(&app, &caller, &id, IncidentStatus::Resolved).await
}

/// `POST …/incidents/{incident_id}/rerun` → 202 and the run: a new rerun of
/// the customer's check, or the one still pending (`"created": false`).
pub async fn rerun(
    State(app): State<App>,
    caller: Authorized<Check>,
    Path((_, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let project = &caller.project;
    let (incident, run_id, created) = incidents::rerun(&app, project, &id, &caller.actor()).await?;
    tracing::info!(project_id = %project.id, incident_id = id, run_id, created, "rerun over the API");
    let location = format!("/api/v1/projects/{}/runs/{run_id}", project.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(
            json!({"run_id": run_id, "created": created, "incident": incident.id,
            "customer": incident.customer_id}),
        ),
    ))
}

/// `POST …/incidents/{incident_id}/reconcile` → 202 with the app's status,
/// after the app's reconcile hook accepted the signed request.
pub async fn reconcile(
    State(app): State<App>,
    caller: Authorized<Manage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let status = incidents::reconcile(&app, &caller.project, &id, &caller.actor()).await?;
    tracing::info!(project_id = %caller.project.id, incident_id = id, app_status = status,
        token_id = %caller.token_id, "reconcile hook called over the API");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"incident": id, "reconciled": true, "app_status": status})),
    ))
}

/// `GET …/incidents/{incident_id}/export`: the evidence as a JSON attachment.
pub async fn export(
    State(app): State<App>,
    caller: Authorized<Read>,
    Path((_, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let evidence = incidents::export(&app, &caller.project, &id).await?;
    // The id is known to exist, so it is `inc_` + base32: safe in a header.
    let disposition = format!("attachment; filename=\"{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(evidence)))
}
