//! The run history and the webhook event log a page at a time: newest
//! first, keyset on `(time, id)`, every filter optional.

use super::{
    Store, StoreError,
    inbox::{EventRow, STATUS_SQL},
    runs::{RUN_COLUMNS, RunRow},
};
use crate::domain::{EventRecord, EventStatus, Run, RunStatus};

/// Which runs a page of the history shows.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub customer: Option<String>,
    pub status: Option<RunStatus>,
    /// Only runs strictly older than this `(created_at, id)`.
    pub before: Option<(i64, String)>,
}

/// Which events a page of the log shows.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub status: Option<EventStatus>,
    pub event_type: Option<String>,
    /// Only events strictly older than this `(received_at, event_id)`.
    pub before: Option<(i64, String)>,
}

/// PostgreSQL must know each parameter's type where `IS NULL` alone does
/// not say: `(placeholder, type)` pairs to cast.
pub(super) fn typed(store: &Store, sql: String, casts: &[(&str, &str)]) -> String {
    match store {
        Store::Postgres(_) => casts.iter().fold(sql, |sql, (p, t)| {
            sql.replace(&format!("{p} IS NULL"), &format!("{p}::{t} IS NULL"))
        }),
        Store::Sqlite(_) => sql,
    }
}

const EVENT_SELECT: &str = "SELECT e.event_id, e.event_type, {STATUS} AS status,
    COALESCE(e.ignored_reason, w.last_error) AS reason, e.customer_id AS customer,
    e.received_at, w.finished_at AS processed_at, COALESCE(w.attempts, 0) AS attempts
    FROM events e LEFT JOIN work_items w ON w.project_id = e.project_id AND w.event_id = e.event_id";

impl Store {
    /// Up to `limit` runs matching `filter`, newest first.
    pub async fn run_page(
        &self,
        project_id: &str,
        filter: &RunFilter,
        limit: i64,
    ) -> Result<Vec<Run>, StoreError> {
        let (before_at, before_id) = split(&filter.before);
        let sql = typed(
            self,
            format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE project_id = $1
                   AND ($2 IS NULL OR customer_id = $2)
                   AND ($3 IS NULL OR status = $3)
                   AND ($4 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5))
                 ORDER BY created_at DESC, id DESC LIMIT $6"
            ),
            &[("$2", "text"), ("$3", "text"), ("$4", "bigint")],
        );
        let rows: Vec<RunRow> = super::dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(project_id)
                .bind(filter.customer.as_deref())
                .bind(filter.status.map(RunStatus::as_str))
                .bind(before_at)
                .bind(before_id)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Run::try_from).collect()
    }

    /// The runs that judged an event or replayed it, newest first.
    pub async fn event_runs(
        &self,
        project_id: &str,
        event_id: &str,
    ) -> Result<Vec<Run>, StoreError> {
        let rows: Vec<RunRow> = super::dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE project_id = $1 AND (event_id = $2 OR external_id = $2
                    OR external_id LIKE 'replay:' || $2 || ':%')
                 ORDER BY created_at DESC, id DESC LIMIT 100"
            )))
            .bind(project_id)
            .bind(event_id)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(Run::try_from).collect()
    }

    /// Up to `limit` events matching `filter`, newest first.
    pub async fn event_page(
        &self,
        project_id: &str,
        filter: &EventFilter,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let (before_at, before_id) = split(&filter.before);
        let select = EVENT_SELECT.replace("{STATUS}", STATUS_SQL);
        let sql = typed(
            self,
            format!(
                "{select}
                 WHERE e.project_id = $1
                   AND ($2 IS NULL OR ({STATUS_SQL}) = $2)
                   AND ($3 IS NULL OR e.event_type = $3)
                   AND ($4 IS NULL OR e.received_at < $4 OR (e.received_at = $4 AND e.event_id < $5))
                 ORDER BY e.received_at DESC, e.event_id DESC LIMIT $6"
            ),
            &[("$2", "text"), ("$3", "text"), ("$4", "bigint")],
        );
        let rows: Vec<EventRow> = super::dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(project_id)
                .bind(filter.status.map(EventStatus::as_str))
                .bind(filter.event_type.as_deref())
                .bind(before_at)
                .bind(before_id)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(EventRecord::try_from).collect()
    }

    /// One event of the project as the log shows it.
    pub async fn event_record(
        &self,
        project_id: &str,
        event_id: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        let select = EVENT_SELECT.replace("{STATUS}", STATUS_SQL);
        let row: Option<EventRow> = super::dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{select} WHERE e.project_id = $1 AND e.event_id = $2"
            )))
            .bind(project_id)
            .bind(event_id)
            .fetch_optional(pool)
            .await
        })?;
        row.map(EventRecord::try_from).transpose()
    }
}

pub(super) fn split(before: &Option<(i64, String)>) -> (Option<i64>, Option<&str>) {
    match before {
        Some((at, id)) => (Some(*at), Some(id.as_str())),
        None => (None, None),
    }
}
