//! Onboarding steps 3 and 4: the app probe ("Test probe & save" stores a
//! probe only once the app answered it; "Test probe" asks the stored one
//! about a customer and shows the answer) and the plan map (add, edit and
//! remove rules with ranks). Viewers see both, with no form but the test.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{PageError, SignedIn, view::Chrome};
use crate::{
    App,
    access::Selector,
    config::Secret,
    usecase::{
        accounts::{self, Membership},
        projects::{self, PlanRuleRequest, ProbeTest, ProbeView, SetupError},
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

fn setup_error(e: SetupError) -> PageError {
    match e {
        SetupError::Store(e) => e.into(),
        other => {
            tracing::warn!(error = %other, "setup page failed");
            PageError::Unavailable
        }
    }
}

/// The field a refused setup form's error sits next to.
fn field_of(e: &SetupError, fields: &[&'static str]) -> &'static str {
    match e {
        SetupError::Invalid { field, .. } => fields
            .iter()
            .copied()
            .find(|f| f == field)
            .unwrap_or(fields[0]),
        _ => fields[0],
    }
}

fn message_of(e: &SetupError) -> String {
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
            page.url = form.url.chars().take(2000).collect();
            page.reconcile_url = form.reconcile_url.chars().take(2000).collect();
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

pub struct RuleLine {
    pub kind: &'static str,
    pub value: String,
    pub plan: String,
    pub rank: i64,
    pub features: String,
    pub limits: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "onboarding_plans.html")]
pub struct PlansPage {
    pub chrome: Chrome,
    pub rules: Vec<RuleLine>,
    pub form: RuleLine,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// `selector`, `plan`, `rank`, `limit` or `remove`.
    pub field: &'static str,
}

fn selector(kind: &str, value: &str) -> Result<Selector, SetupError> {
    Selector::from_parts(kind, value.trim().to_string()).ok_or_else(|| SetupError::Invalid {
        field: "selector",
        message: "choose price, product or lookup key".into(),
    })
}

#[derive(Deserialize, Default)]
pub struct PlansQuery {
    #[serde(default)]
    done: String,
    /// `{kind}:{value}` of the rule to edit.
    #[serde(default)]
    edit: String,
}

async fn plans_page(
    app: &App,
    signed_in: &SignedIn,
    membership: &Membership,
) -> Result<PlansPage, PageError> {
    let map = projects::plan_map(app, &membership.project)
        .await
        .map_err(setup_error)?;
    let mut rules: Vec<RuleLine> = map
        .rules
        .into_iter()
        .map(|r| {
            let (kind, value) = r.selector.parts();
            RuleLine {
                kind,
                value: value.to_string(),
                plan: r.plan,
                rank: r.rank,
                features: r.features.into_iter().collect::<Vec<_>>().join(", "),
                limits: r
                    .limits
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
        .collect();
    rules.sort_by(|a, b| b.rank.cmp(&a.rank).then(a.plan.cmp(&b.plan)));
    Ok(PlansPage {
        chrome: Chrome::new(signed_in, Some(membership), "setup"),
        rules,
        form: RuleLine {
            kind: "price",
            value: String::new(),
            plan: String::new(),
            rank: 1,
            features: String::new(),
            limits: String::new(),
        },
        notice: None,
        error: None,
        field: "",
    })
}

/// `GET /projects/{id}/onboarding/plans[?edit=kind:value]`.
pub async fn plans(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<PlansQuery>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let mut page = plans_page(&app, &signed_in, &membership).await?;
    page.notice = match q.done.as_str() {
        "saved" => Some("Rule saved.".into()),
        "removed" => Some("Rule removed.".into()),
        _ => None,
    };
    if let Some((kind, value)) = q.edit.split_once(':')
        && let Some(rule) = page
            .rules
            .iter()
            .find(|r| r.kind == kind && r.value == value)
    {
        page.form = RuleLine {
            kind: rule.kind,
            value: rule.value.clone(),
            plan: rule.plan.clone(),
            rank: rule.rank,
            features: rule.features.clone(),
            limits: rule.limits.clone(),
        };
    }
    Ok(page.into_response())
}

#[derive(Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    rank: String,
    #[serde(default)]
    features: String,
    #[serde(default)]
    limits: String,
}

fn list(raw: &str) -> Vec<String> {
    raw.split([',', '\n'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `POST /projects/{id}/onboarding/plans` (admin): adds a rule, or
/// replaces the rule of the same selector.
pub async fn save_rule(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<RuleForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let rank = form.rank.trim();
    let result = match (selector(&form.kind, &form.value), rank.parse::<i64>()) {
        (Err(e), _) => Err(e),
        (_, Err(_)) => Err(SetupError::Invalid {
            field: "rank",
            message: format!(
                "the rank must be a whole number (a higher rank is a higher plan), got {:?}",
                rank.chars().take(40).collect::<String>()
            ),
        }),
        (Ok(selector), Ok(rank)) => {
            let request = PlanRuleRequest {
                selector,
                plan: form.plan.clone(),
                rank,
                features: list(&form.features),
                limits: list(&form.limits),
            };
            projects::set_plan_rule(&app, &membership.project, request)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!(
            "/projects/{}/onboarding/plans?done=saved",
            membership.project.id
        ))
        .into_response()),
        Err(SetupError::Store(e)) => Err(e.into()),
        Err(e) => {
            let mut page = plans_page(&app, &signed_in, &membership).await?;
            page.form = RuleLine {
                kind: Selector::from_parts(&form.kind, String::new())
                    .map_or("price", |s| s.parts().0),
                value: form.value.chars().take(200).collect(),
                plan: form.plan.chars().take(100).collect(),
                rank: rank.parse().unwrap_or(1),
                features: form.features.chars().take(2000).collect(),
                limits: form.limits.chars().take(2000).collect(),
            };
            page.field = field_of(&e, &["selector", "plan", "rank", "limit"]);
            page.error = Some(message_of(&e));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
}

/// `POST /projects/{id}/onboarding/plans/remove` (admin).
pub async fn remove_rule(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<RemoveForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let selector = selector(&form.kind, &form.value).map_err(setup_error)?;
    if projects::remove_plan_rule(&app, &membership.project, &selector)
        .await
        .map_err(setup_error)?
    {
        Ok(Redirect::to(&format!(
            "/projects/{}/onboarding/plans?done=removed",
            membership.project.id
        ))
        .into_response())
    } else {
        Err(PageError::NotFound("no such plan rule".into()))
    }
}
