//! The Stripe connection (onboarding step 2): "Test & connect" a key, and
//! the webhook signing secrets — several at once during a secret roll, the
//! old one removed to finish it.

use super::projects::{SetupError, invalid};
use crate::{
    App,
    config::Secret,
    domain::{KeyMode, Project, ProjectMode},
    store::{IntegrationWrite, SecretRemoval, WebhookSecretInfo},
    vault::Purpose,
};

/// What to connect.
pub struct ConnectRequest {
    pub api_key: Secret,
    pub webhook_secrets: Vec<Secret>,
    /// Check the key against Stripe first ("Test & connect").
    pub verify: bool,
}

/// The "Stripe connected" card: what was stored, secrets as last four only.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Connection {
    pub mode: KeyMode,
    pub account_id: Option<String>,
    pub api_key_last4: String,
    pub connected_at: i64,
    pub webhook_secrets: Vec<SecretView>,
}

/// A signing secret as it may be shown.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SecretView {
    /// `whs_` + its number: what `stripe secrets remove` takes.
    pub id: String,
    pub last4: String,
    pub added_at: i64,
    pub last_matched_at: Option<i64>,
}

impl From<WebhookSecretInfo> for SecretView {
    fn from(i: WebhookSecretInfo) -> Self {
        Self {
            id: format!("whs_{}", i.id),
            last4: i.last4,
            added_at: i.created_at,
            last_matched_at: i.last_matched_at,
        }
    }
}

fn check_secret(secret: &Secret) -> Result<(), SetupError> {
    let raw = secret.expose();
    let well_formed = raw.len() > "whsec_".len()
        && raw.len() <= 256
        && raw.starts_with("whsec_")
        && raw.bytes().all(|b| b.is_ascii_graphic());
    if well_formed {
        Ok(())
    } else {
        Err(SetupError::BadSecret(secret.last4()))
    }
}

/// "Test & connect": validates the key and secrets, checks the key with
/// Stripe (unless told not to), then stores key and secrets in one
/// transaction. Any error leaves the stored connection as it was.
pub async fn connect_stripe(
    app: &App,
    project: &Project,
    request: ConnectRequest,
) -> Result<Connection, SetupError> {
    let mode = KeyMode::of_key(request.api_key.expose())
        .filter(|_| request.api_key.expose().len() <= 256)
        .ok_or_else(|| SetupError::BadKey(request.api_key.last4()))?;
    for secret in &request.webhook_secrets {
        check_secret(secret)?;
    }
    if project.mode == ProjectMode::Demo {
        return Err(SetupError::DemoProject(project.id.to_string()));
    }
    let wanted = match project.mode {
        ProjectMode::Live => KeyMode::Live,
        _ => KeyMode::Test,
    };
    if mode != wanted {
        return Err(SetupError::WrongMode {
            key: mode,
            project: project.mode,
        });
    }
    if !app.vault.has_key() {
        return Err(SetupError::NoMasterKey);
    }
    let account_id = if request.verify {
        app.stripe
            .check_key(&request.api_key)
            .await
            .map_err(SetupError::Rejected)?;
        app.stripe
            .account_id(&request.api_key)
            .await
            .map_err(SetupError::Rejected)?
    } else {
        None
    };
    let write = IntegrationWrite {
        api_key: app
            .vault
            .seal(Purpose::StripeKey, &project.id, request.api_key.expose())?,
        key_mode: mode,
        account_id,
        webhook_secrets: request
            .webhook_secrets
            .iter()
            .map(|s| {
                app.vault
                    .seal(Purpose::WebhookSecret, &project.id, s.expose())
            })
            .collect::<Result<_, _>>()?,
        connected_at: app.now_ms(),
    };
    app.store.save_integration(&project.id, &write).await?;
    app.intake.directory.invalidate(&project.id);
    connection(app, project)
        .await?
        .ok_or_else(|| SetupError::NotFound(project.id.to_string()))
}

/// Stripe's deliveries are being refused: when one last failed signature
/// verification, if none has matched a stored secret since, with the last
/// match (`None`: never). The drill fails on it; the overview warns.
pub async fn refused_since_last_match(
    app: &App,
    project: &Project,
) -> Result<Option<(i64, Option<i64>)>, crate::store::StoreError> {
    let Some(refused) = app
        .store
        .last_signature_refusal(project.id.as_str())
        .await?
    else {
        return Ok(None);
    };
    let secrets = app.store.webhook_secrets(&project.id).await?;
    let matched = secrets.iter().filter_map(|s| s.last_matched_at).max();
    Ok(matched
        .is_none_or(|m| m < refused)
        .then_some((refused, matched)))
}

/// The project's Stripe connection, if one is stored.
pub async fn connection(app: &App, project: &Project) -> Result<Option<Connection>, SetupError> {
    Ok(app
        .store
        .integration(&project.id)
        .await?
        .map(|i| Connection {
            mode: i.key_mode,
            account_id: i.account_id,
            api_key_last4: i.api_key_last4,
            connected_at: i.connected_at,
            webhook_secrets: i
                .webhook_secrets
                .into_iter()
                .map(SecretView::from)
                .collect(),
        }))
}

/// Adds signing secrets (a secret roll keeps several at once).
pub async fn add_secrets(
    app: &App,
    project: &Project,
    secrets: &[Secret],
) -> Result<Vec<SecretView>, SetupError> {
    if secrets.is_empty() {
        return Err(invalid(
            "secret",
            "give at least one whsec_… signing secret",
        ));
    }
    for secret in secrets {
        check_secret(secret)?;
    }
    if app.store.integration(&project.id).await?.is_none() {
        return Err(invalid(
            "secret",
            "connect a Stripe key first (`parityrail stripe connect`)",
        ));
    }
    let sealed = secrets
        .iter()
        .map(|s| {
            app.vault
                .seal(Purpose::WebhookSecret, &project.id, s.expose())
        })
        .collect::<Result<Vec<_>, _>>()?;
    app.store
        .add_webhook_secrets(&project.id, &sealed, app.now_ms())
        .await?;
    app.intake.directory.invalidate(&project.id);
    self::secrets(app, project).await
}

pub async fn secrets(app: &App, project: &Project) -> Result<Vec<SecretView>, SetupError> {
    Ok(app
        .store
        .webhook_secrets(&project.id)
        .await?
        .into_iter()
        .map(SecretView::from)
        .collect())
}

/// Removes a signing secret (to finish a secret roll); the last one only
/// with `force`.
pub async fn remove_secret(
    app: &App,
    project: &Project,
    secret_id: &str,
    force: bool,
) -> Result<(), SetupError> {
    let not_found = || SetupError::SecretNotFound(secret_id.chars().take(40).collect());
    let id: i64 = secret_id
        .trim()
        .strip_prefix("whs_")
        .and_then(|n| n.parse().ok())
        .ok_or_else(not_found)?;
    match app
        .store
        .remove_webhook_secret(&project.id, id, force)
        .await?
    {
        SecretRemoval::Removed => {
            app.intake.directory.invalidate(&project.id);
            Ok(())
        }
        SecretRemoval::NotFound => Err(not_found()),
        SecretRemoval::Last => Err(SetupError::LastSecret(secret_id.to_string())),
    }
}
