//! What a drill (SPEC §8b) reads: a real customer to drill with, the
//! incident its run opened, and whether Stripe's deliveries are being
//! refused for their signature.

use super::{Store, StoreError, dispatch, incidents::INCIDENT_COLUMNS, incidents::IncidentRow};
use crate::domain::Incident;

impl Store {
    /// A customer of the project ParityRail has read from Stripe and not
    /// seen deleted: preferably one whose latest check passed (the app knows
    /// it, so its answer carries a deploy SHA), then one with a
    /// subscription; the most recently read first. A project only ever
    /// scanned has no customer rows (a scan reads subscriptions, not
    /// customers): then the customer of an active subscription.
    pub async fn drill_customer(&self, project_id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT c.customer_id FROM customers c
                 WHERE c.project_id = $1 AND c.deleted = FALSE
                 ORDER BY COALESCE((SELECT r.status = 'passed' FROM runs r
                     WHERE r.project_id = c.project_id AND r.customer_id = c.customer_id
                       AND r.trigger_kind <> 'drill' AND r.status <> 'pending'
                     ORDER BY r.created_at DESC, r.id DESC LIMIT 1), FALSE) DESC,
                     EXISTS (SELECT 1 FROM subscriptions s
                     WHERE s.project_id = c.project_id AND s.customer_id = c.customer_id) DESC,
                     c.snapshot_at DESC, c.customer_id
                 LIMIT 1",
            )
            .bind(project_id)
            .fetch_optional(pool)
            .await
        })?;
        if let Some((customer,)) = row {
            return Ok(Some(customer));
        }
        let row: Option<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT s.customer_id FROM subscriptions s
                 WHERE s.project_id = $1 AND s.status = 'active'
                   AND NOT EXISTS (SELECT 1 FROM customers d
                       WHERE d.project_id = s.project_id AND d.customer_id = s.customer_id
                         AND d.deleted = TRUE)
                 ORDER BY s.subscription_id
                 LIMIT 1",
            )
            .bind(project_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|(c,)| c))
    }

    /// The incident `run_id` opened or joined, if any.
    pub async fn incident_of_run(
        &self,
        project_id: &str,
        run_id: &str,
    ) -> Result<Option<Incident>, StoreError> {
        let row: Option<IncidentRow> = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents
                 WHERE project_id = $1 AND id IN (SELECT incident_id FROM incident_runs WHERE run_id = $2)
                 ORDER BY first_seen DESC LIMIT 1"
            )))
            .bind(project_id)
            .bind(run_id)
            .fetch_optional(pool)
            .await
        })?;
        row.map(Incident::try_from).transpose()
    }

    /// Notes that a delivery to the project failed signature verification
    /// at `at` (ms); an older time never replaces a newer one.
    pub async fn record_signature_refusal(
        &self,
        project_id: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE projects SET last_signature_refusal_at = $2
                 WHERE id = $1 AND (last_signature_refusal_at IS NULL OR last_signature_refusal_at < $2)",
            )
            .bind(project_id)
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// When a delivery to the project last failed signature verification.
    pub async fn last_signature_refusal(
        &self,
        project_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row: Option<(Option<i64>,)> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT last_signature_refusal_at FROM projects WHERE id = $1")
                .bind(project_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.and_then(|(at,)| at))
    }

    /// Resolves every open drill incident of the project; how many.
    pub async fn resolve_drill_incidents(
        &self,
        project_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        Ok(dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE incidents SET status = 'resolved', resolved_at = $2
                 WHERE project_id = $1 AND drill = TRUE AND status <> 'resolved'",
            )
            .bind(project_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?)
    }
}
