//! Onboarding step 1, the project: its id and mode, and the settings that
//! shape every verdict (grace, deadlines, the user metadata key, the daily
//! scan). A field left as shown keeps its stored value; viewers see the
//! values with no form.

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
    setup::{field_of, message_of},
    view::Chrome,
};
use crate::{
    App,
    usecase::{
        accounts::{self, Membership},
        projects::{self, Configure, SetupError, invalid},
        tokens::Action,
    },
    views::SettingsView,
};

/// The form's values as text: what is stored, or what was typed.
#[derive(Deserialize, Default, Clone)]
pub struct SettingsForm {
    #[serde(default)]
    past_due_grace_days: String,
    #[serde(default)]
    fulfillment_deadline: String,
    #[serde(default)]
    user_metadata_key: String,
    #[serde(default)]
    require_mapping: Option<String>,
    #[serde(default)]
    lag_threshold: String,
    #[serde(default)]
    use_entitlements: Option<String>,
    #[serde(default)]
    scan_at: String,
    #[serde(default)]
    stripe_budget: String,
}

impl SettingsForm {
    fn of(s: &SettingsView) -> Self {
        let on = |b: bool| b.then(|| "on".to_string());
        Self {
            past_due_grace_days: grace_days(s.past_due_grace_secs),
            fulfillment_deadline: s.fulfillment_deadline.to_string(),
            user_metadata_key: s.user_metadata_key.clone(),
            require_mapping: on(s.require_mapping),
            lag_threshold: s.lag_threshold.to_string(),
            use_entitlements: on(s.use_entitlements),
            scan_at: s.scan_at.clone(),
            stripe_budget: s.stripe_budget.map(|b| b.to_string()).unwrap_or_default(),
        }
    }

    /// At most 200 characters of each field, fit to show back.
    fn clipped(&self) -> Self {
        let clip = |s: &str| s.chars().take(200).collect::<String>();
        Self {
            past_due_grace_days: clip(&self.past_due_grace_days),
            fulfillment_deadline: clip(&self.fulfillment_deadline),
            user_metadata_key: clip(&self.user_metadata_key),
            require_mapping: self.require_mapping.clone(),
            lag_threshold: clip(&self.lag_threshold),
            use_entitlements: self.use_entitlements.clone(),
            scan_at: clip(&self.scan_at),
            stripe_budget: clip(&self.stripe_budget),
        }
    }

    /// The change this form asks for against `current`: only the fields
    /// whose text differs from what the page showed.
    fn change(&self, current: &SettingsForm) -> Result<Configure, SetupError> {
        let changed = |typed: &str, shown: &str| typed.trim() != shown;
        let number = |field: &'static str, typed: &str, shown: &str, unit: &str| {
            if !changed(typed, shown) {
                return Ok(None);
            }
            typed.trim().parse::<i64>().map(Some).map_err(|_| {
                invalid(
                    field,
                    format!(
                        "must be a whole number of {unit}, got {:?}",
                        typed.trim().chars().take(40).collect::<String>()
                    ),
                )
            })
        };
        let flag = |typed: &Option<String>, shown: &Option<String>| {
            (typed.is_some() != shown.is_some()).then_some(typed.is_some())
        };
        let budget = self.stripe_budget.trim();
        Ok(Configure {
            past_due_grace_days: number(
                "past_due_grace_days",
                &self.past_due_grace_days,
                &current.past_due_grace_days,
                "days",
            )?,
            fulfillment_deadline_secs: number(
                "fulfillment_deadline",
                &self.fulfillment_deadline,
                &current.fulfillment_deadline,
                "seconds",
            )?,
            user_metadata_key: changed(&self.user_metadata_key, &current.user_metadata_key)
                .then(|| self.user_metadata_key.clone()),
            require_mapping: flag(&self.require_mapping, &current.require_mapping),
            lag_threshold_secs: number(
                "lag_threshold",
                &self.lag_threshold,
                &current.lag_threshold,
                "seconds",
            )?,
            use_entitlements: flag(&self.use_entitlements, &current.use_entitlements),
            scan_at: changed(&self.scan_at, &current.scan_at).then(|| self.scan_at.clone()),
            // Blank keeps the budget as it is.
            stripe_budget_rps: if budget.is_empty() {
                None
            } else {
                number(
                    "stripe_budget",
                    budget,
                    &current.stripe_budget,
                    "requests per second",
                )?
            },
        })
    }
}

/// Whole days when the grace is whole days, else days with a fraction
/// (a grace set in seconds is shown, and kept, as it is).
fn grace_days(secs: i64) -> String {
    if secs % 86_400 == 0 {
        (secs / 86_400).to_string()
    } else {
        format!("{:.3}", secs as f64 / 86_400.0)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "onboarding_project.html")]
pub struct ProjectPage {
    pub chrome: Chrome,
    pub settings: SettingsView,
    pub form: SettingsForm,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// The field `error` sits beside.
    pub field: &'static str,
}

const FIELDS: &[&str] = &[
    "past_due_grace_days",
    "fulfillment_deadline",
    "user_metadata_key",
    "lag_threshold",
    "scan_at",
    "stripe_budget",
];

fn project_page(signed_in: &SignedIn, membership: &Membership) -> ProjectPage {
    let settings = SettingsView::from(&membership.project);
    ProjectPage {
        chrome: Chrome::new(signed_in, Some(membership), "setup"),
        form: SettingsForm::of(&settings),
        settings,
        notice: None,
        error: None,
        field: "",
    }
}

#[derive(Deserialize, Default)]
pub struct ProjectQuery {
    #[serde(default)]
    done: String,
}

/// `GET /projects/{id}/onboarding/project`.
pub async fn show(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<ProjectQuery>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let mut page = project_page(&signed_in, &membership);
    if q.done == "saved" {
        page.notice = Some("Settings saved.".into());
    }
    Ok(page.into_response())
}

/// `POST /projects/{id}/onboarding/project` (admin): saves the fields that
/// changed; a refused field changes nothing and is shown beside its input.
pub async fn save(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<SettingsForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let current = SettingsForm::of(&SettingsView::from(&membership.project));
    let result = match form.change(&current) {
        Ok(change) => projects::configure(&app, &membership.project, change).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(project) => {
            tracing::info!(project_id = %project.id, user_id = %signed_in.user().id, "settings saved");
            Ok(Redirect::to(&format!(
                "/projects/{}/onboarding/project?done=saved",
                project.id
            ))
            .into_response())
        }
        Err(SetupError::Store(e)) => Err(e.into()),
        Err(e) => {
            let mut page = project_page(&signed_in, &membership);
            page.form = form.clipped();
            page.field = field_of(&e, FIELDS);
            page.error = Some(message_of(&e));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}
