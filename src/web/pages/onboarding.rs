//! Onboarding step 2, Stripe (SPEC §8): the API key and "Webhook signing
//! secret (optional)" with "Test & connect", the "Stripe connected" card
//! that stays after a reconnect, the signing secrets, and the "Webhook
//! endpoint" block. Viewers see it all but no form.

use std::net::IpAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    PageError, SignedIn,
    view::{Chrome, When},
};
use crate::{
    App,
    config::Secret,
    stripe::event::HANDLED_TYPES,
    usecase::{
        accounts::{self, Membership},
        connection::{self, ConnectRequest},
        projects::SetupError,
        tokens::Action,
    },
};

pub struct Connected {
    pub account: String,
    pub mode: &'static str,
    pub last4: String,
    pub at: When,
}

pub struct SecretLine {
    pub id: String,
    pub last4: String,
    pub added: When,
    pub matched: Option<When>,
}

#[derive(Template, WebTemplate)]
#[template(path = "onboarding_stripe.html")]
pub struct StripePage {
    pub chrome: Chrome,
    pub connected: Option<Connected>,
    pub secrets: Vec<SecretLine>,
    pub endpoint: String,
    pub unreachable: Option<String>,
    pub event_types: &'static [&'static str],
    /// The form's error and the field it belongs to (`api_key`,
    /// `webhook_secret`, `secret`, `remove`).
    pub error: Option<String>,
    pub field: &'static str,
    pub notice: Option<&'static str>,
}

/// Why Stripe cannot reach this URL, when its host is a loopback, private
/// or link-local address (or `localhost`).
pub fn unreachable_reason(public_url: &str) -> Option<String> {
    let url = url::Url::parse(public_url).ok()?;
    let host = url.host_str()?.trim_matches(['[', ']']);
    let private = match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        Err(_) => host == "localhost" || host.ends_with(".localhost") || host.ends_with(".local"),
    };
    private.then(|| {
        format!(
            "{host} is a loopback or private address: Stripe cannot reach it. Set PARITYRAIL_PUBLIC_URL to \
             the address Stripe should call, or forward events locally with the Stripe CLI below."
        )
    })
}

async fn stripe_page(
    app: &App,
    signed_in: &SignedIn,
    membership: &Membership,
    error: Option<SetupError>,
    field: &'static str,
    notice: Option<&'static str>,
) -> Result<StripePage, PageError> {
    let now = app.now_ms();
    let found = connection::connection(app, &membership.project)
        .await
        .map_err(setup_failure)?;
    let secrets = found
        .as_ref()
        .map(|c| {
            c.webhook_secrets
                .iter()
                .map(|s| SecretLine {
                    id: s.id.clone(),
                    last4: s.last4.clone(),
                    added: When::at(s.added_at, now),
                    matched: When::maybe(s.last_matched_at, now),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(StripePage {
        chrome: Chrome::new(signed_in, Some(membership), "setup"),
        connected: found.map(|c| Connected {
            account: c.account_id.unwrap_or_else(|| "—".into()),
            mode: c.mode.as_str(),
            last4: c.api_key_last4,
            at: When::at(c.connected_at, now),
        }),
        secrets,
        endpoint: format!(
            "{}/api/webhooks/stripe/{}",
            app.config.public_url, membership.project.id
        ),
        unreachable: unreachable_reason(&app.config.public_url),
        event_types: &HANDLED_TYPES,
        error: error.map(|e| e.to_string()),
        field,
        notice,
    })
}

/// A setup error that is no fault of the form.
fn setup_failure(e: SetupError) -> PageError {
    match e {
        SetupError::Store(e) => e.into(),
        SetupError::NotFound(m) => PageError::NotFound(m),
        other => {
            tracing::error!(error = %other, "cannot read the Stripe connection");
            PageError::Unavailable
        }
    }
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// `GET /projects/{id}/onboarding/stripe`.
pub async fn stripe(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let notice = match q.done.as_str() {
        "connected" => Some("Stripe connected."),
        "secret" => Some("Signing secret added."),
        "removed" => Some("Signing secret removed."),
        _ => None,
    };
    Ok(stripe_page(&app, &signed_in, &membership, None, "", notice)
        .await?
        .into_response())
}

#[derive(Deserialize)]
pub struct ConnectForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    webhook_secret: String,
}

/// `POST /projects/{id}/onboarding/stripe` ("Test & connect", admin):
/// checks the key with Stripe and stores it, with the signing secret when
/// one is given. On any error the form comes back with the reason next to
/// its field, and the stored connection is as it was.
pub async fn connect(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<ConnectForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let secret = form.webhook_secret.trim();
    let request = ConnectRequest {
        api_key: Secret::new(form.api_key.trim()),
        webhook_secrets: if secret.is_empty() {
            Vec::new()
        } else {
            vec![Secret::new(secret)]
        },
        verify: true,
    };
    match connection::connect_stripe(&app, &membership.project, request).await {
        Ok(_) => {
            tracing::info!(project_id = %membership.project.id, user_id = %signed_in.user().id, "stripe connected");
            Ok(Redirect::to(&format!(
                "/projects/{}/onboarding/stripe?done=connected",
                membership.project.id
            ))
            .into_response())
        }
        Err(e) => {
            let field = match e {
                SetupError::BadSecret(_) => "webhook_secret",
                SetupError::BadKey(_)
                | SetupError::Rejected(_)
                | SetupError::WrongMode { .. }
                | SetupError::DemoProject(_) => "api_key",
                SetupError::NoMasterKey | SetupError::Invalid { .. } => "",
                other => return Err(setup_failure(other)),
            };
            form_error(&app, &signed_in, &membership, e, field).await
        }
    }
}

async fn form_error(
    app: &App,
    signed_in: &SignedIn,
    membership: &Membership,
    e: SetupError,
    field: &'static str,
) -> Result<Response, PageError> {
    let page = stripe_page(app, signed_in, membership, Some(e), field, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    secret: String,
}

/// `POST /projects/{id}/onboarding/stripe/secrets` (admin): adds a signing
/// secret, e.g. the new one of a secret roll.
pub async fn add_secret(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<SecretForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let secret = Secret::new(form.secret.trim());
    match connection::add_secrets(&app, &membership.project, &[secret]).await {
        Ok(_) => Ok(Redirect::to(&format!(
            "/projects/{}/onboarding/stripe?done=secret",
            membership.project.id
        ))
        .into_response()),
        Err(e @ (SetupError::BadSecret(_) | SetupError::Invalid { .. })) => {
            form_error(&app, &signed_in, &membership, e, "secret").await
        }
        Err(other) => Err(setup_failure(other)),
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    force: Option<String>,
}

/// `POST /projects/{id}/onboarding/stripe/secrets/{secret_id}/remove`
/// (admin): removes a signing secret; the last one only with `force`.
pub async fn remove_secret(
    State(app): State<App>,
    signed_in: SignedIn,
    Path((id, secret_id)): Path<(String, String)>,
    Form(form): Form<RemoveForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let force = form.force.is_some_and(|v| v == "1" || v == "on");
    match connection::remove_secret(&app, &membership.project, &secret_id, force).await {
        Ok(()) => Ok(Redirect::to(&format!(
            "/projects/{}/onboarding/stripe?done=removed",
            membership.project.id
        ))
        .into_response()),
        Err(e @ SetupError::LastSecret(_)) => {
            form_error(&app, &signed_in, &membership, e, "remove").await
        }
        Err(SetupError::SecretNotFound(m)) => Err(PageError::NotFound(format!(
            "no signing secret {m} in this project"
        ))),
        Err(other) => Err(setup_failure(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_private_public_urls_are_flagged() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://10.1.2.3",
            "http://192.168.0.5:80",
            "http://[::1]:8080",
            "http://app.local",
        ] {
            assert!(unreachable_reason(url).is_some(), "{url}");
        }
        for url in ["https://parityrail.example.com", "http://203.0.113.7:8080"] {
            assert!(unreachable_reason(url).is_none(), "{url}");
        }
    }
}
