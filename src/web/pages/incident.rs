//! An incident's detail: its evidence, the expected-versus-observed diff,
//! the runs and the activity log, and its actions.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    PageError, SignedIn,
    incidents::action_error,
    view::{self, Chrome, DiffRow, When},
};
use crate::{
    App,
    domain::IncidentStatus,
    usecase::{
        accounts::{self, Membership},
        checks,
        incidents::{self, ActionError},
        tokens::Action,
    },
};

pub struct RunLine {
    pub id: String,
    pub trigger: &'static str,
    pub status: &'static str,
    pub kind: String,
    pub summary: String,
    pub at: When,
}

pub struct ActivityLine {
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub at: When,
}

#[derive(Template, WebTemplate)]
#[template(path = "incident.html")]
pub struct IncidentPage {
    pub chrome: Chrome,
    pub id: String,
    pub kind: &'static str,
    /// Opened by a drill.
    pub drill: bool,
    pub status: &'static str,
    pub resolved: bool,
    pub customer: String,
    pub user: String,
    pub subscription: String,
    pub subscription_status: String,
    pub event_id: String,
    pub deploy_sha: String,
    pub guidance: &'static str,
    pub count: i64,
    pub first_seen: When,
    pub last_seen: When,
    pub diff: Vec<DiffRow>,
    pub details: String,
    pub runs: Vec<RunLine>,
    pub activity: Vec<ActivityLine>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    #[serde(default)]
    done: String,
}

/// `GET /projects/{id}/incidents/{incident_id}`.
pub async fn detail(
    State(app): State<App>,
    signed_in: SignedIn,
    Path((id, incident_id)): Path<(String, String)>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let notice = match q.done.as_str() {
        "acknowledge" => Some("Acknowledged.".to_string()),
        "resolve" => Some("Resolved.".to_string()),
        "rerun" => Some("A rerun was started; its run is at the top of the timeline.".to_string()),
        "reconcile" => Some("The app's reconcile hook accepted the request.".to_string()),
        _ => None,
    };
    let page = incident_page(&app, &signed_in, &membership, &incident_id, notice, None).await?;
    Ok(page.into_response())
}

async fn incident_page(
    app: &App,
    signed_in: &SignedIn,
    membership: &Membership,
    incident_id: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Result<IncidentPage, PageError> {
    let project = &membership.project;
    let found = incidents::get(app, project, incident_id)
        .await
        .map_err(action_error)?;
    let now = app.now_ms();
    let mut runs = Vec::new();
    for run_id in found.runs.iter().rev() {
        if let Some((run, _steps)) = checks::run(app, project, run_id).await? {
            runs.push(RunLine {
                trigger: run.trigger.as_str(),
                status: run.status.as_str(),
                kind: run.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
                summary: run.summary.clone().unwrap_or_default(),
                at: When::at(run.created_at, now),
                id: run.id,
            });
        }
    }
    let activity = accounts::activity(app, project, incident_id)
        .await?
        .into_iter()
        .map(|a| ActivityLine {
            actor: a.actor,
            action: a.action,
            detail: a.detail.unwrap_or_default(),
            at: When::at(a.at, now),
        })
        .collect();
    let i = found.incident;
    Ok(IncidentPage {
        chrome: Chrome::new(signed_in, Some(membership), "incidents"),
        kind: i.kind.as_str(),
        drill: i.drill,
        status: i.status.as_str(),
        resolved: i.is_resolved(),
        customer: i.customer_id.clone(),
        user: i.app_user_id.clone().unwrap_or_default(),
        subscription: i.subscription_id.clone().unwrap_or_default(),
        subscription_status: i.subscription_status.clone().unwrap_or_default(),
        event_id: i.event_id.clone().unwrap_or_default(),
        deploy_sha: i.deploy_sha.clone().unwrap_or_default(),
        guidance: i.kind.guidance(),
        count: i.count,
        first_seen: When::at(i.first_seen, now),
        last_seen: When::at(i.last_seen, now),
        diff: view::access_diff(i.expected.as_deref(), i.observed.as_deref()),
        details: view::pretty(Some(&i.details)),
        runs,
        activity,
        notice,
        error,
        id: i.id,
    })
}

/// `POST /projects/{id}/incidents/{incident_id}/{action}`: acknowledge,
/// resolve (admin), rerun (viewer), reconcile (admin). Afterwards the
/// incident again, with what happened or why it could not.
pub async fn act(
    State(app): State<App>,
    signed_in: SignedIn,
    Path((id, incident_id, action)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let needs = match action.as_str() {
        "acknowledge" | "resolve" | "reconcile" => Action::Manage,
        "rerun" => Action::Check,
        _ => {
            return Err(PageError::NotFound(format!(
                "no incident action {action:?}"
            )));
        }
    };
    let membership = accounts::authorize(&app, signed_in.user(), &id, needs).await?;
    let project = &membership.project;
    let actor = signed_in.actor();
    let result = match action.as_str() {
        "acknowledge" => incidents::set_status(
            &app,
            project,
            &incident_id,
            IncidentStatus::Acknowledged,
            &actor,
        )
        .await
        .map(|_| ()),
        "resolve" => incidents::set_status(
            &app,
            project,
            &incident_id,
            IncidentStatus::Resolved,
            &actor,
        )
        .await
        .map(|_| ()),
        "rerun" => incidents::rerun(&app, project, &incident_id, &actor)
            .await
            .map(|_| ()),
        _ => incidents::reconcile(&app, project, &incident_id, &actor)
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!(
            "/projects/{}/incidents/{incident_id}?done={action}",
            project.id
        ))
        .into_response()),
        Err(e @ (ActionError::Store(_) | ActionError::NotFound(_))) => Err(action_error(e)),
        Err(e) => {
            let page = incident_page(
                &app,
                &signed_in,
                &membership,
                &incident_id,
                None,
                Some(e.to_string()),
            )
            .await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
    }
}
