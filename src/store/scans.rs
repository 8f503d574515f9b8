//! Scans: resumable cursors, counters and checkpoints, each scanned page
//! stored with its checkpoint in one transaction.

use super::{
    Store, StoreError,
    batch::{encode, upsert_many},
    decode, dispatch, project_id,
};
use crate::domain::{Scan, ScanStatus, ScanTrigger, Subscription};

#[derive(sqlx::FromRow)]
struct ScanRow {
    id: String,
    project_id: String,
    trigger_kind: String,
    scheduled_for: Option<String>,
    status: String,
    stripe_cursor: Option<String>,
    stripe_done: bool,
    app_cursor: Option<String>,
    app_done: bool,
    subscriptions_seen: i64,
    customers_checked: i64,
    customers_unchecked: i64,
    mismatches: String,
    stripe_requests: i64,
    probe_requests: i64,
    error: Option<String>,
    started_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<ScanRow> for Scan {
    type Error = StoreError;
    fn try_from(r: ScanRow) -> Result<Self, StoreError> {
        Ok(Self {
            project_id: project_id(&r.project_id)?,
            trigger: decode(&r.trigger_kind)?,
            status: decode(&r.status)?,
            id: r.id,
            scheduled_for: r.scheduled_for,
            stripe_cursor: r.stripe_cursor,
            stripe_done: r.stripe_done,
            app_cursor: r.app_cursor,
            app_done: r.app_done,
            subscriptions_seen: r.subscriptions_seen,
            customers_checked: r.customers_checked,
            customers_unchecked: r.customers_unchecked,
            mismatches: r.mismatches,
            stripe_requests: r.stripe_requests,
            probe_requests: r.probe_requests,
            error: r.error,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
    }
}

/// A scan to start.
pub struct NewScan<'a> {
    pub project_id: &'a str,
    pub trigger: ScanTrigger,
    /// The UTC day of a scheduled scan: one per (project, day).
    pub scheduled_for: Option<&'a str>,
    /// The lease holder (the instance that will run it).
    pub owner: &'a str,
    pub now: i64,
    pub lease_until: i64,
}

/// How a scan ended.
pub struct ScanEnd<'a> {
    pub status: ScanStatus,
    pub error: Option<&'a str>,
    pub now: i64,
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
    pub customers_unchecked: i64,
}

/// Fenced by the lease owner: a scan taken over by another instance
/// ignores the old instance's late writes.
const CHECKPOINT: &str =
    "UPDATE scans SET stripe_cursor = $1, stripe_done = $2, subscriptions_seen = $3,
    customers_checked = $4, mismatches = $5, stripe_requests = $6, probe_requests = $7,
    locked_until = $8, customers_unchecked = $11 WHERE id = $9 AND lease_owner = $10 AND status = 'running'";

const SCAN_COLUMNS: &str =
    "id, project_id, trigger_kind, scheduled_for, status, stripe_cursor, stripe_done,
    app_cursor, app_done, subscriptions_seen, customers_checked, customers_unchecked, mismatches,
    stripe_requests, probe_requests, error, started_at, finished_at";

impl Store {
    /// Starts a scan: `(scan, true)`; or, when the project already has a
    /// running scan, `(that scan, false)`. `None` when (project,
    /// `scheduled_for`) already has its scan (another instance took the day).
    pub async fn create_scan(&self, new: &NewScan<'_>) -> Result<Option<(Scan, bool)>, StoreError> {
        let id = format!("scn_{}", crate::ids::random_id());
        // Both unique rules (the day, one running per project) end in
        // `DO NOTHING`; which one held is read back below.
        let inserted = dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO scans (id, project_id, trigger_kind, scheduled_for, status, locked_until, lease_owner, started_at)
                 VALUES ($1, $2, $3, $4, 'running', $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(new.project_id)
            .bind(new.trigger.as_str())
            .bind(new.scheduled_for)
            .bind(new.lease_until)
            .bind(new.owner)
            .bind(new.now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if inserted == 1 {
            return Ok(self.scan(&id).await?.map(|s| (s, true)));
        }
        Ok(self.running_scan(new.project_id).await?.map(|s| (s, false)))
    }

    /// The project's running scan, if one is.
    pub async fn running_scan(&self, project_id: &str) -> Result<Option<Scan>, StoreError> {
        let row: Option<ScanRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {SCAN_COLUMNS} FROM scans WHERE project_id = $1 AND status = 'running'"
            )))
            .bind(project_id)
            .fetch_optional(pool)
            .await
        })?;
        row.map(Scan::try_from).transpose()
    }

    pub async fn scan(&self, id: &str) -> Result<Option<Scan>, StoreError> {
        let row: Option<ScanRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {SCAN_COLUMNS} FROM scans WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        row.map(Scan::try_from).transpose()
    }

    pub async fn list_scans(&self, project_id: &str, limit: i64) -> Result<Vec<Scan>, StoreError> {
        let rows: Vec<ScanRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {SCAN_COLUMNS} FROM scans WHERE project_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2"
            )))
            .bind(project_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(Scan::try_from).collect()
    }

    /// Takes over a running scan whose lease expired (its instance died).
    pub async fn claim_stale_scan(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Scan>, StoreError> {
        let picked: Option<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "UPDATE scans SET locked_until = $1, lease_owner = $3
                 WHERE id = (SELECT id FROM scans WHERE status = 'running' AND locked_until < $2
                    ORDER BY started_at LIMIT 1)
                   AND status = 'running' AND locked_until < $2
                 RETURNING id",
            )
            .bind(lease_until)
            .bind(now)
            .bind(owner)
            .fetch_optional(pool)
            .await
        })?;
        match picked {
            Some((id,)) => self.scan(&id).await,
            None => Ok(None),
        }
    }

    /// Records where the scan stands and renews its lease; false once
    /// `owner` has lost the scan.
    pub async fn checkpoint_scan(
        &self,
        id: &str,
        owner: &str,
        c: &ScanCheckpoint,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let updated = dispatch!(self, |pool| {
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
                .bind(owner)
                .bind(c.customers_unchecked)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(updated == 1)
    }

    /// Renews the lease `owner` holds on a running scan; false once lost.
    pub async fn renew_scan(
        &self,
        id: &str,
        owner: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let updated = dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE scans SET locked_until = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
            )
            .bind(lease_until)
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(updated == 1)
    }

    /// Ends the scan `owner` holds; false (nothing changed) when it lost it.
    pub async fn finish_scan(
        &self,
        id: &str,
        owner: &str,
        end: &ScanEnd<'_>,
    ) -> Result<bool, StoreError> {
        let updated = dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE scans SET status = $1, error = $2, finished_at = $3, locked_until = NULL, lease_owner = NULL
                 WHERE id = $4 AND lease_owner = $5 AND status = 'running'",
            )
            .bind(end.status.as_str())
            .bind(end.error)
            .bind(end.now)
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if updated != 1 {
            return Ok(false);
        }
        dispatch!(self, |pool| {
            sqlx::query("DELETE FROM scan_app_access WHERE scan_id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(true)
    }

    /// Stores one scanned page of subscriptions and the scan's checkpoint in
    /// ONE transaction: one commit per page keeps the scan at Stripe's pace.
    ///
    /// `read_at` is when the page was read from Stripe: a page read before a
    /// webhook's sync never overwrites that newer state. False (nothing
    /// stored) once `owner` has lost the scan.
    #[allow(clippy::too_many_arguments)]
    pub async fn save_scan_page(
        &self,
        project_id: &str,
        subs: &[Subscription],
        read_at: i64,
        scan_id: &str,
        owner: &str,
        c: &ScanCheckpoint,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let encoded = encode(subs);
        let landed = dispatch!(self, |pool| async {
            let mut tx = pool.begin().await?;
            if !subs.is_empty() {
                upsert_many(project_id, subs, &encoded, read_at)
                    .build()
                    .execute(&mut *tx)
                    .await?;
            }
            let held = sqlx::query(CHECKPOINT)
                .bind(&c.stripe_cursor)
                .bind(c.stripe_done)
                .bind(c.subscriptions_seen)
                .bind(c.customers_checked)
                .bind(&c.mismatches)
                .bind(c.stripe_requests)
                .bind(c.probe_requests)
                .bind(lease_until)
                .bind(scan_id)
                .bind(owner)
                .bind(c.customers_unchecked)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if held != 1 {
                tx.rollback().await?;
                return Ok::<_, sqlx::Error>(false);
            }
            tx.commit().await?;
            Ok(true)
        }
        .await)?;
        Ok(landed)
    }
}
