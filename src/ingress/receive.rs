//! `POST /api/webhooks/stripe/{projectId}`, answering each row of SPEC §2.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use serde_json::{Value, json};

use super::{MAX_BODY_BYTES, verify};
use crate::{
    App,
    ids::ProjectId,
    store::{IncidentKind, InsertOutcome, NewEvent, NewIncident, ProjectMode},
    stripe::event::{VerifiedEvent, is_handled},
    web::ApiError,
};

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, Json(body)))
}

pub async fn receive_stripe_webhook(
    State(app): State<App>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let unknown = || ApiError::new(StatusCode::NOT_FOUND, "unknown_project", "no such project");
    let id = ProjectId::parse(&raw_id).ok_or_else(unknown)?;
    let mut entry = app.directory.get(&id, false).await?.ok_or_else(unknown)?;
    if entry.project.mode == ProjectMode::Demo {
        // Live traffic never touches a demo project; nothing is read or stored.
        return ok(json!({"received": true, "ignored": "demo project"}));
    }
    let body: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "webhook bodies are limited to 1 MiB",
            )
        })?;
    let header = headers
        .get("stripe-signature")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let now = crate::now_ms();
    let mut verified = verify::verify(header, &body, &entry.secrets, now / 1000);
    if matches!(
        verified,
        Err(verify::VerifyError::SignatureMismatch | verify::VerifyError::MissingSecret)
    ) {
        // A secret may have been added since the cache was filled.
        entry = app.directory.get(&id, true).await?.ok_or_else(unknown)?;
        verified = verify::verify(header, &body, &entry.secrets, now / 1000);
    }
    if let Err(err) = verified {
        tracing::info!(project_id = %id, reason = err.as_str(), "webhook rejected");
        let code = match err {
            verify::VerifyError::MissingSecret => "no_signing_secret",
            _ => "invalid_signature",
        };
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            err.to_string(),
        ));
    }
    let event = VerifiedEvent::parse(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", e.to_string()))?;
    let ignored_reason = ignore_reason(&event, entry.key_mode.map(|m| m.is_live()));
    let new = NewEvent {
        project_id: id.to_string(),
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        livemode: event.livemode,
        api_version: event.api_version.clone(),
        created: event.created,
        customer_id: event.customer.clone(),
        raw_body: body,
        ignored_reason: ignored_reason.clone(),
        received_at: now,
        due_at: now + app.config.coalesce.as_millis() as i64,
    };
    let outcome = app.inbox.submit(new).await.map_err(|e| {
        tracing::error!(project_id = %id, event_id = %event.id, error = %e, "inbox write failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "inbox_unavailable",
            "the event could not be stored; Stripe will redeliver it",
        )
    })?;
    match outcome {
        InsertOutcome::Stored => {
            tracing::info!(project_id = %id, event_id = %event.id, event_type = %event.event_type,
                ignored = ?ignored_reason, "webhook stored");
            match ignored_reason {
                Some(reason) => {
                    ok(json!({"received": true, "status": "ignored", "reason": reason}))
                }
                None => ok(json!({"received": true, "status": "queued"})),
            }
        }
        InsertOutcome::Duplicate {
            unfinished,
            received_at,
        } => {
            let lag_ms = entry.project.lag_threshold_secs.saturating_mul(1000);
            if unfinished && now - received_at > lag_ms {
                return redelivered_while_lagging(&app, &id, &event, now).await;
            }
            ok(json!({"received": true, "status": "duplicate"}))
        }
    }
}

/// Why a verified event is stored but not processed (answered 200: retrying cannot help).
fn ignore_reason(event: &VerifiedEvent, project_live: Option<bool>) -> Option<String> {
    if let Some(live) = project_live
        && live != event.livemode
    {
        let (got, want) = if event.livemode {
            ("live", "test")
        } else {
            ("test", "live")
        };
        return Some(format!(
            "livemode mismatch: a {got}-mode event for a {want}-mode key"
        ));
    }
    if !is_handled(&event.event_type) {
        return Some(format!("event type {} is not handled", event.event_type));
    }
    if event.customer.is_none() {
        return Some("event names no customer".into());
    }
    None
}

/// Stripe redelivered an event we hold but have not finished past the lag
/// threshold: make it due now, keep the incident open, and answer 500 so
/// Stripe's log shows the problem and it keeps redelivering.
async fn redelivered_while_lagging(
    app: &App,
    id: &ProjectId,
    event: &VerifiedEvent,
    now: i64,
) -> Answer {
    let requeued = app.store.requeue_event(id.as_str(), &event.id, now).await?;
    app.store
        .open_incident(NewIncident {
            project_id: id.as_str(),
            kind: IncidentKind::WebhookLag,
            customer_id: event.customer.as_deref().unwrap_or_default(),
            event_id: Some(&event.id),
            details: json!({"event_type": event.event_type, "redelivered": true}),
            count: None,
            now,
            evidence: Default::default(),
        })
        .await?;
    app.wake.notify_waiters();
    tracing::warn!(project_id = %id, event_id = %event.id, requeued, "redelivery of a lagging event");
    Err(ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "event_lagging",
        "this event is stored but not yet processed past the lag threshold; it was re-queued",
    ))
}
