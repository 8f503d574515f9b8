//! One unit of intake work: claim a customer's pending events under a
//! lease, read the customer's current state from Stripe (no transaction
//! open, the lease renewed meanwhile), then commit the state, the finished
//! work and the check it starts in one transaction — only while the lease
//! is still held.

use serde_json::json;

use super::Step;
use crate::{
    App,
    domain::{IncidentKind, Project},
    ids::CustomerId,
    lease::LeaseKeeper,
    store::{Claim, CustomerState, NewIncident, StoreError, SyncCommit},
    stripe::StripeError,
    vault::VaultError,
};

/// How a claim ended when it could not complete.
enum Failure {
    Transient {
        reason: String,
        retry_after: Option<std::time::Duration>,
    },
    Permanent(String),
}

/// Claims and processes one customer's pending work. `Idle` when none is due.
pub async fn step(app: &App, owner: &str) -> Result<Step, StoreError> {
    let now = app.now_ms();
    let lease = app.config.lease;
    let Some(claim) = app
        .store
        .claim(owner, now, now + lease.as_millis() as i64)
        .await?
    else {
        return Ok(Step::Idle);
    };
    let keeper = LeaseKeeper::start(lease, {
        let (app, items, owner) = (app.clone(), claim.items.clone(), owner.to_string());
        move || {
            let (app, items, owner) = (app.clone(), items.clone(), owner.clone());
            async move {
                let until = app.now_ms() + app.config.lease.as_millis() as i64;
                app.store.renew_claim(&items, &owner, until).await
            }
        }
    });
    let synced = tokio::select! {
        synced = sync_customer(app, &claim) => synced,
        // Another worker holds the items now: stop, its work stands.
        () = keeper.lost() => {
            tracing::warn!(project_id = %claim.project_id, customer = %claim.customer_id, "lease lost mid-sync");
            return Ok(Step::Processed);
        }
    };
    drop(keeper);
    let settled = match synced {
        Ok((state, project)) => {
            let commit = SyncCommit {
                state: &state,
                items: &claim.items,
                owner,
                now: app.now_ms(),
                check: if app.store.probe_config(&project.id).await?.is_some() {
                    crate::check::webhook_check(&project, &claim.items)
                } else {
                    None
                },
                drill: crate::check::drill_check(&claim.items),
            };
            match app.store.complete_sync(&commit).await? {
                Some(outcome) => {
                    if outcome.run_id.is_some()
                        || outcome.drill_run_id.is_some()
                        || !outcome.replay_runs.is_empty()
                    {
                        app.wake.notify_waiters();
                    }
                    tracing::info!(project_id = %claim.project_id, customer = %claim.customer_id,
                        events = claim.items.len(), subscriptions = state.subscriptions.len(),
                        run_id = ?outcome.run_id, "customer synced");
                    true
                }
                None => false,
            }
        }
        Err(Failure::Permanent(reason)) => {
            tracing::warn!(project_id = %claim.project_id, customer = %claim.customer_id, %reason, "dead-lettered");
            app.store
                .dead_letter(&claim.items, owner, app.now_ms(), &reason)
                .await?
        }
        Err(Failure::Transient {
            reason,
            retry_after,
        }) => retry_or_give_up(app, &claim, owner, reason, retry_after).await?,
    };
    if !settled {
        // Our lease ran out and another worker claimed the items: its
        // result stands, ours changed nothing.
        tracing::warn!(project_id = %claim.project_id, customer = %claim.customer_id,
            "lease lost before settling; nothing written");
    }
    Ok(Step::Processed)
}

async fn retry_or_give_up(
    app: &App,
    claim: &Claim,
    owner: &str,
    reason: String,
    retry_after: Option<std::time::Duration>,
) -> Result<bool, StoreError> {
    let attempts = claim.items.iter().map(|i| i.attempts).max().unwrap_or(1);
    let retry = u32::try_from((attempts - 1).max(0)).unwrap_or(u32::MAX);
    match app.retry.delay(retry, retry_after) {
        Some(delay) => {
            tracing::info!(project_id = %claim.project_id, customer = %claim.customer_id,
                %reason, attempts, ?delay, "will retry");
            let run_after = app.now_ms() + delay.as_millis() as i64;
            app.store
                .retry_later(&claim.items, owner, run_after, &reason)
                .await
        }
        None => {
            let reason = format!("gave up after {attempts} attempts: {reason}");
            tracing::warn!(project_id = %claim.project_id, customer = %claim.customer_id, %reason, "dead-lettered");
            app.store
                .dead_letter(&claim.items, owner, app.now_ms(), &reason)
                .await
        }
    }
}

async fn sync_customer(app: &App, claim: &Claim) -> Result<(CustomerState, Project), Failure> {
    let project_id = crate::ids::ProjectId::parse(&claim.project_id)
        .ok_or_else(|| Failure::Permanent(format!("invalid project id {}", claim.project_id)))?;
    let customer = CustomerId::parse(&claim.customer_id).ok_or_else(|| {
        Failure::Permanent("the event's customer is not a Stripe customer id".into())
    })?;
    let project = match app.store.project(&project_id).await {
        Ok(Some(project)) => project,
        Ok(None) => return Err(Failure::Permanent("project no longer exists".into())),
        Err(e) => return Err(transient(e.to_string(), None)),
    };
    let api_key = match app.vault.stripe_key(&app.store, &project).await {
        Ok(Some((key, _))) => key,
        Ok(None) => return Err(Failure::Permanent("project has no Stripe API key".into())),
        Err(VaultError::Store(e)) => return Err(transient(e.to_string(), None)),
        Err(e) => return Err(Failure::Permanent(e.to_string())),
    };
    let read_at = app.now_ms();
    let snapshot = match app
        .stripe
        .customer_snapshot(&api_key, &customer, project.use_entitlements, read_at)
        .await
    {
        Ok(snapshot) => snapshot,
        Err(e) => return Err(classify(app, &project, e).await),
    };
    let known = match app
        .store
        .customer_row(&claim.project_id, &claim.customer_id)
        .await
    {
        Ok(row) => row.and_then(|(user, _, _)| user),
        Err(e) => return Err(transient(e.to_string(), None)),
    };
    let state = CustomerState {
        project_id: claim.project_id.clone(),
        customer_id: claim.customer_id.clone(),
        app_user_id: snapshot.app_user(
            &project.user_metadata_key,
            project.require_mapping,
            known.as_deref(),
        ),
        deleted: snapshot.deleted,
        entitlements: snapshot.entitlements,
        subscriptions: snapshot.subscriptions,
        snapshot_at: snapshot.read_at_ms,
    };
    Ok((state, project))
}

fn transient(reason: String, retry_after: Option<std::time::Duration>) -> Failure {
    Failure::Transient {
        reason,
        retry_after,
    }
}

async fn classify(app: &App, project: &Project, err: StripeError) -> Failure {
    if err.is_auth() {
        // Retrying with a rejected key (or one lacking a permission) cannot
        // help; the events stay replayable once the key is fixed, and the
        // incident says what to fix — never access incidents for everyone.
        let mut details = json!({"message": err.to_string()});
        if let Some(permission) = err.missing_permission() {
            details["missing_permission"] = json!(permission);
        }
        let opened = app
            .store
            .open_incident(&NewIncident::for_project(
                project.id.as_str(),
                IncidentKind::StripeAuth,
                details,
                app.now_ms(),
            ))
            .await;
        if let Err(e) = opened {
            tracing::error!(error = %e, "cannot open stripe_auth incident");
        }
        return Failure::Permanent(format!("stripe_auth: {err}"));
    }
    if err.is_transient() {
        let retry_after = err.retry_after();
        return transient(err.to_string(), retry_after);
    }
    Failure::Permanent(err.to_string())
}
