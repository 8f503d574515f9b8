//! The JSON API, `/api/v1` (SPEC §8): everything the dashboard does, for
//! scripts. Every route needs a bearer API token of the project in the path
//! (`auth`); errors are the one [`ApiError`]; lists of runs, events and
//! incidents are pages (`{"data":[…],"next_cursor":…}`, newest first).
//!
//! Each route is registered together with its OpenAPI entry
//! (`utoipa_axum::routes!`), so the document served at
//! `/api/v1/openapi.json` (and committed as `docs/openapi.json`) is the
//! router. Roles: viewers read, start checks, reruns and scans, and test the
//! probe; admins also change incidents, replay events and configure the
//! project (Stripe, probe, plan map, members, tokens).

pub mod auth;
mod checks;
mod drill;
mod events;
mod incidents;
mod members;
mod plans;
mod probe;
mod scans;
mod settings;
mod stripe;

use std::sync::{Arc, OnceLock};

use axum::{
    Router,
    body::Bytes,
    extract::rejection::QueryRejection,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde::{Serialize, de::DeserializeOwned};
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use auth::Authorized;

use super::{ApiError, ErrorBody};
use crate::{
    App,
    check::CheckError,
    usecase::{
        accounts::AccountError, checks::StartError, incidents::ActionError, projects::SetupError,
    },
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ParityRail API",
        description = "Proves every Stripe customer has exactly the access they paid for in your app. \
            Send a project's API token as `Authorization: Bearer prt_…` (`parityrail token create`, or \
            the members page). Errors are `{\"error\":{\"code\",\"message\"}}`; `code` is stable."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A project's API token, `prt_…`"))
                    .build(),
            ),
        );
    }
}

/// Every route with its document entry.
fn api() -> OpenApiRouter<App> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(checks::start))
        .routes(routes!(checks::list_runs))
        .routes(routes!(checks::show_run))
        .routes(routes!(incidents::list))
        .routes(routes!(incidents::show))
        .routes(routes!(incidents::acknowledge))
        .routes(routes!(incidents::resolve))
        .routes(routes!(incidents::rerun))
        .routes(routes!(incidents::reconcile))
        .routes(routes!(incidents::export))
        .routes(routes!(events::list))
        .routes(routes!(events::show))
        .routes(routes!(events::replay))
        .routes(routes!(scans::list, scans::start))
        .routes(routes!(scans::show))
        .routes(routes!(drill::start))
        .routes(routes!(stripe::connection, stripe::connect))
        .routes(routes!(stripe::secrets, stripe::add_secret))
        .routes(routes!(stripe::remove_secret))
        .routes(routes!(probe::show, probe::set))
        .routes(routes!(probe::test))
        .routes(routes!(plans::list, plans::set, plans::remove))
        .routes(routes!(settings::show, settings::change))
        .routes(routes!(members::list, members::invite))
        .routes(routes!(members::change_role))
        .routes(routes!(members::tokens, members::create_token))
        .routes(routes!(members::revoke_token))
}

/// The OpenAPI 3.1 document of `/api/v1`, as served and committed.
pub fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut text = api()
            .into_openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes");
        text.push('\n');
        text
    })
}

/// The `/api/v1` routes, merged into the service's router, and the
/// document at `/api/v1/openapi.json` (public: it holds no data).
pub fn router() -> Router<App> {
    let (router, _) = api().split_for_parts();
    let doc: Arc<str> = Arc::from(openapi_json());
    router.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    doc.to_string(),
                )
            }
        }),
    )
}

/// A page of a newest-first list: pass `next_cursor` back as `cursor` for
/// the next page; `null` on the last one.
#[derive(Serialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
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

/// A JSON body of type `T`, or a 400 that shows the expected shape and
/// what was wrong (serde names the missing or mistyped field).
fn body<T: DeserializeOwned>(raw: &Bytes, shape: &str) -> Result<T, ApiError> {
    let refuse =
        |why: String| bad_request(format!("the body must be a JSON object: {shape} ({why})"));
    if raw.is_empty() {
        return Err(refuse("the body is empty".into()));
    }
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(value @ serde_json::Value::Object(_)) => {
            T::deserialize(value).map_err(|e| refuse(e.to_string()))
        }
        Ok(_) => Err(refuse("it is not an object".into())),
        Err(e) => Err(refuse(e.to_string())),
    }
}

/// `limit` as lists take it: default 100, 1 to 1000.
fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    limit_in(raw, 100, 1000)
}

/// `limit`: `default` when absent, else a number from 1 to `max`.
fn limit_in(raw: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                bad_request(format!(
                    "limit must be a number from 1 to {max}, got {raw:?}"
                ))
            }),
    }
}

/// A `cursor` as a list gave it (`next_cursor`); anything else is a 400,
/// never a silent restart from the top.
fn parse_cursor<'a>(raw: Option<&'a str>, prefix: &str) -> Result<Option<&'a str>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(c) if crate::usecase::parse_cursor(c, prefix).is_some() => Ok(Some(c)),
        Some(c) => Err(bad_request(format!(
            "cursor {:?} is not one a list returned (pass `next_cursor` back as it is)",
            c.chars().take(80).collect::<String>()
        ))),
    }
}

/// A filter value that must be one of an enum's names.
fn parse_filter<T: Copy>(
    name: &str,
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    all: &[T],
    as_str: impl Fn(T) -> &'static str,
) -> Result<Option<T>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|t| as_str(*t)).collect();
            bad_request(format!(
                "{name} must be one of {}, got {:?}",
                names.join(", "),
                v.chars().take(40).collect::<String>()
            ))
        }),
    }
}

/// An optional text filter, trimmed; blank is no filter.
fn text_filter(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.chars().take(255).collect())
}

/// `201 Created` with a body.
fn created<T: Serialize>(value: T) -> impl IntoResponse {
    (StatusCode::CREATED, axum::Json(value))
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

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        let message = err.to_string();
        let (status, code) = match err {
            AccountError::Store(e) => return e.into(),
            AccountError::EmailTaken(_) => (StatusCode::CONFLICT, "email_taken"),
            AccountError::NoMember(_) | AccountError::NoProject(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            AccountError::LastAdmin => (StatusCode::CONFLICT, "last_admin"),
            AccountError::Invalid { field, .. } => {
                return bad_request(format!("{field}: {message}"));
            }
            AccountError::SetupDone => (StatusCode::CONFLICT, "setup_done"),
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

    #[test]
    fn cursors_are_those_a_list_gave_or_an_error() {
        assert_eq!(parse_cursor(None, "run_").unwrap(), None);
        assert_eq!(
            parse_cursor(Some("1700000000000.run_abc"), "run_").unwrap(),
            Some("1700000000000.run_abc")
        );
        for bad in ["run_abc", "x.run_abc", "1700000000000.evt_abc"] {
            assert!(parse_cursor(Some(bad), "run_").is_err(), "{bad}");
        }
    }
}
