//! The webhook event log, and replay: an event processed again re-reads
//! Stripe and always creates a new check run (SPEC §6).

use crate::{
    App,
    domain::{EventRecord, Project},
    store::{Replayed, StoreError},
};

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
