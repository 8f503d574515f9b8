//! The webhook event log, one event with its payload and runs, and replay.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, Authorized, ErrorBody, List,
    auth::{Manage, Read},
    not_found, parse_cursor, parse_filter, parse_limit, query_error, text_filter,
};
use crate::{
    App,
    domain::EventStatus,
    store::EventFilter,
    usecase::events::{self, ReplayError},
    views::{EventView, RunView},
};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with this status.
    #[param(value_type = Option<EventStatus>)]
    status: Option<String>,
    /// Only this Stripe event type, e.g. `customer.subscription.updated`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Events per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// List webhook events
///
/// Newest first, a page at a time (each entry has the shape of
/// `parityrail events list --json`).
#[utoipa::path(get, path = "/api/v1/projects/{id}/events", tag = "events",
    params(("id" = String, Path, description = "Project id"), EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = List<EventView>),
        (status = 400, description = "A bad filter, cursor or limit", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
    ))]
pub async fn list(
    State(app): State<App>,
    caller: Authorized<Read>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<List<EventView>>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = parse_cursor(query.cursor.as_deref(), "evt_")?;
    let filter = EventFilter {
        status: parse_filter(
            "status",
            query.status.as_deref(),
            EventStatus::parse,
            EventStatus::ALL,
            EventStatus::as_str,
        )?,
        event_type: text_filter(query.event_type.as_deref()),
        before: None,
    };
    let page = events::log(&app, &caller.project, filter, cursor, limit).await?;
    Ok(Json(List {
        data: page.items.iter().map(EventView::from).collect(),
        next_cursor: page.next,
    }))
}

/// An event with the body Stripe sent and the runs that judged or replayed it.
#[derive(Serialize, ToSchema)]
pub struct EventDetailView {
    #[serde(flatten)]
    event: EventView,
    /// The event as Stripe sent it (`null` if it could not be read).
    payload: Value,
    /// Newest first.
    runs: Vec<RunView>,
}

/// Get a webhook event
#[utoipa::path(get, path = "/api/v1/projects/{id}/events/{event_id}", tag = "events",
    params(("id" = String, Path, description = "Project id"),
        ("event_id" = String, Path, description = "Stripe event id")),
    responses(
        (status = 200, description = "The event", body = EventDetailView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 404, description = "No such event in this project", body = ErrorBody),
    ))]
pub async fn show(
    State(app): State<App>,
    caller: Authorized<Read>,
    Path((_, event_id)): Path<(String, String)>,
) -> Result<Json<EventDetailView>, ApiError> {
    let detail = events::detail(&app, &caller.project, &event_id)
        .await?
        .ok_or_else(|| not_found("no such event in this project"))?;
    Ok(Json(EventDetailView {
        event: EventView::from(&detail.record),
        payload: serde_json::from_slice(&detail.body).unwrap_or(Value::Null),
        runs: detail.runs.iter().map(RunView::from).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    replayed: String,
    /// The new `rerun` run; `null` when the project has no app probe.
    run_id: Option<String>,
}

/// Replay a webhook event (admin)
///
/// Processes the event again with a fresh attempt budget; its sync starts a
/// new check run. Written to the event's activity log.
#[utoipa::path(post, path = "/api/v1/projects/{id}/events/{event_id}/replay", tag = "events",
    params(("id" = String, Path, description = "Project id"),
        ("event_id" = String, Path, description = "Stripe event id")),
    responses(
        (status = 202, description = "Replayed", body = Replayed),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 404, description = "No such event, or one that is not replayable (ignored)",
            body = ErrorBody),
    ))]
pub async fn replay(
    State(app): State<App>,
    caller: Authorized<Manage>,
    Path((_, event_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let replayed = events::replay(&app, &caller.project, &event_id, &caller.actor())
        .await
        .map_err(|e| match e {
            ReplayError::NotReplayable(_) => not_found(e.to_string()),
            ReplayError::Store(e) => e.into(),
        })?;
    tracing::info!(project_id = %caller.project.id, event_id, token_id = %caller.token_id, "event replayed over the API");
    Ok((
        StatusCode::ACCEPTED,
        Json(Replayed {
            replayed: event_id,
            run_id: replayed.run_id,
        }),
    ))
}
