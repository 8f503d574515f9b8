//! Onboarding step 3, the app probe: "Test probe & save" stores a probe
//! only once the app answered it; "Test probe" asks the stored one about a
//! customer and shows the answer. Viewers see it, with no form but the
//! test. Step 4, the plan map, is in `plans`.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{PageError, SignedIn, view::Chrome};
use crate::{
    App,
    config::Secret,
    usecase::{
        accounts::{self, Membership},
        projects::{self, ProbeTest, ProbeView, SetupError},
        tokens::Action,
    },
};

/// What a test probe showed, as one page block.
pub struct Answer {
    pub customer: String,
    pub user: String,
    pub http_status: u16,
    pub latency_ms: u64,
    pub found: bool,
    pub access: String,
    pub deploy_sha: String,
    pub json: String,
}

impl From<ProbeTest> for Answer {
    fn from(t: ProbeTest) -> Self {
        let json = serde_json::to_string_pretty(&t.observed).unwrap_or_default();
        Self {
            access: super::view::access_line(Some(&json)),
            found: t.observed.found,
            deploy_sha: t.observed.deploy_sha.clone().unwrap_or_default(),
            customer: t.customer,
            user: t.user,
            http_status: t.http_status,
            latency_ms: t.latency_ms,
            json,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "onboarding_probe.html")]
pub struct ProbePage {
    pub chrome: Chrome,
    pub probe: Option<ProbeView>,
    /// The form as typed (never the secret).
    pub url: String,
    pub reconcile_url: String,
    pub customer: String,
    pub answer: Option<Answer>,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// `url`, `secret`, `reconcile_url`, `customer` or `test`.
    pub field: &'static str,
}

async fn probe_page(
    app: &App,
    signed_in: &SignedIn,
    membership: &Membership,
) -> Result<ProbePage, PageError> {
    let probe = projects::probe(app, &membership.project)
        .await
        .map_err(setup_error)?;
    Ok(ProbePage {
        chrome: Chrome::new(signed_in, Some(membership), "setup"),
        url: probe.as_ref().map(|p| p.url.clone()).unwrap_or_default(),
        reconcile_url: probe
            .as_ref()
            .and_then(|p| p.reconcile_url.clone())
            .unwrap_or_default(),
        probe,
        customer: String::new(),
        answer: None,
        notice: None,
        error: None,
        field: "",
    })
}

pub(super) fn setup_error(e: SetupError) -> PageError {
    match e {
        SetupError::Store(e) => e.into(),
        other => {
            tracing::warn!(error = %other, "setup page failed");
            PageError::Unavailable
        }
    }
}

/// The field a refused setup form's error sits next to.
pub(super) fn field_of(e: &SetupError, fields: &[&'static str]) -> &'static str {
    match e {
        SetupError::Invalid { field, .. } => fields
            .iter()
            .copied()
            .find(|f| f == field)
            .unwrap_or(fields[0]),
        _ => fields[0],
    }
}

pub(super) fn message_of(e: &SetupError) -> String {
    match e {
        SetupError::Invalid { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `GET /projects/{id}/onboarding/probe`.
pub async fn probe(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let page = probe_page(&app, &signed_in, &membership).await?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
pub struct ProbeForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    reconcile_url: String,
    #[serde(default)]
    customer: String,
}

/// `POST /projects/{id}/onboarding/probe` (admin): "Test probe & save".
pub async fn save_probe(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<ProbeForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let secret = Secret::new(form.secret);
    let reconcile = form.reconcile_url.trim();
    let result = projects::set_probe_tested(
        &app,
        &membership.project,
        &form.url,
        &secret,
        (!reconcile.is_empty()).then_some(reconcile),
        &form.customer,
    )
    .await;
    let mut page = probe_page(&app, &signed_in, &membership).await?;
    page.customer = form.customer.chars().take(100).collect();
    match result {
        Ok((_, test)) => {
            page.notice = Some("The app answered: probe saved.".into());
            page.answer = Some(test.into());
            Ok(page.into_response())
        }
        Err(SetupError::Store(e)) => Err(e.into()),
        Err(e) => {
            page.url = projects::shown_url(&form.url);
            page.reconcile_url = projects::shown_url(&form.reconcile_url);
            page.field = field_of(&e, &["url", "secret", "reconcile_url", "customer"]);
            page.error = Some(message_of(&e));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct TestForm {
    #[serde(default)]
    customer: String,
}

/// `POST /projects/{id}/onboarding/probe/test` (viewers may): asks the
/// stored probe about a customer and shows what the app answered.
pub async fn test_probe(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<TestForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Check).await?;
    let result = projects::test_saved_probe(&app, &membership.project, &form.customer).await;
    let mut page = probe_page(&app, &signed_in, &membership).await?;
    page.customer = form.customer.chars().take(100).collect();
    match result {
        Ok(Some(test)) => {
            page.answer = Some(test.into());
            Ok(page.into_response())
        }
        Ok(None) => {
            page.field = "test";
            page.error = Some("no app probe is saved yet: set its URL and secret first".into());
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(SetupError::Store(e)) => Err(e.into()),
        Err(e) => {
            page.field = match field_of(&e, &["test", "customer"]) {
                "customer" => "customer_test",
                _ => "test",
            };
            page.error = Some(message_of(&e));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}
