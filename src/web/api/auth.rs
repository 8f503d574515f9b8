//! Bearer API tokens: who is calling, for which project, allowed to do what.
//! Checked before anything else in a request, so a refused request changes
//! nothing and learns nothing about the project.

use std::marker::PhantomData;

use axum::{
    extract::{FromRequestParts, RawPathParams},
    http::{StatusCode, header, request::Parts},
};

use super::super::ApiError;
use crate::{
    App,
    ids::ProjectId,
    store::{Project, Role},
    tokens::{self, Action},
};

/// The action a handler needs, as a type (see [`Authorized`]).
pub trait Needs: Send + Sync {
    const ACTION: Action;
}

/// Reading runs, incidents, evidence and events.
pub struct Read;
/// Starting a check or a rerun.
pub struct Check;
/// Acknowledge, resolve, reconcile, replay.
pub struct Manage;

impl Needs for Read {
    const ACTION: Action = Action::Read;
}
impl Needs for Check {
    const ACTION: Action = Action::Check;
}
impl Needs for Manage {
    const ACTION: Action = Action::Manage;
}

/// A request whose bearer token belongs to the project of the `{id}` path
/// segment and whose role may do `N`: 401 without a valid, unrevoked token;
/// 403 for another project's token or a role that may not.
pub struct Authorized<N> {
    pub project: Project,
    pub token_id: String,
    pub role: Role,
    _needs: PhantomData<N>,
}

pub(super) fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send a valid API token as `Authorization: Bearer prt_…` (`parityrail token create`)",
    )
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then_some(token)
}

impl<N: Needs> FromRequestParts<App> for Authorized<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(unauthorized)?;
        let stored = app
            .store
            .api_token_by_hash(&tokens::hash(token))
            .await?
            .filter(|t| t.revoked_at.is_none())
            .ok_or_else(unauthorized)?;
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(|_| forbidden("this API token belongs to another project"))?;
        let in_path = params.iter().find(|(name, _)| *name == "id").map(|p| p.1);
        let project_id = ProjectId::parse(in_path.unwrap_or_default())
            .filter(|id| id.as_str() == stored.project_id)
            .ok_or_else(|| forbidden("this API token belongs to another project"))?;
        if !stored.role.may(N::ACTION) {
            return Err(forbidden(format!(
                "a {} token may not {}; use an admin token",
                stored.role.as_str(),
                N::ACTION.describe()
            )));
        }
        // Tokens are deleted with their project, so this is a race at most.
        let project = app
            .store
            .project(&project_id)
            .await?
            .ok_or_else(unauthorized)?;
        tracing::debug!(project_id = %project.id, token_id = %stored.id, "api call");
        Ok(Self {
            project,
            token_id: stored.id,
            role: stored.role,
            _needs: PhantomData,
        })
    }
}
