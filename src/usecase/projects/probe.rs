//! Step 3, the app probe: validated, tested against the app, and stored
//! only once the app answered.

use super::{SetupError, invalid};
use crate::{
    App,
    access::ObservedAccess,
    config::{Secret, last4},
    domain::Project,
    probe::ProbeTarget,
    store::ProbeConfig,
    vault::Purpose,
};

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
    let Some(target) = app.vault.probe_target(&app.store, project).await? else {
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
