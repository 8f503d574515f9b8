//! SQLite only: the write-ahead log is checkpointed from a second
//! connection, so the single write connection (and every webhook ack waiting
//! on it) does not stop to copy pages back into the database file. Measured
//! on the ingest benchmark: the writer's automatic checkpoints made one
//! commit in fifteen take 8–15 ms instead of about 1.

use std::time::Duration;

use sqlx::{Connection, SqliteConnection};
use tokio_util::sync::CancellationToken;

use super::Store;

/// WAL size (pages) at which the write connection checkpoints by itself: a
/// backstop for when the background checkpoint cannot catch up. It copies
/// only what the background left, so it stays short.
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 8192;

impl Store {
    /// Checkpoints the WAL until `stop` (PASSIVE: never blocks the writer or
    /// readers): every `busy` while the last round copied pages, every
    /// `idle` otherwise. Returns at once on PostgreSQL.
    pub async fn checkpoint_wal(&self, busy: Duration, idle: Duration, stop: CancellationToken) {
        let Self::Sqlite(pool) = self else { return };
        let options = pool.connect_options();
        // Opened at the first round, not at start-up: a short CLI command
        // never pays for it.
        let mut conn: Option<SqliteConnection> = None;
        let mut every = idle;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => break,
            }
            every = idle;
            if conn.is_none() {
                match SqliteConnection::connect_with(&options).await {
                    Ok(opened) => conn = Some(opened),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open the WAL checkpoint connection; will retry");
                        continue;
                    }
                }
            }
            let Some(conn) = conn.as_mut() else { continue };
            let done: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(conn)
                .await;
            match done {
                Ok((_, log, copied)) => {
                    tracing::trace!(wal_pages = log, copied, "wal checkpoint");
                    if copied > 0 {
                        every = busy;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "wal checkpoint failed"),
            }
        }
        // Closed before the pool, so the pool's last connection can
        // checkpoint and remove the WAL on shutdown.
        if let Some(conn) = conn {
            let _ = conn.close().await;
        }
    }
}
