//! The work queue: workers claim a customer's pending items under a lease,
//! then finish, retry or dead-letter them; the lag sweeper and `/metrics`
//! read it.

use super::{Store, StoreError, dispatch, id_list, runs::INSERT_RUN};
use crate::domain::{RunKind, Trigger};

#[derive(Clone, Debug)]
pub struct ClaimedItem {
    pub id: i64,
    pub event_id: String,
    pub attempts: i64,
    /// When Stripe created the event (unix seconds).
    pub event_created: i64,
    /// Set when the event was replayed: the run its sync makes due.
    pub replay_run_id: Option<String>,
}

/// A replayed event: its work is due again and, when the project can be
/// checked, a new run waits for the sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    pub run_id: Option<String>,
}

/// Work claimed by one worker: every due item of one customer.
#[derive(Clone, Debug)]
pub struct Claim {
    pub project_id: String,
    pub customer_id: String,
    pub items: Vec<ClaimedItem>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LaggingEvent {
    pub project_id: String,
    pub customer_id: String,
    pub event_id: String,
    pub received_at: i64,
}

/// The customer whose work is due first: the oldest expired lease or the
/// oldest due queued item, skipping customers another worker holds. Each
/// branch walks `work_items_ready_idx` in order and stops at its first row,
/// so the cost does not grow with the backlog (an `OR` of the two made
/// SQLite collect and sort every due item). `lock` is PostgreSQL's row
/// lock, so concurrent claims pass over each other's head.
fn claim_head(lock: &str) -> String {
    let branch = |due: &str| {
        format!(
            "SELECT * FROM (SELECT w.project_id, w.customer_id, w.run_after, w.id FROM work_items w
              WHERE {PENDING_W} AND {due} AND NOT EXISTS (SELECT 1 FROM work_items l
                WHERE l.project_id = w.project_id AND l.customer_id = w.customer_id
                  AND {PENDING_L} AND l.status = 'leased' AND l.locked_until >= $3)
              ORDER BY w.run_after, w.id LIMIT 1 {lock}) b"
        )
    };
    format!(
        "SELECT project_id, customer_id FROM ({} UNION ALL {}) c ORDER BY run_after, id LIMIT 1",
        branch("w.status = 'leased' AND w.locked_until < $3"),
        branch("w.status = 'queued' AND w.run_after <= $3"),
    )
}

/// Unfinished work, written exactly as the partial indexes' predicate
/// (migration 0005) so SQLite uses them.
const PENDING_W: &str = "w.status IN ('queued', 'leased')";
const PENDING_L: &str = "l.status IN ('queued', 'leased')";

/// Every pending item of the head's customer (queued even if not yet due,
/// or under an expired lease); `status IN` keeps finished history out of
/// the index range.
const CLAIM_PENDING: &str =
    "AND o.status IN ('queued', 'leased') AND (o.status = 'queued' OR o.locked_until < $3)";

impl Store {
    /// Makes a lagging event's work due now, unless a live lease holds it.
    pub async fn requeue_event(
        &self,
        project_id: &str,
        event_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE work_items SET status = 'queued', run_after = $1, locked_until = NULL, lease_owner = NULL
                 WHERE project_id = $2 AND event_id = $3
                   AND (status = 'queued' OR (status = 'leased' AND locked_until < $1))",
            )
            .bind(now)
            .bind(project_id)
            .bind(event_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }

    /// Claims the oldest due item and, with it, every other pending item of the
    /// same customer, so a burst of events costs one Stripe read. Customers
    /// with a live lease are skipped. Expired leases are reclaimed.
    pub async fn claim(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Claim>, StoreError> {
        // A read first: idle workers (woken by every commit) must not queue
        // for SQLite's single write lock, where the inbox writer waits too.
        let due: Option<(i64,)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id FROM work_items WHERE status IN ('queued', 'leased')
                   AND ((status = 'queued' AND run_after <= $1) OR (status = 'leased' AND locked_until < $1))
                 LIMIT 1",
            )
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        if due.is_none() {
            return Ok(None);
        }
        type Row = (i64, String, String, String, i64, i64, Option<String>);
        let rows: Vec<Row> = match self {
            // One statement, so one commit: the oldest due item picks the
            // customer and every pending item of that customer goes with it.
            Self::Sqlite(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "UPDATE work_items SET status = 'leased', locked_until = $1, lease_owner = $2, attempts = attempts + 1
                     WHERE id IN (SELECT o.id FROM work_items o, ({}) h
                        WHERE o.project_id = h.project_id AND o.customer_id = h.customer_id {CLAIM_PENDING})
                     RETURNING id, project_id, customer_id, event_id, attempts, event_created, replay_run_id",
                    claim_head("")
                )))
                .bind(lease_until)
                .bind(owner)
                .bind(now)
                .fetch_all(pool)
                .await?
            }
            // Rows another worker is claiming are skipped, not waited for.
            Self::Postgres(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "WITH h AS ({}),
                     picked AS (SELECT o.id FROM work_items o JOIN h
                        ON o.project_id = h.project_id AND o.customer_id = h.customer_id {CLAIM_PENDING}
                        FOR UPDATE OF o SKIP LOCKED)
                     UPDATE work_items SET status = 'leased', locked_until = $1, lease_owner = $2, attempts = attempts + 1
                     FROM picked WHERE work_items.id = picked.id
                     RETURNING work_items.id, work_items.project_id, work_items.customer_id, work_items.event_id,
                        work_items.attempts, work_items.event_created, work_items.replay_run_id",
                    claim_head("FOR UPDATE SKIP LOCKED")
                )))
                .bind(lease_until)
                .bind(owner)
                .bind(now)
                .fetch_all(pool)
                .await?
            }
        };
        let mut rows = rows.into_iter();
        let Some(first) = rows.next() else {
            return Ok(None);
        };
        let (project_id, customer_id) = (first.1.clone(), first.2.clone());
        let mut items: Vec<ClaimedItem> = std::iter::once(first)
            .chain(rows)
            .map(
                |(id, _, _, event_id, attempts, event_created, replay_run_id)| ClaimedItem {
                    id,
                    event_id,
                    attempts,
                    event_created,
                    replay_run_id,
                },
            )
            .collect();
        items.sort_by_key(|i| i.id);
        Ok(Some(Claim {
            project_id,
            customer_id,
            items,
        }))
    }

    /// Extends the lease `owner` holds on `items`; false once any is lost.
    pub async fn renew_claim(
        &self,
        items: &[ClaimedItem],
        owner: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let sql = self.with_id_list(
            "UPDATE work_items SET locked_until = $1 WHERE lease_owner = $2 AND status = 'leased' AND ",
            3,
        );
        let renewed = dispatch!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(lease_until)
                .bind(owner)
                .bind(id_list(items))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(renewed == items.len() as u64)
    }

    /// Puts items back for a later attempt, keeping the reason; false (and
    /// nothing changed) when `owner` no longer holds them.
    pub async fn retry_later(
        &self,
        items: &[ClaimedItem],
        owner: &str,
        run_after: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.settle(
            items,
            owner,
            "status = 'queued', run_after = $1",
            run_after,
            error,
        )
        .await
    }

    /// Gives up on items (a permanent failure, or the schedule ran out); the
    /// reason stays for the event log and a replay, and a replay's waiting
    /// run fails with it. False (nothing changed) when `owner` lost them.
    pub async fn dead_letter(
        &self,
        items: &[ClaimedItem],
        owner: &str,
        now: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        if !self
            .settle(
                items,
                owner,
                "status = 'dead', finished_at = $1",
                now,
                error,
            )
            .await?
        {
            return Ok(false);
        }
        for run_id in items.iter().filter_map(|i| i.replay_run_id.as_deref()) {
            dispatch!(self, |pool| {
                sqlx::query(
                    "UPDATE runs SET status = 'failed', kind = $1, summary = $2, finished_at = $3
                     WHERE id = $4 AND status = 'pending'",
                )
                .bind(RunKind::StripeError.as_str())
                .bind(format!(
                    "the replayed event could not be processed: {error}"
                ))
                .bind(now)
                .bind(run_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })?;
        }
        Ok(true)
    }

    /// Ends the lease `owner` holds on `items` in one statement: `set`
    /// (which uses `$1`, bound to `at`), the error kept.
    async fn settle(
        &self,
        items: &[ClaimedItem],
        owner: &str,
        set: &str,
        at: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        let sql = self.with_id_list(
            &format!(
                "UPDATE work_items SET {set}, last_error = $2, locked_until = NULL, lease_owner = NULL
                 WHERE lease_owner = $4 AND status = 'leased' AND "
            ),
            3,
        );
        let settled = dispatch!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(at)
                .bind(error)
                .bind(id_list(items))
                .bind(owner)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(settled == items.len() as u64)
    }

    /// Replays an event: its work item becomes due now with a fresh attempt
    /// budget and, when `checkable`, a new `rerun` run (an external id of its
    /// own) waits for the sync, which makes it due. `None` for an unknown or
    /// ignored event, or one being processed this moment.
    pub async fn replay_event(
        &self,
        project_id: &str,
        event_id: &str,
        checkable: bool,
        now: i64,
    ) -> Result<Option<Replayed>, StoreError> {
        let run_id = format!("run_{}", crate::ids::random_id());
        let external = format!("replay:{event_id}:{}", crate::ids::random_id());
        let replayed = dispatch!(self, |pool| {
            async {
            let mut tx = pool.begin().await?;
            let item: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT customer_id, replay_run_id FROM work_items
                 WHERE project_id = $1 AND event_id = $2 AND status <> 'leased'",
            )
            .bind(project_id)
            .bind(event_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((customer, waiting)) = item else {
                tx.rollback().await?;
                return Ok::<_, sqlx::Error>(None);
            };
            // A replay not yet synced keeps its run: asking twice is one replay.
            let fresh = waiting.is_none();
            let run_id = waiting.unwrap_or(run_id);
            if checkable && fresh {
                // Due only once the sync activates it (next_at far away).
                sqlx::query(INSERT_RUN)
                    .bind(&run_id)
                    .bind(project_id)
                    .bind(&customer)
                    .bind(Trigger::Rerun.as_str())
                    .bind(&external)
                    .bind(event_id)
                    .bind(now)
                    .bind(i64::MAX)
                    .bind(now)
                    .bind(false)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "UPDATE work_items SET status = 'queued', run_after = $1, attempts = 0, last_error = NULL,
                   finished_at = NULL, locked_until = NULL, lease_owner = NULL, replay_run_id = $4
                 WHERE project_id = $2 AND event_id = $3 AND status <> 'leased'",
            )
            .bind(now)
            .bind(project_id)
            .bind(event_id)
            .bind(checkable.then_some(run_id.as_str()))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(Replayed {
                run_id: checkable.then(|| run_id.clone()),
            }))
        }.await
        })?;
        Ok(replayed)
    }

    /// Unfinished events older than their project's lag threshold.
    pub async fn lagging_events(&self, now: i64) -> Result<Vec<LaggingEvent>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT w.project_id, w.customer_id, w.event_id, e.received_at
                 FROM work_items w
                 JOIN events e ON e.project_id = w.project_id AND e.event_id = w.event_id
                 JOIN projects p ON p.id = w.project_id
                 WHERE w.status IN ('queued', 'leased') AND e.received_at < $1 - p.lag_threshold_secs * 1000
                 ORDER BY e.received_at",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Counts of work items by status, for `/metrics` and tests.
    pub async fn work_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT status, COUNT(*) FROM work_items GROUP BY status ORDER BY status",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }
}
