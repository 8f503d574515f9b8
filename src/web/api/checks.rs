//! Checks and runs: start a check of one customer, read runs with their
//! evidence.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, Authorized, ErrorBody, List,
    auth::{Check, Read},
    body, not_found, parse_cursor, parse_filter, parse_limit, query_error, text_filter,
};
use crate::{App, domain::RunStatus, store::RunFilter, usecase::checks, views::RunView};

#[derive(Deserialize, ToSchema)]
pub struct CheckRequest {
    /// The Stripe customer to check.
    #[schema(example = "cus_PQ12rs34")]
    customer: String,
}

#[derive(Serialize, ToSchema)]
pub struct CheckStarted {
    run_id: String,
    status: RunStatus,
    customer: String,
}

/// Check one customer now
///
/// Starts a run that reads the customer from Stripe, asks the app, and
/// compares; the service's workers carry it to its verdict. Poll the run
/// (`Location`) for the verdict.
#[utoipa::path(post, path = "/api/v1/projects/{id}/checks", tag = "runs",
    params(("id" = String, Path, description = "Project id")),
    request_body = CheckRequest,
    responses(
        (status = 202, description = "The run was created", body = CheckStarted,
            headers(("Location" = String, description = "The run"))),
        (status = 400, description = "Not JSON, or not a customer id (`cus_…`)", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 409, description = "`no_probe`: the project has no app probe", body = ErrorBody),
    ))]
pub async fn start(
    State(app): State<App>,
    caller: Authorized<Check>,
    raw: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let request: CheckRequest = body(&raw, r#"{"customer":"cus_…"}"#)?;
    let customer = request.customer.trim().to_string();
    let project = &caller.project;
    let run_id = checks::start(&app, project, &customer).await?;
    tracing::info!(project_id = %project.id, run_id, customer, "check started over the API");
    let location = format!("/api/v1/projects/{}/runs/{run_id}", project.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(CheckStarted {
            run_id,
            status: RunStatus::Pending,
            customer,
        }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only this customer's runs.
    customer: Option<String>,
    /// Only runs with this status.
    #[param(value_type = Option<RunStatus>)]
    status: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Runs per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// List runs
///
/// Newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/projects/{id}/runs", tag = "runs",
    params(("id" = String, Path, description = "Project id"), RunsQuery),
    responses(
        (status = 200, description = "A page of runs", body = List<RunView>),
        (status = 400, description = "A bad filter, cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
    ))]
pub async fn list_runs(
    State(app): State<App>,
    caller: Authorized<Read>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<List<RunView>>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = parse_cursor(query.cursor.as_deref(), "run_")?;
    let filter = RunFilter {
        customer: text_filter(query.customer.as_deref()),
        status: parse_filter(
            "status",
            query.status.as_deref(),
            RunStatus::parse,
            RunStatus::ALL,
            RunStatus::as_str,
        )?,
        before: None,
    };
    let page = checks::history(&app, &caller.project, filter, cursor, limit).await?;
    Ok(Json(List {
        data: page.items.iter().map(RunView::from).collect(),
        next_cursor: page.next,
    }))
}

/// Get a run
///
/// The run with every step of its evidence: the Stripe snapshot, the
/// expected access, each probe attempt (HTTP status and latency), the
/// verdict.
#[utoipa::path(get, path = "/api/v1/projects/{id}/runs/{run_id}", tag = "runs",
    params(("id" = String, Path, description = "Project id"),
        ("run_id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 404, description = "No such run in this project", body = ErrorBody),
    ))]
pub async fn show_run(
    State(app): State<App>,
    caller: Authorized<Read>,
    Path((_, run_id)): Path<(String, String)>,
) -> Result<Json<RunView>, ApiError> {
    let (run, steps) = checks::run(&app, &caller.project, &run_id)
        .await?
        .ok_or_else(|| not_found(format!("no run {run_id} in this project")))?;
    Ok(Json(RunView::with_steps(&run, &steps)))
}
