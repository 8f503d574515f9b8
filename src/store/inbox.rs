//! The durable inbox: verified events stored with their work items in one
//! short transaction (group commit), and the event log read back.

use std::collections::{BTreeMap, HashSet};

use super::{Store, StoreError, decode, dispatch};
use crate::domain::EventRecord;

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
    /// The signing secret whose signature matched (its `last matched` is kept).
    pub matched_secret: Option<i64>,
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
    /// The signing secret it was verified with has been removed (by another
    /// process, since this one cached it): not stored.
    SecretRemoved,
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    event_id: String,
    event_type: String,
    status: String,
    reason: Option<String>,
    customer: Option<String>,
    received_at: i64,
    processed_at: Option<i64>,
    attempts: i64,
}

impl TryFrom<EventRow> for EventRecord {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(Self {
            status: decode(&r.status)?,
            event_id: r.event_id,
            event_type: r.event_type,
            reason: r.reason,
            customer: r.customer,
            received_at: r.received_at,
            processed_at: r.processed_at,
            attempts: r.attempts,
        })
    }
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

pub(super) const STATUS_SQL: &str = "CASE WHEN e.ignored_reason IS NOT NULL THEN 'ignored'
    WHEN w.status = 'done' THEN 'processed' WHEN w.status = 'dead' THEN 'dead'
    WHEN w.status = 'leased' THEN 'processing' WHEN w.attempts > 0 THEN 'failed'
    ELSE 'received' END";

/// SQLite: events in multi-row statements (conflicts skipped); the keys
/// actually inserted.
macro_rules! sqlite_insert_events {
    ($tx:expr, $batch:expr) => {{
        let mut stored: HashSet<(String, String)> = HashSet::new();
        for chunk in $batch.chunks(ROWS_PER_STATEMENT) {
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
        stored
    }};
}

/// SQLite: the new events' work items in multi-row statements.
macro_rules! sqlite_insert_work {
    ($tx:expr, $work:expr) => {{
        for chunk in $work.chunks(ROWS_PER_STATEMENT) {
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
    }};
}

/// PostgreSQL: one fixed statement per event, prepared and planned once (a
/// variable multi-row insert and a whole-batch `UNNEST` both measured
/// slower there); the keys actually inserted.
macro_rules! pg_insert_events {
    ($tx:expr, $batch:expr) => {{
        let mut stored: HashSet<(String, String)> = HashSet::new();
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
                stored.insert((ev.project_id.clone(), ev.event_id.clone()));
            }
        }
        stored
    }};
}

/// PostgreSQL: the new events' work items, one fixed statement each.
macro_rules! pg_insert_work {
    ($tx:expr, $work:expr) => {{
        for ev in $work {
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
    }};
}

/// Events per SQLite multi-row statement (bodies may be large; keep statements sane).
const ROWS_PER_STATEMENT: usize = 64;

/// Which events of a batch were stored: the first occurrence of each key
/// the insert returned (a key sent twice in one batch is stored once).
fn first_stored(batch: &[NewEvent], stored: &HashSet<(String, String)>) -> Vec<bool> {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    batch
        .iter()
        .map(|ev| {
            stored.contains(&(ev.project_id.clone(), ev.event_id.clone()))
                && seen.insert((ev.project_id.as_str(), ev.event_id.as_str()))
        })
        .collect()
}

/// Inserts a batch: the events (conflicts skipped, inserted keys kept), then
/// the work items of those inserted; only duplicates are looked up one by
/// one. `$events` and `$work` are the backend's insert steps.
macro_rules! insert_batch {
    ($tx:expr, $batch:expr, $events:ident, $work:ident) => {{
        let all: &[NewEvent] = $batch;
        // When each matched secret last matched, one statement per secret;
        // a secret that is gone (removed elsewhere) verifies nothing.
        // A drill signs with a stored secret; only Stripe's deliveries prove
        // the secret is the endpoint's, so a drill's leaves `last matched`
        // as it was (at = None) but must still find its secret there.
        let mut matched: BTreeMap<i64, Option<i64>> = BTreeMap::new();
        for ev in all {
            if let Some(secret) = ev.matched_secret {
                let real = (!crate::domain::is_drill_event(&ev.event_id)).then_some(ev.received_at);
                let at = matched.entry(secret).or_default();
                *at = (*at).max(real);
            }
        }
        let mut gone: HashSet<i64> = HashSet::new();
        for (secret, at) in matched {
            let found = sqlx::query(
                "UPDATE webhook_secrets SET last_matched_at =
                    CASE WHEN $1 IS NOT NULL AND (last_matched_at IS NULL OR last_matched_at < $1)
                        THEN $1 ELSE last_matched_at END
                 WHERE id = $2",
            )
            .bind(at)
            .bind(secret)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if found == 0 {
                gone.insert(secret);
            }
        }
        let verified: Vec<NewEvent>;
        let batch: &[NewEvent] = if gone.is_empty() {
            all
        } else {
            verified = all
                .iter()
                .filter(|ev| !ev.matched_secret.is_some_and(|s| gone.contains(&s)))
                .cloned()
                .collect();
            &verified
        };
        let stored = $events!($tx, batch);
        let firsts = first_stored(batch, &stored);
        let work: Vec<&NewEvent> = batch
            .iter()
            .zip(&firsts)
            .filter(|(ev, first)| **first && ev.ignored_reason.is_none())
            .map(|(ev, _)| ev)
            .collect();
        $work!($tx, work.as_slice());
        let mut outcomes = Vec::with_capacity(all.len());
        let mut firsts = firsts.into_iter();
        for ev in all {
            if ev.matched_secret.is_some_and(|s| gone.contains(&s)) {
                outcomes.push(InsertOutcome::SecretRemoved);
                continue;
            }
            let first = firsts.next().expect("one per verified event");
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
            outcomes.push(InsertOutcome::Duplicate {
                unfinished,
                received_at,
            });
        }
        $tx.commit().await?;
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
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                insert_batch!(tx, batch, sqlite_insert_events, sqlite_insert_work)?
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                insert_batch!(tx, batch, pg_insert_events, pg_insert_work)?
            }
        };
        Ok(outcomes)
    }

    /// Newest first.
    pub async fn list_events(
        &self,
        project_id: &str,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows: Vec<EventRow> = dispatch!(self, |pool| {
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
        rows.into_iter().map(EventRecord::try_from).collect()
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

    /// Who holds the event's work and until when (ms), while it is leased:
    /// what an operator asks of an event that never finishes.
    pub async fn event_lease(
        &self,
        project_id: &str,
        event_id: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let row: Option<(String, i64)> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT lease_owner, locked_until FROM work_items
                 WHERE project_id = $1 AND event_id = $2 AND status = 'leased'",
            )
            .bind(project_id)
            .bind(event_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }
}
