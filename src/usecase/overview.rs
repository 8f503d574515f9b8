//! A project at a glance: is Stripe connected and is its webhook arriving,
//! is the app probe set, what is open, how deep is the queue, how did the
//! last scan go.

use crate::{
    App,
    domain::{EventRecord, IncidentKind, Project, Scan},
    store::QueueDepth,
    usecase::{
        connection::{self, Connection},
        incidents,
        projects::SetupError,
    },
};

pub struct Glance {
    pub connection: Option<Connection>,
    pub last_event: Option<EventRecord>,
    /// When a webhook signature last matched one of the project's secrets.
    pub last_signature_match: Option<i64>,
    /// When a delivery last failed signature verification, if none has
    /// matched since: Stripe's deliveries are being refused.
    pub signature_refused: Option<i64>,
    pub probe_configured: bool,
    pub open_by_kind: Vec<(IncidentKind, i64)>,
    pub open_total: i64,
    pub queue: QueueDepth,
    pub last_scan: Option<Scan>,
}

pub async fn glance(app: &App, project: &Project) -> Result<Glance, SetupError> {
    let connection = connection::connection(app, project).await?;
    let last_signature_match = connection.as_ref().and_then(|c| {
        c.webhook_secrets
            .iter()
            .filter_map(|s| s.last_matched_at)
            .max()
    });
    let signature_refused = connection::refused_since_last_match(app, project)
        .await?
        .map(|(at, _)| at);
    let store = &app.store;
    let last_event = store
        .list_events(project.id.as_str(), 1)
        .await?
        .into_iter()
        .next();
    let counts = store.incident_counts(project.id.as_str()).await?;
    let open_by_kind = incidents::open_by_kind(&counts);
    Ok(Glance {
        open_total: open_by_kind.iter().map(|(_, n)| n).sum(),
        open_by_kind,
        probe_configured: store.probe_config(&project.id).await?.is_some(),
        queue: store.queue_depth(project.id.as_str()).await?,
        last_scan: store
            .list_scans(project.id.as_str(), 1)
            .await?
            .into_iter()
            .next(),
        connection,
        last_event,
        last_signature_match,
        signature_refused,
    })
}
