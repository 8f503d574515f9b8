//! Projects as the webhook endpoint needs them: mode and decrypted signing
//! secrets, cached briefly so the hot path does not touch the database.
//! A miss or a signature that matches no cached secret reloads once, so a
//! secret added from the CLI works on its first delivery.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use crate::{
    config::Secret,
    crypto::{MasterKey, WrongKey},
    ids::ProjectId,
    store::{KeyMode, Project, Store, StoreError},
};

const TTL: Duration = Duration::from_secs(30);

/// One project with what it takes to verify and route its webhooks.
#[derive(Debug)]
pub struct ProjectEntry {
    pub project: Project,
    /// `None` until a Stripe key is connected.
    pub key_mode: Option<KeyMode>,
    pub secrets: Vec<Secret>,
    loaded_at: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    WrongKey(#[from] WrongKey),
    #[error("PARITYRAIL_MASTER_KEY is not set, so stored secrets cannot be read")]
    NoMasterKey,
}

pub struct ProjectDirectory {
    store: Store,
    master_key: Option<MasterKey>,
    cache: RwLock<HashMap<ProjectId, Arc<ProjectEntry>>>,
}

/// The AEAD context that binds a stored secret to its project and purpose.
pub fn secret_context(purpose: &str, project: &ProjectId) -> String {
    format!("{purpose}:{project}")
}

impl ProjectDirectory {
    pub fn new(store: Store, master_key: Option<MasterKey>) -> Self {
        Self {
            store,
            master_key,
            cache: RwLock::default(),
        }
    }

    /// The project, from cache unless `fresh` or stale.
    pub async fn get(
        &self,
        id: &ProjectId,
        fresh: bool,
    ) -> Result<Option<Arc<ProjectEntry>>, DirectoryError> {
        if !fresh {
            let cache = self.cache.read().expect("cache lock");
            if let Some(entry) = cache.get(id).filter(|e| e.loaded_at.elapsed() < TTL) {
                return Ok(Some(entry.clone()));
            }
        }
        let Some(project) = self.store.project(id).await? else {
            self.cache.write().expect("cache lock").remove(id);
            return Ok(None);
        };
        let integration = self.store.integration(id).await?;
        let (key_mode, secrets) = match integration {
            None => (None, Vec::new()),
            Some(i) if i.webhook_secrets_sealed.is_empty() => (Some(i.key_mode), Vec::new()),
            Some(i) => {
                let key = self
                    .master_key
                    .as_ref()
                    .ok_or(DirectoryError::NoMasterKey)?;
                let context = secret_context("webhook_secret", id);
                let secrets = i
                    .webhook_secrets_sealed
                    .iter()
                    .map(|sealed| key.open(&context, sealed).map(Secret::new))
                    .collect::<Result<Vec<_>, _>>()?;
                (Some(i.key_mode), secrets)
            }
        };
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

    /// The project's Stripe API key, decrypted (never cached).
    pub async fn api_key(
        &self,
        id: &ProjectId,
    ) -> Result<Option<(Secret, KeyMode)>, DirectoryError> {
        let Some(integration) = self.store.integration(id).await? else {
            return Ok(None);
        };
        let key = self
            .master_key
            .as_ref()
            .ok_or(DirectoryError::NoMasterKey)?;
        let api_key = key.open(
            &secret_context("stripe_key", id),
            &integration.api_key_sealed,
        )?;
        Ok(Some((Secret::new(api_key), integration.key_mode)))
    }
}
