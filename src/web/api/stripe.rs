//! The project's Stripe connection (onboarding step 2): "Test & connect" a
//! key, the "Stripe connected" card, and the webhook signing secrets (last
//! four only): add one, remove one to finish a secret roll.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, Authorized, ErrorBody,
    auth::{Configure, Read},
    body, not_found, query_error,
};
use crate::{
    App,
    config::Secret,
    usecase::connection::{self, ConnectRequest},
    views::{ConnectionView, SigningSecretView},
};

/// The Stripe connection
///
/// What "Test & connect" stored: the account, the key's mode and last four
/// characters, when, and the signing secrets (last four).
#[utoipa::path(get, path = "/api/v1/projects/{id}/stripe", tag = "stripe",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "The connection", body = ConnectionView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 404, description = "Stripe is not connected yet", body = ErrorBody),
    ))]
pub async fn connection(
    State(app): State<App>,
    caller: Authorized<Read>,
) -> Result<Json<ConnectionView>, ApiError> {
    let connection = connection::connection(&app, &caller.project)
        .await?
        .ok_or_else(|| not_found("Stripe is not connected yet (PUT this URL with an API key)"))?;
    Ok(Json(ConnectionView::from(&connection)))
}

#[derive(Deserialize, ToSchema)]
pub struct ConnectBody {
    /// A secret (`sk_…`) or restricted (`rk_…`) key of the project's mode.
    #[schema(example = "rk_test_…")]
    api_key: String,
    /// Webhook signing secret (optional): `whsec_…`, added to those stored.
    #[serde(default)]
    webhook_secret: Option<String>,
}

/// Test & connect (admin)
///
/// Checks the key with the reads ParityRail needs and stores it (with the
/// signing secret when one is given). A reconnect replaces the key and keeps
/// the secrets. On any error the stored connection is as it was.
#[utoipa::path(put, path = "/api/v1/projects/{id}/stripe", tag = "stripe",
    params(("id" = String, Path, description = "Project id")),
    request_body = ConnectBody,
    responses(
        (status = 200, description = "Connected", body = ConnectionView),
        (status = 400, description = "`invalid_request` (not a key, not `whsec_`, the other mode) or \
            `stripe_rejected` (Stripe refused the key; its reason is in the message)", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 409, description = "`demo_project`", body = ErrorBody),
    ))]
pub async fn connect(
    State(app): State<App>,
    caller: Authorized<Configure>,
    raw: Bytes,
) -> Result<Json<ConnectionView>, ApiError> {
    let request: ConnectBody = body(&raw, r#"{"api_key":"rk_…","webhook_secret":"whsec_…"}"#)?;
    let secret = request.webhook_secret.as_deref().map(str::trim);
    let request = ConnectRequest {
        api_key: Secret::new(request.api_key.trim()),
        webhook_secrets: secret
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .into_iter()
            .collect(),
        verify: true,
    };
    let connected = connection::connect_stripe(&app, &caller.project, request).await?;
    tracing::info!(project_id = %caller.project.id, token_id = %caller.token_id, "stripe connected over the API");
    Ok(Json(ConnectionView::from(&connected)))
}

/// List signing secrets (admin)
#[utoipa::path(get, path = "/api/v1/projects/{id}/stripe/secrets", tag = "stripe",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "The signing secrets, last four only", body = Vec<SigningSecretView>),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
    ))]
pub async fn secrets(
    State(app): State<App>,
    caller: Authorized<Configure>,
) -> Result<Json<Vec<SigningSecretView>>, ApiError> {
    let secrets = connection::secrets(&app, &caller.project).await?;
    Ok(Json(secrets.iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
pub struct SecretBody {
    #[schema(example = "whsec_…")]
    secret: String,
}

/// Add a signing secret (admin)
///
/// For a secret roll, or `stripe listen`'s secret: webhooks verify against
/// every stored secret.
#[utoipa::path(post, path = "/api/v1/projects/{id}/stripe/secrets", tag = "stripe",
    params(("id" = String, Path, description = "Project id")),
    request_body = SecretBody,
    responses(
        (status = 201, description = "Added; the signing secrets", body = Vec<SigningSecretView>),
        (status = 400, description = "Not JSON, or not a `whsec_` secret", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
    ))]
pub async fn add_secret(
    State(app): State<App>,
    caller: Authorized<Configure>,
    raw: Bytes,
) -> Result<(StatusCode, Json<Vec<SigningSecretView>>), ApiError> {
    let request: SecretBody = body(&raw, r#"{"secret":"whsec_…"}"#)?;
    let secrets =
        connection::add_secrets(&app, &caller.project, &[Secret::new(request.secret.trim())])
            .await?;
    tracing::info!(project_id = %caller.project.id, token_id = %caller.token_id, "signing secret added over the API");
    Ok((
        StatusCode::CREATED,
        Json(secrets.iter().map(Into::into).collect()),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveQuery {
    /// Needed to remove the last secret (then every webhook is refused).
    force: Option<bool>,
}

/// Remove a signing secret (admin)
#[utoipa::path(delete, path = "/api/v1/projects/{id}/stripe/secrets/{secret_id}", tag = "stripe",
    params(("id" = String, Path, description = "Project id"),
        ("secret_id" = String, Path, description = "`whs_…`"), RemoveQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 404, description = "No such secret", body = ErrorBody),
        (status = 409, description = "`last_secret`: the last one needs `force=true`", body = ErrorBody),
    ))]
pub async fn remove_secret(
    State(app): State<App>,
    caller: Authorized<Configure>,
    Path((_, secret_id)): Path<(String, String)>,
    query: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(query) = query.map_err(query_error)?;
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
