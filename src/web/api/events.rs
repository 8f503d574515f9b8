//! The webhook event log and replay.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ApiError, Authorized,
    auth::{Manage, Read},
    not_found, parse_limit, query_error,
};
use crate::{App, views::event_json};

#[derive(Deserialize)]
pub struct EventsQuery {
    limit: Option<String>,
}

/// `GET /api/v1/projects/{id}/events[?limit=]`, newest first (the shape of
/// `parityrail events list --json`).
pub async fn list(
    State(app): State<App>,
    caller: Authorized<Read>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let limit = parse_limit(query.limit.as_deref())?;
    let events = app
        .store
        .list_events(caller.project.id.as_str(), limit)
        .await?;
    Ok(Json(events.iter().map(event_json).collect()))
}

/// `POST /api/v1/projects/{id}/events/{event_id}/replay` → 202: the event is
/// processed again with a fresh attempt budget.
pub async fn replay(
    State(app): State<App>,
    caller: Authorized<Manage>,
    Path((_, event_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let project = &caller.project;
    if !app
        .store
        .replay_event(project.id.as_str(), &event_id, crate::now_ms())
        .await?
    {
        return Err(not_found(format!(
            "no replayable event {event_id} in this project (unknown, ignored, or being processed now)"
        )));
    }
    app.wake.notify_waiters();
    tracing::info!(project_id = %project.id, event_id, token_id = %caller.token_id, "event replayed over the API");
    Ok((StatusCode::ACCEPTED, Json(json!({"replayed": event_id}))))
}
