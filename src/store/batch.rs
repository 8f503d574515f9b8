//! Batched reads and upserts over many customers at once, so a scan of a
//! million customers costs thousands of queries, not millions.

use std::collections::{HashMap, HashSet};

use super::{Store, StoreError, dispatch};
use crate::{access::SubscriptionView, domain::Subscription};

/// The forward-only conflict rule, shared by the single and the page upsert.
pub(super) const UPSERT_SUBSCRIPTION_CONFLICT: &str = "
    ON CONFLICT (project_id, subscription_id) DO UPDATE SET customer_id = excluded.customer_id,
        past_due_since = CASE WHEN excluded.status = 'past_due'
            THEN COALESCE(excluded.past_due_since, subscriptions.past_due_since) ELSE NULL END,
        status = excluded.status, cancel_at_period_end = excluded.cancel_at_period_end,
        current_period_end = excluded.current_period_end, items = excluded.items,
        metadata = excluded.metadata, stripe_created = excluded.stripe_created,
        snapshot_at = excluded.snapshot_at
    WHERE subscriptions.snapshot_at <= excluded.snapshot_at";

/// Stripe's record of when the unpaid spell began, for a `past_due` row.
pub(super) fn past_due_since(sub: &Subscription) -> Option<i64> {
    (sub.status == "past_due")
        .then_some(sub.unpaid_since)
        .flatten()
}

/// Items and metadata of each subscription as stored (JSON text).
pub(super) fn encode(subs: &[Subscription]) -> Vec<(String, String)> {
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
pub(super) fn upsert_many<'q, DB: sqlx::Database>(
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
                .push_bind(past_due_since(sub));
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

impl Store {
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

    /// Customers with a standing incident of their own that a passing check
    /// resolves (a passing scan resolves them too).
    pub async fn customers_with_access_incidents(
        &self,
        project_id: &str,
    ) -> Result<HashSet<String>, StoreError> {
        let rows: Vec<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT DISTINCT customer_id FROM incidents WHERE project_id = $1 AND status <> 'resolved'
                    AND customer_id <> ''
                    AND kind IN ('unfulfilled', 'unpaid_access', 'unmapped_customer', 'probe_failed')",
            )
            .bind(project_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
