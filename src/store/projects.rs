//! Projects and their Stripe integration (API key and signing secrets, sealed).

use super::{Store, StoreError, dispatch, violated_constraint};
use crate::{
    domain::{KeyMode, Project, ProjectMode},
    ids::ProjectId,
};

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    name: String,
    mode: String,
    user_metadata_key: String,
    require_mapping: bool,
    lag_threshold_secs: i64,
    past_due_grace_secs: i64,
    fulfillment_deadline_secs: i64,
    use_entitlements: bool,
    scan_at: String,
    stripe_budget_rps: Option<i64>,
    created_at: i64,
}

impl TryFrom<ProjectRow> for Project {
    type Error = StoreError;
    fn try_from(r: ProjectRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: super::project_id(&r.id)?,
            mode: super::decode::<ProjectMode>(&r.mode)?,
            name: r.name,
            user_metadata_key: r.user_metadata_key,
            require_mapping: r.require_mapping,
            lag_threshold_secs: r.lag_threshold_secs,
            past_due_grace_secs: r.past_due_grace_secs,
            fulfillment_deadline_secs: r.fulfillment_deadline_secs,
            use_entitlements: r.use_entitlements,
            scan_at: r.scan_at,
            stripe_budget_rps: r.stripe_budget_rps,
            created_at: r.created_at,
        })
    }
}

pub struct NewProject {
    pub name: String,
    pub mode: ProjectMode,
}

/// A secret sealed by the master key, with what may be shown of it.
#[derive(Clone, Debug)]
pub struct SealedSecret {
    pub sealed: Vec<u8>,
    pub fingerprint: String,
    pub last4: String,
}

/// What `stripe connect` writes, in one transaction.
pub struct IntegrationWrite {
    pub api_key: SealedSecret,
    pub key_mode: KeyMode,
    pub account_id: Option<String>,
    pub webhook_secrets: Vec<SealedSecret>,
    pub connected_at: i64,
}

/// A project's Stripe connection as stored (the key sealed).
#[derive(Clone, Debug)]
pub struct Integration {
    pub api_key_sealed: Vec<u8>,
    pub api_key_last4: String,
    pub key_mode: KeyMode,
    pub account_id: Option<String>,
    pub connected_at: i64,
    pub webhook_secrets: Vec<WebhookSecretInfo>,
}

/// A webhook signing secret, as it may be shown: never more than its last four.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSecretInfo {
    pub id: i64,
    pub last4: String,
    pub created_at: i64,
    pub last_matched_at: Option<i64>,
}

/// How a request to remove a signing secret ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRemoval {
    Removed,
    NotFound,
    /// It is the project's last secret and removal was not forced: every
    /// webhook would then be refused.
    Last,
}

const PROJECT_COLUMNS: &str =
    "id, name, mode, user_metadata_key, require_mapping, lag_threshold_secs,
    past_due_grace_secs, fulfillment_deadline_secs, use_entitlements, scan_at, stripe_budget_rps, created_at";

impl Store {
    pub async fn create_project(&self, new: &NewProject) -> Result<Project, StoreError> {
        let id = ProjectId::generate();
        let now = crate::now_ms();
        let result = dispatch!(self, |pool| {
            sqlx::query("INSERT INTO projects (id, name, mode, created_at) VALUES ($1, $2, $3, $4)")
                .bind(id.as_str())
                .bind(&new.name)
                .bind(new.mode.as_str())
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        match result {
            Ok(_) => {}
            Err(e)
                if violated_constraint(&e)
                    .is_some_and(|c| c == "projects_name_key" || c == "projects.name") =>
            {
                return Err(StoreError::ProjectNameTaken(new.name.clone()));
            }
            Err(e) => return Err(e.into()),
        }
        self.project(&id)
            .await?
            .ok_or_else(|| StoreError::UnknownProject(id.to_string()))
    }

    pub async fn project(&self, id: &ProjectId) -> Result<Option<Project>, StoreError> {
        let row: Option<ProjectRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1"
            )))
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
        })?;
        row.map(Project::try_from).transpose()
    }

    /// Looks a project up by id or by its unique name, as the CLI accepts both.
    pub async fn find_project(&self, id_or_name: &str) -> Result<Option<Project>, StoreError> {
        if let Some(id) = ProjectId::parse(id_or_name)
            && let Some(p) = self.project(&id).await?
        {
            return Ok(Some(p));
        }
        let row: Option<ProjectRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PROJECT_COLUMNS} FROM projects WHERE name = $1"
            )))
            .bind(id_or_name)
            .fetch_optional(pool)
            .await
        })?;
        row.map(Project::try_from).transpose()
    }

    pub async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        let rows: Vec<ProjectRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PROJECT_COLUMNS} FROM projects ORDER BY created_at, id"
            )))
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(Project::try_from).collect()
    }

    /// Sets how long an event may stay unfinished before a `webhook_lag` incident.
    pub async fn set_lag_threshold(&self, id: &ProjectId, secs: i64) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query("UPDATE projects SET lag_threshold_secs = $1 WHERE id = $2")
                .bind(secs)
                .bind(id.as_str())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Stores the key and adds the signing secrets (a secret already held is
    /// kept once), all in one transaction: a failed connect changes nothing.
    pub async fn save_integration(
        &self,
        project: &ProjectId,
        write: &IntegrationWrite,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO stripe_integrations (project_id, api_key_enc, api_key_last4, key_mode, account_id, connected_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (project_id) DO UPDATE SET api_key_enc = excluded.api_key_enc,
                   api_key_last4 = excluded.api_key_last4, key_mode = excluded.key_mode,
                   account_id = excluded.account_id, connected_at = excluded.connected_at",
            )
            .bind(project.as_str())
            .bind(&write.api_key.sealed)
            .bind(&write.api_key.last4)
            .bind(write.key_mode.as_str())
            .bind(&write.account_id)
            .bind(write.connected_at)
            .execute(&mut *tx)
            .await?;
            for secret in &write.webhook_secrets {
                sqlx::query(INSERT_SECRET)
                    .bind(project.as_str())
                    .bind(&secret.sealed)
                    .bind(&secret.fingerprint)
                    .bind(&secret.last4)
                    .bind(write.connected_at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    pub async fn integration(
        &self,
        project: &ProjectId,
    ) -> Result<Option<Integration>, StoreError> {
        type Row = (Vec<u8>, String, String, Option<String>, i64);
        let row: Option<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT api_key_enc, api_key_last4, key_mode, account_id, connected_at
                 FROM stripe_integrations WHERE project_id = $1",
            )
            .bind(project.as_str())
            .fetch_optional(pool)
            .await
        })?;
        let Some((api_key_sealed, api_key_last4, mode, account_id, connected_at)) = row else {
            return Ok(None);
        };
        Ok(Some(Integration {
            api_key_sealed,
            api_key_last4,
            key_mode: super::decode(&mode)?,
            account_id,
            connected_at,
            webhook_secrets: self.webhook_secrets(project).await?,
        }))
    }

    /// The project's signing secrets, oldest first, without their values.
    pub async fn webhook_secrets(
        &self,
        project: &ProjectId,
    ) -> Result<Vec<WebhookSecretInfo>, StoreError> {
        type Row = (i64, String, i64, Option<i64>);
        let rows: Vec<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT CAST(id AS BIGINT), last4, created_at, last_matched_at FROM webhook_secrets
                 WHERE project_id = $1 ORDER BY id",
            )
            .bind(project.as_str())
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(id, last4, created_at, last_matched_at)| WebhookSecretInfo {
                    id,
                    last4,
                    created_at,
                    last_matched_at,
                },
            )
            .collect())
    }

    /// The sealed signing secrets with their ids (for the vault to open).
    pub async fn sealed_webhook_secrets(
        &self,
        project: &ProjectId,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT CAST(id AS BIGINT), secret_enc FROM webhook_secrets WHERE project_id = $1 ORDER BY id",
            )
            .bind(project.as_str())
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Adds signing secrets (one already held is kept once), in one transaction.
    pub async fn add_webhook_secrets(
        &self,
        project: &ProjectId,
        secrets: &[SealedSecret],
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin().await?;
            for secret in secrets {
                sqlx::query(INSERT_SECRET)
                    .bind(project.as_str())
                    .bind(&secret.sealed)
                    .bind(&secret.fingerprint)
                    .bind(&secret.last4)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// Removes one signing secret, refusing the last one unless `allow_last`;
    /// the count and the delete share one transaction, so two removals at
    /// once cannot both pass the check.
    pub async fn remove_webhook_secret(
        &self,
        project: &ProjectId,
        id: i64,
        allow_last: bool,
    ) -> Result<SecretRemoval, StoreError> {
        // PostgreSQL locks the project's secrets; SQLite has one writer.
        let lock = match self {
            Self::Sqlite(_) => LOCK_SECRETS.to_string(),
            Self::Postgres(_) => format!("{LOCK_SECRETS} FOR UPDATE"),
        };
        let outcome = dispatch!(self, |pool| {
            let mut tx = pool.begin().await?;
            let ids: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(lock.as_str()))
                .bind(project.as_str())
                .fetch_all(&mut *tx)
                .await?;
            let outcome = if !ids.iter().any(|(i,)| *i == id) {
                SecretRemoval::NotFound
            } else if ids.len() == 1 && !allow_last {
                SecretRemoval::Last
            } else {
                sqlx::query("DELETE FROM webhook_secrets WHERE project_id = $1 AND id = $2")
                    .bind(project.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                SecretRemoval::Removed
            };
            tx.commit().await?;
            Ok::<_, sqlx::Error>(outcome)
        })?;
        Ok(outcome)
    }
}

const INSERT_SECRET: &str =
    "INSERT INTO webhook_secrets (project_id, secret_enc, fingerprint, last4, created_at)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id, fingerprint) DO NOTHING";

const LOCK_SECRETS: &str =
    "SELECT CAST(id AS BIGINT) FROM webhook_secrets WHERE project_id = $1 ORDER BY id";
