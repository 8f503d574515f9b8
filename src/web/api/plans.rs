//! The plan map (onboarding step 4): which Stripe prices, products or
//! lookup keys grant which plan, its rank, features and limits.

use std::collections::{BTreeMap, BTreeSet};

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, Authorized, ErrorBody,
    auth::{Configure, Read},
    bad_request, body, not_found, query_error,
};
use crate::{
    App,
    access::{PlanMap, PlanRule, Selector},
    usecase::projects::{self, PlanRuleRequest},
};

/// The plan map
#[utoipa::path(get, path = "/api/v1/projects/{id}/plans", tag = "plans",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "The rules, and whether features come from Stripe entitlements",
            body = PlanMap),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A token of another project", body = ErrorBody),
    ))]
pub async fn list(
    State(app): State<App>,
    caller: Authorized<Read>,
) -> Result<Json<PlanMap>, ApiError> {
    Ok(Json(projects::plan_map(&app, &caller.project).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct RuleBody {
    /// `{"kind":"price"|"product"|"lookup_key","value":"…"}`.
    selector: Selector,
    #[schema(example = "pro")]
    plan: String,
    /// A higher rank is a higher plan (tells an upgrade from a downgrade). Default 0.
    #[serde(default)]
    rank: i64,
    #[serde(default)]
    features: BTreeSet<String>,
    #[serde(default)]
    limits: BTreeMap<String, i64>,
}

/// Add or replace a rule (admin)
///
/// A rule with the same selector is replaced. Nothing changes on a bad rule.
#[utoipa::path(put, path = "/api/v1/projects/{id}/plans", tag = "plans",
    params(("id" = String, Path, description = "Project id")),
    request_body = RuleBody,
    responses(
        (status = 200, description = "The rule as stored", body = PlanRule),
        (status = 400, description = "Not JSON, an unknown selector kind, no selector value, no plan",
            body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
    ))]
pub async fn set(
    State(app): State<App>,
    caller: Authorized<Configure>,
    raw: Bytes,
) -> Result<Json<PlanRule>, ApiError> {
    let rule: RuleBody = body(
        &raw,
        r#"{"selector":{"kind":"price","value":"price_…"},"plan":"pro","rank":2,"features":[…],"limits":{…}}"#,
    )?;
    let request = PlanRuleRequest {
        selector: rule.selector,
        plan: rule.plan,
        rank: rule.rank,
        features: rule.features.into_iter().collect(),
        limits: rule
            .limits
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect(),
    };
    let stored = projects::set_plan_rule(&app, &caller.project, request).await?;
    tracing::info!(project_id = %caller.project.id, token_id = %caller.token_id, "plan rule set over the API");
    Ok(Json(stored))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleQuery {
    /// `price`, `product` or `lookup_key`.
    #[param(required = true)]
    kind: Option<String>,
    /// The price id, product id or lookup key.
    #[param(required = true)]
    value: Option<String>,
}

/// Remove a rule (admin)
#[utoipa::path(delete, path = "/api/v1/projects/{id}/plans", tag = "plans",
    params(("id" = String, Path, description = "Project id"), RuleQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "An unknown kind, or no value", body = ErrorBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 403, description = "A viewer's token, or another project's", body = ErrorBody),
        (status = 404, description = "No rule with this selector", body = ErrorBody),
    ))]
pub async fn remove(
    State(app): State<App>,
    caller: Authorized<Configure>,
    query: Result<Query<RuleQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let kind = query.kind.unwrap_or_default();
    let value = query.value.unwrap_or_default();
    let selector = Selector::from_parts(kind.trim(), value.trim().to_string())
        .filter(|_| !value.trim().is_empty())
        .ok_or_else(|| {
            bad_request("give the rule's selector: ?kind=price|product|lookup_key&value=…")
        })?;
    if !projects::remove_plan_rule(&app, &caller.project, &selector).await? {
        return Err(not_found("no rule with this selector in the plan map"));
    }
    tracing::info!(project_id = %caller.project.id, token_id = %caller.token_id, "plan rule removed over the API");
    Ok(StatusCode::NO_CONTENT)
}
