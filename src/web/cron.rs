//! `GET|POST /api/cron/scan` for external schedulers (SPEC §7): starts a scan
//! of every scannable project (or reports the one already running);
//! `Authorization: Bearer $CRON_SECRET`.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::{App, domain::ScanTrigger, usecase::scans};

pub async fn cron_scan(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(secret) = app.config.cron_secret.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cron_disabled",
            "CRON_SECRET is not set on this server, so the cron endpoint is disabled",
        ));
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let expected = secret.expose().as_bytes();
    if given.len() != expected.len() || !bool::from(given.as_bytes().ct_eq(expected)) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong cron secret",
        ));
    }
    let started = scans::start_all(&app, ScanTrigger::Cron).await?;
    let scans: Vec<Value> = started
        .iter()
        .map(|s| {
            json!({"project": s.scan.project_id, "scan_id": s.scan.id,
                "status": s.scan.status, "created": s.created})
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({"scans": scans}))))
}
