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
    domain::{Project, Role},
    usecase::tokens::{self, Action, AuthError},
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
/// Stripe, secrets, the probe, the plan map, members and tokens.
pub struct Configure;

impl Needs for Read {
    const ACTION: Action = Action::Read;
}
impl Needs for Check {
    const ACTION: Action = Action::Check;
}
impl Needs for Manage {
    const ACTION: Action = Action::Manage;
}
impl Needs for Configure {
    const ACTION: Action = Action::Configure;
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

impl<N> Authorized<N> {
    /// How the activity log names this caller.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }
}

pub(super) fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        AuthError::Unauthorized.to_string(),
    )
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
        let token = bearer(parts).ok_or_else(unauthorized)?.to_string();
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(|_| unauthorized())?;
        let in_path = params.iter().find(|(name, _)| *name == "id").map(|p| p.1);
        let caller = tokens::authenticate(app, &token, in_path.unwrap_or_default(), N::ACTION)
            .await
            .map_err(|e| match e {
                AuthError::Unauthorized => unauthorized(),
                AuthError::Forbidden(message) => {
                    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
                }
                AuthError::Store(e) => e.into(),
            })?;
        tracing::debug!(project_id = %caller.project.id, token_id = %caller.token_id, "api call");
        Ok(Self {
            project: caller.project,
            token_id: caller.token_id,
            role: caller.role,
            _needs: PhantomData,
        })
    }
}
