//! API tokens: issued once, stored as a SHA-256 hash, and what each role
//! may do with one (SPEC §8: `admin` everything, `viewer` read and rerun).

use sha2::{Digest, Sha256};

use crate::{
    App,
    config::Secret,
    domain::{ApiToken, Project, Role},
    ids::ProjectId,
    store::StoreError,
};

/// What a request asks to do in a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Runs, incidents, evidence export, the event log.
    Read,
    /// Start a check or rerun one: it changes nothing but adds evidence.
    Check,
    /// Acknowledge, resolve, reconcile, replay: change state or touch the app.
    Manage,
    /// Integrations, secrets, the probe, the plan map, members and tokens.
    Configure,
}

impl Action {
    /// How an error message names it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Read => "read this project",
            Self::Check => "start checks",
            Self::Manage => "acknowledge, resolve, reconcile or replay",
            Self::Configure => "change integrations, secrets, members or tokens",
        }
    }
}

impl Role {
    /// The role matrix: a viewer reads and (re)runs checks; an admin also
    /// changes incidents, calls the app's reconcile hook and replays events.
    pub fn may(self, action: Action) -> bool {
        match self {
            Self::Admin => true,
            Self::Viewer => matches!(action, Action::Read | Action::Check),
        }
    }
}

/// A freshly issued token: `token` is shown once and never stored.
pub struct Issued {
    pub token: Secret,
    pub record: ApiToken,
}

/// The stored form of a token: hex SHA-256. Tokens carry 200 random bits,
/// so an unsalted hash cannot be reversed by guessing.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token for the project with this role.
pub async fn issue(app: &App, project: &Project, role: Role) -> Result<Issued, StoreError> {
    let token = crate::ids::api_token();
    let record = app
        .store
        .insert_api_token(&project.id, role, &hash(&token), app.now_ms())
        .await?;
    Ok(Issued {
        token: Secret::new(token),
        record,
    })
}

/// The project's tokens, oldest first (never the tokens themselves).
pub async fn list(app: &App, project: &Project) -> Result<Vec<ApiToken>, StoreError> {
    app.store.list_api_tokens(&project.id).await
}

/// Revokes a token of the project; `None` when it has no such token.
pub async fn revoke(
    app: &App,
    project: &Project,
    token_id: &str,
) -> Result<Option<ApiToken>, StoreError> {
    app.store
        .revoke_api_token(&project.id, token_id.trim(), app.now_ms())
        .await
}

/// Why a bearer token may not make a request.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing, unknown or revoked: 401.
    #[error("send a valid API token as `Authorization: Bearer prt_…` (`parityrail token create`)")]
    Unauthorized,
    /// A token of another project, or a role that may not: 403.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The caller a valid token stands for.
pub struct Caller {
    pub project: Project,
    pub token_id: String,
    pub role: Role,
}

/// Checks a bearer token for `action` on the project named in the path.
/// One permission check for every route (the dashboard's roles use [`Role::may`] too).
pub async fn authenticate(
    app: &App,
    token: &str,
    project_in_path: &str,
    action: Action,
) -> Result<Caller, AuthError> {
    let stored = app
        .store
        .api_token_by_hash(&hash(token))
        .await?
        .filter(|t| t.revoked_at.is_none())
        .ok_or(AuthError::Unauthorized)?;
    let project_id = ProjectId::parse(project_in_path)
        .filter(|id| *id == stored.project_id)
        .ok_or_else(|| AuthError::Forbidden("this API token belongs to another project".into()))?;
    if !stored.role.may(action) {
        return Err(AuthError::Forbidden(format!(
            "a {} token may not {}; use an admin token",
            stored.role.as_str(),
            action.describe()
        )));
    }
    // Tokens are deleted with their project, so this is a race at most.
    let project = app
        .store
        .project(&project_id)
        .await?
        .ok_or(AuthError::Unauthorized)?;
    Ok(Caller {
        project,
        token_id: stored.id,
        role: stored.role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_read_and_check_admins_do_everything() {
        for action in [
            Action::Read,
            Action::Check,
            Action::Manage,
            Action::Configure,
        ] {
            assert!(Role::Admin.may(action));
        }
        assert!(Role::Viewer.may(Action::Read));
        assert!(Role::Viewer.may(Action::Check));
        assert!(!Role::Viewer.may(Action::Manage));
        assert!(!Role::Viewer.may(Action::Configure));
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = crate::ids::api_token();
        assert!(a.starts_with("prt_") && a.len() == 44, "{a}");
        assert_ne!(a, crate::ids::api_token());
        assert_eq!(hash(&a).len(), 64);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&format!("{a}x")));
    }
}
