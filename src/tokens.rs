//! API tokens: issued once, stored as a SHA-256 hash, and what each role
//! may do with one (SPEC §8: `admin` everything, `viewer` read and rerun).

use sha2::{Digest, Sha256};

use crate::{
    config::Secret,
    ids::ProjectId,
    store::{ApiToken, Role, Store, StoreError},
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
}

impl Action {
    /// How an error message names it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Read => "read this project",
            Self::Check => "start checks",
            Self::Manage => "acknowledge, resolve, reconcile or replay",
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
pub async fn issue(store: &Store, project: &ProjectId, role: Role) -> Result<Issued, StoreError> {
    let token = crate::ids::api_token();
    let record = store
        .insert_api_token(project, role, &hash(&token), crate::now_ms())
        .await?;
    Ok(Issued {
        token: Secret::new(token),
        record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_read_and_check_admins_do_everything() {
        for action in [Action::Read, Action::Check, Action::Manage] {
            assert!(Role::Admin.may(action));
        }
        assert!(Role::Viewer.may(Action::Read));
        assert!(Role::Viewer.may(Action::Check));
        assert!(!Role::Viewer.may(Action::Manage));
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
