//! The webhook event log (filters by status and type in the query string,
//! keyset pages), an event's detail with its payload pretty-printed and the
//! runs that judged it, and replay (admin, confirmed) which links to the
//! new run.

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
    view::{self, Chrome, When},
};
use crate::{
    App,
    domain::EventStatus,
    store::EventFilter,
    stripe::event::HANDLED_TYPES,
    usecase::{
        accounts::{self, Membership},
        events::{self, ReplayError},
        tokens::Action,
    },
};

const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    event_type: String,
    #[serde(default)]
    after: String,
}

pub struct EventRow {
    pub id: String,
    pub event_type: String,
    pub status: &'static str,
    pub reason: String,
    pub customer: String,
    pub attempts: i64,
    pub received: When,
    /// How long from receipt to processed, when it was.
    pub took: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "events.html")]
pub struct LogPage {
    pub chrome: Chrome,
    pub statuses: Vec<&'static str>,
    pub types: &'static [&'static str],
    pub status: String,
    pub event_type: String,
    pub rows: Vec<EventRow>,
    pub next: Option<String>,
}

/// `GET /projects/{id}/events?status=&type=&after=`.
pub async fn log(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let status = EventStatus::parse(q.status.trim());
    let event_type = q.event_type.trim();
    let filter = EventFilter {
        status,
        event_type: (!event_type.is_empty()).then(|| event_type.to_string()),
        before: None,
    };
    let after = (!q.after.is_empty()).then_some(q.after.as_str());
    let page = events::log(&app, &membership.project, filter, after, PAGE).await?;
    let now = app.now_ms();
    let next = page.next.map(|cursor| {
        let mut href = format!("/projects/{}/events?", membership.project.id);
        if let Some(s) = status {
            href.push_str(&format!("status={}&", s.as_str()));
        }
        if !event_type.is_empty() {
            href.push_str(&format!("type={}&", view::encode(event_type)));
        }
        href.push_str(&format!("after={}", view::encode(&cursor)));
        href
    });
    let rows = page
        .items
        .into_iter()
        .map(|e| EventRow {
            status: e.status.as_str(),
            reason: e.reason.unwrap_or_default(),
            customer: e.customer.unwrap_or_default(),
            attempts: e.attempts,
            received: When::at(e.received_at, now),
            took: e
                .processed_at
                .map(|p| duration(p - e.received_at))
                .unwrap_or_default(),
            event_type: e.event_type,
            id: e.event_id,
        })
        .collect();
    Ok(LogPage {
        chrome: Chrome::new(&signed_in, Some(&membership), "events"),
        statuses: EventStatus::ALL.iter().map(|s| s.as_str()).collect(),
        types: &HANDLED_TYPES,
        status: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        event_type: event_type.to_string(),
        rows,
        next,
    }
    .into_response())
}

/// "840 ms", "3.2 s", "5 min".
fn duration(ms: i64) -> String {
    match ms.max(0) {
        ms @ 0..=999 => format!("{ms} ms"),
        ms @ 1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min", ms / 60_000),
    }
}

pub struct RunLine {
    pub id: String,
    pub trigger: &'static str,
    pub status: &'static str,
    pub kind: String,
    pub at: When,
}

#[derive(Template, WebTemplate)]
#[template(path = "event.html")]
pub struct EventPage {
    pub chrome: Chrome,
    pub id: String,
    pub event_type: String,
    pub status: &'static str,
    pub reason: String,
    pub customer: String,
    pub attempts: i64,
    pub received: When,
    pub processed: Option<When>,
    pub payload: String,
    pub runs: Vec<RunLine>,
    pub replayable: bool,
    pub notice: Option<String>,
    /// The run a replay just started, to link to.
    pub new_run: Option<String>,
    pub error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    #[serde(default)]
    done: String,
    #[serde(default)]
    run: String,
}

/// `GET /projects/{id}/events/{event_id}`.
pub async fn detail(
    State(app): State<App>,
    signed_in: SignedIn,
    Path((id, event_id)): Path<(String, String)>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let (notice, new_run) = match q.done.as_str() {
        "replay" if q.run.starts_with("run_") => (
            Some("Replayed: the event is processed again and a new check run reads Stripe and probes the app.".to_string()),
            Some(q.run.chars().take(100).collect()),
        ),
        "replay" => (
            Some("Replayed: the event is processed again (the project has no app probe, so no check runs).".to_string()),
            None,
        ),
        _ => (None, None),
    };
    let page = event_page(
        &app,
        &signed_in,
        &membership,
        &event_id,
        notice,
        new_run,
        None,
    )
    .await?;
    Ok(page.into_response())
}

async fn event_page(
    app: &App,
    signed_in: &SignedIn,
    membership: &Membership,
    event_id: &str,
    notice: Option<String>,
    new_run: Option<String>,
    error: Option<String>,
) -> Result<EventPage, PageError> {
    let Some(found) = events::detail(app, &membership.project, event_id).await? else {
        return Err(PageError::NotFound(format!(
            "no event {:?} in this project",
            event_id.chars().take(100).collect::<String>()
        )));
    };
    let now = app.now_ms();
    let e = found.record;
    let text = String::from_utf8_lossy(&found.body);
    Ok(EventPage {
        chrome: Chrome::new(signed_in, Some(membership), "events"),
        status: e.status.as_str(),
        reason: e.reason.unwrap_or_default(),
        customer: e.customer.unwrap_or_default(),
        attempts: e.attempts,
        received: When::at(e.received_at, now),
        processed: When::maybe(e.processed_at, now),
        payload: view::pretty(Some(&text)),
        runs: found
            .runs
            .into_iter()
            .map(|r| RunLine {
                trigger: r.trigger.as_str(),
                status: r.status.as_str(),
                kind: r.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
                at: When::at(r.created_at, now),
                id: r.id,
            })
            .collect(),
        replayable: !matches!(e.status, EventStatus::Ignored | EventStatus::Processing),
        notice,
        new_run,
        error,
        event_type: e.event_type,
        id: e.event_id,
    })
}

#[derive(Deserialize)]
pub struct ReplayForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /projects/{id}/events/{event_id}/replay` (admin; `confirm=yes`):
/// processes the event again and shows it with a link to the new run.
pub async fn replay(
    State(app): State<App>,
    signed_in: SignedIn,
    Path((id, event_id)): Path<(String, String)>,
    Form(form): Form<ReplayForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Manage).await?;
    let refuse = |message: String| async {
        let page = event_page(
            &app,
            &signed_in,
            &membership,
            &event_id,
            None,
            None,
            Some(message),
        )
        .await?;
        Ok::<_, PageError>((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    if form.confirm != "yes" {
        return refuse(
            "tick the confirmation first: a replay reads Stripe and probes the app again".into(),
        )
        .await;
    }
    match events::replay(&app, &membership.project, &event_id, &signed_in.actor()).await {
        Ok(replayed) => {
            let mut to = format!(
                "/projects/{}/events/{}?done=replay",
                membership.project.id,
                view::encode(&event_id)
            );
            if let Some(run) = replayed.run_id {
                to.push_str(&format!("&run={run}"));
            }
            Ok(Redirect::to(&to).into_response())
        }
        Err(ReplayError::Store(e)) => Err(e.into()),
        Err(e @ ReplayError::NotReplayable(_)) => refuse(e.to_string()).await,
    }
}
