//! Check runs and their evidence. A run is inserted once per
//! (project, trigger, external id) and claimed under a lease while it
//! probes; `settle` ends each attempt.

use super::{Store, StoreError, decode, dispatch, project_id};
use crate::domain::{Run, RunStep, Trigger};

pub struct NewRun<'a> {
    pub project_id: &'a str,
    pub customer_id: &'a str,
    pub trigger: Trigger,
    /// Unique per trigger (the Stripe event id of a webhook run).
    pub external_id: Option<&'a str>,
    /// The Stripe event whose state the run judges, if any.
    pub event_id: Option<&'a str>,
    /// Unix ms after which a mismatch becomes an incident.
    pub deadline: i64,
    pub now: i64,
    /// Read Stripe before the first probe.
    pub needs_sync: bool,
}

#[derive(sqlx::FromRow)]
pub(super) struct RunRow {
    id: String,
    project_id: String,
    customer_id: String,
    trigger_kind: String,
    external_id: Option<String>,
    event_id: Option<String>,
    status: String,
    kind: Option<String>,
    app_user_id: Option<String>,
    expected: Option<String>,
    observed: Option<String>,
    deploy_sha: Option<String>,
    summary: Option<String>,
    probe_attempts: i64,
    deadline: i64,
    created_at: i64,
    finished_at: Option<i64>,
    generation: i64,
    judged_generation: i64,
    needs_sync: bool,
}

impl TryFrom<RunRow> for Run {
    type Error = StoreError;
    fn try_from(r: RunRow) -> Result<Self, StoreError> {
        Ok(Self {
            project_id: project_id(&r.project_id)?,
            trigger: decode(&r.trigger_kind)?,
            status: decode(&r.status)?,
            kind: r.kind.as_deref().map(decode).transpose()?,
            id: r.id,
            customer_id: r.customer_id,
            external_id: r.external_id,
            event_id: r.event_id,
            app_user_id: r.app_user_id,
            expected: r.expected,
            observed: r.observed,
            deploy_sha: r.deploy_sha,
            summary: r.summary,
            probe_attempts: r.probe_attempts,
            deadline: r.deadline,
            created_at: r.created_at,
            finished_at: r.finished_at,
            generation: r.generation,
            judged_generation: r.judged_generation,
            needs_sync: r.needs_sync,
        })
    }
}

#[derive(sqlx::FromRow)]
struct StepRow {
    at: i64,
    step: String,
    detail: String,
}

pub(super) const RUN_COLUMNS: &str =
    "id, project_id, customer_id, trigger_kind, external_id, event_id, status, kind, app_user_id,
    expected, observed, deploy_sha, summary, probe_attempts, deadline, created_at, finished_at,
    generation, judged_generation, needs_sync";

pub(super) const INSERT_RUN: &str =
    "INSERT INTO runs (id, project_id, customer_id, trigger_kind, external_id, event_id,
        status, deadline, next_at, created_at, needs_sync)
     VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10)";

/// The due run first; a run under a live lease is skipped.
const DUE: &str =
    "status = 'pending' AND next_at <= $2 AND (locked_until IS NULL OR locked_until < $2)";

impl Store {
    /// Creates the run, or returns the existing one for the same
    /// (project, trigger, external id): `(id, created)`.
    pub async fn insert_run(&self, new: &NewRun<'_>) -> Result<(String, bool), StoreError> {
        let id = format!("run_{}", crate::ids::random_id());
        let inserted = dispatch!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{INSERT_RUN} ON CONFLICT (project_id, trigger_kind, external_id) DO NOTHING"
            )))
            .bind(&id)
            .bind(new.project_id)
            .bind(new.customer_id)
            .bind(new.trigger.as_str())
            .bind(new.external_id)
            .bind(new.event_id)
            .bind(new.deadline)
            .bind(new.now)
            .bind(new.now)
            .bind(new.needs_sync)
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

    /// Claims one pending run that is due, under a lease held by `owner`.
    pub async fn claim_due_run(
        &self,
        owner: &str,
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
        let lock = match self {
            Self::Sqlite(_) => "",
            Self::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        };
        let picked: Option<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE runs SET locked_until = $1, lease_owner = $3
                 WHERE id = (SELECT id FROM runs WHERE {DUE} ORDER BY next_at, id LIMIT 1 {lock})
                 RETURNING id"
            )))
            .bind(lease_until)
            .bind(now)
            .bind(owner)
            .fetch_optional(pool)
            .await
        })?;
        match picked {
            Some((id,)) => self.run(&id).await,
            None => Ok(None),
        }
    }

    /// Claims one specific pending run (the CLI's `check` drives its own run).
    pub async fn claim_run(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Run>, StoreError> {
        let claimed = dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE runs SET locked_until = $1, lease_owner = $4
                 WHERE id = $2 AND status = 'pending' AND (locked_until IS NULL OR locked_until < $3)",
            )
            .bind(lease_until)
            .bind(id)
            .bind(now)
            .bind(owner)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if claimed == 0 {
            return Ok(None);
        }
        self.run(id).await
    }

    /// Extends the lease `owner` holds on a run; false once it is lost.
    pub async fn renew_run_lease(
        &self,
        id: &str,
        owner: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let renewed = dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE runs SET locked_until = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'pending'",
            )
            .bind(lease_until)
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(renewed == 1)
    }

    /// Gives a run back without a verdict (its attempt was superseded), so
    /// it is due again at once for whoever claims it next.
    pub async fn release_run(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE runs SET locked_until = NULL, lease_owner = NULL WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        let row: Option<RunRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        row.map(Run::try_from).transpose()
    }

    /// Newest first; `customer` narrows to one customer.
    pub async fn list_runs(
        &self,
        project_id: &str,
        customer: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Run>, StoreError> {
        let rows: Vec<RunRow> = dispatch!(self, |pool| {
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
        rows.into_iter().map(Run::try_from).collect()
    }

    pub async fn run_steps(&self, run_id: &str) -> Result<Vec<RunStep>, StoreError> {
        let rows: Vec<StepRow> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT at, step, detail FROM run_steps WHERE run_id = $1 ORDER BY id")
                .bind(run_id)
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter()
            .map(|r| {
                Ok(RunStep {
                    at: r.at,
                    step: decode(&r.step)?,
                    detail: r.detail,
                })
            })
            .collect()
    }

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
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{INSERT_RUN} ON CONFLICT DO NOTHING"
                )))
                .bind(&id)
                .bind(project_id)
                .bind(customer_id)
                .bind(Trigger::Rerun.as_str())
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(true)
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
                        AND trigger_kind = 'rerun' AND status = 'pending' AND external_id IS NULL",
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
