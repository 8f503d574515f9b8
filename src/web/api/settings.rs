//! A project's settings (onboarding step 1): grace, deadlines, the user
//! metadata key, the daily scan and its Stripe budget.

use axum::{Json, body::Bytes, extract::State};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    ApiError, Authorized, ErrorBody,
    auth::{Configure, Read},
    body,
};
use crate::{
    App,
    usecase::projects::{self, Configure as Change},
    views::SettingsView,
};

/// The project's settings
#[utoipa::path(get, path = "/api/v1/projects/{id}/settings", tag = "settings",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "The settings", body = SettingsView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
    ))]
pub async fn show(State(_app): State<App>, caller: Authorized<Read>) -> Json<SettingsView> {
    Json(SettingsView::from(&caller.project))
}

/// The settings to change; a field left out keeps its value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// Whole days `past_due` keeps access, from the first failed payment.
    #[schema(example = 3)]
    past_due_grace_days: Option<i64>,
    /// Seconds after an event's `created` the app has to fulfil it.
    #[schema(example = 120)]
    fulfillment_deadline: Option<i64>,
    #[schema(example = "user_id")]
    user_metadata_key: Option<String>,
    require_mapping: Option<bool>,
    /// Seconds an event may wait before a `webhook_lag` incident.
    lag_threshold: Option<i64>,
    use_entitlements: Option<bool>,
    /// `HH:MM` UTC.
    #[schema(example = "03:00")]
    scan_at: Option<String>,
    /// Stripe requests per second a scan may spend, 1 to 1000.
    stripe_budget: Option<i64>,
}

/// Change settings (admin)
///
/// Nothing changes when any field is refused.
#[utoipa::path(patch, path = "/api/v1/projects/{id}/settings", tag = "settings",
    params(("id" = String, Path, description = "Project id")),
    request_body = SettingsBody,
    responses(
        (status = 200, description = "The settings as stored", body = SettingsView),
        (status = 400, description = "Not JSON, an unknown field, or a value out of range",
            body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
    ))]
pub async fn change(
    State(app): State<App>,
    caller: Authorized<Configure>,
    raw: Bytes,
) -> Result<Json<SettingsView>, ApiError> {
    let b: SettingsBody = body(
        &raw,
        r#"{"past_due_grace_days":3,"fulfillment_deadline":120,"scan_at":"03:00",…}"#,
    )?;
    let change = Change {
        past_due_grace_days: b.past_due_grace_days,
        fulfillment_deadline_secs: b.fulfillment_deadline,
        user_metadata_key: b.user_metadata_key,
        require_mapping: b.require_mapping,
        lag_threshold_secs: b.lag_threshold,
        use_entitlements: b.use_entitlements,
        scan_at: b.scan_at,
        stripe_budget_rps: b.stripe_budget,
    };
    let project = projects::configure(&app, &caller.project, change).await?;
    tracing::info!(project_id = %project.id, token_id = %caller.token_id, "settings changed over the API");
    Ok(Json(SettingsView::from(&project)))
}
