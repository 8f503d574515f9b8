//! What a database holds before anything is migrated into it, for the demo
//! (SPEC §8a), which must never write into a real installation nor into a
//! database that is not ParityRail's.

use super::{Store, StoreError, dispatch};

/// What [`Store::installation`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Installation {
    /// No tables: a fresh database.
    Empty,
    /// A ParityRail database (of this version or an older one).
    ParityRail {
        /// Names of the projects that are not demo projects.
        real_projects: Vec<String>,
        /// Emails of the dashboard users.
        users: Vec<String>,
    },
    /// Tables, none of them ParityRail's `projects`: another program's.
    Foreign,
}

impl Store {
    /// Reads what the database holds, writing nothing and needing no
    /// migration (an older ParityRail's schema reads the same).
    pub async fn installation(&self) -> Result<Installation, StoreError> {
        let tables: Vec<(String,)> = match self {
            Store::Sqlite(pool) => sqlx::query_as(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(pool)
            .await?,
            Store::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT table_name::TEXT FROM information_schema.tables
                     WHERE table_schema = current_schema()",
                )
                .fetch_all(pool)
                .await?
            }
        };
        let has = |name: &str| tables.iter().any(|(t,)| t == name);
        if tables.is_empty() {
            return Ok(Installation::Empty);
        }
        if !has("projects") {
            return Ok(Installation::Foreign);
        }
        let real: Vec<(String,)> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT name FROM projects WHERE mode <> 'demo' ORDER BY name")
                .fetch_all(pool)
                .await
        })?;
        let users: Vec<(String,)> = if has("users") {
            dispatch!(self, |pool| {
                sqlx::query_as("SELECT email FROM users ORDER BY email")
                    .fetch_all(pool)
                    .await
            })?
        } else {
            Vec::new()
        };
        Ok(Installation::ParityRail {
            real_projects: real.into_iter().map(|(n,)| n).collect(),
            users: users.into_iter().map(|(e,)| e).collect(),
        })
    }
}
