//! Dashboard users and their role per project. Passwords are stored as
//! argon2 hashes, so a database leak opens no account (sessions and the
//! activity log are in `sessions`).

use super::{Store, StoreError, decode, dispatch, project_id, violated_constraint};
use crate::{
    domain::{Member, Role, User},
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
}
