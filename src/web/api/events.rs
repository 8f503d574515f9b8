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
use crate::{
    App,
    usecase::events::{self, ReplayError},
    views::event_json,
};

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
    let events = events::list(&app, &caller.project, limit).await?;
    Ok(Json(events.iter().map(event_json).collect()))
}

/// `POST /api/v1/projects/{id}/events/{event_id}/replay` → 202: the event is
/// processed again with a fresh attempt budget, and its sync starts a new
/// check run (`run_id`; `null` when the project has no app probe).
pub async fn replay(
    State(app): State<App>,
    caller: Authorized<Manage>,
    Path((_, event_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let replayed = events::replay(&app, &caller.project, &event_id, &caller.actor())
        .await
        .map_err(|e| match e {
            ReplayError::NotReplayable(_) => not_found(e.to_string()),
            ReplayError::Store(e) => e.into(),
        })?;
    tracing::info!(project_id = %caller.project.id, event_id, token_id = %caller.token_id, "event replayed over the API");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"replayed": event_id, "run_id": replayed.run_id})),
    ))
}
