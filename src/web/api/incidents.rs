//! Incidents and their actions (SPEC §6): the inbox as pages, acknowledge,
//! resolve, rerun (idempotent), reconcile, export evidence.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, Authorized, ErrorBody, List,
    auth::{Check, Manage, Read},
    parse_cursor, parse_filter, parse_limit, query_error, text_filter,
};
use crate::{
    App,
    domain::{IncidentKind, IncidentStatus},
    store::IncidentFilter,
    usecase::incidents,
    views::IncidentView,
};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentsQuery {
    /// Only incidents with this status (the inbox's tabs).
    #[param(value_type = Option<IncidentStatus>)]
    status: Option<String>,
    /// Only this kind.
    #[param(value_type = Option<IncidentKind>)]
    kind: Option<String>,
    /// Only this customer's incidents.
    customer: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Incidents per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// List incidents
///
/// Most recently seen first, a page at a time, each with the runs that
/// prove it. An incident seen again moves to the top.
#[utoipa::path(get, path = "/api/v1/projects/{id}/incidents", tag = "incidents",
    params(("id" = String, Path, description = "Project id"), IncidentsQuery),
    responses(
        (status = 200, description = "A page of incidents", body = List<IncidentView>),
        (status = 400, description = "A bad filter, cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
    ))]
pub async fn list(
    State(app): State<App>,
    caller: Authorized<Read>,
    query: Result<Query<IncidentsQuery>, QueryRejection>,
) -> Result<Json<List<IncidentView>>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = parse_cursor(query.cursor.as_deref(), "inc_")?;
    let filter = IncidentFilter {
        status: parse_filter(
            "status",
            query.status.as_deref(),
            IncidentStatus::parse,
            IncidentStatus::ALL,
            IncidentStatus::as_str,
        )?,
        kind: parse_filter(
            "kind",
            query.kind.as_deref(),
            IncidentKind::parse,
            IncidentKind::ALL,
            IncidentKind::as_str,
        )?,
        customer: text_filter(query.customer.as_deref()),
        before: None,
    };
    let page = incidents::page(&app, &caller.project, filter, cursor, limit).await?;
    Ok(Json(List {
        data: page.items.iter().map(|i| i.view()).collect(),
        next_cursor: page.next,
    }))
}

/// Get an incident
#[utoipa::path(get, path = "/api/v1/projects/{id}/incidents/{incident_id}", tag = "incidents",
    params(("id" = String, Path, description = "Project id"),
        ("incident_id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = IncidentView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 404, description = "No such incident in this project", body = ErrorBody),
    ))]
pub async fn show(
    State(app): State<App>,
    caller: Authorized<Read>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<IncidentView>, ApiError> {
    let view = incidents::get(&app, &caller.project, &id).await?;
    Ok(Json(view.view()))
}

async fn set_status(
    app: &App,
    caller: &Authorized<Manage>,
    id: &str,
    status: IncidentStatus,
) -> Result<Json<IncidentView>, ApiError> {
    let view = incidents::set_status(app, &caller.project, id, status, &caller.actor()).await?;
    tracing::info!(project_id = %caller.project.id, incident_id = id, %status, token_id = %caller.token_id,
        "incident status set over the API");
    Ok(Json(view.view()))
}

/// Acknowledge an incident (admin)
///
/// Someone is on it. Written to the incident's activity log.
#[utoipa::path(post, path = "/api/v1/projects/{id}/incidents/{incident_id}/acknowledge",
    tag = "incidents",
    params(("id" = String, Path, description = "Project id"),
        ("incident_id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident, acknowledged", body = IncidentView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 404, description = "No such incident in this project", body = ErrorBody),
        (status = 409, description = "`already_resolved`", body = ErrorBody),
    ))]
pub async fn acknowledge(
    State(app): State<App>,
    caller: Authorized<Manage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<IncidentView>, ApiError> {
    set_status(&app, &caller, &id, IncidentStatus::Acknowledged).await
}

/// Resolve an incident (admin)
///
/// A resolved incident stays resolved: a new mismatch opens a new one.
#[utoipa::path(post, path = "/api/v1/projects/{id}/incidents/{incident_id}/resolve",
    tag = "incidents",
    params(("id" = String, Path, description = "Project id"),
        ("incident_id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident, resolved", body = IncidentView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 404, description = "No such incident in this project", body = ErrorBody),
        (status = 409, description = "`already_resolved`", body = ErrorBody),
    ))]
pub async fn resolve(
    State(app): State<App>,
    caller: Authorized<Manage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<IncidentView>, ApiError> {
    set_status(&app, &caller, &id, IncidentStatus::Resolved).await
}

#[derive(Serialize, ToSchema)]
pub struct Rerun {
    run_id: String,
    /// `false` when a rerun of this customer was still pending: that one is returned.
    created: bool,
    incident: String,
    customer: String,
}

/// Rerun the customer's check
///
/// Idempotent: a rerun still pending for the customer is returned
/// (`created: false`).
#[utoipa::path(post, path = "/api/v1/projects/{id}/incidents/{incident_id}/rerun",
    tag = "incidents",
    params(("id" = String, Path, description = "Project id"),
        ("incident_id" = String, Path, description = "Incident id")),
    responses(
        (status = 202, description = "The rerun", body = Rerun,
            headers(("Location" = String, description = "The run"))),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 404, description = "No such incident in this project", body = ErrorBody),
        (status = 409, description = "`no_customer` (an incident of the whole project) or `no_probe`",
            body = ErrorBody),
    ))]
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
        Json(Rerun {
            run_id,
            created,
            incident: incident.id,
            customer: incident.customer_id,
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Reconciled {
    incident: String,
    reconciled: bool,
    /// The HTTP status the app's reconcile hook answered.
    app_status: u16,
}

/// Reconcile through the app's hook (admin)
///
/// A signed POST to the app's reconcile hook asking it to grant what was
/// paid for; then rerun to prove it.
#[utoipa::path(post, path = "/api/v1/projects/{id}/incidents/{incident_id}/reconcile",
    tag = "incidents",
    params(("id" = String, Path, description = "Project id"),
        ("incident_id" = String, Path, description = "Incident id")),
    responses(
        (status = 202, description = "The app's hook accepted it", body = Reconciled),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 404, description = "No such incident in this project", body = ErrorBody),
        (status = 409, description = "`already_resolved`, `no_customer`, `not_reconcilable` or \
            `no_reconcile_hook`", body = ErrorBody),
        (status = 502, description = "`reconcile_failed`: the hook did not accept it", body = ErrorBody),
    ))]
pub async fn reconcile(
    State(app): State<App>,
    caller: Authorized<Manage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Reconciled>), ApiError> {
    let status = incidents::reconcile(&app, &caller.project, &id, &caller.actor()).await?;
    tracing::info!(project_id = %caller.project.id, incident_id = id, app_status = status,
        token_id = %caller.token_id, "reconcile hook called over the API");
    Ok((
        StatusCode::ACCEPTED,
        Json(Reconciled {
            incident: id,
            reconciled: true,
            app_status: status,
        }),
    ))
}

/// Export an incident's evidence
///
/// One JSON attachment: the incident, every run that proves it with all its
/// steps, and the project.
#[utoipa::path(get, path = "/api/v1/projects/{id}/incidents/{incident_id}/export",
    tag = "incidents",
    params(("id" = String, Path, description = "Project id"),
        ("incident_id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The evidence", body = Object),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 404, description = "No such incident in this project", body = ErrorBody),
    ))]
pub async fn export(
    State(app): State<App>,
    caller: Authorized<Read>,
    Path((_, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let evidence: Value = incidents::export(&app, &caller.project, &id).await?;
    // The id is known to exist, so it is `inc_` + base32: safe in a header.
    let disposition = format!("attachment; filename=\"{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(evidence)))
}
