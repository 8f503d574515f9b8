//! The incident inbox: tabs, filters in the query string, keyset pages,
//! bulk acknowledge and resolve (an incident's detail is in `incident`).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, Query, RawForm, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    PageError, SignedIn,
    view::{self, Chrome, When},
};
use crate::{
    App,
    domain::{IncidentKind, IncidentStatus},
    store::IncidentFilter,
    usecase::{
        accounts::{self, Membership},
        incidents::{self, ActionError},
        tokens::Action,
    },
};

const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct InboxQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    after: String,
}

pub struct Tab {
    pub label: &'static str,
    pub count: i64,
    pub current: bool,
    pub href: String,
}

pub struct InboxRow {
    pub id: String,
    pub kind: &'static str,
    /// Opened by a drill.
    pub drill: bool,
    pub customer: String,
    pub user: String,
    pub expected: String,
    pub observed: String,
    pub count: i64,
    pub first_seen: When,
    pub last_seen: When,
}

#[derive(Template, WebTemplate)]
#[template(path = "incidents.html")]
pub struct InboxPage {
    pub chrome: Chrome,
    pub tabs: Vec<Tab>,
    pub kinds: Vec<&'static str>,
    pub status: &'static str,
    pub kind: String,
    pub customer: String,
    pub rows: Vec<InboxRow>,
    pub next: Option<String>,
    pub error: Option<String>,
}

fn label(status: IncidentStatus) -> &'static str {
    match status {
        IncidentStatus::Open => "Open",
        IncidentStatus::Acknowledged => "Acknowledged",
        IncidentStatus::Resolved => "Resolved",
    }
}

/// `GET /projects/{id}/incidents?status=&kind=&customer=&after=`.
pub async fn inbox(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<InboxQuery>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let page = inbox_page(&app, &signed_in, &membership, &q, None).await?;
    Ok(page.into_response())
}

async fn inbox_page(
    app: &App,
    signed_in: &SignedIn,
    membership: &Membership,
    q: &InboxQuery,
    error: Option<String>,
) -> Result<InboxPage, PageError> {
    let status = IncidentStatus::parse(q.status.trim()).unwrap_or(IncidentStatus::Open);
    let kind = IncidentKind::parse(q.kind.trim());
    let customer = q.customer.trim();
    let filter = IncidentFilter {
        status: Some(status),
        kind,
        customer: (!customer.is_empty()).then(|| customer.to_string()),
        before: None,
    };
    let after = (!q.after.is_empty()).then_some(q.after.as_str());
    let page = incidents::inbox(app, &membership.project, filter, after, PAGE).await?;
    let now = app.now_ms();
    let project_id = membership.project.id.to_string();
    let query = |status: &str| {
        let mut out = format!("/projects/{project_id}/incidents?status={status}");
        if let Some(k) = kind {
            out.push_str(&format!("&kind={}", k.as_str()));
        }
        if !customer.is_empty() {
            out.push_str(&format!("&customer={}", view::encode(customer)));
        }
        out
    };
    let tabs = page
        .by_status
        .iter()
        .map(|(s, n)| Tab {
            label: label(*s),
            count: *n,
            current: *s == status,
            href: query(s.as_str()),
        })
        .collect();
    let next = page
        .next
        .map(|cursor| format!("{}&after={}", query(status.as_str()), view::encode(&cursor)));
    let rows = page
        .incidents
        .into_iter()
        .map(|i| InboxRow {
            kind: i.kind.as_str(),
            drill: i.drill,
            customer: i.customer_id.clone(),
            user: i.app_user_id.clone().unwrap_or_default(),
            expected: view::access_line(i.expected.as_deref()),
            observed: view::access_line(i.observed.as_deref()),
            count: i.count,
            first_seen: When::at(i.first_seen, now),
            last_seen: When::at(i.last_seen, now),
            id: i.id,
        })
        .collect();
    Ok(InboxPage {
        chrome: Chrome::new(signed_in, Some(membership), "incidents"),
        tabs,
        kinds: IncidentKind::ALL.iter().map(|k| k.as_str()).collect(),
        status: status.as_str(),
        kind: kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
        customer: customer.to_string(),
        rows,
        next,
        error,
    })
}

/// `POST /projects/{id}/incidents/bulk` (`action` = acknowledge | resolve,
/// `incident` repeated): acts on each selected incident, then shows the
/// inbox again (the tab it came from).
pub async fn bulk(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Manage).await?;
    let mut action = String::new();
    let mut ids = Vec::new();
    let mut back = InboxQuery::default();
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "action" => action = v.into_owned(),
            "incident" => ids.push(v.into_owned()),
            "status" => back.status = v.into_owned(),
            "kind" => back.kind = v.into_owned(),
            "customer" => back.customer = v.into_owned(),
            _ => {}
        }
    }
    let status = match action.as_str() {
        "acknowledge" => IncidentStatus::Acknowledged,
        "resolve" => IncidentStatus::Resolved,
        other => {
            let message = format!("choose acknowledge or resolve, not {other:?}");
            let page = inbox_page(&app, &signed_in, &membership, &back, Some(message)).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    if ids.is_empty() {
        let message = "select at least one incident".to_string();
        let page = inbox_page(&app, &signed_in, &membership, &back, Some(message)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let actor = signed_in.actor();
    for incident in ids.iter().take(500) {
        match incidents::set_status(&app, &membership.project, incident, status, &actor).await {
            // Already resolved by someone else, or gone: nothing to do for it.
            Ok(_) | Err(ActionError::AlreadyResolved(_) | ActionError::NotFound(_)) => {}
            Err(e) => return Err(action_error(e)),
        }
    }
    let mut to = format!(
        "/projects/{}/incidents?status={}",
        membership.project.id, back.status
    );
    if !back.kind.is_empty() {
        to.push_str(&format!("&kind={}", view::encode(&back.kind)));
    }
    if !back.customer.is_empty() {
        to.push_str(&format!("&customer={}", view::encode(&back.customer)));
    }
    Ok(Redirect::to(&to).into_response())
}

pub(super) fn action_error(e: ActionError) -> PageError {
    match e {
        ActionError::Store(e) => e.into(),
        ActionError::NotFound(_) => PageError::NotFound(e.to_string()),
        other => {
            tracing::warn!(error = %other, "incident action failed");
            PageError::Unavailable
        }
    }
}
