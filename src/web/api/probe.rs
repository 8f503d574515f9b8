//! The app probe (onboarding step 3): how ParityRail asks the app what a
//! customer can use. Saving tests it first: a probe the app does not answer
//! is not stored.

use axum::{Json, body::Bytes, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiError, Authorized, ErrorBody,
    auth::{Check, Configure, Read},
    body, not_found,
};
use crate::{
    App,
    access::ObservedAccess,
    check::CheckError,
    config::Secret,
    usecase::projects::{self, ProbeTest, ProbeView},
};

/// The app probe
///
/// Its URL, the reconcile hook's URL, and the secret's last four characters.
#[utoipa::path(get, path = "/api/v1/projects/{id}/probe", tag = "probe",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "The probe", body = ProbeView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 404, description = "No probe is set yet", body = ErrorBody),
    ))]
pub async fn show(
    State(app): State<App>,
    caller: Authorized<Read>,
) -> Result<Json<ProbeView>, ApiError> {
    let probe = projects::probe(&app, &caller.project)
        .await?
        .ok_or_else(|| not_found("no app probe is set yet (PUT this URL with url and secret)"))?;
    Ok(Json(probe))
}

/// What the app answered a test probe.
#[derive(Serialize, ToSchema)]
pub struct ProbeAnswer {
    /// The customer asked about (a made-up one when none was given: the app
    /// should answer that it has no such user).
    customer: String,
    /// The app user asked about (the customer's mapped user, or the customer).
    user: String,
    http_status: u16,
    latency_ms: u64,
    observed: ObservedAccess,
}

impl From<ProbeTest> for ProbeAnswer {
    fn from(t: ProbeTest) -> Self {
        Self {
            customer: t.customer,
            user: t.user,
            http_status: t.http_status,
            latency_ms: t.latency_ms,
            observed: t.observed,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ProbeBody {
    /// `http(s)://…` of the app's probe endpoint.
    #[schema(example = "https://app.example.com/parityrail/probe")]
    url: String,
    /// At least 16 characters: it signs every probe (`ParityRail-Signature`).
    secret: String,
    /// The app's reconcile hook, if it has one.
    #[serde(default)]
    reconcile_url: Option<String>,
    /// The customer to test with (default: a made-up one).
    #[serde(default)]
    customer: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ProbeSaved {
    probe: ProbeView,
    test: ProbeAnswer,
}

/// Test probe & save (admin)
///
/// Sends a signed test probe; only when the app answers is the probe
/// stored. Otherwise nothing changes.
#[utoipa::path(put, path = "/api/v1/projects/{id}/probe", tag = "probe",
    params(("id" = String, Path, description = "Project id")),
    request_body = ProbeBody,
    responses(
        (status = 200, description = "Saved, with what the app answered", body = ProbeSaved),
        (status = 400, description = "A bad URL, secret or customer, or the app did not answer \
            (the message says why); nothing was stored", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
    ))]
pub async fn set(
    State(app): State<App>,
    caller: Authorized<Configure>,
    raw: Bytes,
) -> Result<Json<ProbeSaved>, ApiError> {
    let request: ProbeBody = body(&raw, r#"{"url":"https://…","secret":"…"}"#)?;
    let reconcile = request
        .reconcile_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let (probe, test) = projects::set_probe_tested(
        &app,
        &caller.project,
        &request.url,
        &Secret::new(request.secret),
        reconcile,
        request.customer.as_deref().unwrap_or_default(),
    )
    .await?;
    tracing::info!(project_id = %caller.project.id, token_id = %caller.token_id, "probe set over the API");
    Ok(Json(ProbeSaved {
        probe,
        test: test.into(),
    }))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct TestBody {
    /// The customer to test with (default: a made-up one).
    #[serde(default)]
    customer: Option<String>,
}

/// Test probe
///
/// Asks the app about one customer with the stored probe and shows what it
/// answered. Changes nothing.
#[utoipa::path(post, path = "/api/v1/projects/{id}/probe/test", tag = "probe",
    params(("id" = String, Path, description = "Project id")),
    request_body = TestBody,
    responses(
        (status = 200, description = "What the app answered", body = ProbeAnswer),
        (status = 400, description = "A bad customer id, or the app did not answer", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
        (status = 409, description = "`no_probe`", body = ErrorBody),
    ))]
pub async fn test(
    State(app): State<App>,
    caller: Authorized<Check>,
    raw: Bytes,
) -> Result<Json<ProbeAnswer>, ApiError> {
    let request: TestBody = if raw.is_empty() {
        TestBody::default()
    } else {
        body(&raw, r#"{"customer":"cus_…"}"#)?
    };
    let customer = request.customer.unwrap_or_default();
    let test = projects::test_saved_probe(&app, &caller.project, &customer)
        .await?
        .ok_or(CheckError::NoProbe)?;
    Ok(Json(test.into()))
}
