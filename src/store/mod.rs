//! The only place with SQL. One `Store` over two typed pools (SQLite, the
//! embedded default, and PostgreSQL), chosen once from `DATABASE_URL`.
//! Queries are written once where both dialects agree (`$n` placeholders in
//! order of first use) and per backend where they do not (claims).

mod batch;
mod checks;
mod dashboard;
mod drill;
mod inbox;
mod incidents;
mod installation;
mod logs;
mod projects;
mod queue;
mod runs;
mod scan_app;
mod scans;
mod sessions;
mod settle;
mod state;
mod tokens;
mod users;
mod wal;

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool, SqlitePool,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use checks::ProbeConfig;
pub use dashboard::{IncidentFilter, QueueDepth};
pub use inbox::{InsertOutcome, NewEvent};
pub use incidents::{Evidence, NewIncident, Resolve};
pub use installation::Installation;
pub use logs::{EventFilter, RunFilter};
pub use projects::{
    Integration, IntegrationWrite, NewProject, SealedSecret, SecretRemoval, WebhookSecretInfo,
};
pub use queue::{Claim, ClaimedItem, LaggingEvent, Replayed};
pub use runs::NewRun;
pub use scans::{NewScan, ScanCheckpoint, ScanEnd};
pub use settle::{RunOutcome, RunSettlement};
pub use state::{CustomerState, StoredSubscription, SyncCommit, SyncOutcome, WebhookCheck};
pub use users::NewUser;

use crate::config::DatabaseUrl;

/// Runs `$body` with `$pool` bound to whichever typed pool the store holds.
macro_rules! dispatch {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use dispatch;

/// Work item ids as one parameter for [`Store::with_id_list`]: `1,2,3`.
fn id_list(items: &[ClaimedItem]) -> String {
    let ids: Vec<String> = items.iter().map(|i| i.id.to_string()).collect();
    ids.join(",")
}

/// Decodes a stored name into its enum; an unknown name is corrupt data.
fn decode<T: std::str::FromStr<Err = crate::domain::UnknownName>>(
    raw: &str,
) -> Result<T, StoreError> {
    raw.parse()
        .map_err(|e: crate::domain::UnknownName| StoreError::Corrupt(e.to_string()))
}

/// Decodes a stored project id.
fn project_id(raw: &str) -> Result<crate::ids::ProjectId, StoreError> {
    crate::ids::ProjectId::parse(raw)
        .ok_or_else(|| StoreError::Corrupt(format!("project id {raw:?}")))
}

/// A database failure, classified so callers can answer correctly.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a project named {0:?} already exists")]
    ProjectNameTaken(String),
    #[error("no project {0}")]
    UnknownProject(String),
    #[error("a user with the email {0:?} already exists")]
    EmailTaken(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Name of the unique constraint that violated, if this is such an error.
fn violated_constraint(err: &sqlx::Error) -> Option<String> {
    let db = err.as_database_error()?;
    if let Some(name) = db.constraint() {
        return Some(name.to_string());
    }
    // SQLite reports columns, not constraint names: "UNIQUE constraint failed: projects.name".
    let msg = db.message();
    msg.strip_prefix("UNIQUE constraint failed: ")
        .map(str::to_string)
}

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The connection options of a `postgres://` URL; the error never quotes it
/// (it may hold a password).
pub(crate) fn pg_options(url: &crate::config::Secret) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url.expose()).map_err(|_| {
        StoreError::Connect(sqlx::Error::Configuration(
            "DATABASE_URL is not a valid postgres:// URL".into(),
        ))
    })
}

impl Store {
    /// Opens the database named by the URL (creating the SQLite file if needed).
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL: an acknowledged webhook survives power loss, not just a crash.
                    // Group commit keeps the fsync cost per batch, not per event.
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    // The inbox's multi-row inserts come in up to 64 shapes
                    // each; room for them beside every fixed statement.
                    .statement_cache_capacity(512)
                    .pragma(
                        "wal_autocheckpoint",
                        wal::WRITER_AUTOCHECKPOINT_PAGES.to_string(),
                    )
                    .foreign_keys(true);
                // One connection: SQLite has one write lock anyway, and waiting
                // in the pool's fair queue beats the busy handler's backoff
                // sleeps (1, 2, 5 … 100 ms) that several writers trigger. Code
                // never holds a connection while asking for another.
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .map_err(StoreError::Connect)?;
                Ok(Self::Sqlite(pool))
            }
            DatabaseUrl::Postgres(url) => {
                let options = pg_options(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(StoreError::Connect)?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Self::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// `{head}id IN (…)` over one parameter `$n` holding [`id_list`]: one
    /// statement shape whatever the number of ids, so it is prepared once.
    fn with_id_list(&self, head: &str, n: u8) -> String {
        match self {
            Self::Sqlite(_) => {
                format!("{head}id IN (SELECT value FROM json_each('[' || ${n} || ']'))")
            }
            Self::Postgres(_) => format!("{head}id = ANY(string_to_array(${n}, ',')::bigint[])"),
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Cheap liveness probe for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        dispatch!(self, |pool| pool.close().await)
    }

    /// The sealed key-check value, if a master key was ever used here.
    pub async fn master_key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT value FROM meta WHERE key = 'master_key_check'")
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|r| r.0))
    }

    /// Stores the key-check value unless one exists (the first key wins).
    pub async fn set_master_key_check(&self, sealed: &[u8]) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ('master_key_check', $1) ON CONFLICT (key) DO NOTHING",
            )
            .bind(sealed)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
