//! Dashboard accounts (SPEC §8): users with argon2 passwords, the first-run
//! admin, sign-in with rate limits, sessions, members and their roles, and
//! the page-side permission check (the same [`Role::may`] the API uses).

use std::{net::IpAddr, num::NonZeroU32};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

mod credentials;

pub use credentials::parse_email;
use credentials::verify_password;
pub(super) use credentials::{check_password, hash_password};

use super::tokens::{Action, hash as sha256_hex};
use crate::{
    App,
    config::Secret,
    domain::{Activity, Project, Role, Session, User},
    ids::ProjectId,
    store::{NewUser, StoreError},
};

/// A session lasts this long without use…
pub const IDLE_MS: i64 = 12 * 3600 * 1000;
/// …and never longer than this after sign-in.
pub const ABSOLUTE_MS: i64 = 7 * 24 * 3600 * 1000;
/// Passwords are at least this long.
pub const MIN_PASSWORD: usize = 12;
/// Passwords are at most this many bytes.
const MAX_PASSWORD: usize = 1024;
/// `last_seen` is written at most this often per session.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Why an account form is refused. Messages are shown next to the field.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a user with the email {0} already exists")]
    EmailTaken(String),
    #[error("a user already exists: sign in, or ask an admin to add you")]
    SetupDone,
    #[error("no project {0}")]
    NoProject(String),
    #[error("no member {0} in this project")]
    NoMember(String),
    #[error("this is the project's last admin: make another member admin first")]
    LastAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccountError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The form field the error belongs next to, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::EmailTaken(_) => Some("email"),
            Self::LastAdmin => Some("role"),
            _ => None,
        }
    }
}

/// Why a sign-in failed. One message for a wrong email or password, so the
/// answer tells nothing about which accounts exist.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("wrong email or password")]
    Wrong,
    #[error("too many sign-in attempts; wait a minute and try again")]
    Limited,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sign-in attempts allowed per minute, per client address and per email.
pub struct SignInLimits {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_email: DefaultKeyedRateLimiter<String>,
}

impl SignInLimits {
    pub fn new(per_address_per_minute: u32, per_email_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1"));
        Self {
            by_address: RateLimiter::keyed(quota(per_address_per_minute)),
            by_email: RateLimiter::keyed(quota(per_email_per_minute)),
        }
    }

    fn allow(&self, address: IpAddr, email: &str) -> bool {
        // Both are charged, so spreading guesses over emails or addresses
        // does not escape the other limit.
        let address_ok = self.by_address.check_key(&address).is_ok();
        let email_ok = self.by_email.check_key(&email.to_string()).is_ok();
        address_ok && email_ok
    }
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self::new(30, 10)
    }
}

/// Whether the one-time `/setup` page still works: no user exists.
pub async fn needs_setup(app: &App) -> Result<bool, StoreError> {
    Ok(app.store.user_count().await? == 0)
}

/// The first run: creates the first user, admin of every project, and
/// signs them in.
pub async fn setup_first_admin(
    app: &App,
    email: &str,
    password: &str,
) -> Result<NewSession, AccountError> {
    let email = parse_email(email)?;
    check_password(password)?;
    if !needs_setup(app).await? {
        return Err(AccountError::SetupDone);
    }
    let hash = hash_password(password.to_string()).await;
    let new = NewUser {
        email: &email,
        password_hash: &hash,
        now: app.now_ms(),
    };
    let user = app
        .store
        .insert_first_admin(&new)
        .await?
        .ok_or(AccountError::SetupDone)?;
    Ok(start_session(app, user).await?)
}

/// A new session: `token` goes into the cookie and is never stored.
pub struct NewSession {
    pub token: Secret,
    pub session: Session,
}

/// Signs a user in from `address`: rate limited, argon2 verified (a dummy
/// verify for unknown emails), and a new session.
pub async fn sign_in(
    app: &App,
    address: IpAddr,
    email: &str,
    password: &str,
) -> Result<NewSession, SignInError> {
    let email = email.trim().to_lowercase();
    if !app.sign_in_limits.allow(address, &email) {
        tracing::warn!(%address, "sign-in rate limit reached");
        return Err(SignInError::Limited);
    }
    let found = if email.is_empty() || email.len() > 254 || password.len() > MAX_PASSWORD {
        None
    } else {
        app.store.user_by_email(&email).await?
    };
    let (user, stored) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    if !verify_password(password.to_string(), stored).await {
        return Err(SignInError::Wrong);
    }
    let user = user.ok_or(SignInError::Wrong)?;
    Ok(start_session(app, user).await?)
}

async fn start_session(app: &App, user: User) -> Result<NewSession, StoreError> {
    let token = format!("prs_{}{}", crate::ids::random_id(), crate::ids::random_id());
    let now = app.now_ms();
    let session = Session {
        token_hash: sha256_hex(&token),
        user,
        csrf_token: format!("{}{}", crate::ids::random_id(), crate::ids::random_id()),
        created_at: now,
        last_seen_at: now,
        expires_at: now + IDLE_MS,
    };
    app.store.insert_session(&session).await?;
    // Sign-ins are rare: a good moment to drop sessions that have expired.
    app.store.delete_expired_sessions(now).await?;
    Ok(NewSession {
        token: Secret::new(token),
        session,
    })
}

/// The live session a cookie token stands for, extended by its use; `None`
/// when the token is unknown, signed out or expired.
pub async fn session(app: &App, token: &str) -> Result<Option<Session>, StoreError> {
    if !token.starts_with("prs_") || token.len() > 128 {
        return Ok(None);
    }
    let Some(mut session) = app.store.session(&sha256_hex(token)).await? else {
        return Ok(None);
    };
    let now = app.now_ms();
    if now >= session.expires_at || now >= session.created_at + ABSOLUTE_MS {
        app.store.delete_session(&session.token_hash).await?;
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_EVERY_MS {
        session.last_seen_at = now;
        session.expires_at = (now + IDLE_MS).min(session.created_at + ABSOLUTE_MS);
        app.store
            .touch_session(&session.token_hash, now, session.expires_at)
            .await?;
    }
    Ok(Some(session))
}

/// Ends this session.
pub async fn sign_out(app: &App, session: &Session) -> Result<(), StoreError> {
    app.store.delete_session(&session.token_hash).await
}

/// Ends every session of the user, on every device.
pub async fn sign_out_everywhere(app: &App, user: &User) -> Result<u64, StoreError> {
    app.store.delete_user_sessions(&user.id).await
}

/// Why a signed-in user may not do something in a project.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No such project, or none the user has a role in: both 404, so
    /// project ids cannot be probed.
    #[error("no project {0}")]
    NotFound(String),
    /// A member whose role may not: 403.
    #[error("a {role} may not {action}; ask an admin of this project")]
    Forbidden {
        role: &'static str,
        action: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A user acting in a project, with the role that allowed it.
#[derive(Clone, Debug)]
pub struct Membership {
    pub project: Project,
    pub role: Role,
}

/// The page-side permission check: the user's role in the project named by
/// `project_id`, if it may do `action`.
pub async fn authorize(
    app: &App,
    user: &User,
    project_id: &str,
    action: Action,
) -> Result<Membership, AccessError> {
    let not_found = || AccessError::NotFound(project_id.to_string());
    let id = ProjectId::parse(project_id).ok_or_else(not_found)?;
    let role = app
        .store
        .membership(&user.id, &id)
        .await?
        .ok_or_else(not_found)?;
    if !role.may(action) {
        return Err(AccessError::Forbidden {
            role: role.as_str(),
            action: action.describe(),
        });
    }
    let project = app.store.project(&id).await?.ok_or_else(not_found)?;
    Ok(Membership { project, role })
}

/// The projects a user has a role in, with the role.
pub async fn projects_of(app: &App, user: &User) -> Result<Vec<Membership>, StoreError> {
    let mut out = Vec::new();
    for m in app.store.memberships_of(&user.id).await? {
        if let Some(project) = app.store.project(&m.project_id).await? {
            out.push(Membership {
                project,
                role: m.role,
            });
        }
    }
    Ok(out)
}

/// Makes the creator of a project its admin.
pub async fn grant(
    app: &App,
    user: &User,
    project: &Project,
    role: Role,
) -> Result<(), StoreError> {
    app.store
        .set_membership(&user.id, &project.id, role, app.now_ms())
        .await
}

/// Who does something, as the activity log names them.
pub fn actor_user(user: &User) -> String {
    format!("user:{}", user.email)
}

/// Appends to the activity log of an incident or event.
pub async fn record(
    app: &App,
    project: &Project,
    subject: &str,
    actor: &str,
    action: &str,
    detail: Option<String>,
) -> Result<(), StoreError> {
    let entry = Activity {
        subject: subject.to_string(),
        actor: actor.to_string(),
        action: action.to_string(),
        detail,
        at: app.now_ms(),
    };
    app.store.record_activity(&project.id, &entry).await
}

/// The activity log of an incident or event, oldest first.
pub async fn activity(
    app: &App,
    project: &Project,
    subject: &str,
) -> Result<Vec<Activity>, StoreError> {
    app.store.activity(&project.id, subject).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_charge_address_and_email() {
        let limits = SignInLimits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limits.allow(a, "x@example.com"));
        assert!(limits.allow(b, "x@example.com"));
        assert!(!limits.allow(a, "x@example.com"), "the email's limit");
        assert!(limits.allow(a, "y@example.com"));
        assert!(!limits.allow(a, "z@example.com"), "the address's limit");
    }
}
