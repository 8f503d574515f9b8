//! Scans (SPEC §7): past ones and the one running, with its progress;
//! "Scan now" starts one or joins the one running.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, Authorized, ErrorBody,
    auth::{Check, Read},
    limit_in, not_found, query_error,
};
use crate::{App, domain::ScanTrigger, scan::ScanError, usecase::scans, views::ScanView};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScansQuery {
    /// How many of the newest scans, 1 to 365 (default 30).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 365)]
    limit: Option<String>,
}

/// List scans
///
/// Newest first: the running scan (if any) with its progress so far, and
/// the summaries of past ones.
#[utoipa::path(get, path = "/api/v1/projects/{id}/scans", tag = "scans",
    params(("id" = String, Path, description = "Project id"), ScansQuery),
    responses(
        (status = 200, description = "The newest scans", body = Vec<ScanView>),
        (status = 400, description = "A bad limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
    ))]
pub async fn list(
    State(app): State<App>,
    caller: Authorized<Read>,
    query: Result<Query<ScansQuery>, QueryRejection>,
) -> Result<Json<Vec<ScanView>>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let limit = limit_in(query.limit.as_deref(), 30, 365)?;
    let list = scans::list(&app, &caller.project, limit).await?;
    Ok(Json(list.iter().map(ScanView::from).collect()))
}

/// Get a scan
#[utoipa::path(get, path = "/api/v1/projects/{id}/scans/{scan_id}", tag = "scans",
    params(("id" = String, Path, description = "Project id"),
        ("scan_id" = String, Path, description = "Scan id")),
    responses(
        (status = 200, description = "The scan", body = ScanView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 404, description = "No such scan in this project", body = ErrorBody),
    ))]
pub async fn show(
    State(app): State<App>,
    caller: Authorized<Read>,
    Path((_, scan_id)): Path<(String, String)>,
) -> Result<Json<ScanView>, ApiError> {
    let scan = scans::get(&app, &caller.project, &scan_id)
        .await?
        .ok_or_else(|| not_found("no such scan in this project"))?;
    Ok(Json(ScanView::from(&scan)))
}

#[derive(Serialize, ToSchema)]
pub struct ScanStarted {
    /// `false` when a scan of the project was already running: this is it.
    created: bool,
    scan: ScanView,
}

/// Scan now
///
/// Starts a full scan of the project, or joins the one running (one scan
/// per project at a time). Poll the scan (`Location`) for progress.
#[utoipa::path(post, path = "/api/v1/projects/{id}/scans", tag = "scans",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 202, description = "Started or joined", body = ScanStarted,
            headers(("Location" = String, description = "The scan"))),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 409, description = "`not_scannable`: no Stripe key or no app probe yet",
            body = ErrorBody),
    ))]
pub async fn start(
    State(app): State<App>,
    caller: Authorized<Check>,
) -> Result<impl IntoResponse, ApiError> {
    let project = &caller.project;
    let started = scans::start(&app, project, ScanTrigger::Manual)
        .await
        .map_err(|e| match e {
            ScanError::Store(e) => e.into(),
            other => ApiError::new(
                StatusCode::CONFLICT,
                "not_scannable",
                format!("the scan could not start: {other}"),
            ),
        })?;
    tracing::info!(project_id = %project.id, scan_id = %started.scan.id, created = started.created,
        token_id = %caller.token_id, "scan started over the API");
    let location = format!("/api/v1/projects/{}/scans/{}", project.id, started.scan.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(ScanStarted {
            created: started.created,
            scan: ScanView::from(&started.scan),
        }),
    ))
}
