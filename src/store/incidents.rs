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

pub struct NewIncident<'a> {
    pub project_id: &'a str,
    pub kind: IncidentKind,
    pub customer_id: &'a str,
    pub event_id: Option<&'a str>,
    pub details: Value,
    /// `Some(n)` sets the count (a sweep that counts what it sees); `None` adds one.
    pub count: Option<i64>,
    pub now: i64,
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
}

impl Store {
    /// Opens the incident, or bumps the standing one of the same key.
    pub async fn open_incident(&self, new: NewIncident<'_>) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO incidents (id, project_id, kind, customer_id, status, event_id, details,
                    first_seen, last_seen, count)
                 VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $7, COALESCE(CAST($8 AS BIGINT), 1))
                 ON CONFLICT (project_id, customer_id, kind) WHERE status <> 'resolved'
                 DO UPDATE SET last_seen = excluded.last_seen, details = excluded.details,
                    count = COALESCE(CAST($8 AS BIGINT), incidents.count + 1)",
            )
            .bind(crate::ids::incident_id())
            .bind(new.project_id)
            .bind(new.kind.as_str())
            .bind(new.customer_id)
            .bind(new.event_id)
            .bind(new.details.to_string())
            .bind(new.now)
            .bind(new.count)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
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
            sqlx::query_as(
                "SELECT id, kind, status, customer_id, event_id, details, first_seen, last_seen, count
                 FROM incidents WHERE project_id = $1 ORDER BY last_seen DESC, id",
            )
            .bind(project_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }
}
