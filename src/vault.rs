//! The secrets vault: every stored secret (Stripe API keys, webhook signing
//! secrets, probe secrets) is sealed here under the master key, bound to its
//! project and purpose, and opened here when it is used. Nothing else
//! touches the master key.
//!
//! A demo project's secrets are not stored at all: its Stripe data and its
//! app's answers come from the built-in simulator ([`Simulated`]), whose
//! secrets live in memory for as long as the demo runs (SPEC §8a). That is
//! the one place a project's mode decides where its data comes from.

use std::sync::Arc;

use crate::{
    config::{Secret, last4},
    crypto::{MasterKey, WrongKey},
    domain::{KeyMode, Project, ProjectMode},
    ids::ProjectId,
    probe::ProbeTarget,
    store::{IntegrationWrite, ProbeConfig, SealedSecret, Store, StoreError},
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

/// The built-in Stripe simulator and sample app a demo project reads.
#[derive(Clone, Debug)]
pub struct Simulated {
    pub api_key: Secret,
    pub webhook_secret: Secret,
    pub probe: ProbeTarget,
}

/// Seals and opens the secrets of every project.
#[derive(Clone, Debug)]
pub struct Vault {
    master_key: Option<MasterKey>,
    simulated: Option<Arc<Simulated>>,
}

impl Vault {
    pub fn new(master_key: Option<MasterKey>) -> Self {
        Self {
            master_key,
            simulated: None,
        }
    }

    /// Demo projects read `simulated` (without it they have no Stripe key,
    /// no signing secret and no probe, so nothing of theirs is processed).
    pub fn simulating(mut self, simulated: Option<Simulated>) -> Self {
        self.simulated = simulated.map(Arc::new);
        self
    }

    /// Records what a demo project is connected to: the simulator's
    /// account, its key's and signing secret's last four characters, the
    /// sample app's probe URL. Its pages then show the connection like any
    /// other's; the secrets themselves stay in memory (nothing stored here
    /// can be opened, and nothing reads it: see [`Vault::stripe_key`]).
    pub async fn record_simulated(
        &self,
        store: &Store,
        project: &Project,
        account_id: Option<String>,
        now: i64,
    ) -> Result<(), VaultError> {
        let Some(s) = self.simulated_for(project).flatten() else {
            return Ok(());
        };
        let shown = |secret: &Secret| SealedSecret {
            sealed: Vec::new(),
            fingerprint: format!("simulated:{}", last4(secret.expose())),
            last4: last4(secret.expose()),
        };
        store
            .save_integration(
                &project.id,
                &IntegrationWrite {
                    api_key: shown(&s.api_key),
                    key_mode: KeyMode::Test,
                    account_id,
                    webhook_secrets: vec![shown(&s.webhook_secret)],
                    connected_at: now,
                },
            )
            .await?;
        store
            .save_probe(
                &project.id,
                &ProbeConfig {
                    url: s.probe.url.clone(),
                    secret_sealed: Vec::new(),
                    secret_last4: last4(s.probe.secret.expose()),
                    reconcile_url: s.probe.reconcile_url.clone(),
                    last_ok_at: None,
                },
            )
            .await?;
        Ok(())
    }

    /// The simulator, when `project` is a demo project.
    fn simulated_for(&self, project: &Project) -> Option<Option<&Simulated>> {
        (project.mode == ProjectMode::Demo).then_some(self.simulated.as_deref())
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
        project: &Project,
    ) -> Result<Option<(Secret, KeyMode)>, VaultError> {
        if let Some(simulated) = self.simulated_for(project) {
            return Ok(simulated.map(|s| (s.api_key.clone(), KeyMode::Test)));
        }
        let project = &project.id;
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
        project: &Project,
    ) -> Result<Vec<(i64, Secret)>, VaultError> {
        if let Some(simulated) = self.simulated_for(project) {
            let Some(s) = simulated else {
                return Ok(Vec::new());
            };
            // The id of the row `record_simulated` wrote, for "last matched".
            let id = store
                .sealed_webhook_secrets(&project.id)
                .await?
                .first()
                .map_or(0, |(id, _)| *id);
            return Ok(vec![(id, s.webhook_secret.clone())]);
        }
        let project = &project.id;
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
        project: &Project,
    ) -> Result<Option<ProbeTarget>, VaultError> {
        if let Some(simulated) = self.simulated_for(project) {
            return Ok(simulated.map(|s| s.probe.clone()));
        }
        let project = &project.id;
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
