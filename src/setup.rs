//! Project setup shared by the CLI (and later the dashboard and API):
//! "Test & connect" a Stripe key and store signing secrets, sealed.

use crate::{
    config::{Secret, last4},
    crypto::MasterKey,
    ingress::directory::secret_context,
    store::{IntegrationWrite, KeyMode, Project, ProjectMode, SealedSecret, Store, StoreError},
    stripe::{StripeClient, StripeError, key_mode},
};

/// What to connect.
pub struct ConnectRequest {
    pub api_key: Secret,
    pub webhook_secrets: Vec<Secret>,
    /// Check the key against Stripe first ("Test & connect").
    pub verify: bool,
}

/// What was stored; secrets only as their last four characters.
#[derive(Debug, serde::Serialize)]
pub struct Connected {
    pub mode: KeyMode,
    pub account_id: Option<String>,
    pub api_key_last4: String,
    pub webhook_secret_last4: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "the API key must be a secret (sk_test_…/sk_live_…) or restricted (rk_test_…/rk_live_…) key; got one ending in {0}"
    )]
    BadKey(String),
    #[error("a webhook signing secret must start with whsec_ (got one ending in {0})")]
    BadSecret(String),
    #[error("{0} is a demo project: it uses the built-in simulator, not a Stripe key")]
    DemoProject(String),
    #[error("Test & connect failed: Stripe did not accept this key for listing subscriptions: {0}")]
    Rejected(#[source] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates, optionally checks the key with Stripe, then stores key and
/// secrets in one transaction. Any error leaves the stored state unchanged.
pub async fn connect_stripe(
    store: &Store,
    stripe: &StripeClient,
    master: &MasterKey,
    project: &Project,
    request: ConnectRequest,
) -> Result<Connected, ConnectError> {
    let mode = key_mode(request.api_key.expose())
        .ok_or_else(|| ConnectError::BadKey(request.api_key.last4()))?;
    if let Some(bad) = request
        .webhook_secrets
        .iter()
        .find(|s| !s.expose().starts_with("whsec_") || s.expose().len() <= "whsec_".len())
    {
        return Err(ConnectError::BadSecret(bad.last4()));
    }
    if project.mode == ProjectMode::Demo {
        return Err(ConnectError::DemoProject(project.id.to_string()));
    }
    let account_id = if request.verify {
        stripe
            .check_key(&request.api_key)
            .await
            .map_err(ConnectError::Rejected)?;
        stripe
            .account_id(&request.api_key)
            .await
            .map_err(ConnectError::Rejected)?
    } else {
        None
    };
    let seal = |purpose: &str, value: &str| {
        let context = secret_context(purpose, &project.id);
        SealedSecret {
            sealed: master.seal(&context, value),
            fingerprint: master.fingerprint(&context, value),
            last4: last4(value),
        }
    };
    let write = IntegrationWrite {
        api_key: seal("stripe_key", request.api_key.expose()),
        key_mode: mode,
        account_id: account_id.clone(),
        webhook_secrets: request
            .webhook_secrets
            .iter()
            .map(|s| seal("webhook_secret", s.expose()))
            .collect(),
        connected_at: crate::now_ms(),
    };
    store.save_integration(&project.id, &write).await?;
    let stored = store
        .integration(&project.id)
        .await?
        .ok_or_else(|| StoreError::UnknownProject(project.id.to_string()))?;
    Ok(Connected {
        mode,
        account_id,
        api_key_last4: stored.api_key_last4,
        webhook_secret_last4: stored.webhook_secret_last4,
    })
}
