//! The drill (SPEC §8b) over the API: the same as `parityrail drill`.

use axum::{Json, extract::State, http::StatusCode};

use super::{ApiError, Authorized, ErrorBody, auth::Manage};
use crate::{
    App,
    usecase::drill::{self, DrillError, DrillReport},
};

/// Run a drill (admin)
///
/// Sends one labelled event for a real customer through the project's
/// webhook URL and waits (at most 30 s per stage) for its incident.
/// `caught` says whether monitoring caught it; the first stage with
/// `ok: false` is the one that broke. The drill resolves what it opened.
#[utoipa::path(post, path = "/api/v1/projects/{id}/drill", tag = "drill",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "The drill's stages; `caught` is the verdict", body = DrillReport),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 409, description = "`drill_not_ready`: no signing secret, probe, Stripe key or customer; nothing was sent",
            body = ErrorBody),
    ))]
pub async fn start(
    State(app): State<App>,
    caller: Authorized<Manage>,
) -> Result<Json<DrillReport>, ApiError> {
    let base = app.config.public_url.clone();
    let report = drill::run(&app, &caller.project, &base, drill::SERVED_WAIT)
        .await
        .map_err(|e| match e {
            DrillError::Store(e) => ApiError::from(e),
            other => ApiError::new(StatusCode::CONFLICT, "drill_not_ready", other.to_string()),
        })?;
    tracing::info!(project_id = %caller.project.id, token_id = %caller.token_id, caught = report.caught, "drill over the API");
    Ok(Json(report))
}
