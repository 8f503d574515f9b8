//! Members and API tokens (admin): invite by creating a user with a role,
//! change roles (the last admin stays admin), create a token (shown once),
//! revoke one. Every change is in the project's activity log.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, Authorized, ErrorBody, auth::Configure, body, created, not_found};
use crate::{
    App,
    usecase::members,
    views::{MemberView, TokenView},
};

/// List members (admin)
#[utoipa::path(get, path = "/api/v1/projects/{id}/members", tag = "members",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "The members", body = Vec<MemberView>),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
    ))]
pub async fn list(
    State(app): State<App>,
    caller: Authorized<Configure>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let list = members::members(&app, &caller.project).await?;
    Ok(Json(list.iter().map(MemberView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
pub struct InviteBody {
    #[schema(example = "ada@example.com")]
    email: String,
    /// `admin` or `viewer`.
    role: String,
    /// At least 12 characters; leave it out to have one generated (shown once).
    #[serde(default)]
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Invited {
    member: MemberView,
    /// The generated password, shown on this answer only (`null` when one was given).
    password: Option<String>,
}

/// Invite a member (admin)
///
/// Creates a dashboard user with a role in this project. Nothing is stored
/// on a bad field.
#[utoipa::path(post, path = "/api/v1/projects/{id}/members", tag = "members",
    params(("id" = String, Path, description = "Project id")),
    request_body = InviteBody,
    responses(
        (status = 201, description = "Created", body = Invited),
        (status = 400, description = "Not an email, a password under 12 characters, an unknown role",
            body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 409, description = "`email_taken`", body = ErrorBody),
    ))]
pub async fn invite(
    State(app): State<App>,
    caller: Authorized<Configure>,
    raw: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let request: InviteBody = body(&raw, r#"{"email":"…","role":"viewer"}"#)?;
    let project = &caller.project;
    let password = request.password.unwrap_or_default();
    let invited = members::invite(
        &app,
        project,
        &caller.actor(),
        &request.email,
        &password,
        &request.role,
    )
    .await?;
    let member = MemberView::from(&invited.member);
    tracing::info!(project_id = %project.id, user_id = %member.user_id, token_id = %caller.token_id,
        "member invited over the API");
    Ok(created(Invited {
        member,
        password: invited.generated.map(|p| p.expose().to_string()),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct RoleBody {
    /// `admin` or `viewer`.
    role: String,
}

/// Change a member's role (admin)
#[utoipa::path(put, path = "/api/v1/projects/{id}/members/{user_id}", tag = "members",
    params(("id" = String, Path, description = "Project id"),
        ("user_id" = String, Path, description = "`usr_…`")),
    request_body = RoleBody,
    responses(
        (status = 200, description = "The member", body = MemberView),
        (status = 400, description = "An unknown role", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 404, description = "No such member", body = ErrorBody),
        (status = 409, description = "`last_admin`: make another member admin first", body = ErrorBody),
    ))]
pub async fn change_role(
    State(app): State<App>,
    caller: Authorized<Configure>,
    Path((_, user_id)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<MemberView>, ApiError> {
    let request: RoleBody = body(&raw, r#"{"role":"admin"}"#)?;
    let project = &caller.project;
    let member =
        members::change_role(&app, project, &caller.actor(), &user_id, &request.role).await?;
    Ok(Json(MemberView::from(&member)))
}

/// List API tokens (admin)
///
/// Never the tokens themselves: those are shown once, when created.
#[utoipa::path(get, path = "/api/v1/projects/{id}/tokens", tag = "tokens",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "The tokens, oldest first", body = Vec<TokenView>),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
    ))]
pub async fn tokens(
    State(app): State<App>,
    caller: Authorized<Configure>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let list = crate::usecase::tokens::list(&app, &caller.project).await?;
    Ok(Json(list.iter().map(TokenView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
pub struct TokenBody {
    /// `admin` or `viewer`.
    role: String,
}

#[derive(Serialize, ToSchema)]
pub struct NewToken {
    /// `prt_…`: shown on this answer only.
    token: String,
    #[serde(flatten)]
    record: TokenView,
}

/// Create an API token (admin)
#[utoipa::path(post, path = "/api/v1/projects/{id}/tokens", tag = "tokens",
    params(("id" = String, Path, description = "Project id")),
    request_body = TokenBody,
    responses(
        (status = 201, description = "The token, shown once", body = NewToken),
        (status = 400, description = "An unknown role", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
    ))]
pub async fn create_token(
    State(app): State<App>,
    caller: Authorized<Configure>,
    raw: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let request: TokenBody = body(&raw, r#"{"role":"viewer"}"#)?;
    let issued =
        members::create_token(&app, &caller.project, &caller.actor(), &request.role).await?;
    tracing::info!(project_id = %caller.project.id, new_token_id = %issued.record.id,
        token_id = %caller.token_id, "token created over the API");
    Ok(created(NewToken {
        token: issued.token.expose().to_string(),
        record: TokenView::from(&issued.record),
    }))
}

/// Revoke an API token (admin)
///
/// It answers 401 from then on.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/tokens/{token_id}", tag = "tokens",
    params(("id" = String, Path, description = "Project id"),
        ("token_id" = String, Path, description = "`tok_…`")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 404, description = "No such token in this project", body = ErrorBody),
    ))]
pub async fn revoke_token(
    State(app): State<App>,
    caller: Authorized<Configure>,
    Path((_, token_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    members::revoke_token(&app, &caller.project, &caller.actor(), &token_id)
        .await?
        .ok_or_else(|| not_found("no such token in this project"))?;
    tracing::info!(project_id = %caller.project.id, revoked = token_id, token_id = %caller.token_id,
        "token revoked over the API");
    Ok(StatusCode::NO_CONTENT)
}
