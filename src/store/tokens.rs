//! API tokens: only a SHA-256 hash of each token is stored, so a database
//! leak does not hand out API access; a token is shown once, when created.

use super::{Store, StoreError, decode, dispatch, project_id};
use crate::{
    domain::{ApiToken, Role},
    ids::ProjectId,
};

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    project_id: String,
    role: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        Ok(Self {
            role: decode(&r.role)?,
            project_id: project_id(&r.project_id)?,
            id: r.id,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        })
    }
}

const TOKEN_COLUMNS: &str = "id, project_id, role, created_at, revoked_at";

impl Store {
    /// Stores a new token by its hash.
    pub async fn insert_api_token(
        &self,
        project: &ProjectId,
        role: Role,
        token_hash: &str,
        now: i64,
    ) -> Result<ApiToken, StoreError> {
        let id = crate::ids::token_id();
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO api_tokens (id, project_id, role, token_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&id)
            .bind(project.as_str())
            .bind(role.as_str())
            .bind(token_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(ApiToken {
            id,
            project_id: project.clone(),
            role,
            created_at: now,
            revoked_at: None,
        })
    }

    /// The token with this hash, revoked or not.
    pub async fn api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiToken>, StoreError> {
        let row: Option<TokenRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
            )))
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })?;
        row.map(ApiToken::try_from).transpose()
    }

    /// Oldest first.
    pub async fn list_api_tokens(&self, project: &ProjectId) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<TokenRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE project_id = $1 ORDER BY created_at, id"
            )))
            .bind(project.as_str())
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(ApiToken::try_from).collect()
    }

    /// Revokes a token of the project (a revoked one keeps its first
    /// revocation time); `None` when the project has no such token.
    pub async fn revoke_api_token(
        &self,
        project: &ProjectId,
        id: &str,
        now: i64,
    ) -> Result<Option<ApiToken>, StoreError> {
        let row: Option<TokenRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1)
                 WHERE project_id = $2 AND id = $3 RETURNING {TOKEN_COLUMNS}"
            )))
            .bind(now)
            .bind(project.as_str())
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        row.map(ApiToken::try_from).transpose()
    }
}
