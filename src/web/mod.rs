//! HTTP surface: the webhook endpoint, the JSON API (`api`), the cron
//! endpoint, health and readiness, metrics; and the server loop, with
//! header and body read timeouts so a slow client cannot hold connections.

pub mod api;
mod cron;
pub mod pages;
mod serve;
mod webhook;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tower_http::{timeout::RequestBodyTimeoutLayer, trace::TraceLayer};

pub use serve::serve;

use crate::{App, store::StoreError, usecase::health};

/// The one error answer of the HTTP API: a status and a stable
/// `{"error":{"code","message"}}` body. Messages never carry secrets.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

/// The body of every API error.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable: scripts may match on it (`unauthorized`, `forbidden`,
    /// `invalid_request`, `not_found`, `no_probe`, …).
    #[schema(example = "invalid_request")]
    pub code: String,
    /// For people; never carries a secret.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: a 401 names the scheme the client should use.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "database error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "database_unavailable",
            "the database is unavailable; try again",
        )
    }
}

pub fn router(app: App) -> Router {
    let body_timeout = app.config.body_read_timeout;
    let router = Router::new()
        .route(
            "/api/webhooks/stripe/{project_id}",
            post(webhook::receive_stripe_webhook),
        )
        .route("/api/cron/scan", get(cron::cron_scan).post(cron::cron_scan))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api::router())
        .merge(pages::router(&app));
    with_security_headers(router, &app)
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

/// The demo's loopback-only intake: where its simulator delivers signed
/// webhooks for demo projects (the public endpoint ignores them).
pub fn simulated_router(app: App) -> Router {
    Router::new()
        .route(
            "/simulated/webhooks/stripe/{project_id}",
            post(webhook::receive_simulated_webhook),
        )
        .layer(RequestBodyTimeoutLayer::new(app.config.body_read_timeout))
        .with_state(app)
}

/// Headers every answer carries: a strict Content-Security-Policy (no
/// inline script, no framing, forms post only here), `nosniff`, a referrer
/// policy that keeps `Origin` on same-origin posts, and HSTS over https.
fn with_security_headers(router: Router<App>, app: &App) -> Router<App> {
    use axum::http::{HeaderName, HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;
    let router = router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ));
    if pages::is_https(app) {
        router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ))
    } else {
        router
    }
}

async fn readyz(State(app): State<App>) -> Result<&'static str, ApiError> {
    health::ready(&app).await.map_err(|e| {
        tracing::warn!(error = %e, "not ready");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "database unreachable",
        )
    })?;
    Ok("ready")
}

/// Prometheus text: work items by status; projects read by the webhook
/// endpoint's directory (a flood of forged signatures must not move it).
async fn metrics(State(app): State<App>) -> Result<String, ApiError> {
    let mut out = String::from(
        "# HELP parityrail_work_items Webhook work items by status.\n# TYPE parityrail_work_items gauge\n",
    );
    for (status, count) in health::queue(&app).await? {
        out.push_str(&format!(
            "parityrail_work_items{{status=\"{status}\"}} {count}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP parityrail_directory_loads_total Projects read from the database by the webhook endpoint.\n\
         # TYPE parityrail_directory_loads_total counter\nparityrail_directory_loads_total {}\n",
        app.intake.directory.loads()
    ));
    Ok(out)
}
