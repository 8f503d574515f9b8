//! Dashboard users, their role per project, their sessions and the activity
//! log. Passwords are stored as argon2 hashes and sessions by the SHA-256 of
//! their cookie token, so a database leak opens no account and no session.

use super::{Store, StoreError, decode, dispatch, project_id, violated_constraint};
use crate::{
    domain::{Activity, Member, Role, Session, User},
    ids::ProjectId,
};

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            email: r.email,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: String,
    email: String,
    created_at: i64,
    project_id: String,
    role: String,
    since: i64,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;
    fn try_from(r: MemberRow) -> Result<Self, StoreError> {
        Ok(Self {
            project_id: project_id(&r.project_id)?,
            role: decode(&r.role)?,
            since: r.since,
            user: User {
                id: r.id,
                email: r.email,
                created_at: r.created_at,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    token_hash: String,
    csrf_token: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    user_id: String,
    email: String,
    user_created_at: i64,
}

#[derive(sqlx::FromRow)]
struct ActivityRow {
    subject: String,
    actor: String,
    action: String,
    detail: Option<String>,
    at: i64,
}

const MEMBER_SELECT: &str =
    "SELECT u.id, u.email, u.created_at, m.project_id, m.role, m.created_at AS since
     FROM memberships m JOIN users u ON u.id = m.user_id";

fn email_taken(err: &sqlx::Error) -> bool {
    violated_constraint(err).is_some_and(|c| c == "users_email_key" || c == "users.email")
}

/// A new user, with the role it gets in one project (or in every project,
/// for the first admin).
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub now: i64,
}

impl Store {
    /// How many users exist (the `/setup` page works only while none does).
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = dispatch!(self, |pool| {
            sqlx::query_as("SELECT COUNT(*) FROM users")
                .fetch_one(pool)
                .await
        })?;
        Ok(n)
    }

    /// Creates a user and its role in `project`, together.
    pub async fn insert_member(
        &self,
        new: &NewUser<'_>,
        project: &ProjectId,
        role: Role,
    ) -> Result<User, StoreError> {
        let id = format!("usr_{}", crate::ids::random_id());
        let result: Result<(), sqlx::Error> = dispatch!(self, |pool| {
            async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(new.email)
            .bind(new.password_hash)
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO memberships (user_id, project_id, role, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(project.as_str())
            .bind(role.as_str())
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        .await
        });
        match result {
            Ok(()) => Ok(User {
                id,
                email: new.email.to_string(),
                created_at: new.now,
            }),
            Err(e) if email_taken(&e) => Err(StoreError::EmailTaken(new.email.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the first user, admin of every project, or `None` when a
    /// user already exists. A `meta` row claims the first place, so two
    /// concurrent first runs cannot both succeed.
    pub async fn insert_first_admin(&self, new: &NewUser<'_>) -> Result<Option<User>, StoreError> {
        let id = format!("usr_{}", crate::ids::random_id());
        let result: Result<bool, sqlx::Error> = dispatch!(self, |pool| {
            async {
            let mut tx = pool.begin().await?;
            let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
                .fetch_one(&mut *tx)
                .await?;
            if existing > 0 {
                return Ok(false);
            }
            let claimed = sqlx::query(
                "INSERT INTO meta (key, value) VALUES ('first_user', $1) ON CONFLICT (key) DO NOTHING",
            )
            .bind(id.as_bytes())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(new.email)
            .bind(new.password_hash)
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO memberships (user_id, project_id, role, created_at)
                 SELECT $1, id, 'admin', $2 FROM projects",
            )
            .bind(&id)
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await
        });
        match result {
            Ok(true) => Ok(Some(User {
                id,
                email: new.email.to_string(),
                created_at: new.now,
            })),
            Ok(false) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A user and its password hash, by lower-case email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        let row: Option<(String, String, i64, String)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id, email, created_at, password_hash FROM users WHERE email = $1",
            )
            .bind(email)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|(id, email, created_at, hash)| {
            (
                User {
                    id,
                    email,
                    created_at,
                },
                hash,
            )
        }))
    }

    /// Gives a user a role in a project, or changes it.
    pub async fn set_membership(
        &self,
        user_id: &str,
        project: &ProjectId,
        role: Role,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO memberships (user_id, project_id, role, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id, project_id) DO UPDATE SET role = excluded.role",
            )
            .bind(user_id)
            .bind(project.as_str())
            .bind(role.as_str())
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Changes a member's role; false when the user is no member.
    pub async fn change_role(
        &self,
        user_id: &str,
        project: &ProjectId,
        role: Role,
    ) -> Result<bool, StoreError> {
        let n = dispatch!(self, |pool| {
            sqlx::query("UPDATE memberships SET role = $1 WHERE user_id = $2 AND project_id = $3")
                .bind(role.as_str())
                .bind(user_id)
                .bind(project.as_str())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// The project's members, oldest first.
    pub async fn members(&self, project: &ProjectId) -> Result<Vec<Member>, StoreError> {
        let rows: Vec<MemberRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{MEMBER_SELECT} WHERE m.project_id = $1 ORDER BY m.created_at, u.email"
            )))
            .bind(project.as_str())
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(Member::try_from).collect()
    }

    /// Every project role of a user.
    pub async fn memberships_of(&self, user_id: &str) -> Result<Vec<Member>, StoreError> {
        let rows: Vec<MemberRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{MEMBER_SELECT} WHERE m.user_id = $1 ORDER BY m.created_at"
            )))
            .bind(user_id)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(Member::try_from).collect()
    }

    /// The user's role in the project, if any.
    pub async fn membership(
        &self,
        user_id: &str,
        project: &ProjectId,
    ) -> Result<Option<Role>, StoreError> {
        let row: Option<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT role FROM memberships WHERE user_id = $1 AND project_id = $2")
                .bind(user_id)
                .bind(project.as_str())
                .fetch_optional(pool)
                .await
        })?;
        row.map(|(r,)| decode(&r)).transpose()
    }

    /// Stores a new session by its token's hash.
    pub async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&s.token_hash)
            .bind(&s.user.id)
            .bind(&s.csrf_token)
            .bind(s.created_at)
            .bind(s.last_seen_at)
            .bind(s.expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// The session with this token hash, expired or not.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let row: Option<SessionRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT s.token_hash, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at,
                        u.id AS user_id, u.email, u.created_at AS user_created_at
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|r| Session {
            token_hash: r.token_hash,
            csrf_token: r.csrf_token,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            user: User {
                id: r.user_id,
                email: r.email,
                created_at: r.user_created_at,
            },
        }))
    }

    /// Extends a session that is in use.
    pub async fn touch_session(
        &self,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE token_hash = $3",
            )
            .bind(now)
            .bind(expires_at)
            .bind(token_hash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Ends one session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Ends every session of a user; how many there were.
    pub async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        let n = dispatch!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }

    /// Drops sessions past their expiry.
    pub async fn delete_expired_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let n = dispatch!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }

    /// Appends to the activity log of an incident or an event.
    pub async fn record_activity(
        &self,
        project: &ProjectId,
        entry: &Activity,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO activity (project_id, subject, actor, action, detail, at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(project.as_str())
            .bind(&entry.subject)
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.detail)
            .bind(entry.at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// The activity log of one subject, oldest first.
    pub async fn activity(
        &self,
        project: &ProjectId,
        subject: &str,
    ) -> Result<Vec<Activity>, StoreError> {
        let rows: Vec<ActivityRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT subject, actor, action, detail, at FROM activity
                 WHERE project_id = $1 AND subject = $2 ORDER BY id",
            )
            .bind(project.as_str())
            .bind(subject)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| Activity {
                subject: r.subject,
                actor: r.actor,
                action: r.action,
                detail: r.detail,
                at: r.at,
            })
            .collect())
    }
}
