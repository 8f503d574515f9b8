//! Projects as the webhook endpoint needs them: mode and decrypted signing
//! secrets, cached so the hot path does not touch the database.
//!
//! The cache is invalidated when this process changes a project's secrets.
//! Another process (the CLI beside a running server) is caught by the
//! refresh on a miss: a signature that matches no cached secret reloads the
//! project — at most once per [`MISS_RELOAD_EVERY`] — so a flood of forged
//! signatures costs HMACs, not a database read each, while a secret added
//! elsewhere works on the first delivery after that interval.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    config::Secret,
    domain::{KeyMode, Project},
    ids::ProjectId,
    store::{Store, StoreError},
    vault::{Vault, VaultError},
};

/// Entries older than this are reloaded on their next use.
const TTL: Duration = Duration::from_secs(30);
/// The most often a signature miss reloads one project.
pub const MISS_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// One project with what it takes to verify and route its webhooks.
#[derive(Debug)]
pub struct ProjectEntry {
    pub project: Project,
    /// `None` until a Stripe key is connected.
    pub key_mode: Option<KeyMode>,
    /// Signing secrets with their ids.
    pub secrets: Vec<(i64, Secret)>,
    loaded_at: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

pub struct ProjectDirectory {
    store: Store,
    vault: Vault,
    cache: RwLock<HashMap<ProjectId, Arc<ProjectEntry>>>,
    /// Projects loaded from the database (a cache miss each), for `/metrics`.
    loads: AtomicU64,
}

impl ProjectDirectory {
    pub fn new(store: Store, vault: Vault) -> Self {
        Self {
            store,
            vault,
            cache: RwLock::default(),
            loads: AtomicU64::new(0),
        }
    }

    /// How many times a project was read from the database.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// The project, from cache unless stale.
    pub async fn get(&self, id: &ProjectId) -> Result<Option<Arc<ProjectEntry>>, DirectoryError> {
        if let Some(entry) = self.cached(id).filter(|e| e.loaded_at.elapsed() < TTL) {
            return Ok(Some(entry));
        }
        self.load(id).await
    }

    /// After a signature matched no cached secret: the project reloaded,
    /// unless it was loaded less than [`MISS_RELOAD_EVERY`] ago (then `None`:
    /// the cached secrets stand).
    pub async fn reload_after_miss(
        &self,
        id: &ProjectId,
    ) -> Result<Option<Arc<ProjectEntry>>, DirectoryError> {
        if self
            .cached(id)
            .is_some_and(|e| e.loaded_at.elapsed() < MISS_RELOAD_EVERY)
        {
            return Ok(None);
        }
        self.load(id).await
    }

    /// Forgets a project (its secrets or settings changed in this process).
    pub fn invalidate(&self, id: &ProjectId) {
        self.cache.write().expect("cache lock").remove(id);
    }

    fn cached(&self, id: &ProjectId) -> Option<Arc<ProjectEntry>> {
        self.cache.read().expect("cache lock").get(id).cloned()
    }

    async fn load(&self, id: &ProjectId) -> Result<Option<Arc<ProjectEntry>>, DirectoryError> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let Some(project) = self.store.project(id).await? else {
            self.invalidate(id);
            return Ok(None);
        };
        let key_mode = self.store.integration(id).await?.map(|i| i.key_mode);
        let secrets = self.vault.webhook_secrets(&self.store, &project).await?;
        let entry = Arc::new(ProjectEntry {
            project,
            key_mode,
            secrets,
            loaded_at: Instant::now(),
        });
        self.cache
            .write()
            .expect("cache lock")
            .insert(id.clone(), entry.clone());
        Ok(Some(entry))
    }
}
