//! Scans: resumable cursors and counters, plus the batched reads a scan
//! needs so a million customers cost thousands of queries, not millions.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::{Store, StoreError, dispatch, state::UPSERT_SUBSCRIPTION_CONFLICT};
use crate::{access::SubscriptionView, stripe::model::Subscription};

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

/// Items and metadata of each subscription as stored (JSON text).
fn encode(subs: &[Subscription]) -> Vec<(String, String)> {
    subs.iter()
        .map(|s| {
            (
                serde_json::to_string(&s.items).expect("items serialize"),
                serde_json::to_string(&s.metadata).expect("metadata serializes"),
            )
        })
        .collect()
}

/// One statement that upserts a whole page forward-only: a page costs one
/// round trip, not one per subscription. Same rules as the single upsert.
fn upsert_many<'q, DB: sqlx::Database>(
    project_id: &'q str,
    subs: &'q [Subscription],
    encoded: &'q [(String, String)],
    snapshot_at: i64,
) -> sqlx::QueryBuilder<DB>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut qb = sqlx::QueryBuilder::new(
        "INSERT INTO subscriptions (project_id, subscription_id, customer_id, status, cancel_at_period_end,
            current_period_end, items, metadata, stripe_created, snapshot_at, past_due_since) ",
    );
    qb.push_values(
        subs.iter().zip(encoded),
        |mut row, (sub, (items, metadata))| {
            let past_due_since = (sub.status == "past_due").then_some(snapshot_at / 1000);
            row.push_bind(project_id)
                .push_bind(&sub.id)
                .push_bind(&sub.customer)
                .push_bind(&sub.status)
                .push_bind(sub.cancel_at_period_end)
                .push_bind(sub.current_period_end)
                .push_bind(items)
                .push_bind(metadata)
                .push_bind(sub.created)
                .push_bind(snapshot_at)
                .push_bind(past_due_since);
        },
    );
    qb.push(UPSERT_SUBSCRIPTION_CONFLICT);
    qb
}

/// `{head}$project AND customer_id IN (…){tail}` for SQLite, which has no
/// array parameters (PostgreSQL uses `= ANY($2)` instead).
fn in_customers<'a>(
    head: &str,
    project_id: &'a str,
    customers: &'a [String],
    tail: &str,
) -> sqlx::QueryBuilder<sqlx::Sqlite> {
    let mut qb = sqlx::QueryBuilder::new(head);
    qb.push_bind(project_id).push(" AND customer_id IN (");
    let mut list = qb.separated(", ");
    for c in customers {
        list.push_bind(c);
    }
    qb.push(")").push(tail);
    qb
}

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

    /// Stores one page of subscriptions (forward-only) in one transaction.
    pub async fn upsert_subscriptions(
        &self,
        project_id: &str,
        subs: &[Subscription],
        snapshot_at: i64,
    ) -> Result<(), StoreError> {
        if subs.is_empty() {
            return Ok(());
        }
        let encoded = encode(subs);
        dispatch!(self, |pool| {
            upsert_many(project_id, subs, &encoded, snapshot_at)
                .build()
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Stored subscriptions (with their metadata) of many customers at once.
    pub async fn subscription_views_many(
        &self,
        project_id: &str,
        customers: &[String],
    ) -> Result<HashMap<String, Vec<(SubscriptionView, String)>>, StoreError> {
        type Row = (
            String,
            String,
            String,
            bool,
            Option<i64>,
            Option<i64>,
            String,
            String,
        );
        let mut out: HashMap<String, Vec<(SubscriptionView, String)>> = HashMap::new();
        if customers.is_empty() {
            return Ok(out);
        }
        const VIEWS: &str =
            "SELECT customer_id, subscription_id, status, cancel_at_period_end, current_period_end,
            past_due_since, items, metadata FROM subscriptions WHERE project_id = ";
        let rows: Vec<Row> = match self {
            Self::Sqlite(pool) => {
                in_customers(
                    VIEWS,
                    project_id,
                    customers,
                    " ORDER BY customer_id, subscription_id",
                )
                .build_query_as()
                .fetch_all(pool)
                .await?
            }
            // One array parameter: PostgreSQL plans `= ANY` on the index well,
            // where a 500-parameter IN list got a poor generic plan.
            Self::Postgres(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{VIEWS}$1 AND customer_id = ANY($2) ORDER BY customer_id, subscription_id"
                )))
                .bind(project_id)
                .bind(customers)
                .fetch_all(pool)
                .await?
            }
        };
        for (
            customer,
            id,
            status,
            cancel_at_period_end,
            current_period_end,
            past_due_since,
            items,
            metadata,
        ) in rows
        {
            let items = serde_json::from_str(&items)
                .map_err(|e| StoreError::Corrupt(format!("subscription items: {e}")))?;
            let view = SubscriptionView {
                id,
                status,
                cancel_at_period_end,
                current_period_end,
                past_due_since,
                items,
            };
            out.entry(customer).or_default().push((view, metadata));
        }
        Ok(out)
    }

    /// Known app users (from webhook syncs) of many customers at once.
    pub async fn app_users_many(
        &self,
        project_id: &str,
        customers: &[String],
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        if customers.is_empty() {
            return Ok(HashMap::new());
        }
        const USERS: &str = "SELECT customer_id, app_user_id FROM customers WHERE project_id = ";
        let rows: Vec<(String, Option<String>)> = match self {
            Self::Sqlite(pool) => {
                in_customers(USERS, project_id, customers, "")
                    .build_query_as()
                    .fetch_all(pool)
                    .await?
            }
            Self::Postgres(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{USERS}$1 AND customer_id = ANY($2)"
                )))
                .bind(project_id)
                .bind(customers)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows.into_iter().collect())
    }

    /// Customers with a pending check (a webhook run may still be waiting
    /// for the app): a scan leaves them to it.
    pub async fn customers_with_pending_runs(
        &self,
        project_id: &str,
    ) -> Result<HashSet<String>, StoreError> {
        let rows: Vec<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT DISTINCT customer_id FROM runs WHERE project_id = $1 AND status = 'pending'")
                .bind(project_id)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Customers with a standing access incident (a passing scan resolves them).
    pub async fn customers_with_access_incidents(
        &self,
        project_id: &str,
    ) -> Result<HashSet<String>, StoreError> {
        let rows: Vec<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT DISTINCT customer_id FROM incidents WHERE project_id = $1 AND status <> 'resolved'
                    AND kind IN ('unfulfilled', 'unpaid_access')",
            )
            .bind(project_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
