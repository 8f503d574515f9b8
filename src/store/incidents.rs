//! Incidents: one standing incident per (project, customer, kind).

use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError, dispatch};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    Unfulfilled,
    UnpaidAccess,
    ProbeFailed,
    WebhookLag,
    UnmappedCustomer,
    StripeAuth,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unfulfilled => "unfulfilled",
            Self::UnpaidAccess => "unpaid_access",
            Self::ProbeFailed => "probe_failed",
            Self::WebhookLag => "webhook_lag",
            Self::UnmappedCustomer => "unmapped_customer",
            Self::StripeAuth => "stripe_auth",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    Resolved,
}

/// What a check proved, carried by the incident it opens.
#[derive(Clone, Debug, Default)]
pub struct Evidence<'a> {
    pub app_user_id: Option<&'a str>,
    pub subscription_id: Option<&'a str>,
    pub subscription_status: Option<&'a str>,
    pub expected: Option<&'a Value>,
    pub observed: Option<&'a Value>,
    pub deploy_sha: Option<&'a str>,
    /// The run that proves it; every proving run is linked.
    pub run_id: Option<&'a str>,
}

pub struct NewIncident<'a> {
    pub project_id: &'a str,
    pub kind: IncidentKind,
    pub customer_id: &'a str,
    pub event_id: Option<&'a str>,
    pub details: Value,
    /// `Some(n)` sets the count (a sweep that counts what it sees); `None` adds one.
    pub count: Option<i64>,
    pub now: i64,
    pub evidence: Evidence<'a>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Incident {
    pub id: String,
    pub kind: String,
    pub status: String,
    #[serde(rename = "customer")]
    pub customer_id: String,
    pub event_id: Option<String>,
    #[serde(skip)]
    pub details: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub count: i64,
    pub app_user_id: Option<String>,
    pub subscription_id: Option<String>,
    pub subscription_status: Option<String>,
    pub expected: Option<String>,
    pub observed: Option<String>,
    pub deploy_sha: Option<String>,
}

const INCIDENT_COLUMNS: &str =
    "id, kind, status, customer_id, event_id, details, first_seen, last_seen, count,
    app_user_id, subscription_id, subscription_status, expected, observed, deploy_sha";

impl Store {
    /// Opens the incident, or bumps the standing one of the same key (fresh
    /// evidence replaces the old); returns its id.
    pub async fn open_incident(&self, new: NewIncident<'_>) -> Result<String, StoreError> {
        let e = &new.evidence;
        let (id,): (String,) = dispatch!(self, |pool| {
            sqlx::query_as(
                "INSERT INTO incidents (id, project_id, kind, customer_id, status, event_id, details,
                    first_seen, last_seen, count, app_user_id, subscription_id, subscription_status,
                    expected, observed, deploy_sha)
                 VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $7, COALESCE(CAST($8 AS BIGINT), 1),
                    $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (project_id, customer_id, kind) WHERE status <> 'resolved'
                 DO UPDATE SET last_seen = excluded.last_seen, details = excluded.details,
                    count = COALESCE(CAST($8 AS BIGINT), incidents.count + 1),
                    event_id = COALESCE(excluded.event_id, incidents.event_id),
                    app_user_id = COALESCE(excluded.app_user_id, incidents.app_user_id),
                    subscription_id = COALESCE(excluded.subscription_id, incidents.subscription_id),
                    subscription_status = COALESCE(excluded.subscription_status, incidents.subscription_status),
                    expected = COALESCE(excluded.expected, incidents.expected),
                    observed = COALESCE(excluded.observed, incidents.observed),
                    deploy_sha = COALESCE(excluded.deploy_sha, incidents.deploy_sha)
                 RETURNING id",
            )
            .bind(crate::ids::incident_id())
            .bind(new.project_id)
            .bind(new.kind.as_str())
            .bind(new.customer_id)
            .bind(new.event_id)
            .bind(new.details.to_string())
            .bind(new.now)
            .bind(new.count)
            .bind(e.app_user_id)
            .bind(e.subscription_id)
            .bind(e.subscription_status)
            .bind(e.expected.map(Value::to_string))
            .bind(e.observed.map(Value::to_string))
            .bind(e.deploy_sha)
            .fetch_one(pool)
            .await
        })?;
        if let Some(run_id) = e.run_id {
            dispatch!(self, |pool| {
                sqlx::query(
                    "INSERT INTO incident_runs (incident_id, run_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(&id)
                .bind(run_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })?;
        }
        Ok(id)
    }

    /// Resolves the customer's standing incidents of these kinds (a passing check).
    pub async fn resolve_customer_incidents(
        &self,
        project_id: &str,
        customer_id: &str,
        kinds: &[IncidentKind],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut resolved = 0;
        for kind in kinds {
            resolved += dispatch!(self, |pool| {
                sqlx::query(
                    "UPDATE incidents SET status = 'resolved', resolved_at = $1
                     WHERE project_id = $2 AND customer_id = $3 AND kind = $4 AND status <> 'resolved'",
                )
                .bind(now)
                .bind(project_id)
                .bind(customer_id)
                .bind(kind.as_str())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })?;
        }
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
        let status = match status {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        };
        let changed = dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE incidents SET status = $1,
                    resolved_at = CASE WHEN $1 = 'resolved' THEN $2 ELSE resolved_at END
                 WHERE project_id = $3 AND id = $4 AND status <> 'resolved'",
            )
            .bind(status)
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
        let row = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE project_id = $1 AND id = $2"
            )))
            .bind(project_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
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

    /// Resolves standing `kind` incidents whose customer is not in `still`.
    pub async fn resolve_incidents_except(
        &self,
        kind: IncidentKind,
        still: &[(String, String)],
        now: i64,
    ) -> Result<u64, StoreError> {
        let open = self.standing_incidents(kind).await?;
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

    async fn standing_incidents(
        &self,
        kind: IncidentKind,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id, project_id, customer_id FROM incidents WHERE kind = $1 AND status <> 'resolved'",
            )
            .bind(kind.as_str())
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Newest first.
    pub async fn list_incidents(&self, project_id: &str) -> Result<Vec<Incident>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE project_id = $1 ORDER BY last_seen DESC, id"
            )))
            .bind(project_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }
}
