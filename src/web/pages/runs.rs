//! The run history (filters by customer and verdict in the query string,
//! keyset pages), a run's detail with every evidence step, and "Check a
//! customer", which starts a manual check and shows its run.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::Value;

use super::{
    PageError, SignedIn,
    view::{self, Chrome, DiffRow, When},
};
use crate::{
    App,
    domain::{Run, RunStatus, RunStep, StepName},
    store::RunFilter,
    usecase::{
        accounts::{self, Membership},
        checks::{self, StartError},
        tokens::Action,
    },
};

const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct HistoryQuery {
    #[serde(default)]
    customer: String,
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    after: String,
}

pub struct RunRow {
    pub id: String,
    pub trigger: &'static str,
    pub status: &'static str,
    pub kind: String,
    pub customer: String,
    pub expected: String,
    pub observed: String,
    pub attempts: i64,
    pub summary: String,
    pub at: When,
}

#[derive(Template, WebTemplate)]
#[template(path = "runs.html")]
pub struct HistoryPage {
    pub chrome: Chrome,
    pub verdicts: Vec<&'static str>,
    pub customer: String,
    pub verdict: String,
    pub rows: Vec<RunRow>,
    pub next: Option<String>,
    /// "Check a customer": what was typed and why it was refused.
    pub check_customer: String,
    pub error: Option<String>,
}

/// `GET /projects/{id}/runs?customer=&verdict=&after=`.
pub async fn history(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let page = history_page(&app, &signed_in, &membership, &q, String::new(), None).await?;
    Ok(page.into_response())
}

async fn history_page(
    app: &App,
    signed_in: &SignedIn,
    membership: &Membership,
    q: &HistoryQuery,
    check_customer: String,
    error: Option<String>,
) -> Result<HistoryPage, PageError> {
    let customer = q.customer.trim();
    let verdict = RunStatus::parse(q.verdict.trim());
    let filter = RunFilter {
        customer: (!customer.is_empty()).then(|| customer.to_string()),
        status: verdict,
        before: None,
    };
    let after = (!q.after.is_empty()).then_some(q.after.as_str());
    let page = checks::history(app, &membership.project, filter, after, PAGE).await?;
    let now = app.now_ms();
    let next = page.next.map(|cursor| {
        let mut href = format!("/projects/{}/runs?", membership.project.id);
        if !customer.is_empty() {
            href.push_str(&format!("customer={}&", view::encode(customer)));
        }
        if let Some(v) = verdict {
            href.push_str(&format!("verdict={}&", v.as_str()));
        }
        href.push_str(&format!("after={}", view::encode(&cursor)));
        href
    });
    Ok(HistoryPage {
        chrome: Chrome::new(signed_in, Some(membership), "runs"),
        verdicts: RunStatus::ALL.iter().map(|s| s.as_str()).collect(),
        customer: customer.to_string(),
        verdict: verdict.map(|v| v.as_str().to_string()).unwrap_or_default(),
        rows: page.items.into_iter().map(|r| row(r, now)).collect(),
        next,
        check_customer,
        error,
    })
}

fn row(r: Run, now: i64) -> RunRow {
    RunRow {
        trigger: r.trigger.as_str(),
        status: r.status.as_str(),
        kind: r.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
        expected: view::access_line(r.expected.as_deref()),
        observed: view::access_line(r.observed.as_deref()),
        attempts: r.probe_attempts,
        summary: r.summary.unwrap_or_default(),
        at: When::at(r.created_at, now),
        customer: r.customer_id,
        id: r.id,
    }
}

#[derive(Deserialize)]
pub struct CheckForm {
    #[serde(default)]
    customer: String,
}

/// `POST /projects/{id}/runs` (`customer`): starts a manual check (viewers
/// may) and shows its run; a bad customer id comes back beside the field.
pub async fn start(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CheckForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Check).await?;
    match checks::start(&app, &membership.project, &form.customer).await {
        Ok(run_id) => Ok(Redirect::to(&format!(
            "/projects/{}/runs/{run_id}",
            membership.project.id
        ))
        .into_response()),
        Err(e) => {
            let status = match e {
                StartError::InvalidCustomer(_) => StatusCode::UNPROCESSABLE_ENTITY,
                StartError::Check(_) => StatusCode::CONFLICT,
            };
            let typed: String = form.customer.chars().take(100).collect();
            let q = HistoryQuery::default();
            let page = history_page(
                &app,
                &signed_in,
                &membership,
                &q,
                typed,
                Some(e.to_string()),
            )
            .await?;
            Ok((status, page).into_response())
        }
    }
}

pub struct StepLine {
    pub name: &'static str,
    /// One line a person reads: "attempt 2 · HTTP 200 · 31 ms".
    pub headline: String,
    pub detail: String,
    pub at: When,
}

#[derive(Template, WebTemplate)]
#[template(path = "run.html")]
pub struct RunPage {
    pub chrome: Chrome,
    pub id: String,
    pub trigger: &'static str,
    pub status: &'static str,
    pub kind: String,
    pub customer: String,
    pub user: String,
    pub event_id: String,
    pub deploy_sha: String,
    pub summary: String,
    pub attempts: i64,
    pub created: When,
    pub finished: Option<When>,
    pub deadline: When,
    pub diff: Vec<DiffRow>,
    pub steps: Vec<StepLine>,
}

/// `GET /projects/{id}/runs/{run_id}`.
pub async fn detail(
    State(app): State<App>,
    signed_in: SignedIn,
    Path((id, run_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Read).await?;
    let Some((run, steps)) = checks::run(&app, &membership.project, &run_id).await? else {
        return Err(PageError::NotFound(format!(
            "no run {run_id:?} in this project"
        )));
    };
    let now = app.now_ms();
    let page = RunPage {
        chrome: Chrome::new(&signed_in, Some(&membership), "runs"),
        trigger: run.trigger.as_str(),
        status: run.status.as_str(),
        kind: run.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
        user: run.app_user_id.clone().unwrap_or_default(),
        event_id: run.event_id.clone().unwrap_or_default(),
        deploy_sha: run.deploy_sha.clone().unwrap_or_default(),
        summary: run.summary.clone().unwrap_or_default(),
        attempts: run.probe_attempts,
        created: When::at(run.created_at, now),
        finished: When::maybe(run.finished_at, now),
        deadline: When::at(run.deadline, now),
        diff: match run.expected {
            Some(_) => view::access_diff(run.expected.as_deref(), run.observed.as_deref()),
            None => Vec::new(),
        },
        steps: steps.into_iter().map(|s| step_line(s, now)).collect(),
        customer: run.customer_id,
        id: run.id,
    };
    Ok(page.into_response())
}

fn step_line(step: RunStep, now: i64) -> StepLine {
    let v: Value = serde_json::from_str(&step.detail).unwrap_or(Value::Null);
    let headline = match step.step {
        StepName::StripeSnapshot => {
            let n = v["subscriptions"].as_array().map_or(0, Vec::len);
            format!("{n} subscription(s) read from Stripe")
        }
        StepName::Expected => format!("expected: {}", view::access_line(Some(&step.detail))),
        StepName::Probe => {
            let mut parts = vec![format!("attempt {}", v["attempt"].as_i64().unwrap_or(0))];
            match v["http_status"].as_u64() {
                Some(status) => parts.push(format!("HTTP {status}")),
                None => parts.push("no answer".into()),
            }
            if let Some(ms) = v["latency_ms"].as_u64() {
                parts.push(format!("{ms} ms"));
            }
            if let Some(error) = v["error"].as_str() {
                parts.push(error.to_string());
            } else if let Some(observed) = v.get("observed") {
                parts.push(format!(
                    "observed: {}",
                    view::access_line(Some(&observed.to_string()))
                ));
            }
            parts.join(" · ")
        }
        StepName::Verdict => {
            let verdict = v["verdict"].as_str().unwrap_or("?");
            let kinds: Vec<&str> = v["kinds"]
                .as_array()
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut line = verdict.to_string();
            if !kinds.is_empty() {
                line.push_str(&format!(" ({})", kinds.join(", ")));
            }
            if let Some(summary) = v["summary"].as_str() {
                line.push_str(&format!(": {summary}"));
            }
            line
        }
    };
    StepLine {
        name: step.step.as_str(),
        headline,
        detail: view::pretty(Some(&step.detail)),
        at: When::at(step.at, now),
    }
}
