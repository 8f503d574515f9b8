//! What a fulfillment check reads: per-project settings, the app probe, the
//! plan map, and the customer's normalized subscriptions.

use std::collections::{BTreeMap, BTreeSet};

use super::{Store, StoreError, dispatch};
use crate::{
    access::{PlanMap, PlanRule, Selector, SubscriptionView},
    domain::{ProjectSettings, SubscriptionItem},
    ids::ProjectId,
};

/// The app probe of a project (secret sealed).
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub url: String,
    pub secret_sealed: Vec<u8>,
    pub secret_last4: String,
    pub reconcile_url: Option<String>,
    /// When a probe of this app last answered (unix ms).
    pub last_ok_at: Option<i64>,
}

impl Store {
    pub async fn update_project_settings(
        &self,
        id: &ProjectId,
        s: &ProjectSettings,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE projects SET
                    past_due_grace_secs = COALESCE($1, past_due_grace_secs),
                    fulfillment_deadline_secs = COALESCE($2, fulfillment_deadline_secs),
                    user_metadata_key = COALESCE($3, user_metadata_key),
                    require_mapping = COALESCE($4, require_mapping),
                    lag_threshold_secs = COALESCE($5, lag_threshold_secs),
                    use_entitlements = COALESCE($6, use_entitlements),
                    scan_at = COALESCE($7, scan_at),
                    stripe_budget_rps = COALESCE($8, stripe_budget_rps)
                 WHERE id = $9",
            )
            .bind(s.past_due_grace_secs)
            .bind(s.fulfillment_deadline_secs)
            .bind(&s.user_metadata_key)
            .bind(s.require_mapping)
            .bind(s.lag_threshold_secs)
            .bind(s.use_entitlements)
            .bind(&s.scan_at)
            .bind(s.stripe_budget_rps)
            .bind(id.as_str())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn save_probe(&self, id: &ProjectId, probe: &ProbeConfig) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO app_probes (project_id, url, secret_enc, secret_last4, reconcile_url, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (project_id) DO UPDATE SET url = excluded.url, secret_enc = excluded.secret_enc,
                    secret_last4 = excluded.secret_last4, reconcile_url = excluded.reconcile_url,
                    updated_at = excluded.updated_at, last_ok_at = NULL",
            )
            .bind(id.as_str())
            .bind(&probe.url)
            .bind(&probe.secret_sealed)
            .bind(&probe.secret_last4)
            .bind(&probe.reconcile_url)
            .bind(crate::now_ms())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn probe_config(&self, id: &ProjectId) -> Result<Option<ProbeConfig>, StoreError> {
        type Row = (String, Vec<u8>, String, Option<String>, Option<i64>);
        let row: Option<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT url, secret_enc, secret_last4, reconcile_url, last_ok_at FROM app_probes WHERE project_id = $1",
            )
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(
            |(url, secret_sealed, secret_last4, reconcile_url, last_ok_at)| ProbeConfig {
                url,
                secret_sealed,
                secret_last4,
                reconcile_url,
                last_ok_at,
            },
        ))
    }

    /// Adds or replaces the rule for its selector.
    pub async fn upsert_plan_rule(
        &self,
        id: &ProjectId,
        rule: &PlanRule,
    ) -> Result<(), StoreError> {
        let (kind, value) = rule.selector.parts();
        let features = serde_json::to_string(&rule.features).expect("strings serialize");
        let limits = serde_json::to_string(&rule.limits).expect("numbers serialize");
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO plan_rules (project_id, selector_kind, selector_value, plan, rank, features, limits)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (project_id, selector_kind, selector_value) DO UPDATE SET plan = excluded.plan,
                    rank = excluded.rank, features = excluded.features, limits = excluded.limits",
            )
            .bind(id.as_str())
            .bind(kind)
            .bind(value)
            .bind(&rule.plan)
            .bind(rule.rank)
            .bind(features)
            .bind(limits)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Removes the rule for its selector: `false` when there was none.
    pub async fn remove_plan_rule(
        &self,
        id: &ProjectId,
        selector: &Selector,
    ) -> Result<bool, StoreError> {
        let (kind, value) = selector.parts();
        let removed = dispatch!(self, |pool| {
            sqlx::query(
                "DELETE FROM plan_rules WHERE project_id = $1 AND selector_kind = $2 AND selector_value = $3",
            )
            .bind(id.as_str())
            .bind(kind)
            .bind(value)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(removed > 0)
    }

    pub async fn plan_map(
        &self,
        id: &ProjectId,
        use_entitlements: bool,
    ) -> Result<PlanMap, StoreError> {
        type Row = (String, String, String, i64, String, String);
        let rows: Vec<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT selector_kind, selector_value, plan, rank, features, limits
                 FROM plan_rules WHERE project_id = $1 ORDER BY id",
            )
            .bind(id.as_str())
            .fetch_all(pool)
            .await
        })?;
        let mut rules = Vec::with_capacity(rows.len());
        for (kind, value, plan, rank, features, limits) in rows {
            let selector = Selector::from_parts(&kind, value)
                .ok_or_else(|| StoreError::Corrupt(format!("plan selector {kind:?}")))?;
            let features: BTreeSet<String> = serde_json::from_str(&features)
                .map_err(|e| StoreError::Corrupt(format!("plan features: {e}")))?;
            let limits: BTreeMap<String, i64> = serde_json::from_str(&limits)
                .map_err(|e| StoreError::Corrupt(format!("plan limits: {e}")))?;
            rules.push(PlanRule {
                selector,
                plan,
                rank,
                features,
                limits,
            });
        }
        Ok(PlanMap {
            rules,
            use_entitlements,
        })
    }

    /// The customer's stored subscriptions, shaped for the access derivation.
    pub async fn subscription_views(
        &self,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Vec<SubscriptionView>, StoreError> {
        type Row = (String, String, bool, Option<i64>, Option<i64>, String);
        let rows: Vec<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT subscription_id, status, cancel_at_period_end, current_period_end, past_due_since, items
                 FROM subscriptions WHERE project_id = $1 AND customer_id = $2 ORDER BY subscription_id",
            )
            .bind(project_id)
            .bind(customer_id)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(
                |(id, status, cancel_at_period_end, current_period_end, past_due_since, items)| {
                    let items: Vec<SubscriptionItem> = serde_json::from_str(&items)
                        .map_err(|e| StoreError::Corrupt(format!("subscription items: {e}")))?;
                    Ok(SubscriptionView {
                        id,
                        status,
                        cancel_at_period_end,
                        current_period_end,
                        past_due_since,
                        items,
                    })
                },
            )
            .collect()
    }
}
