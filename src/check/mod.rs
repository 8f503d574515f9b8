//! Fulfillment checks as runs: Stripe state → expected access → app probe →
//! verdict. A mismatch after a webhook is re-probed with backoff until the
//! project's fulfillment deadline before it becomes an incident (the app's
//! own handler may still be working). Runs are stored, so a restart resumes
//! them; every attempt leaves evidence.

mod attempt;

use crate::{
    App,
    ids::ProjectId,
    store::{ClaimedItem, NewRun, Project, StoreError, Trigger},
    worker::Step,
};

/// Why a check cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no app probe is configured for this project (`parityrail probe set`)")]
    NoProbe,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// After a webhook sync: one check for the customer, however many events
/// the claim carried. A pending check for the same customer is extended
/// rather than duplicated; a redelivered event never creates a second run.
pub async fn after_sync(
    app: &App,
    project: &Project,
    customer_id: &str,
    items: &[ClaimedItem],
) -> Result<Option<String>, StoreError> {
    if app.store.probe_config(&project.id).await?.is_none() {
        return Ok(None);
    }
    let Some(newest) = items.iter().max_by_key(|i| (i.event_created, i.id)) else {
        return Ok(None);
    };
    let now = crate::now_ms();
    let deadline = (newest.event_created + project.fulfillment_deadline_secs) * 1000;
    if let Some((run_id, _)) = app
        .store
        .pending_run(project.id.as_str(), customer_id)
        .await?
    {
        app.store.extend_run(&run_id, deadline, now).await?;
        app.wake.notify_waiters();
        return Ok(Some(run_id));
    }
    let (run_id, _) = app
        .store
        .insert_run(&NewRun {
            project_id: project.id.as_str(),
            customer_id,
            trigger: Trigger::Webhook,
            external_id: Some(&newest.event_id),
            deadline,
            now,
        })
        .await?;
    app.wake.notify_waiters();
    Ok(Some(run_id))
}

/// Starts a manual, rerun or scan check now (deadline now: one verdict).
/// A rerun is idempotent: see [`rerun`].
pub async fn start(
    app: &App,
    project: &ProjectId,
    customer_id: &str,
    trigger: Trigger,
) -> Result<String, CheckError> {
    if trigger == Trigger::Rerun {
        return rerun(app, project, customer_id).await.map(|(id, _)| id);
    }
    if app.store.probe_config(project).await?.is_none() {
        return Err(CheckError::NoProbe);
    }
    let now = crate::now_ms();
    let (run_id, _) = app
        .store
        .insert_run(&NewRun {
            project_id: project.as_str(),
            customer_id,
            trigger,
            external_id: None,
            deadline: now,
            now,
        })
        .await?;
    app.wake.notify_waiters();
    Ok(run_id)
}

/// Reruns the customer's check now, or returns the rerun still pending for
/// that customer, so repeated requests never pile up runs: `(run id, created)`.
pub async fn rerun(
    app: &App,
    project: &ProjectId,
    customer_id: &str,
) -> Result<(String, bool), CheckError> {
    if app.store.probe_config(project).await?.is_none() {
        return Err(CheckError::NoProbe);
    }
    let (run_id, created) = app
        .store
        .insert_rerun(project.as_str(), customer_id, crate::now_ms())
        .await?;
    if created {
        app.wake.notify_waiters();
    }
    Ok((run_id, created))
}

/// Advances one due run by one probe attempt. `Idle` when none is due.
pub async fn step(app: &App) -> Result<Step, StoreError> {
    let now = crate::now_ms();
    let lease_until = now + app.config.lease.as_millis() as i64;
    let Some(run) = app.store.claim_due_run(now, lease_until).await? else {
        return Ok(Step::Idle);
    };
    attempt::run_attempt(app, &run).await?;
    Ok(Step::Processed)
}

/// Drives one run to its verdict now (CLI `check`): attempts until it is no
/// longer pending or `max_wait` passes. Returns the run as it ended.
pub async fn drive(
    app: &App,
    run_id: &str,
    max_wait: std::time::Duration,
) -> Result<Option<crate::store::Run>, StoreError> {
    let give_up = tokio::time::Instant::now() + max_wait;
    loop {
        let now = crate::now_ms();
        if let Some(run) = app.store.claim_run(run_id, now, now + 60_000).await? {
            attempt::run_attempt(app, &run).await?;
        }
        let run = app.store.run(run_id).await?;
        let pending = run.as_ref().is_some_and(|r| r.status == "pending");
        if !pending || tokio::time::Instant::now() >= give_up {
            return Ok(run);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
