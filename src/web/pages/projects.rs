//! The projects list (with creation) and a project at a glance.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
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
    domain::{ProjectMode, Role},
    usecase::{
        accounts, overview,
        projects::{self, SetupError},
        tokens::Action,
    },
};

pub struct ProjectRow {
    pub id: String,
    pub name: String,
    pub mode: &'static str,
    pub role: &'static str,
    pub created: When,
}

#[derive(Template, WebTemplate)]
#[template(path = "projects.html")]
pub struct ProjectsPage {
    pub chrome: Chrome,
    pub projects: Vec<ProjectRow>,
    pub name: String,
    pub mode: String,
    pub error: Option<String>,
}

async fn projects_page(
    app: &App,
    signed_in: &SignedIn,
    name: String,
    mode: String,
    error: Option<String>,
) -> Result<ProjectsPage, PageError> {
    let now = app.now_ms();
    let projects = accounts::projects_of(app, signed_in.user())
        .await?
        .into_iter()
        .map(|m| ProjectRow {
            id: m.project.id.to_string(),
            name: m.project.name,
            mode: m.project.mode.as_str(),
            role: m.role.as_str(),
            created: When::at(m.project.created_at, now),
        })
        .collect();
    Ok(ProjectsPage {
        chrome: Chrome::new(signed_in, None, "projects"),
        projects,
        name,
        mode,
        error,
    })
}

/// `GET /`: the projects the user has a role in.
pub async fn home(State(app): State<App>, signed_in: SignedIn) -> Result<Response, PageError> {
    Ok(
        projects_page(&app, &signed_in, String::new(), "test".into(), None)
            .await?
            .into_response(),
    )
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: String,
}

/// `POST /projects` (`name`, `mode`): creates a project whose admin is its
/// creator, and opens its onboarding.
pub async fn create(
    State(app): State<App>,
    signed_in: SignedIn,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    let mode = match form.mode.as_str() {
        "test" | "" => Ok(ProjectMode::Test),
        "live" => Ok(ProjectMode::Live),
        other => Err(format!("mode must be test or live, not {other:?}")),
    };
    let result = match mode {
        Ok(mode) => projects::create(&app, &form.name, mode)
            .await
            .map_err(|e| match e {
                SetupError::Store(e) => Err(PageError::from(e)),
                other => Ok(other.to_string()),
            }),
        Err(message) => Err(Ok(message)),
    };
    match result {
        Ok(project) => {
            accounts::grant(&app, signed_in.user(), &project, Role::Admin).await?;
            tracing::info!(project_id = %project.id, user_id = %signed_in.user().id, "project created");
            Ok(Redirect::to(&format!("/projects/{}", project.id)).into_response())
        }
        Err(Err(page_error)) => Err(page_error),
        Err(Ok(message)) => {
            let page = projects_page(&app, &signed_in, form.name, form.mode, Some(message)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

pub struct KindCount {
    pub kind: &'static str,
    pub count: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub chrome: Chrome,
    pub connected: Option<Connected>,
    pub secrets: usize,
    pub last_event: Option<LastEvent>,
    pub last_signature_match: Option<When>,
    pub signature_refused: Option<When>,
    pub probe_configured: bool,
    pub open_total: i64,
    pub open_by_kind: Vec<KindCount>,
    pub queue_waiting: i64,
    pub queue_lag: Option<String>,
    pub queue_dead: i64,
    pub last_scan: Option<LastScan>,
}

pub struct Connected {
    pub account: String,
    pub mode: &'static str,
    pub last4: String,
    pub at: When,
}

pub struct LastEvent {
    pub id: String,
    pub kind: String,
    pub status: &'static str,
    pub at: When,
}

pub struct LastScan {
    pub status: &'static str,
    pub checked: i64,
    pub mismatches: i64,
    pub at: When,
}

/// `GET /projects/{id}`: the project at a glance.
pub async fn overview(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let glance = overview::glance(&app, &membership.project)
        .await
        .map_err(|e| match e {
            SetupError::Store(e) => PageError::from(e),
            other => {
                tracing::error!(error = %other, "cannot read the project's connection");
                PageError::Unavailable
            }
        })?;
    let now = app.now_ms();
    let page = OverviewPage {
        chrome: Chrome::new(&signed_in, Some(&membership), "overview"),
        secrets: glance
            .connection
            .as_ref()
            .map_or(0, |c| c.webhook_secrets.len()),
        connected: glance.connection.map(|c| Connected {
            account: c.account_id.unwrap_or_else(|| "—".into()),
            mode: c.mode.as_str(),
            last4: c.api_key_last4,
            at: When::at(c.connected_at, now),
        }),
        last_event: glance.last_event.map(|e| LastEvent {
            at: When::at(e.received_at, now),
            id: e.event_id,
            kind: e.event_type,
            status: e.status.as_str(),
        }),
        last_signature_match: When::maybe(glance.last_signature_match, now),
        signature_refused: When::maybe(glance.signature_refused, now),
        probe_configured: glance.probe_configured,
        open_total: glance.open_total,
        open_by_kind: glance
            .open_by_kind
            .into_iter()
            .map(|(k, n)| KindCount {
                kind: k.as_str(),
                count: n,
            })
            .collect(),
        queue_waiting: glance.queue.waiting,
        queue_lag: glance
            .queue
            .oldest_waiting_at
            .map(|at| super::view::relative(at, now).replace(" ago", "")),
        queue_dead: glance.queue.dead,
        last_scan: glance.last_scan.map(|s| LastScan {
            status: s.status.as_str(),
            checked: s.customers_checked,
            mismatches: mismatch_total(&s.mismatches),
            at: When::at(s.started_at, now),
        }),
    };
    Ok(page.into_response())
}

/// The number of mismatches in a scan's `{kind: count}` summary.
fn mismatch_total(raw: &str) -> i64 {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw)
        .map(|m| m.values().filter_map(serde_json::Value::as_i64).sum())
        .unwrap_or(0)
}
