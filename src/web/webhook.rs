//! `POST /api/webhooks/stripe/{projectId}`: reads the body within the limit
//! and maps the intake's [`Receipt`] to SPEC §2's answers.

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use serde_json::{Value, json};

use super::ApiError;
use crate::{
    App,
    ingress::{Addressed, MAX_BODY_BYTES, Receipt, ReceiveError, Rejection},
};

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, Json(body)))
}

impl From<ReceiveError> for ApiError {
    fn from(err: ReceiveError) -> Self {
        match err {
            ReceiveError::Store(e) => e.into(),
            ReceiveError::Directory(crate::ingress::directory::DirectoryError::Store(e)) => {
                e.into()
            }
            ReceiveError::Directory(other) => {
                tracing::error!(error = %other, "cannot read stored secrets");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "secrets_unavailable",
                    "stored secrets cannot be read; check PARITYRAIL_MASTER_KEY",
                )
            }
        }
    }
}

/// Over the limit is 413; a body that stops arriving (the read timeout) is 408.
fn body_error(err: axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "webhook bodies are limited to 1 MiB",
            );
        }
        source = e.source();
    }
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        "the request body did not arrive in time",
    )
}

pub async fn receive_stripe_webhook(
    State(app): State<App>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let entry = match app.intake.address(&raw_id).await? {
        Addressed::Unknown => return Err(unknown_project()),
        Addressed::Demo(_) => return ok(json!({"received": true, "ignored": "demo project"})),
        Addressed::Project(entry) => entry,
    };
    deliver(&app, entry, &headers, body).await
}

/// What the demo's simulator delivers to: demo projects only, served on a
/// loopback listener of the demo's own (never the public one).
pub async fn receive_simulated_webhook(
    State(app): State<App>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    match app.intake.address(&raw_id).await? {
        Addressed::Demo(entry) => deliver(&app, entry, &headers, body).await,
        _ => Err(unknown_project()),
    }
}

fn unknown_project() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_project", "no such project")
}

/// Verifies, stores and answers one delivery (SPEC §2).
async fn deliver(
    app: &App,
    entry: std::sync::Arc<crate::ingress::directory::ProjectEntry>,
    headers: &HeaderMap,
    body: Body,
) -> Answer {
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(body_error)?;
    let signature = headers
        .get("stripe-signature")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    match app.intake.receive(entry, signature, body).await? {
        Receipt::Stored { ignored: None } => ok(json!({"received": true, "status": "queued"})),
        Receipt::Stored {
            ignored: Some(reason),
        } => ok(json!({"received": true, "status": "ignored", "reason": reason})),
        Receipt::Duplicate => ok(json!({"received": true, "status": "duplicate"})),
        Receipt::Rejected(Rejection::NoSigningSecret) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_signing_secret",
            "no webhook signing secret is configured for this project",
        )),
        Receipt::Rejected(Rejection::BadSignature(err)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_signature",
            err.to_string(),
        )),
        Receipt::Rejected(Rejection::NotAnEvent(message)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_event",
            message,
        )),
        Receipt::Lagging => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "event_lagging",
            "this event is stored but not yet processed past the lag threshold; it was re-queued",
        )),
        Receipt::InboxUnavailable => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "inbox_unavailable",
            "the event could not be stored; Stripe will redeliver it",
        )),
    }
}
