//! Scans: the running one with its progress (the page refreshes itself
//! while it runs, without script), the summaries of past ones, and "Scan
//! now", which starts one or joins the one running.

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
    view::{Chrome, When},
};
use crate::{
    App,
    domain::{Scan, ScanStatus, ScanTrigger},
    scan::ScanError,
    usecase::{
        accounts::{self, Membership},
        scans,
        tokens::Action,
    },
};

pub struct ScanRow {
    pub id: String,
    pub trigger: &'static str,
    pub status: &'static str,
    /// "reading Stripe" or "asking the app", while it runs.
    pub phase: &'static str,
    pub subscriptions: i64,
    pub checked: i64,
    pub unchecked: i64,
    /// "unfulfilled 2 · unpaid_access 1", or "none".
    pub mismatches: String,
    pub stripe_requests: i64,
    pub probe_requests: i64,
    pub error: String,
    pub started: When,
    pub took: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "scans.html")]
pub struct ScansPage {
    pub chrome: Chrome,
    pub running: Option<ScanRow>,
    pub past: Vec<ScanRow>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ScansQuery {
    #[serde(default)]
    done: String,
}

/// `GET /projects/{id}/scans`.
pub async fn list(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<ScansQuery>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let notice = match q.done.as_str() {
        "started" => Some("Scan started.".to_string()),
        "joined" => Some("A scan was already running; this is it.".to_string()),
        _ => None,
    };
    let page = scans_page(&app, &signed_in, &membership, notice, None).await?;
    Ok(page.into_response())
}

async fn scans_page(
    app: &App,
    signed_in: &SignedIn,
    membership: &Membership,
    notice: Option<String>,
    error: Option<String>,
) -> Result<ScansPage, PageError> {
    let now = app.now_ms();
    let mut running = None;
    let mut past = Vec::new();
    for scan in scans::list(app, &membership.project, 50).await? {
        let row = scan_row(scan, now);
        if row.status == ScanStatus::Running.as_str() && running.is_none() {
            running = Some(row);
        } else {
            past.push(row);
        }
    }
    Ok(ScansPage {
        chrome: Chrome::new(signed_in, Some(membership), "scans"),
        running,
        past,
        notice,
        error,
    })
}

fn scan_row(s: Scan, now: i64) -> ScanRow {
    let mismatches: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&s.mismatches).unwrap_or_default();
    let mismatches: Vec<String> = mismatches
        .iter()
        .filter(|(_, n)| n.as_i64().unwrap_or(0) > 0)
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    let end = s.finished_at.unwrap_or(now);
    ScanRow {
        trigger: s.trigger.as_str(),
        status: s.status.as_str(),
        phase: if s.stripe_done {
            "asking the app"
        } else {
            "reading Stripe"
        },
        subscriptions: s.subscriptions_seen,
        checked: s.customers_checked,
        unchecked: s.customers_unchecked,
        mismatches: if mismatches.is_empty() {
            "none".into()
        } else {
            mismatches.join(" · ")
        },
        stripe_requests: s.stripe_requests,
        probe_requests: s.probe_requests,
        error: s.error.unwrap_or_default(),
        started: When::at(s.started_at, now),
        took: took(end - s.started_at),
        id: s.id,
    }
}

/// "42 s", "3 min 5 s", "1 h 2 min".
fn took(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// `POST /projects/{id}/scans`: starts a scan (viewers may, like a
/// check), or joins the one running.
pub async fn start(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Check).await?;
    match scans::start(&app, &membership.project, ScanTrigger::Manual).await {
        Ok(started) => {
            let done = if started.created { "started" } else { "joined" };
            Ok(Redirect::to(&format!(
                "/projects/{}/scans?done={done}",
                membership.project.id
            ))
            .into_response())
        }
        Err(ScanError::Store(e)) => Err(e.into()),
        Err(e) => {
            let message = format!("the scan could not start: {e}");
            let page = scans_page(&app, &signed_in, &membership, None, Some(message)).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
    }
}
