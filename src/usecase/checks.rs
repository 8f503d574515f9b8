//! Checks: start one for a customer, read runs with their evidence.

use std::time::Duration;

use crate::{
    App,
    check::{self, CheckError},
    domain::{Project, Run, RunStep, Trigger},
    ids::CustomerId,
    store::{RunFilter, StoreError},
};

use super::Page;

/// Why a check request was refused.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0:?} is not a Stripe customer id (cus_ followed by letters and digits)")]
    InvalidCustomer(String),
    #[error(transparent)]
    Check(#[from] CheckError),
}

/// A customer id as a user typed it, validated.
pub fn customer(raw: &str) -> Result<CustomerId, StartError> {
    let raw = raw.trim();
    CustomerId::parse(raw)
        .ok_or_else(|| StartError::InvalidCustomer(raw.chars().take(64).collect()))
}

/// Starts a manual check of one customer; the workers (or [`drive`]) carry
/// it to its verdict.
pub async fn start(app: &App, project: &Project, customer_raw: &str) -> Result<String, StartError> {
    let customer = customer(customer_raw)?;
    let (run_id, _) = check::start(app, &project.id, &customer, Trigger::Manual, None).await?;
    Ok(run_id)
}

/// Carries a run to its verdict here (waiting at most `max_wait`).
pub async fn drive(app: &App, run_id: &str, max_wait: Duration) -> Result<Option<Run>, StoreError> {
    check::drive(app, run_id, max_wait).await
}

/// Newest first; `customer` narrows to one customer.
pub async fn runs(
    app: &App,
    project: &Project,
    customer: Option<&str>,
    limit: i64,
) -> Result<Vec<Run>, StoreError> {
    app.store
        .list_runs(project.id.as_str(), customer, limit)
        .await
}

/// The run history a page at a time, newest first, after `cursor` (an
/// unreadable cursor starts from the top).
pub async fn history(
    app: &App,
    project: &Project,
    mut filter: RunFilter,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<Run>, StoreError> {
    let limit = limit.clamp(1, 1000);
    filter.before = cursor.and_then(|c| super::parse_cursor(c, "run_"));
    let rows = app
        .store
        .run_page(project.id.as_str(), &filter, limit + 1)
        .await?;
    Ok(super::page_of(rows, limit, |r| {
        (r.created_at, r.id.as_str())
    }))
}

/// A run of the project with every step of its evidence; `None` when the
/// project has no such run.
pub async fn run(
    app: &App,
    project: &Project,
    run_id: &str,
) -> Result<Option<(Run, Vec<RunStep>)>, StoreError> {
    let Some(run) = app
        .store
        .run(run_id)
        .await?
        .filter(|r| r.project_id == project.id)
    else {
        return Ok(None);
    };
    let steps = app.store.run_steps(&run.id).await?;
    Ok(Some((run, steps)))
}
