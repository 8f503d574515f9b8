//! Onboarding step 4, the plan map: add, edit (a rule of the same
//! selector is replaced) and remove rules with ranks. Viewers see it with
//! no form.

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
    setup::{field_of, message_of, setup_error},
    view::Chrome,
};
use crate::{
    App,
    access::Selector,
    usecase::{
        accounts::{self, Membership},
        projects::{self, PlanRuleRequest, SetupError},
        tokens::Action,
    },
};

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
