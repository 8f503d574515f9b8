//! Incidents as people see and act on them: retry guidance per kind, the
//! JSON view shared by the CLI and the API, and the actions of SPEC §6
//! (acknowledge, resolve, rerun, reconcile, export evidence).

use serde_json::{Value, json};

use crate::{
    App,
    check::{self, CheckError},
    config::Secret,
    ids::ProjectId,
    ingress::directory::secret_context,
    probe::ProbeError,
    rfc3339,
    store::{Incident, IncidentKind, IncidentStatus, Store, StoreError},
    views::{run_with_steps_json, stored_json},
};

/// Concrete retry guidance for an incident kind (SPEC §6).
pub fn guidance(kind: &str) -> &'static str {
    match kind {
        k if k == IncidentKind::Unfulfilled.as_str() => {
            "The customer paid but the app does not grant the expected access. Check the app's Stripe webhook \
             handler logs for this event id at the deploy SHA shown, fix or re-run the handler (or use Reconcile), \
             then Rerun the check to confirm."
        }
        k if k == IncidentKind::UnpaidAccess.as_str() => {
            "The app grants access Stripe does not pay for (cancelled, downgraded or never paid). Revoke the extra \
             access in the app or confirm the customer's subscription in Stripe, then Rerun the check."
        }
        k if k == IncidentKind::ProbeFailed.as_str() => {
            "ParityRail could not read access from the app probe. Check the probe URL, that the app is up, and that \
             it verifies ParityRail-Signature with the configured secret; checks retry on their own and this \
             incident resolves on the next successful probe."
        }
        k if k == IncidentKind::WebhookLag.as_str() => {
            "Events are stored but not processed within the lag threshold. Check that `parityrail serve` workers \
             are running and that Stripe's API is reachable; events are re-queued on redelivery and can be replayed \
             with `parityrail events replay`."
        }
        k if k == IncidentKind::UnmappedCustomer.as_str() => {
            "The Stripe customer cannot be mapped to an app user. Set the user-id metadata key (default \
             parityrail_user_id) on the subscription or customer in Stripe, then Rerun."
        }
        k if k == IncidentKind::StripeAuth.as_str() => {
            "Stripe rejected the API key (revoked, expired or wrong mode). Reconnect with a valid key \
             (`parityrail stripe connect`), then replay dead events with `parityrail events replay`."
        }
        _ => "Investigate the evidence, then Rerun the check.",
    }
}

/// Why an incident action cannot be done. Messages are shown to users as
/// they are and never carry secrets.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no incident {0} in this project")]
    NotFound(String),
    #[error("incident {0} is already resolved")]
    AlreadyResolved(String),
    #[error(
        "incident {id} ({kind}) concerns the whole project, not one customer: there is no customer to \
         check; it resolves on its own once the cause is fixed"
    )]
    NoCustomer { id: String, kind: String },
    #[error(
        "incident {0} has no app user and expected access to reconcile (only unfulfilled and unpaid_access \
         incidents of a mapped customer can be reconciled)"
    )]
    NotReconcilable(String),
    #[error(
        "no reconcile hook is configured for this project (`parityrail probe set … --reconcile-url URL`)"
    )]
    NoReconcileHook,
    #[error(
        "the probe secret cannot be read: PARITYRAIL_MASTER_KEY is missing or not the key it was sealed with"
    )]
    SecretUnavailable,
    #[error("the app's reconcile hook failed: {0}")]
    Hook(String),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An incident as the CLI's `incidents list --json` and the API show it.
pub async fn incident_json(store: &Store, i: &Incident) -> Result<Value, StoreError> {
    let runs = store.incident_runs(&i.id).await?;
    let customer = if i.customer_id.is_empty() {
        Value::Null
    } else {
        json!(i.customer_id)
    };
    Ok(
        json!({"id": i.id, "kind": i.kind, "status": i.status, "customer": customer,
        "user": i.app_user_id, "subscription": i.subscription_id,
        "subscription_status": i.subscription_status,
        "expected": stored_json(i.expected.as_deref()), "observed": stored_json(i.observed.as_deref()),
        "deploy_sha": i.deploy_sha, "event_id": i.event_id, "first_seen": rfc3339(i.first_seen),
        "last_seen": rfc3339(i.last_seen), "count": i.count,
        "guidance": guidance(&i.kind), "runs": runs,
        "details": stored_json(Some(&i.details))}),
    )
}

async fn find(store: &Store, project: &ProjectId, id: &str) -> Result<Incident, ActionError> {
    store
        .incident(project.as_str(), id)
        .await?
        .ok_or_else(|| ActionError::NotFound(id.to_string()))
}

/// Marks the incident as acknowledged (someone is on it) or resolved, and
/// returns it. A resolved incident stays resolved: a new mismatch opens a
/// new incident.
pub async fn set_status(
    store: &Store,
    project: &ProjectId,
    id: &str,
    status: IncidentStatus,
) -> Result<Incident, ActionError> {
    let incident = find(store, project, id).await?;
    if incident.status == "resolved"
        || !store
            .set_incident_status(project.as_str(), id, status, crate::now_ms())
            .await?
    {
        return Err(ActionError::AlreadyResolved(id.to_string()));
    }
    find(store, project, id).await
}

/// Reruns the check of the incident's customer (idempotent: a rerun still
/// pending for that customer is returned). `(incident, run id, created)`.
pub async fn rerun(
    app: &App,
    project: &ProjectId,
    id: &str,
) -> Result<(Incident, String, bool), ActionError> {
    let incident = find(&app.store, project, id).await?;
    if incident.customer_id.is_empty() {
        return Err(ActionError::NoCustomer {
            id: incident.id,
            kind: incident.kind,
        });
    }
    let (run_id, created) = check::rerun(app, project, &incident.customer_id).await?;
    Ok((incident, run_id, created))
}

/// Asks the app's reconcile hook to set the customer's access to what is
/// expected: a signed POST of `{"customer","user","expected","incident","kind"}`.
/// Returns the app's (2xx) status.
pub async fn reconcile(app: &App, project: &ProjectId, id: &str) -> Result<u16, ActionError> {
    let incident = find(&app.store, project, id).await?;
    if incident.status == "resolved" {
        return Err(ActionError::AlreadyResolved(incident.id));
    }
    if incident.customer_id.is_empty() {
        return Err(ActionError::NoCustomer {
            id: incident.id,
            kind: incident.kind,
        });
    }
    let (Some(user), Some(expected)) = (&incident.app_user_id, &incident.expected) else {
        return Err(ActionError::NotReconcilable(incident.id));
    };
    let probe = app.store.probe_config(project).await?;
    let Some((url, sealed)) = probe.and_then(|p| p.reconcile_url.map(|u| (u, p.secret_sealed)))
    else {
        return Err(ActionError::NoReconcileHook);
    };
    let secret = app
        .config
        .master_key
        .as_ref()
        .and_then(|key| {
            key.open(&secret_context("probe_secret", project), &sealed)
                .ok()
        })
        .ok_or(ActionError::SecretUnavailable)?;
    let body = json!({"customer": incident.customer_id, "user": user,
        "expected": stored_json(Some(expected)), "incident": incident.id, "kind": incident.kind});
    app.probe
        .reconcile(&url, &Secret::new(secret), &body)
        .await
        .map_err(|e| ActionError::Hook(hook_failure(&e)))
}

/// What a user may be told about a failed hook call: the transport error
/// of the HTTP client can quote the URL, which may carry credentials.
fn hook_failure(err: &ProbeError) -> String {
    match err {
        ProbeError::Transport(_) => "the app is unreachable".into(),
        other => other.to_string(),
    }
}

/// The evidence of an incident as one JSON document: the incident, every
/// run that proves it with its steps, and the project.
pub async fn export(store: &Store, project: &ProjectId, id: &str) -> Result<Value, ActionError> {
    let incident = find(store, project, id).await?;
    let mut proving = Vec::new();
    for run_id in store.incident_runs(&incident.id).await? {
        proving.extend(store.run(&run_id).await?);
    }
    proving.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let mut runs = Vec::with_capacity(proving.len());
    for run in &proving {
        runs.push(run_with_steps_json(run, &store.run_steps(&run.id).await?));
    }
    Ok(
        json!({"project": project, "exported_at": rfc3339(crate::now_ms()),
        "incident": incident_json(store, &incident).await?, "runs": runs}),
    )
}
