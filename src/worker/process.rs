//! One unit of intake work: claim a customer's pending events, read the
//! customer's current state from Stripe (no transaction open), record it.

use serde_json::json;

use super::Step;
use crate::{
    App,
    ids::ProjectId,
    store::{Claim, CustomerState, IncidentKind, NewIncident, Project, StoreError},
    stripe::StripeError,
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
    let now = crate::now_ms();
    let lease_until = now + app.config.lease.as_millis() as i64;
    let Some(claim) = app.store.claim(owner, now, lease_until).await? else {
        return Ok(Step::Idle);
    };
    match sync_customer(app, &claim).await {
        Ok((state, project)) => {
            app.store
                .complete_sync(&state, &claim.items, crate::now_ms())
                .await?;
            crate::check::after_sync(app, &project, &claim.customer_id, &claim.items).await?;
            tracing::info!(project_id = %claim.project_id, customer = %claim.customer_id,
                events = claim.items.len(), subscriptions = state.subscriptions.len(), "customer synced");
        }
        Err(Failure::Permanent(reason)) => {
            tracing::warn!(project_id = %claim.project_id, customer = %claim.customer_id, %reason, "dead-lettered");
            app.store
                .dead_letter(&claim.items, crate::now_ms(), &reason)
                .await?;
        }
        Err(Failure::Transient {
            reason,
            retry_after,
        }) => {
            let attempts = claim.items.iter().map(|i| i.attempts).max().unwrap_or(1);
            match app.retry.next_delay(attempts, retry_after) {
                Some(delay) => {
                    tracing::info!(project_id = %claim.project_id, customer = %claim.customer_id,
                        %reason, attempts, ?delay, "will retry");
                    let run_after = crate::now_ms() + delay.as_millis() as i64;
                    app.store
                        .retry_later(&claim.items, run_after, &reason)
                        .await?;
                }
                None => {
                    let reason = format!("gave up after {attempts} attempts: {reason}");
                    tracing::warn!(project_id = %claim.project_id, customer = %claim.customer_id, %reason, "dead-lettered");
                    app.store
                        .dead_letter(&claim.items, crate::now_ms(), &reason)
                        .await?;
                }
            }
        }
    }
    Ok(Step::Processed)
}

async fn sync_customer(app: &App, claim: &Claim) -> Result<(CustomerState, Project), Failure> {
    let project_id = ProjectId::parse(&claim.project_id)
        .ok_or_else(|| Failure::Permanent(format!("invalid project id {}", claim.project_id)))?;
    let entry = match app.directory.get(&project_id, false).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return Err(Failure::Permanent("project no longer exists".into())),
        Err(e) => return Err(transient(e.to_string(), None)),
    };
    let (api_key, _mode) = match app.directory.api_key(&project_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(Failure::Permanent("project has no Stripe API key".into())),
        Err(e) => return Err(transient(e.to_string(), None)),
    };
    let snapshot = app
        .stripe
        .customer_snapshot(&api_key, &claim.customer_id)
        .await
        .map_err(|e| classify(app, claim, e))?;
    let project = &entry.project;
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
    Ok((state, project.clone()))
}

fn transient(reason: String, retry_after: Option<std::time::Duration>) -> Failure {
    Failure::Transient {
        reason,
        retry_after,
    }
}

fn classify(app: &App, claim: &Claim, err: StripeError) -> Failure {
    if err.is_auth() {
        // Retrying with a rejected key cannot help; the events stay replayable
        // once the key is fixed, and the incident says so.
        let store = app.store.clone();
        let project_id = claim.project_id.clone();
        let message = err.to_string();
        tokio::spawn(async move {
            let opened = store
                .open_incident(NewIncident {
                    project_id: &project_id,
                    kind: IncidentKind::StripeAuth,
                    customer_id: "",
                    event_id: None,
                    details: json!({"message": message}),
                    count: None,
                    now: crate::now_ms(),
                    evidence: Default::default(),
                })
                .await;
            if let Err(e) = opened {
                tracing::error!(error = %e, "cannot open stripe_auth incident");
            }
        });
        return Failure::Permanent(format!("stripe_auth: {err}"));
    }
    if err.is_transient() {
        let retry_after = err.retry_after();
        return transient(err.to_string(), retry_after);
    }
    Failure::Permanent(err.to_string())
}
