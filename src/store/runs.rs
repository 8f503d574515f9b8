//! Check runs and their evidence. A run is inserted once per
//! (project, trigger, external id), claimed under a lease while it probes,
//! and finished passed or failed.

use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError, dispatch};

/// What started a check (SPEC §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Webhook,
    Scan,
    Manual,
    Rerun,
    Drill,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Scan => "scan",
            Self::Manual => "manual",
            Self::Rerun => "rerun",
            Self::Drill => "drill",
        }
    }
}

pub struct NewRun<'a> {
    pub project_id: &'a str,
    pub customer_id: &'a str,
    pub trigger: Trigger,
    /// The Stripe event id for webhook runs; unique per trigger.
    pub external_id: Option<&'a str>,
    /// Unix ms after which a mismatch becomes an incident.
    pub deadline: i64,
    pub now: i64,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Run {
    pub id: String,
    pub project_id: String,
    pub customer_id: String,
    #[sqlx(rename = "trigger_kind")]
    pub trigger: String,
    pub external_id: Option<String>,
    pub status: String,
    pub kind: Option<String>,
    pub app_user_id: Option<String>,
    pub expected: Option<String>,
    pub observed: Option<String>,
    pub deploy_sha: Option<String>,
    pub summary: Option<String>,
    pub probe_attempts: i64,
    pub deadline: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct RunStep {
    pub at: i64,
    pub step: String,
    pub detail: String,
}

/// How a probe attempt left the run.
pub struct RunProgress<'a> {
    pub app_user_id: Option<&'a str>,
    pub expected: Option<&'a Value>,
    pub observed: Option<&'a Value>,
    pub deploy_sha: Option<&'a str>,
    pub summary: Option<&'a str>,
}

const RUN_COLUMNS: &str =
    "id, project_id, customer_id, trigger_kind, external_id, status, kind, app_user_id,
    expected, observed, deploy_sha, summary, probe_attempts, deadline, created_at, finished_at";

impl Store {
    /// Creates the run, or returns the existing one for the same
    /// (project, trigger, external id): `(id, created)`.
    pub async fn insert_run(&self, new: &NewRun<'_>) -> Result<(String, bool), StoreError> {
        let id = format!("run_{}", crate::ids::random_id());
        let inserted = dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO runs (id, project_id, customer_id, trigger_kind, external_id, status, deadline, next_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $7)
                 ON CONFLICT (project_id, trigger_kind, external_id) DO NOTHING",
            )
            .bind(&id)
            .bind(new.project_id)
            .bind(new.customer_id)
            .bind(new.trigger.as_str())
            .bind(new.external_id)
            .bind(new.deadline)
            .bind(new.now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if inserted == 1 {
            return Ok((id, true));
        }
        let existing: (String,) = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id FROM runs WHERE project_id = $1 AND trigger_kind = $2 AND external_id = $3",
            )
            .bind(new.project_id)
            .bind(new.trigger.as_str())
            .bind(new.external_id)
            .fetch_one(pool)
            .await
        })?;
        Ok((existing.0, false))
    }

    /// Claims one pending run that is due, under a lease.
    pub async fn claim_due_run(
        &self,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Run>, StoreError> {
        // Read before writing: most calls find nothing due, and must not take
        // SQLite's write lock to learn it.
        let due: Option<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id FROM runs WHERE status = 'pending' AND next_at <= $1
                    AND (locked_until IS NULL OR locked_until < $1) LIMIT 1",
            )
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        if due.is_none() {
            return Ok(None);
        }
        let picked: Option<(String,)> = match self {
            Self::Sqlite(pool) => {
                sqlx::query_as(
                    "UPDATE runs SET locked_until = $1
                     WHERE id = (SELECT id FROM runs WHERE status = 'pending' AND next_at <= $2
                        AND (locked_until IS NULL OR locked_until < $2) ORDER BY next_at, id LIMIT 1)
                     RETURNING id",
                )
                .bind(lease_until)
                .bind(now)
                .fetch_optional(pool)
                .await?
            }
            Self::Postgres(pool) => {
                sqlx::query_as(
                    "UPDATE runs SET locked_until = $1
                     WHERE id = (SELECT id FROM runs WHERE status = 'pending' AND next_at <= $2
                        AND (locked_until IS NULL OR locked_until < $2) ORDER BY next_at, id LIMIT 1
                        FOR UPDATE SKIP LOCKED)
                     RETURNING id",
                )
                .bind(lease_until)
                .bind(now)
                .fetch_optional(pool)
                .await?
            }
        };
        match picked {
            Some((id,)) => self.run(&id).await,
            None => Ok(None),
        }
    }

    pub async fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        let row = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }

    /// Newest first; `customer` narrows to one customer.
    pub async fn list_runs(
        &self,
        project_id: &str,
        customer: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Run>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE project_id = $1 AND ($2 IS NULL OR customer_id = $2)
                 ORDER BY created_at DESC, id DESC LIMIT $3"
            )))
            .bind(project_id)
            .bind(customer)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    pub async fn add_run_step(
        &self,
        run_id: &str,
        step: &str,
        detail: &Value,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query("INSERT INTO run_steps (run_id, at, step, detail) VALUES ($1, $2, $3, $4)")
                .bind(run_id)
                .bind(crate::now_ms())
                .bind(step)
                .bind(detail.to_string())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn run_steps(&self, run_id: &str) -> Result<Vec<RunStep>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as("SELECT at, step, detail FROM run_steps WHERE run_id = $1 ORDER BY id")
                .bind(run_id)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows)
    }

    /// Keeps the run pending, due again at `next_at`, and releases its lease.
    pub async fn reschedule_run(
        &self,
        run_id: &str,
        next_at: i64,
        progress: &RunProgress<'_>,
    ) -> Result<(), StoreError> {
        self.write_run(run_id, "pending", None, Some(next_at), None, progress)
            .await
    }

    /// Closes the run as `passed` or `failed` (with the mismatch `kind`).
    pub async fn finish_run(
        &self,
        run_id: &str,
        passed: bool,
        kind: Option<&str>,
        now: i64,
        progress: &RunProgress<'_>,
    ) -> Result<(), StoreError> {
        let status = if passed { "passed" } else { "failed" };
        self.write_run(run_id, status, kind, None, Some(now), progress)
            .await
    }

    async fn write_run(
        &self,
        run_id: &str,
        status: &str,
        kind: Option<&str>,
        next_at: Option<i64>,
        finished_at: Option<i64>,
        p: &RunProgress<'_>,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE runs SET status = $1, kind = $2, next_at = COALESCE($3, next_at), finished_at = $4,
                    app_user_id = COALESCE($5, app_user_id), expected = COALESCE($6, expected),
                    observed = COALESCE($7, observed), deploy_sha = COALESCE($8, deploy_sha),
                    summary = COALESCE($9, summary), probe_attempts = probe_attempts + 1, locked_until = NULL
                 WHERE id = $10",
            )
            .bind(status)
            .bind(kind)
            .bind(next_at)
            .bind(finished_at)
            .bind(p.app_user_id)
            .bind(p.expected.map(Value::to_string))
            .bind(p.observed.map(Value::to_string))
            .bind(p.deploy_sha)
            .bind(p.summary)
            .bind(run_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

impl Store {
    /// The customer's pending run, if one is waiting: `(id, deadline)`.
    pub async fn pending_run(
        &self,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let row = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id, deadline FROM runs WHERE project_id = $1 AND customer_id = $2 AND status = 'pending'
                 ORDER BY created_at LIMIT 1",
            )
            .bind(project_id)
            .bind(customer_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }

    /// A newer event for a customer whose check is still pending: push the
    /// deadline out and probe again now, instead of starting a second check.
    pub async fn extend_run(
        &self,
        run_id: &str,
        deadline: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE runs SET deadline = CASE WHEN deadline < $1 THEN $1 ELSE deadline END, next_at = $2
                 WHERE id = $3 AND status = 'pending'",
            )
            .bind(deadline)
            .bind(now)
            .bind(run_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

impl Store {
    /// Claims one specific pending run (the CLI's `check` drives its own run).
    pub async fn claim_run(
        &self,
        id: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Run>, StoreError> {
        let claimed = dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE runs SET locked_until = $1
                 WHERE id = $2 AND status = 'pending' AND (locked_until IS NULL OR locked_until < $3)",
            )
            .bind(lease_until)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if claimed == 0 {
            return Ok(None);
        }
        self.run(id).await
    }
}

impl Store {
    /// Starts a rerun check of the customer, due now, unless one is still
    /// pending: `(id, created)`. The `runs_one_pending_rerun` index keeps it
    /// to one pending rerun per customer even under concurrent requests.
    pub async fn insert_rerun(
        &self,
        project_id: &str,
        customer_id: &str,
        now: i64,
    ) -> Result<(String, bool), StoreError> {
        // A pending rerun can finish between the insert and the read; then
        // the next insert succeeds. Three rounds is ample.
        for _ in 0..3 {
            let id = format!("run_{}", crate::ids::random_id());
            let inserted = dispatch!(self, |pool| {
                sqlx::query(
                    "INSERT INTO runs (id, project_id, customer_id, trigger_kind, status, deadline, next_at, created_at)
                     VALUES ($1, $2, $3, 'rerun', 'pending', $4, $4, $4)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&id)
                .bind(project_id)
                .bind(customer_id)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })?;
            if inserted == 1 {
                return Ok((id, true));
            }
            let pending: Option<(String,)> = dispatch!(self, |pool| {
                sqlx::query_as(
                    "SELECT id FROM runs WHERE project_id = $1 AND customer_id = $2
                        AND trigger_kind = 'rerun' AND status = 'pending'",
                )
                .bind(project_id)
                .bind(customer_id)
                .fetch_optional(pool)
                .await
            })?;
            if let Some((id,)) = pending {
                return Ok((id, false));
            }
        }
        Err(StoreError::Corrupt(format!(
            "cannot start a rerun for customer {customer_id}: the insert conflicts but no rerun is pending"
        )))
    }
}
