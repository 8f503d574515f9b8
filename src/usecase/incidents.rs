//! Incidents as people act on them (SPEC §6): the inbox, and acknowledge,
//! resolve, rerun, reconcile, export evidence.

use serde_json::{Value, json};

use crate::{
    App,
    check::{self, CheckError},
    domain::{Incident, IncidentKind, IncidentStatus, Project},
    ids::CustomerId,
    probe::ProbeError,
    rfc3339,
    store::{IncidentFilter, StoreError},
    usecase::accounts,
    vault::VaultError,
    views::{incident_json, run_with_steps_json, stored_json},
};

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
    NoCustomer { id: String, kind: &'static str },
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

/// An incident with the ids of the runs that prove it.
pub struct IncidentView {
    pub incident: Incident,
    pub runs: Vec<String>,
}

impl IncidentView {
    /// As `incidents list --json` and the API show it.
    pub fn json(&self) -> Value {
        incident_json(&self.incident, &self.runs)
    }

    /// The API's typed form of [`IncidentView::json`].
    pub fn view(&self) -> crate::views::IncidentView {
        crate::views::IncidentView::new(&self.incident, &self.runs)
    }
}

async fn view(app: &App, incident: Incident) -> Result<IncidentView, StoreError> {
    let runs = app.store.incident_runs(&incident.id).await?;
    Ok(IncidentView { incident, runs })
}

/// Every incident of the project, newest first.
pub async fn list(app: &App, project: &Project) -> Result<Vec<IncidentView>, StoreError> {
    let mut out = Vec::new();
    for incident in app.store.list_incidents(project.id.as_str()).await? {
        out.push(view(app, incident).await?);
    }
    Ok(out)
}

/// One incident of the project.
pub async fn get(app: &App, project: &Project, id: &str) -> Result<IncidentView, ActionError> {
    let incident = find(app, project, id).await?;
    Ok(view(app, incident).await?)
}

async fn find(app: &App, project: &Project, id: &str) -> Result<Incident, ActionError> {
    app.store
        .incident(project.id.as_str(), id)
        .await?
        .ok_or_else(|| ActionError::NotFound(id.chars().take(64).collect()))
}

/// Marks the incident as acknowledged (someone is on it) or resolved, and
/// returns it. A resolved incident stays resolved: a new mismatch opens a
/// new incident.
pub async fn set_status(
    app: &App,
    project: &Project,
    id: &str,
    status: IncidentStatus,
    actor: &str,
) -> Result<IncidentView, ActionError> {
    let incident = find(app, project, id).await?;
    if incident.is_resolved()
        || !app
            .store
            .set_incident_status(project.id.as_str(), id, status, app.now_ms())
            .await?
    {
        return Err(ActionError::AlreadyResolved(incident.id));
    }
    accounts::record(app, project, id, actor, status.as_str(), None).await?;
    get(app, project, id).await
}

/// Reruns the check of the incident's customer (idempotent: a rerun still
/// pending for that customer is returned). `(incident, run id, created)`.
pub async fn rerun(
    app: &App,
    project: &Project,
    id: &str,
    actor: &str,
) -> Result<(Incident, String, bool), ActionError> {
    let incident = find(app, project, id).await?;
    let Some(customer) = CustomerId::parse(&incident.customer_id) else {
        return Err(ActionError::NoCustomer {
            id: incident.id,
            kind: incident.kind.as_str(),
        });
    };
    let (run_id, created) = check::rerun(app, &project.id, &customer).await?;
    if created {
        accounts::record(app, project, id, actor, "rerun", Some(run_id.clone())).await?;
    }
    Ok((incident, run_id, created))
}

/// Asks the app's reconcile hook to set the customer's access to what is
/// expected: a signed POST of `{"customer","user","expected","incident","kind"}`.
/// Returns the app's (2xx) status.
pub async fn reconcile(
    app: &App,
    project: &Project,
    id: &str,
    actor: &str,
) -> Result<u16, ActionError> {
    let incident = find(app, project, id).await?;
    if incident.is_resolved() {
        return Err(ActionError::AlreadyResolved(incident.id));
    }
    if incident.customer_id.is_empty() {
        return Err(ActionError::NoCustomer {
            id: incident.id,
            kind: incident.kind.as_str(),
        });
    }
    let (Some(user), Some(expected)) = (&incident.app_user_id, &incident.expected) else {
        return Err(ActionError::NotReconcilable(incident.id));
    };
    let target = match app.vault.probe_target(&app.store, project).await {
        Ok(target) => target,
        Err(VaultError::Store(e)) => return Err(e.into()),
        Err(_) => return Err(ActionError::SecretUnavailable),
    };
    let Some((url, secret)) = target.and_then(|t| t.reconcile_url.map(|u| (u, t.secret))) else {
        return Err(ActionError::NoReconcileHook);
    };
    let body = json!({"customer": incident.customer_id, "user": user,
        "expected": stored_json(Some(expected)), "incident": incident.id, "kind": incident.kind});
    let status = app
        .probe
        .reconcile(&url, &secret, &body)
        .await
        .map_err(|e| ActionError::Hook(hook_failure(&e)))?;
    let detail = format!("the app answered {status}");
    accounts::record(app, project, id, actor, "reconcile", Some(detail)).await?;
    Ok(status)
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
pub async fn export(app: &App, project: &Project, id: &str) -> Result<Value, ActionError> {
    let view = get(app, project, id).await?;
    let mut proving = Vec::new();
    for run_id in &view.runs {
        proving.extend(app.store.run(run_id).await?);
    }
    proving.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let mut runs = Vec::with_capacity(proving.len());
    for run in &proving {
        runs.push(run_with_steps_json(
            run,
            &app.store.run_steps(&run.id).await?,
        ));
    }
    Ok(
        json!({"project": project.id, "exported_at": rfc3339(app.now_ms()),
        "incident": view.json(), "runs": runs}),
    )
}

/// One page of the incident inbox: the rows, the cursor of the next page,
/// and the count of each tab (status).
pub struct InboxPage {
    pub incidents: Vec<Incident>,
    pub next: Option<String>,
    pub by_status: Vec<(IncidentStatus, i64)>,
}

/// The inbox: incidents matching the filter, newest first, `limit` per page
/// after `cursor` (an unreadable cursor starts from the top).
pub async fn inbox(
    app: &App,
    project: &Project,
    mut filter: IncidentFilter,
    cursor: Option<&str>,
    limit: i64,
) -> Result<InboxPage, StoreError> {
    let limit = limit.clamp(1, 500);
    filter.before = cursor.and_then(|c| super::parse_cursor(c, "inc_"));
    let rows = app
        .store
        .incident_page(project.id.as_str(), &filter, limit + 1)
        .await?;
    let super::Page {
        items: incidents,
        next,
    } = super::page_of(rows, limit, |i| (i.last_seen, i.id.as_str()));
    let counts = app.store.incident_counts(project.id.as_str()).await?;
    let by_status = IncidentStatus::ALL
        .iter()
        .map(|s| {
            let n = counts.iter().filter(|c| c.0 == *s).map(|c| c.2).sum();
            (*s, n)
        })
        .collect();
    Ok(InboxPage {
        incidents,
        next,
        by_status,
    })
}

/// Incidents matching the filter a page at a time, each with the runs that
/// prove it (the API's list).
pub async fn page(
    app: &App,
    project: &Project,
    mut filter: IncidentFilter,
    cursor: Option<&str>,
    limit: i64,
) -> Result<super::Page<IncidentView>, StoreError> {
    let limit = limit.clamp(1, 1000);
    filter.before = cursor.and_then(|c| super::parse_cursor(c, "inc_"));
    let rows = app
        .store
        .incident_page(project.id.as_str(), &filter, limit + 1)
        .await?;
    let page = super::page_of(rows, limit, |i| (i.last_seen, i.id.as_str()));
    let mut items = Vec::with_capacity(page.items.len());
    for incident in page.items {
        items.push(view(app, incident).await?);
    }
    Ok(super::Page {
        items,
        next: page.next,
    })
}

/// Unresolved incidents per kind, from [`Store::incident_counts`]'s rows;
/// kinds with none are left out.
///
/// [`Store::incident_counts`]: crate::store::Store::incident_counts
pub fn open_by_kind(counts: &[(IncidentStatus, IncidentKind, i64)]) -> Vec<(IncidentKind, i64)> {
    IncidentKind::ALL
        .iter()
        .map(|k| {
            let n = counts
                .iter()
                .filter(|c| c.1 == *k && c.0 != IncidentStatus::Resolved)
                .map(|c| c.2)
                .sum();
            (*k, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}
