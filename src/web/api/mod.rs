//! The JSON API, `/api/v1` (SPEC §8): checks, runs, incidents and their
//! actions, the event log and replay. Every route needs a bearer API token
//! of the project in the path (`auth`); errors are the one [`ApiError`].
//!
//! | route | role |
//! |---|---|
//! | `POST /projects/{id}/checks` | viewer |
//! | `GET /projects/{id}/runs[?customer=&limit=]`, `GET …/runs/{run_id}` | viewer |
//! | `GET /projects/{id}/incidents`, `GET …/incidents/{incident_id}` | viewer |
//! | `GET …/incidents/{incident_id}/export` | viewer |
//! | `POST …/incidents/{incident_id}/rerun` | viewer |
//! | `POST …/incidents/{incident_id}/acknowledge`, `…/resolve`, `…/reconcile` | admin |
//! | `GET /projects/{id}/events[?limit=]` | viewer |
//! | `POST /projects/{id}/events/{event_id}/replay` | admin |
//! | `GET /projects/{id}/stripe/secrets`, `POST …` (add), `DELETE …/{secret_id}[?force=true]` | admin |

pub mod auth;
mod checks;
mod events;
mod incidents;
mod secrets;

use axum::{
    Router,
    extract::rejection::QueryRejection,
    http::StatusCode,
    routing::{delete, get, post},
};

pub use auth::Authorized;

use super::ApiError;
use crate::{
    App,
    check::CheckError,
    usecase::{checks::StartError, incidents::ActionError, projects::SetupError},
};

/// The `/api/v1` routes, merged into the service's router. The project
/// segment is `{id}` in every route (routes sharing a prefix must agree).
pub fn router() -> Router<App> {
    let incident = "/api/v1/projects/{id}/incidents/{incident_id}";
    Router::new()
        .route("/api/v1/projects/{id}/checks", post(checks::start))
        .route("/api/v1/projects/{id}/runs", get(checks::list_runs))
        .route("/api/v1/projects/{id}/runs/{run_id}", get(checks::show_run))
        .route("/api/v1/projects/{id}/incidents", get(incidents::list))
        .route(incident, get(incidents::show))
        .route(
            &format!("{incident}/acknowledge"),
            post(incidents::acknowledge),
        )
        .route(&format!("{incident}/resolve"), post(incidents::resolve))
        .route(&format!("{incident}/rerun"), post(incidents::rerun))
        .route(&format!("{incident}/reconcile"), post(incidents::reconcile))
        .route(&format!("{incident}/export"), get(incidents::export))
        .route("/api/v1/projects/{id}/events", get(events::list))
        .route(
            "/api/v1/projects/{id}/events/{event_id}/replay",
            post(events::replay),
        )
        .route(
            "/api/v1/projects/{id}/stripe/secrets",
            get(secrets::list).post(secrets::add),
        )
        .route(
            "/api/v1/projects/{id}/stripe/secrets/{secret_id}",
            delete(secrets::remove),
        )
}

pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
}

fn query_error(err: QueryRejection) -> ApiError {
    bad_request(format!("invalid query string: {}", err.body_text()))
}

/// `limit` as lists take it: default 100, 1 to 1000.
fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(100),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                bad_request(format!(
                    "limit must be a number from 1 to 1000, got {raw:?}"
                ))
            }),
    }
}

impl From<CheckError> for ApiError {
    fn from(err: CheckError) -> Self {
        match err {
            CheckError::NoProbe => ApiError::new(StatusCode::CONFLICT, "no_probe", err.to_string()),
            CheckError::Store(e) => e.into(),
        }
    }
}

impl From<StartError> for ApiError {
    fn from(err: StartError) -> Self {
        match err {
            StartError::InvalidCustomer(_) => bad_request(err.to_string()),
            StartError::Check(e) => e.into(),
        }
    }
}

impl From<SetupError> for ApiError {
    fn from(err: SetupError) -> Self {
        let message = err.to_string();
        let (status, code) = match err {
            SetupError::Store(e) => return e.into(),
            SetupError::NotFound(_) | SetupError::SecretNotFound(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            SetupError::NameTaken(_) => (StatusCode::CONFLICT, "name_taken"),
            SetupError::LastSecret(_) => (StatusCode::CONFLICT, "last_secret"),
            SetupError::DemoProject(_) => (StatusCode::CONFLICT, "demo_project"),
            SetupError::Rejected(_) => (StatusCode::BAD_REQUEST, "stripe_rejected"),
            SetupError::Invalid { .. }
            | SetupError::BadKey(_)
            | SetupError::BadSecret(_)
            | SetupError::WrongMode { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            SetupError::NoMasterKey | SetupError::Vault(_) => {
                tracing::error!(error = %message, "cannot seal or open secrets");
                (StatusCode::INTERNAL_SERVER_ERROR, "secrets_unavailable")
            }
        };
        ApiError::new(status, code, message)
    }
}

impl From<ActionError> for ApiError {
    fn from(err: ActionError) -> Self {
        let message = err.to_string();
        let (status, code) = match err {
            ActionError::Check(e) => return e.into(),
            ActionError::Store(e) => return e.into(),
            ActionError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ActionError::AlreadyResolved(_) => (StatusCode::CONFLICT, "already_resolved"),
            ActionError::NoCustomer { .. } => (StatusCode::CONFLICT, "no_customer"),
            ActionError::NotReconcilable(_) => (StatusCode::CONFLICT, "not_reconcilable"),
            ActionError::NoReconcileHook => (StatusCode::CONFLICT, "no_reconcile_hook"),
            ActionError::Hook(_) => (StatusCode::BAD_GATEWAY, "reconcile_failed"),
            ActionError::SecretUnavailable => {
                tracing::error!(error = %message, "cannot open the probe secret");
                (StatusCode::INTERNAL_SERVER_ERROR, "secrets_unavailable")
            }
        };
        ApiError::new(status, code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_stay_in_range() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some("")).unwrap(), 100);
        assert_eq!(parse_limit(Some("1000")).unwrap(), 1000);
        for bad in ["0", "-1", "1001", "ten"] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad}");
        }
    }
}
