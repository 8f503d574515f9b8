//! The webhook event log, and replay: an event processed again re-reads
//! Stripe and always creates a new check run (SPEC §6).

use crate::{
    App,
    domain::{EventRecord, Project, Run},
    store::{EventFilter, Replayed, StoreError},
};

use super::Page;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no replayable event {0} in this project (unknown, ignored, or being processed now)")]
    NotReplayable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Newest first.
pub async fn list(
    app: &App,
    project: &Project,
    limit: i64,
) -> Result<Vec<EventRecord>, StoreError> {
    app.store
        .list_events(project.id.as_str(), limit.clamp(1, 10_000))
        .await
}

/// The event log a page at a time, newest first, after `cursor` (an
/// unreadable cursor starts from the top).
pub async fn log(
    app: &App,
    project: &Project,
    mut filter: EventFilter,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<EventRecord>, StoreError> {
    let limit = limit.clamp(1, 1000);
    filter.before = cursor.and_then(|c| super::parse_cursor(c, "evt_"));
    let rows = app
        .store
        .event_page(project.id.as_str(), &filter, limit + 1)
        .await?;
    Ok(super::page_of(rows, limit, |e| {
        (e.received_at, e.event_id.as_str())
    }))
}

/// An event with its body as Stripe sent it and the runs that judged or
/// replayed it, newest first.
pub struct EventDetail {
    pub record: EventRecord,
    pub body: Vec<u8>,
    pub runs: Vec<Run>,
}

/// One event of the project; `None` when it has no such event.
pub async fn detail(
    app: &App,
    project: &Project,
    event_id: &str,
) -> Result<Option<EventDetail>, StoreError> {
    let pid = project.id.as_str();
    let Some(record) = app.store.event_record(pid, event_id).await? else {
        return Ok(None);
    };
    let body = app
        .store
        .event_body(pid, event_id)
        .await?
        .unwrap_or_default();
    let runs = app.store.event_runs(pid, event_id).await?;
    Ok(Some(EventDetail { record, body, runs }))
}

/// Queues the event again with a fresh attempt budget; its sync makes a
/// new `rerun` run due (when the project has an app probe to check with).
pub async fn replay(
    app: &App,
    project: &Project,
    event_id: &str,
    actor: &str,
) -> Result<Replayed, ReplayError> {
    let checkable = app.store.probe_config(&project.id).await?.is_some();
    let replayed = app
        .store
        .replay_event(project.id.as_str(), event_id, checkable, app.now_ms())
        .await?
        .ok_or_else(|| ReplayError::NotReplayable(event_id.chars().take(100).collect()))?;
    app.wake.notify_waiters();
    let detail = replayed.run_id.clone();
    super::accounts::record(app, project, event_id, actor, "replay", detail).await?;
    tracing::info!(project_id = %project.id, event_id, run_id = ?replayed.run_id, "event replayed");
    Ok(replayed)
}
