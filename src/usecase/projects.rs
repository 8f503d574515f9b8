//! Project setup (SPEC §8 onboarding): create and configure a project,
//! "Test & connect" a Stripe key, manage webhook signing secrets, set the
//! app probe and the plan map. Every input is validated here; any error
//! leaves the stored state as it was.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    App,
    access::{PlanMap, PlanRule, Selector},
    config::{Secret, last4},
    domain::{KeyMode, Project, ProjectMode, ProjectSettings},
    store::{
        IntegrationWrite, NewProject, ProbeConfig, SecretRemoval, StoreError, WebhookSecretInfo,
    },
    stripe::StripeError,
    vault::{Purpose, VaultError},
};

/// Why a setup request was refused. Messages name the field and never
/// carry a secret (at most its last four characters).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("no project {0:?} (see `parityrail project list`)")]
    NotFound(String),
    #[error("a project named {0:?} already exists")]
    NameTaken(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(
        "the API key must be a secret (sk_test_…/sk_live_…) or restricted (rk_test_…/rk_live_…) key; got one ending in {0}"
    )]
    BadKey(String),
    #[error("a webhook signing secret must start with whsec_ (got one ending in {0})")]
    BadSecret(String),
    #[error("{0} is a demo project: it uses the built-in simulator, not a Stripe key")]
    DemoProject(String),
    #[error("this is a {key}-mode key, but the project is a {project}-mode project")]
    WrongMode { key: KeyMode, project: ProjectMode },
    #[error("Test & connect failed: Stripe did not accept this key: {0}")]
    Rejected(#[source] StripeError),
    #[error("no signing secret {0} in this project (see `parityrail stripe secrets list`)")]
    SecretNotFound(String),
    #[error(
        "{0} is the project's last signing secret: without one every webhook is refused (400); \
         add the new secret first, or pass --force"
    )]
    LastSecret(String),
    #[error(
        "PARITYRAIL_MASTER_KEY is required to store secrets (generate one with `parityrail keygen`)"
    )]
    NoMasterKey,
    #[error(transparent)]
    Vault(VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<VaultError> for SetupError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::NoMasterKey => Self::NoMasterKey,
            VaultError::Store(e) => Self::Store(e),
            other => Self::Vault(other),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> SetupError {
    SetupError::Invalid {
        field,
        message: message.into(),
    }
}

pub async fn create(app: &App, name: &str, mode: ProjectMode) -> Result<Project, SetupError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1 to 100 characters"));
    }
    match app
        .store
        .create_project(&NewProject {
            name: name.to_string(),
            mode,
        })
        .await
    {
        Err(StoreError::ProjectNameTaken(n)) => Err(SetupError::NameTaken(n)),
        other => Ok(other?),
    }
}

pub async fn list(app: &App) -> Result<Vec<Project>, SetupError> {
    Ok(app.store.list_projects().await?)
}

/// A project by its id or its unique name, as the CLI accepts both.
pub async fn find(app: &App, id_or_name: &str) -> Result<Project, SetupError> {
    app.store
        .find_project(id_or_name)
        .await?
        .ok_or_else(|| SetupError::NotFound(id_or_name.to_string()))
}

/// Per-project settings as a user gives them; `None` leaves one as is.
#[derive(Clone, Debug, Default)]
pub struct Configure {
    pub past_due_grace_days: Option<i64>,
    pub fulfillment_deadline_secs: Option<i64>,
    pub user_metadata_key: Option<String>,
    pub require_mapping: Option<bool>,
    pub lag_threshold_secs: Option<i64>,
    pub use_entitlements: Option<bool>,
    pub scan_at: Option<String>,
    pub stripe_budget_rps: Option<i64>,
}

pub async fn configure(app: &App, project: &Project, c: Configure) -> Result<Project, SetupError> {
    for (field, value) in [
        ("past_due_grace_days", c.past_due_grace_days),
        ("fulfillment_deadline", c.fulfillment_deadline_secs),
        ("lag_threshold", c.lag_threshold_secs),
    ] {
        if value.is_some_and(|v| !(0..=100 * 365 * 86_400).contains(&v)) {
            return Err(invalid(field, "must be a whole number, not negative"));
        }
    }
    if let Some(at) = &c.scan_at
        && crate::scan::schedule::parse_hhmm(at).is_none()
    {
        return Err(invalid(
            "scan_at",
            format!("must be HH:MM (UTC), got {at:?}"),
        ));
    }
    if c.stripe_budget_rps
        .is_some_and(|r| !(1..=1000).contains(&r))
    {
        return Err(invalid(
            "stripe_budget",
            "must be 1 to 1000 requests per second",
        ));
    }
    if c.user_metadata_key
        .as_deref()
        .is_some_and(|k| k.trim().is_empty() || k.len() > 40)
    {
        return Err(invalid("user_metadata_key", "must be 1 to 40 characters"));
    }
    let settings = ProjectSettings {
        past_due_grace_secs: c.past_due_grace_days.map(|d| d * 86_400),
        fulfillment_deadline_secs: c.fulfillment_deadline_secs,
        user_metadata_key: c.user_metadata_key.map(|k| k.trim().to_string()),
        require_mapping: c.require_mapping,
        lag_threshold_secs: c.lag_threshold_secs,
        use_entitlements: c.use_entitlements,
        scan_at: c.scan_at.map(|s| s.trim().to_string()),
        stripe_budget_rps: c.stripe_budget_rps,
    };
    app.store
        .update_project_settings(&project.id, &settings)
        .await?;
    app.intake.directory.invalidate(&project.id);
    app.store
        .project(&project.id)
        .await?
        .ok_or_else(|| SetupError::NotFound(project.id.to_string()))
}

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

fn parse_url(raw: &str, field: &'static str) -> Result<String, SetupError> {
    let url = url::Url::parse(raw.trim()).map_err(|_| invalid(field, "is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(field, "must be an http(s) URL with a host"));
    }
    Ok(raw.trim().trim_end_matches('/').to_string())
}

/// The app probe as it may be shown.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProbeView {
    pub url: String,
    pub reconcile_url: Option<String>,
    pub secret_last4: String,
}

pub async fn set_probe(
    app: &App,
    project: &Project,
    url: &str,
    secret: &Secret,
    reconcile_url: Option<&str>,
) -> Result<ProbeView, SetupError> {
    let url = parse_url(url, "url")?;
    let reconcile_url = reconcile_url
        .map(|u| parse_url(u, "reconcile_url"))
        .transpose()?;
    let secret = secret.expose().trim();
    if secret.len() < 16 || secret.len() > 256 {
        return Err(invalid(
            "secret",
            "must be at least 16 characters (and at most 256): it signs every probe request",
        ));
    }
    let sealed = app.vault.seal(Purpose::ProbeSecret, &project.id, secret)?;
    let probe = ProbeConfig {
        url: url.clone(),
        secret_sealed: sealed.sealed,
        secret_last4: last4(secret),
        reconcile_url: reconcile_url.clone(),
        last_ok_at: None,
    };
    app.store.save_probe(&project.id, &probe).await?;
    Ok(ProbeView {
        url,
        reconcile_url,
        secret_last4: probe.secret_last4,
    })
}

/// One plan-map rule as a user gives it.
pub struct PlanRuleRequest {
    pub selector: Selector,
    pub plan: String,
    pub rank: i64,
    pub features: Vec<String>,
    /// `NAME=NUMBER` each.
    pub limits: Vec<String>,
}

pub async fn set_plan_rule(
    app: &App,
    project: &Project,
    r: PlanRuleRequest,
) -> Result<PlanRule, SetupError> {
    let (Selector::Price(v) | Selector::Product(v) | Selector::LookupKey(v)) = &r.selector;
    if v.trim().is_empty() || v.len() > 200 {
        return Err(invalid(
            "selector",
            "give a price id, a product id or a lookup key",
        ));
    }
    let plan = r.plan.trim().to_string();
    if plan.is_empty() || plan.len() > 100 {
        return Err(invalid("plan", "must be 1 to 100 characters"));
    }
    let mut limits = BTreeMap::new();
    for raw in &r.limits {
        let Some((name, value)) = raw.split_once('=') else {
            return Err(invalid(
                "limit",
                format!("must be NAME=NUMBER, got {raw:?}"),
            ));
        };
        let value: i64 = value.trim().parse().map_err(|_| {
            invalid(
                "limit",
                format!("{}: {value:?} is not a whole number", name.trim()),
            )
        })?;
        if name.trim().is_empty() {
            return Err(invalid(
                "limit",
                format!("must be NAME=NUMBER, got {raw:?}"),
            ));
        }
        limits.insert(name.trim().to_string(), value);
    }
    let features: BTreeSet<String> = r
        .features
        .iter()
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    let rule = PlanRule {
        selector: r.selector,
        plan,
        rank: r.rank,
        features,
        limits,
    };
    app.store.upsert_plan_rule(&project.id, &rule).await?;
    Ok(rule)
}

pub async fn plan_map(app: &App, project: &Project) -> Result<PlanMap, SetupError> {
    Ok(app
        .store
        .plan_map(&project.id, project.use_entitlements)
        .await?)
}
