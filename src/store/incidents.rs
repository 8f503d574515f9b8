//! Incidents: one standing incident per (project, customer, kind). Opening
//! and resolving are written once, as statements any transaction can run,
//! so a check's verdict and its incidents commit together.

use serde_json::Value;

use super::{Store, StoreError, decode, dispatch};
use crate::domain::{Incident, IncidentKind, IncidentStatus};

/// What a check proved, carried by the incident it opens.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    pub app_user_id: Option<String>,
    pub subscription_id: Option<String>,
    pub subscription_status: Option<String>,
    pub expected: Option<Value>,
    pub observed: Option<Value>,
    pub deploy_sha: Option<String>,
    /// The run that proves it; every proving run is linked.
    pub run_id: Option<String>,
    /// Opened by a drill (SPEC §8b): kept apart from real incidents.
    pub drill: bool,
}

#[derive(Clone, Debug)]
pub struct NewIncident {
    pub project_id: String,
    pub kind: IncidentKind,
    /// Empty for an incident of the whole project.
    pub customer_id: String,
    pub event_id: Option<String>,
    pub details: Value,
    /// `Some(n)` sets the count (a sweep that counts what it sees); `None` adds one.
    pub count: Option<i64>,
    pub now: i64,
    pub evidence: Evidence,
}

impl NewIncident {
    /// An incident of the whole project (no customer, no run evidence):
    /// the key rejected, the app down for everyone, a scan left partial.
    pub fn for_project(project_id: &str, kind: IncidentKind, details: Value, now: i64) -> Self {
        Self {
            project_id: project_id.to_string(),
            kind,
            customer_id: String::new(),
            event_id: None,
            details,
            count: None,
            now,
            evidence: Evidence::default(),
        }
    }
}

/// Standing incidents of these kinds of one customer (or `""`, the
/// project) that a working check or read shows are gone.
#[derive(Clone, Debug)]
pub struct Resolve {
    pub customer_id: String,
    pub kinds: Vec<IncidentKind>,
}

#[derive(sqlx::FromRow)]
pub(super) struct IncidentRow {
    id: String,
    kind: String,
    status: String,
    customer_id: String,
    event_id: Option<String>,
    details: String,
    first_seen: i64,
    last_seen: i64,
    count: i64,
    app_user_id: Option<String>,
    subscription_id: Option<String>,
    subscription_status: Option<String>,
    expected: Option<String>,
    observed: Option<String>,
    deploy_sha: Option<String>,
    drill: bool,
}

impl TryFrom<IncidentRow> for Incident {
    type Error = StoreError;
    fn try_from(r: IncidentRow) -> Result<Self, StoreError> {
        Ok(Self {
            kind: decode(&r.kind)?,
            status: decode(&r.status)?,
            id: r.id,
            customer_id: r.customer_id,
            event_id: r.event_id,
            details: r.details,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            count: r.count,
            app_user_id: r.app_user_id,
            subscription_id: r.subscription_id,
            subscription_status: r.subscription_status,
            expected: r.expected,
            observed: r.observed,
            deploy_sha: r.deploy_sha,
            drill: r.drill,
        })
    }
}

pub(super) const INCIDENT_COLUMNS: &str =
    "id, kind, status, customer_id, event_id, details, first_seen, last_seen, count,
    app_user_id, subscription_id, subscription_status, expected, observed, deploy_sha, drill";

pub(super) const OPEN_INCIDENT: &str =
    "INSERT INTO incidents (id, project_id, kind, customer_id, status, event_id, details,
        first_seen, last_seen, count, app_user_id, subscription_id, subscription_status,
        expected, observed, deploy_sha, drill)
     VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $7, COALESCE(CAST($8 AS BIGINT), 1),
        $9, $10, $11, $12, $13, $14, $15)
     ON CONFLICT (project_id, customer_id, kind, drill) WHERE status <> 'resolved'
     DO UPDATE SET last_seen = excluded.last_seen, details = excluded.details,
        count = COALESCE(CAST($8 AS BIGINT), incidents.count + 1),
        event_id = COALESCE(excluded.event_id, incidents.event_id),
        app_user_id = COALESCE(excluded.app_user_id, incidents.app_user_id),
        subscription_id = COALESCE(excluded.subscription_id, incidents.subscription_id),
        subscription_status = COALESCE(excluded.subscription_status, incidents.subscription_status),
        expected = COALESCE(excluded.expected, incidents.expected),
        observed = COALESCE(excluded.observed, incidents.observed),
        deploy_sha = COALESCE(excluded.deploy_sha, incidents.deploy_sha)
     RETURNING id";

pub(super) const LINK_RUN: &str =
    "INSERT INTO incident_runs (incident_id, run_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// A real run's verdict resolves real incidents only: a drill's incident
/// is resolved by its drill.
pub(super) const RESOLVE: &str = "UPDATE incidents SET status = 'resolved', resolved_at = $1
     WHERE project_id = $2 AND customer_id = $3 AND kind = $4 AND status <> 'resolved'
       AND drill = FALSE";

/// Opens (or bumps) one incident inside the transaction `$tx`; its id.
macro_rules! open_incident_in {
    ($tx:expr, $new:expr) => {{
        let new: &$crate::store::NewIncident = $new;
        let e = &new.evidence;
        let (id,): (String,) = sqlx::query_as($crate::store::incidents::OPEN_INCIDENT)
            .bind($crate::ids::incident_id())
            .bind(&new.project_id)
            .bind(new.kind.as_str())
            .bind(&new.customer_id)
            .bind(&new.event_id)
            .bind(new.details.to_string())
            .bind(new.now)
            .bind(new.count)
            .bind(&e.app_user_id)
            .bind(&e.subscription_id)
            .bind(&e.subscription_status)
            .bind(e.expected.as_ref().map(serde_json::Value::to_string))
            .bind(e.observed.as_ref().map(serde_json::Value::to_string))
            .bind(&e.deploy_sha)
            .bind(e.drill)
            .fetch_one(&mut *$tx)
            .await?;
        if let Some(run_id) = &e.run_id {
            sqlx::query($crate::store::incidents::LINK_RUN)
                .bind(&id)
                .bind(run_id)
                .execute(&mut *$tx)
                .await?;
        }
        id
    }};
}
pub(crate) use open_incident_in;

/// Resolves standing incidents inside the transaction `$tx`; how many.
macro_rules! resolve_in {
    ($tx:expr, $project:expr, $resolve:expr, $now:expr) => {{
        let resolve: &$crate::store::Resolve = $resolve;
        let mut resolved = 0u64;
        for kind in &resolve.kinds {
            resolved += sqlx::query($crate::store::incidents::RESOLVE)
                .bind($now)
                .bind($project)
                .bind(&resolve.customer_id)
                .bind(kind.as_str())
                .execute(&mut *$tx)
                .await?
                .rows_affected();
        }
        resolved
    }};
}
pub(crate) use resolve_in;

impl Store {
    /// Opens the incident, or bumps the standing one of the same key (fresh
    /// evidence replaces the old); returns its id.
    pub async fn open_incident(&self, new: &NewIncident) -> Result<String, StoreError> {
        let id = dispatch!(self, |pool| {
            let mut tx = pool.begin().await?;
            let id = open_incident_in!(tx, new);
            tx.commit().await?;
            Ok::<_, sqlx::Error>(id)
        })?;
        Ok(id)
    }

    /// Resolves the standing incidents `resolve` names (a working check or read).
    pub async fn resolve_incidents(
        &self,
        project_id: &str,
        resolve: &Resolve,
        now: i64,
    ) -> Result<u64, StoreError> {
        let resolved = dispatch!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = resolve_in!(tx, project_id, resolve, now);
            tx.commit().await?;
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(resolved)
    }

    /// Acknowledges or resolves an incident of the project; false if none.
    pub async fn set_incident_status(
        &self,
        project_id: &str,
        id: &str,
        status: IncidentStatus,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE incidents SET status = $1,
                    resolved_at = CASE WHEN $1 = 'resolved' THEN $2 ELSE resolved_at END
                 WHERE project_id = $3 AND id = $4 AND status <> 'resolved'",
            )
            .bind(status.as_str())
            .bind(now)
            .bind(project_id)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(changed > 0)
    }

    pub async fn incident(
        &self,
        project_id: &str,
        id: &str,
    ) -> Result<Option<Incident>, StoreError> {
        let row: Option<IncidentRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE project_id = $1 AND id = $2"
            )))
            .bind(project_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        row.map(Incident::try_from).transpose()
    }

    /// Ids of the runs that prove an incident, oldest first.
    pub async fn incident_runs(&self, incident_id: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT run_id FROM incident_runs WHERE incident_id = $1 ORDER BY run_id",
            )
            .bind(incident_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Resolves standing `kind` incidents whose (project, customer) is not in `still`.
    pub async fn resolve_incidents_except(
        &self,
        kind: IncidentKind,
        still: &[(String, String)],
        now: i64,
    ) -> Result<u64, StoreError> {
        let open: Vec<(String, String, String)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id, project_id, customer_id FROM incidents WHERE kind = $1 AND status <> 'resolved'",
            )
            .bind(kind.as_str())
            .fetch_all(pool)
            .await
        })?;
        let mut resolved = 0;
        for (id, project, customer) in open {
            if still.iter().any(|(p, c)| *p == project && *c == customer) {
                continue;
            }
            resolved += dispatch!(self, |pool| {
                sqlx::query(
                    "UPDATE incidents SET status = 'resolved', resolved_at = $1 WHERE id = $2 AND status <> 'resolved'",
                )
                .bind(now)
                .bind(&id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })?;
        }
        Ok(resolved)
    }

    /// Newest first.
    pub async fn list_incidents(&self, project_id: &str) -> Result<Vec<Incident>, StoreError> {
        let rows: Vec<IncidentRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE project_id = $1 ORDER BY last_seen DESC, id"
            )))
            .bind(project_id)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(Incident::try_from).collect()
    }
}
