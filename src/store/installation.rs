//! What a database holds, read before anything is written into it (not a
//! migration, not even SQLite's journal mode), for the demo (SPEC §8a),
//! which must never write into a real installation nor into a database
//! that is not ParityRail's.

use sqlx::{Connection, PgConnection, SqliteConnection, sqlite::SqliteConnectOptions};

use super::{Store, StoreError};
use crate::config::DatabaseUrl;

/// What [`Store::installation`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Installation {
    /// No tables, or no SQLite file yet: a fresh database.
    Empty,
    /// A ParityRail database (of this version or an older one).
    ParityRail {
        /// Names of the projects that are not demo projects.
        real_projects: Vec<String>,
        /// Emails of the dashboard users.
        users: Vec<String>,
    },
    /// Tables that are not ParityRail's: another program's.
    Foreign,
}

const TABLES_SQLITE: &str =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'";
const TABLES_POSTGRES: &str = "SELECT table_name::TEXT FROM information_schema.tables
     WHERE table_schema = current_schema()";
const REAL_PROJECTS: &str = "SELECT name FROM projects WHERE mode <> 'demo' ORDER BY name";
const USERS: &str = "SELECT email FROM users ORDER BY email";

/// Reads the three answers on one connection, whatever the backend.
macro_rules! inspect_on {
    ($conn:expr, $tables:expr) => {{
        let tables: Vec<(String,)> = sqlx::query_as($tables).fetch_all(&mut $conn).await?;
        let has = |name: &str| tables.iter().any(|(t,)| t == name);
        if tables.is_empty() {
            Installation::Empty
        } else if !(has("projects") && has("webhook_secrets") && has("_sqlx_migrations")) {
            Installation::Foreign
        } else {
            let real: Vec<(String,)> = sqlx::query_as(REAL_PROJECTS).fetch_all(&mut $conn).await?;
            let users: Vec<(String,)> = if has("users") {
                sqlx::query_as(USERS).fetch_all(&mut $conn).await?
            } else {
                Vec::new()
            };
            Installation::ParityRail {
                real_projects: real.into_iter().map(|(n,)| n).collect(),
                users: users.into_iter().map(|(e,)| e).collect(),
            }
        }
    }};
}

impl Store {
    /// Reads what the database at `url` holds, writing nothing: SQLite is
    /// opened read-only (a missing file is [`Installation::Empty`]), and
    /// an older ParityRail's schema reads the same.
    pub async fn installation(url: &DatabaseUrl) -> Result<Installation, StoreError> {
        Ok(match url {
            DatabaseUrl::Sqlite(path) => {
                if !std::path::Path::new(path).exists() {
                    return Ok(Installation::Empty);
                }
                let options = SqliteConnectOptions::new().filename(path).read_only(true);
                let mut conn = SqliteConnection::connect_with(&options)
                    .await
                    .map_err(StoreError::Connect)?;
                let found = inspect_on!(conn, TABLES_SQLITE);
                conn.close().await?;
                found
            }
            DatabaseUrl::Postgres(url) => {
                let options = super::pg_options(url)?;
                let mut conn = PgConnection::connect_with(&options)
                    .await
                    .map_err(StoreError::Connect)?;
                let found = inspect_on!(conn, TABLES_POSTGRES);
                conn.close().await?;
                found
            }
        })
    }
}
