//! Normalized Stripe state: one row per subscription and per customer, only
//! ever moved forward in snapshot time.

use super::{ClaimedItem, Store, StoreError, dispatch};
use crate::stripe::model::Subscription;

/// What one Stripe read established about a customer.
#[derive(Clone, Debug)]
pub struct CustomerState {
    pub project_id: String,
    pub customer_id: String,
    pub app_user_id: Option<String>,
    pub deleted: bool,
    pub entitlements: Option<Vec<String>>,
    pub subscriptions: Vec<Subscription>,
    /// Unix ms when the read started; a row is replaced only by a later one.
    pub snapshot_at: i64,
}

/// A stored subscription row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredSubscription {
    pub subscription_id: String,
    pub customer_id: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<i64>,
    pub items: String,
    pub snapshot_at: i64,
}

// `past_due_since` marks when ParityRail first saw the current past_due spell
// (the grace period of SPEC §4 runs from it); any other status clears it.
const UPSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (project_id, subscription_id, customer_id, status,
        cancel_at_period_end, current_period_end, items, metadata, stripe_created, snapshot_at, past_due_since)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// The forward-only conflict rule, shared by the single and the page upsert.
pub(super) const UPSERT_SUBSCRIPTION_CONFLICT: &str = "
    ON CONFLICT (project_id, subscription_id) DO UPDATE SET customer_id = excluded.customer_id,
        past_due_since = CASE WHEN excluded.status = 'past_due'
            THEN COALESCE(subscriptions.past_due_since, excluded.past_due_since) ELSE NULL END,
        status = excluded.status, cancel_at_period_end = excluded.cancel_at_period_end,
        current_period_end = excluded.current_period_end, items = excluded.items,
        metadata = excluded.metadata, stripe_created = excluded.stripe_created,
        snapshot_at = excluded.snapshot_at
    WHERE subscriptions.snapshot_at <= excluded.snapshot_at";

const UPSERT_CUSTOMER: &str = "INSERT INTO customers (project_id, customer_id, app_user_id, deleted, entitlements, snapshot_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (project_id, customer_id) DO UPDATE SET app_user_id = excluded.app_user_id,
        deleted = excluded.deleted, entitlements = excluded.entitlements, snapshot_at = excluded.snapshot_at
    WHERE customers.snapshot_at <= excluded.snapshot_at";

const FINISH_ITEMS: &str =
    "UPDATE work_items SET status = 'done', finished_at = $1, last_error = NULL,
    locked_until = NULL, lease_owner = NULL WHERE ";

impl Store {
    /// Records a customer's fresh state and marks the claimed items done, in
    /// one short transaction opened after every network call has finished.
    pub async fn complete_sync(
        &self,
        state: &CustomerState,
        items: &[ClaimedItem],
        now: i64,
    ) -> Result<(), StoreError> {
        let entitlements = serde_json::to_string(&state.entitlements).expect("strings serialize");
        let subs: Vec<(String, String)> = state
            .subscriptions
            .iter()
            .map(|s| {
                (
                    serde_json::to_string(&s.items).expect("items serialize"),
                    serde_json::to_string(&s.metadata).expect("metadata serializes"),
                )
            })
            .collect();
        let finish = self.with_id_list(FINISH_ITEMS, 2);
        let ids = super::id_list(items);
        dispatch!(self, |pool| {
            let mut tx = pool.begin().await?;
            for (sub, (items_json, metadata_json)) in state.subscriptions.iter().zip(&subs) {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{UPSERT_SUBSCRIPTION}{UPSERT_SUBSCRIPTION_CONFLICT}"
                )))
                .bind(&state.project_id)
                .bind(&sub.id)
                .bind(&state.customer_id)
                .bind(&sub.status)
                .bind(sub.cancel_at_period_end)
                .bind(sub.current_period_end)
                .bind(items_json)
                .bind(metadata_json)
                .bind(sub.created)
                .bind(state.snapshot_at)
                .bind((sub.status == "past_due").then_some(state.snapshot_at / 1000))
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(UPSERT_CUSTOMER)
                .bind(&state.project_id)
                .bind(&state.customer_id)
                .bind(&state.app_user_id)
                .bind(state.deleted)
                .bind(&entitlements)
                .bind(state.snapshot_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(finish.as_str()))
                .bind(now)
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Records the app's own user id for a customer ParityRail has no row
    /// for yet (found through the app's `/list`); never overrides a mapping.
    pub async fn remember_app_user(
        &self,
        project_id: &str,
        customer_id: &str,
        user: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO customers (project_id, customer_id, app_user_id, deleted, entitlements, snapshot_at)
                 VALUES ($1, $2, $3, $4, 'null', 0) ON CONFLICT (project_id, customer_id) DO NOTHING",
            )
            .bind(project_id)
            .bind(customer_id)
            .bind(user)
            .bind(false)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn subscriptions_of(
        &self,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Vec<StoredSubscription>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT subscription_id, customer_id, status, cancel_at_period_end, current_period_end,
                    items, snapshot_at
                 FROM subscriptions WHERE project_id = $1 AND customer_id = $2 ORDER BY subscription_id",
            )
            .bind(project_id)
            .bind(customer_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// `(app_user_id, entitlements JSON, snapshot_at)` of a customer.
    pub async fn customer_row(
        &self,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Option<(Option<String>, String, i64)>, StoreError> {
        let row = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT app_user_id, entitlements, snapshot_at FROM customers
                 WHERE project_id = $1 AND customer_id = $2",
            )
            .bind(project_id)
            .bind(customer_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }
}
