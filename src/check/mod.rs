//! Fulfillment checks as runs: Stripe state → expected access → app probe →
//! verdict. A mismatch after a webhook is re-probed with backoff until the
//! project's fulfillment deadline before it becomes an incident (the app's
//! own handler may still be working). Runs are stored, so a restart resumes
//! them; every attempt leaves evidence.
//!
//! Each attempt re-derives expected access from the stored state and is
//! settled only for the run's generation it read: a newer event that
//! extends a pending run (in the same transaction as its sync) makes the
//! older attempt's verdict void, so newer state is always judged.

mod attempt;
mod evidence;

use std::time::Duration;

use crate::{
    App,
    domain::{Project, Run, Trigger},
    ids::{CustomerId, ProjectId},
    lease::LeaseKeeper,
    store::{ClaimedItem, NewRun, StoreError, WebhookCheck},
};

/// Why a check cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no app probe is configured for this project (`parityrail probe set`)")]
    NoProbe,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The check a webhook sync starts (or extends) for the claim's newest
/// event; `None` when every item is a replay (each replay has its own run).
pub fn webhook_check<'a>(project: &Project, items: &'a [ClaimedItem]) -> Option<WebhookCheck<'a>> {
    let newest = items
        .iter()
        .filter(|i| i.replay_run_id.is_none() && !crate::domain::is_drill_event(&i.event_id))
        .max_by_key(|i| (i.event_created, i.id))?;
    Some(WebhookCheck {
        event_id: &newest.event_id,
        deadline: (newest.event_created + project.fulfillment_deadline_secs) * 1000,
    })
}

/// The drill run a claim starts when it holds a drill's event (SPEC §8b):
/// its own run (trigger `drill`), never merged with the customer's real
/// check, judged at once (the drill's expected access is made to differ).
pub fn drill_check(items: &[ClaimedItem]) -> Option<WebhookCheck<'_>> {
    let drill = items
        .iter()
        .filter(|i| i.replay_run_id.is_none() && crate::domain::is_drill_event(&i.event_id))
        .max_by_key(|i| (i.event_created, i.id))?;
    Some(WebhookCheck {
        event_id: &drill.event_id,
        deadline: drill.event_created * 1000,
    })
}

/// The feature a drill expects, which no app grants: the drill's check
/// must find it missing, so monitoring has to open an incident.
pub const DRILL_FEATURE: &str = "parityrail_drill";

/// A drill's expected access: what Stripe says, plus [`DRILL_FEATURE`].
pub(crate) fn drill_expectation(expected: &mut crate::access::ExpectedAccess) {
    expected.access.active = true;
    expected.access.features.insert(DRILL_FEATURE.to_string());
}

/// Starts a manual or scan check now (deadline now: one verdict). It reads
/// Stripe before probing. A rerun goes through [`rerun`].
pub async fn start(
    app: &App,
    project: &ProjectId,
    customer: &CustomerId,
    trigger: Trigger,
    external_id: Option<&str>,
) -> Result<(String, bool), CheckError> {
    if app.store.probe_config(project).await?.is_none() {
        return Err(CheckError::NoProbe);
    }
    let now = app.now_ms();
    let (run_id, created) = app
        .store
        .insert_run(&NewRun {
            project_id: project.as_str(),
            customer_id: customer.as_str(),
            trigger,
            external_id,
            event_id: None,
            deadline: now,
            now,
            needs_sync: true,
        })
        .await?;
    app.wake.notify_waiters();
    Ok((run_id, created))
}

/// Reruns the customer's check now, or returns the rerun still pending for
/// that customer, so repeated requests never pile up runs: `(run id, created)`.
pub async fn rerun(
    app: &App,
    project: &ProjectId,
    customer: &CustomerId,
) -> Result<(String, bool), CheckError> {
    if app.store.probe_config(project).await?.is_none() {
        return Err(CheckError::NoProbe);
    }
    let (run_id, created) = app
        .store
        .insert_rerun(project.as_str(), customer.as_str(), app.now_ms())
        .await?;
    if created {
        app.wake.notify_waiters();
    }
    Ok((run_id, created))
}

/// Advances one due run by one attempt, under a lease held by `owner`;
/// false when none is due. The worker loop drives this.
pub async fn advance(app: &App, owner: &str) -> Result<bool, StoreError> {
    let now = app.now_ms();
    let lease_until = now + app.config.lease.as_millis() as i64;
    let Some(run) = app.store.claim_due_run(owner, now, lease_until).await? else {
        return Ok(false);
    };
    attempt_leased(app, &run, owner).await?;
    Ok(true)
}

/// One attempt with its lease renewed while the network calls run.
async fn attempt_leased(app: &App, run: &Run, owner: &str) -> Result<(), StoreError> {
    let keeper = LeaseKeeper::start(app.config.lease, {
        let (app, id, owner) = (app.clone(), run.id.clone(), owner.to_string());
        move || {
            let (app, id, owner) = (app.clone(), id.clone(), owner.clone());
            async move {
                let until = app.now_ms() + app.config.lease.as_millis() as i64;
                app.store.renew_run_lease(&id, &owner, until).await
            }
        }
    });
    let settlement = attempt::attempt(app, run, owner).await?;
    drop(keeper);
    if !app.store.settle_run(&settlement).await? {
        // A newer event moved the run on (or another worker took it over):
        // this attempt judged old state, and its verdict is void.
        tracing::info!(run_id = %run.id, generation = run.generation, "attempt superseded; run due again");
        app.store.release_run(&run.id, owner).await?;
        app.wake.notify_waiters();
    }
    Ok(())
}

/// Drives one run to its verdict now (CLI `check`, a scan's confirmation):
/// attempts until it is no longer pending or `max_wait` passes. Returns the
/// run as it ended.
pub async fn drive(app: &App, run_id: &str, max_wait: Duration) -> Result<Option<Run>, StoreError> {
    let owner = crate::ids::worker_tag(0);
    let give_up = tokio::time::Instant::now() + max_wait;
    loop {
        let now = app.now_ms();
        let lease_until = now + app.config.lease.as_millis() as i64;
        if let Some(run) = app
            .store
            .claim_run(run_id, &owner, now, lease_until)
            .await?
        {
            attempt_leased(app, &run, &owner).await?;
        }
        let run = app.store.run(run_id).await?;
        let pending = run.as_ref().is_some_and(Run::is_pending);
        if !pending || tokio::time::Instant::now() >= give_up {
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
