//! Scans: resumable cursors, counters and checkpoints, each scanned page
//! stored with its checkpoint in one transaction.

use serde::Serialize;

use super::{
    Store, StoreError,
    batch::{encode, upsert_many},
    dispatch,
};
use crate::stripe::model::Subscription;

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Scan {
    pub id: String,
    pub project_id: String,
    #[sqlx(rename = "trigger_kind")]
    pub trigger: String,
    pub scheduled_for: Option<String>,
    pub status: String,
    pub stripe_cursor: Option<String>,
    pub stripe_done: bool,
    pub app_cursor: Option<String>,
    pub app_done: bool,
    pub subscriptions_seen: i64,
    pub customers_checked: i64,
    pub mismatches: String,
    pub stripe_requests: i64,
    pub probe_requests: i64,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// Where a scan stands, written after every page so a crash resumes there.
#[derive(Clone, Debug, Default)]
pub struct ScanCheckpoint {
    pub stripe_cursor: Option<String>,
    pub stripe_done: bool,
    pub subscriptions_seen: i64,
    pub customers_checked: i64,
    /// JSON object: mismatch kind → count.
    pub mismatches: String,
    pub stripe_requests: i64,
    pub probe_requests: i64,
}

const CHECKPOINT: &str =
    "UPDATE scans SET stripe_cursor = $1, stripe_done = $2, subscriptions_seen = $3,
    customers_checked = $4, mismatches = $5, stripe_requests = $6, probe_requests = $7,
    locked_until = $8 WHERE id = $9";

const SCAN_COLUMNS: &str = "id, project_id, trigger_kind, scheduled_for, status, stripe_cursor, stripe_done,
    app_cursor, app_done, subscriptions_seen, customers_checked, mismatches, stripe_requests, probe_requests,
    error, started_at, finished_at";

impl Store {
    /// Creates a running scan; `None` when (project, `scheduled_for`) already
    /// has one (another instance took today's scheduled scan).
    pub async fn create_scan(
        &self,
        project_id: &str,
        trigger: &str,
        scheduled_for: Option<&str>,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Scan>, StoreError> {
        let id = format!("scn_{}", crate::ids::random_id());
        let inserted = dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO scans (id, project_id, trigger_kind, scheduled_for, status, locked_until, started_at)
                 VALUES ($1, $2, $3, $4, 'running', $5, $6) ON CONFLICT (project_id, scheduled_for) DO NOTHING",
            )
            .bind(&id)
            .bind(project_id)
            .bind(trigger)
            .bind(scheduled_for)
            .bind(lease_until)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if inserted == 0 {
            return Ok(None);
        }
        self.scan(&id).await
    }

    pub async fn scan(&self, id: &str) -> Result<Option<Scan>, StoreError> {
        let row = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {SCAN_COLUMNS} FROM scans WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }

    pub async fn list_scans(&self, project_id: &str, limit: i64) -> Result<Vec<Scan>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {SCAN_COLUMNS} FROM scans WHERE project_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2"
            )))
            .bind(project_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Takes over a running scan whose lease expired (its instance died).
    pub async fn claim_stale_scan(
        &self,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Scan>, StoreError> {
        let picked: Option<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "UPDATE scans SET locked_until = $1
                 WHERE id = (SELECT id FROM scans WHERE status = 'running' AND locked_until < $2
                    ORDER BY started_at LIMIT 1)
                   AND status = 'running' AND locked_until < $2
                 RETURNING id",
            )
            .bind(lease_until)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        match picked {
            Some((id,)) => self.scan(&id).await,
            None => Ok(None),
        }
    }

    pub async fn checkpoint_scan(
        &self,
        id: &str,
        c: &ScanCheckpoint,
        lease_until: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(CHECKPOINT)
                .bind(&c.stripe_cursor)
                .bind(c.stripe_done)
                .bind(c.subscriptions_seen)
                .bind(c.customers_checked)
                .bind(&c.mismatches)
                .bind(c.stripe_requests)
                .bind(c.probe_requests)
                .bind(lease_until)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Records one page of the app's `/list` walk and where it stands.
    pub async fn record_app_access(
        &self,
        scan_id: &str,
        active: &[(String, Option<String>)],
        cursor: Option<&str>,
        done: bool,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            let mut tx = pool.begin().await?;
            // One statement per few hundred rows, not one per row.
            for chunk in active.chunks(500) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO scan_app_access (scan_id, customer_id, user_id) ",
                );
                qb.push_values(chunk, |mut row, (customer, user)| {
                    row.push_bind(scan_id).push_bind(customer).push_bind(user);
                });
                qb.push(" ON CONFLICT (scan_id, customer_id) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE scans SET app_cursor = $1, app_done = $2 WHERE id = $3")
                .bind(cursor)
                .bind(done)
                .bind(scan_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Customers the app says have access but Stripe listed no subscription
    /// for at all (customers with one were checked from Stripe's side);
    /// paged by customer id.
    pub async fn unpaid_candidates(
        &self,
        scan_id: &str,
        project_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT a.customer_id, a.user_id FROM scan_app_access a
                 WHERE a.scan_id = $1 AND a.customer_id > $2 AND NOT EXISTS (
                    SELECT 1 FROM subscriptions s WHERE s.project_id = $3 AND s.customer_id = a.customer_id)
                 ORDER BY a.customer_id LIMIT $4",
            )
            .bind(scan_id)
            .bind(after)
            .bind(project_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    pub async fn finish_scan(
        &self,
        id: &str,
        status: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE scans SET status = $1, error = $2, finished_at = $3, locked_until = NULL WHERE id = $4",
            )
            .bind(status)
            .bind(error)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        dispatch!(self, |pool| {
            sqlx::query("DELETE FROM scan_app_access WHERE scan_id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Stores one scanned page of subscriptions and the scan's checkpoint in
    /// ONE transaction: one commit per page keeps the scan at Stripe's pace.
    pub async fn save_scan_page(
        &self,
        project_id: &str,
        subs: &[Subscription],
        snapshot_at: i64,
        scan_id: &str,
        c: &ScanCheckpoint,
        lease_until: i64,
    ) -> Result<(), StoreError> {
        let encoded = encode(subs);
        dispatch!(self, |pool| {
            let mut tx = pool.begin().await?;
            if !subs.is_empty() {
                upsert_many(project_id, subs, &encoded, snapshot_at)
                    .build()
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(CHECKPOINT)
                .bind(&c.stripe_cursor)
                .bind(c.stripe_done)
                .bind(c.subscriptions_seen)
                .bind(c.customers_checked)
                .bind(&c.mismatches)
                .bind(c.stripe_requests)
                .bind(c.probe_requests)
                .bind(lease_until)
                .bind(scan_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }
}
