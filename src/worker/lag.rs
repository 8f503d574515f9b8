//! The lag sweeper: events unfinished past their project's threshold open a
//! `webhook_lag` incident per (project, customer); it resolves once they finish.

use std::collections::BTreeMap;

use serde_json::json;

use crate::{
    App,
    domain::IncidentKind,
    store::{NewIncident, StoreError},
};

/// One sweep; returns how many (project, customer) pairs are lagging.
pub async fn sweep(app: &App) -> Result<usize, StoreError> {
    let now = app.now_ms();
    let lagging = app.store.lagging_events(now).await?;
    let mut groups: BTreeMap<(String, String), Vec<_>> = BTreeMap::new();
    for event in lagging {
        groups
            .entry((event.project_id.clone(), event.customer_id.clone()))
            .or_default()
            .push(event);
    }
    for ((project_id, customer_id), events) in &groups {
        let oldest = &events[0];
        tracing::warn!(
            project_id,
            customer = customer_id,
            events = events.len(),
            "webhook lag"
        );
        app.store
            .open_incident(&NewIncident {
                project_id: project_id.clone(),
                kind: IncidentKind::WebhookLag,
                customer_id: customer_id.clone(),
                event_id: Some(oldest.event_id.clone()),
                details: json!({
                    "lagging_events": events.iter().map(|e| &e.event_id).collect::<Vec<_>>(),
                    "oldest_received_at": oldest.received_at,
                }),
                count: Some(events.len() as i64),
                now,
                evidence: Default::default(),
            })
            .await?;
    }
    let still: Vec<(String, String)> = groups.into_keys().collect();
    app.store
        .resolve_incidents_except(IncidentKind::WebhookLag, &still, now)
        .await?;
    Ok(still.len())
}
