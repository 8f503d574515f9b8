//! The secrets vault: every stored secret (Stripe API keys, webhook signing
//! secrets, probe secrets) is sealed here under the master key, bound to its
//! project and purpose, and opened here when it is used. Nothing else
//! touches the master key.

use crate::{
    config::{Secret, last4},
    crypto::{MasterKey, WrongKey},
    domain::KeyMode,
    ids::ProjectId,
    probe::ProbeTarget,
    store::{SealedSecret, Store, StoreError},
};

/// What a sealed secret is for; part of its AEAD context, so a ciphertext
/// cannot be moved to another project or another use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    StripeKey,
    WebhookSecret,
    ProbeSecret,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::StripeKey => "stripe_key",
            Self::WebhookSecret => "webhook_secret",
            Self::ProbeSecret => "probe_secret",
        }
    }
}

/// The AEAD context that binds a stored secret to its project and purpose.
pub fn context(purpose: Purpose, project: &ProjectId) -> String {
    format!("{}:{project}", purpose.as_str())
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("PARITYRAIL_MASTER_KEY is not set, so stored secrets cannot be read")]
    NoMasterKey,
    #[error(transparent)]
    WrongKey(#[from] WrongKey),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Seals and opens the secrets of every project.
#[derive(Clone, Debug)]
pub struct Vault {
    master_key: Option<MasterKey>,
}

impl Vault {
    pub fn new(master_key: Option<MasterKey>) -> Self {
        Self { master_key }
    }

    pub fn has_key(&self) -> bool {
        self.master_key.is_some()
    }

    fn key(&self) -> Result<&MasterKey, VaultError> {
        self.master_key.as_ref().ok_or(VaultError::NoMasterKey)
    }

    /// Seals `value` for `purpose` in `project`, with what may be shown of it.
    pub fn seal(
        &self,
        purpose: Purpose,
        project: &ProjectId,
        value: &str,
    ) -> Result<SealedSecret, VaultError> {
        let key = self.key()?;
        let context = context(purpose, project);
        Ok(SealedSecret {
            sealed: key.seal(&context, value),
            fingerprint: key.fingerprint(&context, value),
            last4: last4(value),
        })
    }

    pub fn open(
        &self,
        purpose: Purpose,
        project: &ProjectId,
        sealed: &[u8],
    ) -> Result<Secret, VaultError> {
        let opened = self.key()?.open(&context(purpose, project), sealed)?;
        Ok(Secret::new(opened))
    }

    /// The project's Stripe API key and its mode, if one is connected.
    pub async fn stripe_key(
        &self,
        store: &Store,
        project: &ProjectId,
    ) -> Result<Option<(Secret, KeyMode)>, VaultError> {
        let Some(integration) = store.integration(project).await? else {
            return Ok(None);
        };
        let key = self.open(Purpose::StripeKey, project, &integration.api_key_sealed)?;
        Ok(Some((key, integration.key_mode)))
    }

    /// The project's webhook signing secrets, with their ids.
    pub async fn webhook_secrets(
        &self,
        store: &Store,
        project: &ProjectId,
    ) -> Result<Vec<(i64, Secret)>, VaultError> {
        let sealed = store.sealed_webhook_secrets(project).await?;
        if sealed.is_empty() {
            return Ok(Vec::new());
        }
        sealed
            .into_iter()
            .map(|(id, bytes)| Ok((id, self.open(Purpose::WebhookSecret, project, &bytes)?)))
            .collect()
    }

    /// Where and how to probe the project's app, if a probe is configured.
    pub async fn probe_target(
        &self,
        store: &Store,
        project: &ProjectId,
    ) -> Result<Option<ProbeTarget>, VaultError> {
        let Some(config) = store.probe_config(project).await? else {
            return Ok(None);
        };
        let secret = self.open(Purpose::ProbeSecret, project, &config.secret_sealed)?;
        Ok(Some(ProbeTarget {
            url: config.url,
            secret,
            reconcile_url: config.reconcile_url,
        }))
    }
}
