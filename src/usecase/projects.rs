//! Project setup (SPEC §8 onboarding): create and configure a project, set
//! the app probe and the plan map (the Stripe connection and its signing
//! secrets are in `connection`). Every input is validated here; any error
//! leaves the stored state as it was.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    App,
    access::{ObservedAccess, PlanMap, PlanRule, Selector},
    config::{Secret, last4},
    domain::{KeyMode, Project, ProjectMode, ProjectSettings},
    probe::ProbeTarget,
    store::{NewProject, ProbeConfig, StoreError},
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

fn parse_url(raw: &str, field: &'static str) -> Result<String, SetupError> {
    let url = url::Url::parse(raw.trim()).map_err(|_| invalid(field, "is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(field, "must be an http(s) URL with a host"));
    }
    // URLs are shown on pages and in logs; the probe's signature is its
    // authentication, so no password travels in one.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            field,
            "must not carry a user name or password (requests to the app are signed with the probe secret)",
        ));
    }
    Ok(raw.trim().trim_end_matches('/').to_string())
}

/// A URL as typed, fit to show back on a form: any user name and password
/// in it dropped.
pub fn shown_url(raw: &str) -> String {
    let raw: String = raw.chars().take(2000).collect();
    match url::Url::parse(raw.trim()) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Ok(_) => raw,
        // Not a URL: only the part after any `user:pass@` is kept.
        Err(_) => match raw.rsplit_once('@') {
            Some((_, host)) => host.to_string(),
            None => raw,
        },
    }
}

/// The app probe as it may be shown.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
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
    let target = probe_target(url, secret, reconcile_url)?;
    save_probe(app, project, &target).await
}

/// A probe as a user typed it, validated.
fn probe_target(
    url: &str,
    secret: &Secret,
    reconcile_url: Option<&str>,
) -> Result<ProbeTarget, SetupError> {
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
    Ok(ProbeTarget {
        url,
        secret: Secret::new(secret),
        reconcile_url,
    })
}

async fn save_probe(
    app: &App,
    project: &Project,
    target: &ProbeTarget,
) -> Result<ProbeView, SetupError> {
    let secret = target.secret.expose();
    let sealed = app.vault.seal(Purpose::ProbeSecret, &project.id, secret)?;
    let probe = ProbeConfig {
        url: target.url.clone(),
        secret_sealed: sealed.sealed,
        secret_last4: last4(secret),
        reconcile_url: target.reconcile_url.clone(),
        last_ok_at: None,
    };
    app.store.save_probe(&project.id, &probe).await?;
    Ok(ProbeView {
        url: probe.url,
        reconcile_url: probe.reconcile_url,
        secret_last4: probe.secret_last4,
    })
}

/// The customer a test probe asks about when none is given: the app should
/// answer 404 (or `found: false`), which proves it is reachable and
/// accepted the signature.
pub const TEST_CUSTOMER: &str = "cus_parityrail_probe_test";

/// What the app answered a test probe ("Test probe").
pub struct ProbeTest {
    pub customer: String,
    pub user: String,
    pub http_status: u16,
    pub latency_ms: u64,
    pub observed: ObservedAccess,
}

/// Asks the app about one customer (mapped to its app user when known).
/// An app that does not answer is an error for the `url` field.
async fn run_probe_test(
    app: &App,
    project: &Project,
    target: &ProbeTarget,
    customer: &str,
) -> Result<ProbeTest, SetupError> {
    let customer = match customer.trim() {
        "" => TEST_CUSTOMER.to_string(),
        raw => crate::ids::CustomerId::parse(raw)
            .ok_or_else(|| {
                invalid(
                    "customer",
                    format!(
                        "{:?} is not a Stripe customer id (cus_ followed by letters and digits)",
                        raw.chars().take(64).collect::<String>()
                    ),
                )
            })?
            .as_str()
            .to_string(),
    };
    let user = app
        .store
        .app_users_many(project.id.as_str(), std::slice::from_ref(&customer))
        .await?
        .remove(&customer)
        .flatten()
        .unwrap_or_else(|| customer.clone());
    let started = std::time::Instant::now();
    let (observed, http_status) = app
        .probe
        .probe_answer(target, &customer, &user)
        .await
        .map_err(|e| invalid("url", format!("the test probe failed: {e}")))?;
    Ok(ProbeTest {
        customer,
        user,
        http_status,
        latency_ms: started.elapsed().as_millis() as u64,
        observed,
    })
}

/// Step 3's "Test probe & save": the app must answer a signed probe before
/// the probe is stored; a probe that does not answer changes nothing.
pub async fn set_probe_tested(
    app: &App,
    project: &Project,
    url: &str,
    secret: &Secret,
    reconcile_url: Option<&str>,
    customer: &str,
) -> Result<(ProbeView, ProbeTest), SetupError> {
    let target = probe_target(url, secret, reconcile_url)?;
    let test = run_probe_test(app, project, &target, customer).await?;
    let view = save_probe(app, project, &target).await?;
    Ok((view, test))
}

/// "Test probe" with the stored probe; `None` when there is none.
pub async fn test_saved_probe(
    app: &App,
    project: &Project,
    customer: &str,
) -> Result<Option<ProbeTest>, SetupError> {
    let Some(target) = app.vault.probe_target(&app.store, &project.id).await? else {
        return Ok(None);
    };
    Ok(Some(run_probe_test(app, project, &target, customer).await?))
}

/// The stored probe as it may be shown; `None` when there is none.
pub async fn probe(app: &App, project: &Project) -> Result<Option<ProbeView>, SetupError> {
    Ok(app
        .store
        .probe_config(&project.id)
        .await?
        .map(|p| ProbeView {
            url: p.url,
            reconcile_url: p.reconcile_url,
            secret_last4: p.secret_last4,
        }))
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

/// Removes the rule for `selector`; `false` when there was none.
pub async fn remove_plan_rule(
    app: &App,
    project: &Project,
    selector: &Selector,
) -> Result<bool, SetupError> {
    Ok(app.store.remove_plan_rule(&project.id, selector).await?)
}
