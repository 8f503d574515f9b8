//! Checks and runs: start a check of one customer, read runs with their
//! evidence.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ApiError, Authorized,
    auth::{Check, Read},
    bad_request, not_found, parse_limit, query_error,
};
use crate::{
    App,
    domain::RunStatus,
    usecase::checks,
    views::{run_json, run_with_steps_json},
};

/// `POST /api/v1/projects/{id}/checks {"customer":"cus_…"}` → 202 and the
/// run id. The service's workers carry the run to its verdict.
pub async fn start(
    State(app): State<App>,
    caller: Authorized<Check>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|_| bad_request(r#"the body must be JSON: {"customer":"cus_…"}"#))?;
    let customer = match request.get("customer") {
        Some(Value::String(c)) => c.trim().to_string(),
        _ => String::new(),
    };
    let project = &caller.project;
    let run_id = checks::start(&app, project, &customer).await?;
    tracing::info!(project_id = %project.id, run_id, customer, "check started over the API");
    let location = format!("/api/v1/projects/{}/runs/{run_id}", project.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(json!({"run_id": run_id, "status": RunStatus::Pending, "customer": customer})),
    ))
}

#[derive(Deserialize)]
pub struct RunsQuery {
    customer: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/projects/{id}/runs[?customer=&limit=]`, newest first.
pub async fn list_runs(
    State(app): State<App>,
    caller: Authorized<Read>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let limit = parse_limit(query.limit.as_deref())?;
    let customer = query
        .customer
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let runs = checks::runs(&app, &caller.project, customer, limit).await?;
    Ok(Json(runs.iter().map(run_json).collect()))
}

/// `GET /api/v1/projects/{id}/runs/{run_id}`: the run with every step of evidence.
pub async fn show_run(
    State(app): State<App>,
    caller: Authorized<Read>,
    Path((_, run_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (run, steps) = checks::run(&app, &caller.project, &run_id)
        .await?
        .ok_or_else(|| not_found(format!("no run {run_id} in this project")))?;
    Ok(Json(run_with_steps_json(&run, &steps)))
}
