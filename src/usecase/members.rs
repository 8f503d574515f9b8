//! A project's members and API tokens (admin): invite a user with a role,
//! change roles (the last admin stays admin), issue and revoke tokens. Each
//! change is written to the project's activity log under `members`.

use super::accounts::{AccountError, check_password, hash_password, parse_email, record};
use super::tokens::{self, Issued};
use crate::{
    App,
    config::Secret,
    domain::{ApiToken, Member, Project, Role, User},
    store::{NewUser, StoreError},
};

/// The activity log's subject for member and token changes.
const SUBJECT: &str = "members";

/// A role as a user typed it: `admin` or `viewer`.
pub fn parse_role(raw: &str) -> Result<Role, AccountError> {
    Role::parse(raw.trim()).ok_or_else(|| AccountError::Invalid {
        field: "role",
        message: format!(
            "choose a role: admin or viewer, not {:?}",
            raw.chars().take(40).collect::<String>()
        ),
    })
}

/// A password for a new member when none is given: 24 base32 characters
/// (120 bits), shown once.
pub fn random_password() -> Secret {
    let password: String = format!("{}{}", crate::ids::random_id(), crate::ids::random_id())
        .chars()
        .take(24)
        .collect();
    Secret::new(password)
}

/// Creates a user with a role in one project (`user create`, the members page).
pub async fn create_member(
    app: &App,
    project: &Project,
    email: &str,
    password: &str,
    role: Role,
) -> Result<User, AccountError> {
    let email = parse_email(email)?;
    check_password(password)?;
    let hash = hash_password(password.to_string()).await;
    let new = NewUser {
        email: &email,
        password_hash: &hash,
        now: app.now_ms(),
    };
    match app.store.insert_member(&new, &project.id, role).await {
        Err(StoreError::EmailTaken(e)) => Err(AccountError::EmailTaken(e)),
        other => Ok(other?),
    }
}

/// A new member, and the generated password when none was given (shown once).
pub struct Invited {
    pub member: Member,
    pub generated: Option<Secret>,
}

/// Invites by creating a user with a role: a blank password is generated.
/// Nothing is stored unless every field is valid.
pub async fn invite(
    app: &App,
    project: &Project,
    actor: &str,
    email: &str,
    password: &str,
    role: &str,
) -> Result<Invited, AccountError> {
    let role = parse_role(role)?;
    let generated = password.is_empty().then(random_password);
    let password = generated.as_ref().map_or(password, |p| p.expose());
    let user = create_member(app, project, email, password, role).await?;
    let detail = Some(format!("{} as {role}", user.email));
    record(app, project, SUBJECT, actor, "invite", detail).await?;
    let member = Member {
        since: user.created_at,
        project_id: project.id.clone(),
        role,
        user,
    };
    Ok(Invited { member, generated })
}

/// The members of a project.
pub async fn members(app: &App, project: &Project) -> Result<Vec<Member>, StoreError> {
    app.store.members(&project.id).await
}

/// Changes a member's role. The last admin cannot become a viewer, so a
/// project always has someone who can manage it.
pub async fn change_role(
    app: &App,
    project: &Project,
    actor: &str,
    user_id: &str,
    role: &str,
) -> Result<Member, AccountError> {
    let role = parse_role(role)?;
    let members = app.store.members(&project.id).await?;
    let admins = members.iter().filter(|m| m.role == Role::Admin).count();
    let mut member = members
        .into_iter()
        .find(|m| m.user.id == user_id)
        .ok_or_else(|| AccountError::NoMember(user_id.chars().take(100).collect()))?;
    if member.role == Role::Admin && role != Role::Admin && admins == 1 {
        return Err(AccountError::LastAdmin);
    }
    app.store.change_role(user_id, &project.id, role).await?;
    let detail = Some(format!("{user_id} to {role}"));
    record(app, project, SUBJECT, actor, "role", detail).await?;
    member.role = role;
    Ok(member)
}

/// A new API token with this role, shown once.
pub async fn create_token(
    app: &App,
    project: &Project,
    actor: &str,
    role: &str,
) -> Result<Issued, AccountError> {
    let role = parse_role(role)?;
    let issued = tokens::issue(app, project, role).await?;
    let detail = Some(format!("{} as {role}", issued.record.id));
    record(app, project, SUBJECT, actor, "token", detail).await?;
    Ok(issued)
}

/// Revokes a token of the project; `None` when it has no such token.
pub async fn revoke_token(
    app: &App,
    project: &Project,
    actor: &str,
    token_id: &str,
) -> Result<Option<ApiToken>, StoreError> {
    let revoked = tokens::revoke(app, project, token_id).await?;
    if revoked.is_some() {
        record(
            app,
            project,
            SUBJECT,
            actor,
            "revoke",
            Some(token_id.to_string()),
        )
        .await?;
    }
    Ok(revoked)
}
