//! The durable inbox: verified events with their work items, claimed by
//! workers under a lease in short transactions.

use serde::Serialize;

use super::{Store, StoreError, dispatch, id_list};

/// A verified event ready for the inbox. `ignored_reason` set means stored
/// for the log but never processed (no work item).
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub project_id: String,
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub created: i64,
    pub customer_id: Option<String>,
    pub raw_body: bytes_alias::Bytes,
    pub ignored_reason: Option<String>,
    pub received_at: i64,
    /// When its work item becomes due (ms): `received_at` plus the coalescing window.
    pub due_at: i64,
}

mod bytes_alias {
    /// Raw bodies are shared, not copied, between the handler and the writer.
    pub type Bytes = axum::body::Bytes;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Newly stored (with its work item unless ignored).
    Stored,
    /// Already in the inbox: `unfinished` when its work is still pending.
    Duplicate { unfinished: bool, received_at: i64 },
}

/// The event log's view of one event (SPEC §8 `events list`).
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct EventRecord {
    pub event_id: String,
    #[sqlx(rename = "event_type")]
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: String,
    pub reason: Option<String>,
    pub customer: Option<String>,
    pub received_at: i64,
    pub processed_at: Option<i64>,
    pub attempts: i64,
}

#[derive(Clone, Debug)]
pub struct ClaimedItem {
    pub id: i64,
    pub event_id: String,
    pub attempts: i64,
    /// When Stripe created the event (unix seconds).
    pub event_created: i64,
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

const INSERT_EVENT: &str =
    "INSERT INTO events (project_id, event_id, event_type, livemode, api_version, created,
    customer_id, raw_body, ignored_reason, received_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (project_id, event_id) DO NOTHING";
const INSERT_WORK: &str =
    "INSERT INTO work_items (project_id, event_id, customer_id, status, run_after, created_at, event_created)
    VALUES ($1, $2, $3, 'queued', $4, $5, $6)";
const DUPLICATE_STATE: &str = "SELECT e.received_at, w.status FROM events e
    LEFT JOIN work_items w ON w.project_id = e.project_id AND w.event_id = e.event_id
    WHERE e.project_id = $1 AND e.event_id = $2";

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

const STATUS_SQL: &str = "CASE WHEN e.ignored_reason IS NOT NULL THEN 'ignored'
    WHEN w.status = 'done' THEN 'processed' WHEN w.status = 'dead' THEN 'dead'
    WHEN w.status = 'leased' THEN 'processing' WHEN w.attempts > 0 THEN 'failed'
    ELSE 'received' END";

/// One statement per event: on PostgreSQL the fixed-shape statements measured
/// faster than variable multi-row ones (prepared once, planned once).
macro_rules! insert_batch_rows {
    ($tx:expr, $batch:expr) => {{
        let mut outcomes = Vec::with_capacity($batch.len());
        for ev in $batch {
            let inserted = sqlx::query(INSERT_EVENT)
                .bind(&ev.project_id)
                .bind(&ev.event_id)
                .bind(&ev.event_type)
                .bind(ev.livemode)
                .bind(&ev.api_version)
                .bind(ev.created)
                .bind(&ev.customer_id)
                .bind(ev.raw_body.as_ref())
                .bind(&ev.ignored_reason)
                .bind(ev.received_at)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
            if inserted == 1 {
                if ev.ignored_reason.is_none() {
                    sqlx::query(INSERT_WORK)
                        .bind(&ev.project_id)
                        .bind(&ev.event_id)
                        .bind(ev.customer_id.as_deref().unwrap_or_default())
                        .bind(ev.due_at)
                        .bind(ev.received_at)
                        .bind(ev.created)
                        .execute(&mut *$tx)
                        .await?;
                }
                outcomes.push(InsertOutcome::Stored);
            } else {
                let (received_at, status): (i64, Option<String>) = sqlx::query_as(DUPLICATE_STATE)
                    .bind(&ev.project_id)
                    .bind(&ev.event_id)
                    .fetch_one(&mut *$tx)
                    .await?;
                let unfinished = matches!(status.as_deref(), Some("queued" | "leased"));
                outcomes.push(InsertOutcome::Duplicate {
                    unfinished,
                    received_at,
                });
            }
        }
        $tx.commit().await?;
        Ok::<_, sqlx::Error>(outcomes)
    }};
}

/// Events per multi-row statement (bodies may be large; keep statements sane).
const ROWS_PER_STATEMENT: usize = 64;

/// Inserts a batch with a few multi-row statements instead of two per event:
/// the events (conflicts skipped, inserted keys returned), then the work items
/// of those inserted; only duplicates are looked up one by one.
macro_rules! insert_batch {
    ($tx:expr, $batch:expr) => {{
        let batch: &[NewEvent] = $batch;
        let mut stored: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO events (project_id, event_id, event_type, livemode, api_version, created,
                    customer_id, raw_body, ignored_reason, received_at) ",
            );
            qb.push_values(chunk, |mut row, ev| {
                row.push_bind(&ev.project_id)
                    .push_bind(&ev.event_id)
                    .push_bind(&ev.event_type)
                    .push_bind(ev.livemode)
                    .push_bind(&ev.api_version)
                    .push_bind(ev.created)
                    .push_bind(&ev.customer_id)
                    .push_bind(ev.raw_body.as_ref())
                    .push_bind(&ev.ignored_reason)
                    .push_bind(ev.received_at);
            });
            qb.push(" ON CONFLICT (project_id, event_id) DO NOTHING RETURNING project_id, event_id");
            let rows: Vec<(String, String)> = qb.build_query_as().fetch_all(&mut *$tx).await?;
            stored.extend(rows);
        }
        // The first occurrence of a key in the batch is the stored one.
        let mut claimed: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
        let firsts: Vec<bool> = batch
            .iter()
            .map(|ev| {
                stored.contains(&(ev.project_id.clone(), ev.event_id.clone()))
                    && claimed.insert((ev.project_id.as_str(), ev.event_id.as_str()))
            })
            .collect();
        let work: Vec<&NewEvent> = batch
            .iter()
            .zip(&firsts)
            .filter(|(ev, first)| **first && ev.ignored_reason.is_none())
            .map(|(ev, _)| ev)
            .collect();
        for chunk in work.chunks(ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO work_items (project_id, event_id, customer_id, status, run_after, created_at,
                    event_created) ",
            );
            qb.push_values(chunk, |mut row, ev| {
                row.push_bind(&ev.project_id)
                    .push_bind(&ev.event_id)
                    .push_bind(ev.customer_id.as_deref().unwrap_or_default())
                    .push_bind("queued")
                    .push_bind(ev.due_at)
                    .push_bind(ev.received_at)
                    .push_bind(ev.created);
            });
            qb.build().execute(&mut *$tx).await?;
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for (ev, first) in batch.iter().zip(firsts) {
            if first {
                outcomes.push(InsertOutcome::Stored);
                continue;
            }
            let (received_at, status): (i64, Option<String>) = sqlx::query_as(DUPLICATE_STATE)
                .bind(&ev.project_id)
                .bind(&ev.event_id)
                .fetch_one(&mut *$tx)
                .await?;
            let unfinished = matches!(status.as_deref(), Some("queued" | "leased"));
            outcomes.push(InsertOutcome::Duplicate { unfinished, received_at });
        }
        let tc = std::time::Instant::now();
        $tx.commit().await?;
        tracing::debug!(commit_us = tc.elapsed().as_micros() as u64, "commit");
        Ok::<_, sqlx::Error>(outcomes)
    }};
}

impl Store {
    /// Stores a batch of events and their work items in ONE transaction
    /// (group commit: one fsync for the batch). Duplicates of
    /// `(project, event)` are reported, never stored twice.
    pub async fn insert_events(
        &self,
        batch: &[NewEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let outcomes = match self {
            // IMMEDIATE takes the write lock up front, so the transaction never
            // fails half-way on a lock upgrade.
            Self::Sqlite(pool) => {
                let t0 = std::time::Instant::now();
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let t1 = t0.elapsed().as_micros() as u64;
                let r = insert_batch!(tx, batch)?;
                tracing::debug!(
                    begin_us = t1,
                    total_us = t0.elapsed().as_micros() as u64,
                    "sqlite insert"
                );
                r
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                insert_batch_rows!(tx, batch)?
            }
        };
        Ok(outcomes)
    }

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
        type Row = (i64, String, String, String, i64, i64);
        let rows: Vec<Row> = match self {
            // One statement, so one commit: the oldest due item picks the
            // customer and every pending item of that customer goes with it.
            Self::Sqlite(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "UPDATE work_items SET status = 'leased', locked_until = $1, lease_owner = $2, attempts = attempts + 1
                     WHERE id IN (SELECT o.id FROM work_items o, ({}) h
                        WHERE o.project_id = h.project_id AND o.customer_id = h.customer_id {CLAIM_PENDING})
                     RETURNING id, project_id, customer_id, event_id, attempts, event_created",
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
                        work_items.attempts, work_items.event_created",
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
                |(id, _, _, event_id, attempts, event_created)| ClaimedItem {
                    id,
                    event_id,
                    attempts,
                    event_created,
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

    /// Puts items back for a later attempt, keeping the reason.
    pub async fn retry_later(
        &self,
        items: &[ClaimedItem],
        run_after: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let sql = self.with_id_list(
            "UPDATE work_items SET status = 'queued', run_after = $1, last_error = $2,
               locked_until = NULL, lease_owner = NULL WHERE status = 'leased' AND ",
            3,
        );
        dispatch!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(run_after)
                .bind(error)
                .bind(id_list(items))
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Gives up on items (a permanent failure, or the schedule ran out); the
    /// reason stays for the event log and a replay.
    pub async fn dead_letter(
        &self,
        items: &[ClaimedItem],
        now: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let sql = self.with_id_list(
            "UPDATE work_items SET status = 'dead', finished_at = $1, last_error = $2,
               locked_until = NULL, lease_owner = NULL WHERE ",
            3,
        );
        dispatch!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .bind(error)
                .bind(id_list(items))
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Newest first.
    pub async fn list_events(
        &self,
        project_id: &str,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT e.event_id, e.event_type, {STATUS_SQL} AS status,
                    COALESCE(e.ignored_reason, w.last_error) AS reason, e.customer_id AS customer,
                    e.received_at, w.finished_at AS processed_at, COALESCE(w.attempts, 0) AS attempts
                 FROM events e LEFT JOIN work_items w ON w.project_id = e.project_id AND w.event_id = e.event_id
                 WHERE e.project_id = $1 ORDER BY e.received_at DESC, e.event_id DESC LIMIT $2"
            )))
            .bind(project_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// The stored body, byte-exact, as Stripe sent it.
    pub async fn event_body(
        &self,
        project_id: &str,
        event_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT raw_body FROM events WHERE project_id = $1 AND event_id = $2")
                .bind(project_id)
                .bind(event_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|r| r.0))
    }

    /// Replays an event: its work item becomes due now with a fresh attempt
    /// budget. Returns false for an unknown or ignored event.
    pub async fn replay_event(
        &self,
        project_id: &str,
        event_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = dispatch!(self, |pool| {
            sqlx::query(
                "UPDATE work_items SET status = 'queued', run_after = $1, attempts = 0, last_error = NULL,
                   finished_at = NULL, locked_until = NULL, lease_owner = NULL
                 WHERE project_id = $2 AND event_id = $3 AND status <> 'leased'",
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
