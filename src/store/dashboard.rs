//! Reads the dashboard pages need: the incident inbox a page at a time
//! (keyset on `last_seen, id`, newest first), counts per tab and kind, and
//! a project's queue depth.

use super::{
    Store, StoreError,
    incidents::{INCIDENT_COLUMNS, IncidentRow},
};
use crate::domain::{Incident, IncidentKind, IncidentStatus};

/// Which incidents a page of the inbox shows.
#[derive(Clone, Debug, Default)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    pub kind: Option<IncidentKind>,
    pub customer: Option<String>,
    /// Only incidents strictly older than this `(last_seen, id)`.
    pub before: Option<(i64, String)>,
}

/// A project's webhook work: waiting (queued or being processed), the
/// oldest waiting item's arrival, and dead letters.
#[derive(Clone, Debug, Default)]
pub struct QueueDepth {
    pub waiting: i64,
    pub oldest_waiting_at: Option<i64>,
    pub dead: i64,
}

impl Store {
    /// Up to `limit` incidents matching `filter`, newest first.
    pub async fn incident_page(
        &self,
        project_id: &str,
        filter: &IncidentFilter,
        limit: i64,
    ) -> Result<Vec<Incident>, StoreError> {
        // Absent filters bind NULL and match everything, so there is one
        // statement shape whatever the filter.
        let (before_at, before_id) = super::logs::split(&filter.before);
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents
             WHERE project_id = $1
               AND ($2 IS NULL OR status = $2)
               AND ($3 IS NULL OR kind = $3)
               AND ($4 IS NULL OR customer_id = $4)
               AND ($5 IS NULL OR last_seen < $5 OR (last_seen = $5 AND id < $6))
             ORDER BY last_seen DESC, id DESC LIMIT $7"
        );
        let sql = super::logs::typed(
            self,
            sql,
            &[
                ("$2", "text"),
                ("$3", "text"),
                ("$4", "text"),
                ("$5", "bigint"),
            ],
        );
        let rows: Vec<IncidentRow> = super::dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(project_id)
                .bind(filter.status.map(IncidentStatus::as_str))
                .bind(filter.kind.map(IncidentKind::as_str))
                .bind(filter.customer.as_deref())
                .bind(before_at)
                .bind(before_id)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Incident::try_from).collect()
    }

    /// Counts of the project's real incidents by status and kind: drill
    /// incidents (SPEC §8b) never count.
    pub async fn incident_counts(
        &self,
        project_id: &str,
    ) -> Result<Vec<(IncidentStatus, IncidentKind, i64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = super::dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT status, kind, COUNT(*) FROM incidents WHERE project_id = $1 AND drill = FALSE
                 GROUP BY status, kind",
            )
            .bind(project_id)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|(s, k, n)| Ok((super::decode(&s)?, super::decode(&k)?, n)))
            .collect()
    }

    /// The project's webhook queue.
    pub async fn queue_depth(&self, project_id: &str) -> Result<QueueDepth, StoreError> {
        let (waiting, oldest, dead): (i64, Option<i64>, i64) = super::dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT
                    COALESCE(SUM(CASE WHEN status IN ('queued', 'leased') THEN 1 ELSE 0 END), 0),
                    MIN(CASE WHEN status IN ('queued', 'leased') THEN created_at END),
                    COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0)
                 FROM work_items WHERE project_id = $1",
            )
            .bind(project_id)
            .fetch_one(pool)
            .await
        })?;
        Ok(QueueDepth {
            waiting,
            oldest_waiting_at: oldest,
            dead,
        })
    }
}
