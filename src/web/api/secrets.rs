//! The project's webhook signing secrets (admin): list (last four only),
//! add one, remove one to finish a secret roll.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Authorized, auth::Manage, bad_request};
use crate::{App, config::Secret, usecase::connection};

/// `GET /api/v1/projects/{id}/stripe/secrets`.
pub async fn list(
    State(app): State<App>,
    caller: Authorized<Manage>,
) -> Result<Json<Value>, ApiError> {
    let secrets = connection::secrets(&app, &caller.project).await?;
    Ok(Json(json!(secrets)))
}

/// `POST /api/v1/projects/{id}/stripe/secrets {"secret":"whsec_…"}` → 201 and the list.
pub async fn add(
    State(app): State<App>,
    caller: Authorized<Manage>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|_| bad_request(r#"the body must be JSON: {"secret":"whsec_…"}"#))?;
    let Some(Value::String(secret)) = request.get("secret") else {
        return Err(bad_request(
            r#"the body must be JSON: {"secret":"whsec_…"}"#,
        ));
    };
    let secrets =
        connection::add_secrets(&app, &caller.project, &[Secret::new(secret.trim())]).await?;
    tracing::info!(project_id = %caller.project.id, token_id = %caller.token_id, "signing secret added over the API");
    Ok((StatusCode::CREATED, Json(json!(secrets))))
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    force: Option<bool>,
}

/// `DELETE /api/v1/projects/{id}/stripe/secrets/{secret_id}[?force=true]` →
/// 204; `409 last_secret` for the last one without `force`.
pub async fn remove(
    State(app): State<App>,
    caller: Authorized<Manage>,
    Path((_, secret_id)): Path<(String, String)>,
    Query(query): Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    connection::remove_secret(
        &app,
        &caller.project,
        &secret_id,
        query.force.unwrap_or(false),
    )
    .await?;
    tracing::info!(project_id = %caller.project.id, secret_id, token_id = %caller.token_id,
        "signing secret removed over the API");
    Ok(StatusCode::NO_CONTENT)
}
