//! Dashboard sessions and the activity log. A session is stored by the
//! SHA-256 of its cookie token, so a database leak opens no session.

use super::{Store, StoreError, dispatch};
use crate::{
    domain::{Activity, Session, User},
    ids::ProjectId,
};

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

impl Store {
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
