//! Project setup (SPEC §8 onboarding): create and configure a project, set
//! the app probe and the plan map (the Stripe connection and its signing
//! secrets are in `connection`). Every input is validated here; any error
//! leaves the stored state as it was.

mod plans;
mod probe;

pub use plans::{PlanRuleRequest, plan_map, remove_plan_rule, set_plan_rule};
pub use probe::{
    ProbeTest, ProbeView, TEST_CUSTOMER, probe, set_probe, set_probe_tested, shown_url,
    test_saved_probe,
};

use crate::{
    App,
    domain::{KeyMode, Project, ProjectMode, ProjectSettings},
    store::{NewProject, StoreError},
    stripe::StripeError,
    vault::VaultError,
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

pub fn invalid(field: &'static str, message: impl Into<String>) -> SetupError {
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
