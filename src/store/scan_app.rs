//! What the app's `/list` says while a scan pages Stripe: who has access,
//! and where the walk stands; those Stripe never listed a subscription for
//! are checked at the end.

use super::{Store, StoreError, dispatch};

impl Store {
    /// Records one page of the app's `/list` walk and where it stands.
    pub async fn record_app_access(
        &self,
        scan_id: &str,
        owner: &str,
        active: &[(String, Option<String>)],
        cursor: Option<&str>,
        done: bool,
    ) -> Result<bool, StoreError> {
        let landed = dispatch!(self, |pool| {
            async {
            let mut tx = pool.begin().await?;
            let held = sqlx::query(
                "UPDATE scans SET app_cursor = $1, app_done = $2 WHERE id = $3 AND lease_owner = $4 AND status = 'running'",
            )
            .bind(cursor)
            .bind(done)
            .bind(scan_id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if held != 1 {
                tx.rollback().await?;
                return Ok::<_, sqlx::Error>(false);
            }
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
            tx.commit().await?;
            Ok(true)
        }.await
        })?;
        Ok(landed)
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
}
