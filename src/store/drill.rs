//! What a drill (SPEC §8b) reads: a real customer to drill with, and the
//! incident its run opened.

use super::{Store, StoreError, dispatch, incidents::INCIDENT_COLUMNS, incidents::IncidentRow};
use crate::domain::Incident;

impl Store {
    /// A customer of the project ParityRail has read from Stripe and not
    /// seen deleted: preferably one whose last check passed (the app knows
    /// it, so its answer carries a deploy SHA), then one with a
    /// subscription; the most recently read first. A project only ever
    /// scanned has no customer rows (a scan reads subscriptions, not
    /// customers): then the customer of an active subscription.
    pub async fn drill_customer(&self, project_id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT c.customer_id FROM customers c
                 WHERE c.project_id = $1 AND c.deleted = FALSE
                 ORDER BY EXISTS (SELECT 1 FROM runs r
                     WHERE r.project_id = c.project_id AND r.customer_id = c.customer_id
                       AND r.status = 'passed') DESC,
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
}
