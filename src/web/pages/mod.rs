//! The dashboard (SPEC §8): server-rendered pages over the same use cases
//! as the CLI and the API. Handlers parse, call a use case and render a
//! template; rules live in `usecase`.
//!
//! Every unsafe request passes [`guard`] first: it must come from this
//! origin (`Sec-Fetch-Site`, else `Origin`), and when it carries a session
//! its form must carry that session's token. A refused request answers 403
//! before any handler runs, so it changes nothing.

mod auth;
mod drill;
mod events;
mod incident;
mod incidents;
mod members;
mod onboarding;
mod plans;
mod projects;
mod runs;
mod scans;
mod settings;
mod setup;
mod view;

use axum::{
    Router,
    body::Body,
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use subtle::ConstantTimeEq;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::{
    App,
    domain::Session,
    store::StoreError,
    usecase::accounts::{self, AccessError},
};

pub use view::Chrome;

/// Largest form body a page accepts.
const FORM_LIMIT: usize = 256 * 1024;

/// The dashboard's routes, with the origin and form-token guard and
/// `Cache-Control: no-store` (pages show billing data; no cache keeps them).
pub fn router(app: &App) -> Router<App> {
    let pages = Router::new()
        .route("/", get(projects::home))
        .route("/projects", post(projects::create))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/logout/everywhere", post(auth::logout_everywhere))
        .route("/setup", get(auth::setup_page).post(auth::setup))
        .route("/projects/{id}", get(projects::overview))
        .route("/projects/{id}/drill", post(drill::run))
        .route(
            "/projects/{id}/onboarding/stripe",
            get(onboarding::stripe).post(onboarding::connect),
        )
        .route(
            "/projects/{id}/onboarding/stripe/secrets",
            post(onboarding::add_secret),
        )
        .route(
            "/projects/{id}/onboarding/stripe/secrets/{secret_id}/remove",
            post(onboarding::remove_secret),
        )
        .route("/projects/{id}/incidents", get(incidents::inbox))
        .route("/projects/{id}/incidents/bulk", post(incidents::bulk))
        .route(
            "/projects/{id}/incidents/{incident_id}",
            get(incident::detail),
        )
        .route(
            "/projects/{id}/incidents/{incident_id}/{action}",
            post(incident::act),
        )
        .route("/projects/{id}/runs", get(runs::history).post(runs::start))
        .route("/projects/{id}/runs/{run_id}", get(runs::detail))
        .route("/projects/{id}/events", get(events::log))
        .route("/projects/{id}/events/{event_id}", get(events::detail))
        .route(
            "/projects/{id}/events/{event_id}/replay",
            post(events::replay),
        )
        .route("/projects/{id}/scans", get(scans::list).post(scans::start))
        .route(
            "/projects/{id}/members",
            get(members::page).post(members::invite),
        )
        .route(
            "/projects/{id}/members/{user_id}/role",
            post(members::change_role),
        )
        .route("/projects/{id}/tokens", post(members::create_token))
        .route(
            "/projects/{id}/tokens/{token_id}/revoke",
            post(members::revoke_token),
        )
        .route(
            "/projects/{id}/onboarding/project",
            get(settings::show).post(settings::save),
        )
        .route(
            "/projects/{id}/onboarding/probe",
            get(setup::probe).post(setup::save_probe),
        )
        .route(
            "/projects/{id}/onboarding/probe/test",
            post(setup::test_probe),
        )
        .route(
            "/projects/{id}/onboarding/plans",
            get(plans::plans).post(plans::save_rule),
        )
        .route(
            "/projects/{id}/onboarding/plans/remove",
            post(plans::remove_rule),
        )
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    Router::new()
        .route("/static/app.css", get(view::stylesheet))
        .route("/static/app.js", get(view::script))
        .merge(pages)
}

/// The name of the session cookie: with the `__Host-` prefix (Secure, no
/// Domain, Path=/) when the dashboard is served over https.
pub fn cookie_name(app: &App) -> &'static str {
    if is_https(app) {
        "__Host-parityrail_session"
    } else {
        "parityrail_session"
    }
}

pub fn is_https(app: &App) -> bool {
    app.config.public_url.starts_with("https://")
}

/// The session cookie's value, if the request has one.
fn session_token(app: &App, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(app);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value that stores a session token (or clears it).
fn session_cookie(app: &App, token: Option<&str>) -> String {
    let secure = if is_https(app) { "; Secure" } else { "" };
    match token {
        Some(token) => format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            cookie_name(app),
            accounts::ABSOLUTE_MS / 1000
        ),
        None => format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
            cookie_name(app)
        ),
    }
}

/// Whether an unsafe request comes from the dashboard itself.
fn same_origin(app: &App, headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = get("origin") else {
        return false;
    };
    let public = app.config.public_url.trim_end_matches('/');
    if origin == public {
        return true;
    }
    let host = get("host").unwrap_or_default();
    !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}

/// The origin and form-token check of every unsafe request (see the module).
async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    if !same_origin(&app, request.headers()) {
        tracing::warn!(path = %request.uri().path(), "cross-origin form post refused");
        return PageError::Forbidden(
            "this form was posted from another site; it was refused and nothing changed".into(),
        )
        .into_response();
    }
    let Some(token) = session_token(&app, request.headers()) else {
        return next.run(request).await;
    };
    let session = match accounts::session(&app, &token).await {
        Ok(Some(session)) => session,
        Ok(None) => return next.run(request).await,
        Err(e) => return PageError::from(e).into_response(),
    };
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
    };
    let carried = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !bool::from(carried.as_bytes().ct_eq(session.csrf_token.as_bytes())) {
        tracing::warn!(path = %parts.uri.path(), "form without this session's token refused");
        return PageError::Forbidden(
            "this form is out of date or was not sent by this dashboard; reload the page and try again".into(),
        )
        .into_response();
    }
    parts.extensions.insert(SignedIn { session });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// A request of a signed-in user. Without a live session, pages redirect
/// to `/login?next=…` and come back after sign-in.
#[derive(Clone)]
pub struct SignedIn {
    pub session: Session,
}

impl SignedIn {
    pub fn user(&self) -> &crate::domain::User {
        &self.session.user
    }

    pub fn actor(&self) -> String {
        accounts::actor_user(&self.session.user)
    }
}

/// Where to go after sign-in: only a path of this site.
fn safe_next(raw: &str) -> Option<&str> {
    (raw.starts_with('/') && !raw.starts_with("//") && !raw.contains('\\')).then_some(raw)
}

impl FromRequestParts<App> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        if let Some(signed_in) = parts.extensions.get::<SignedIn>() {
            return Ok(signed_in.clone());
        }
        let to_login = |parts: &Parts| {
            let path = parts.uri.to_string();
            let next = if parts.method == Method::GET && path != "/" {
                format!("?next={}", view::encode(&path))
            } else {
                String::new()
            };
            Redirect::to(&format!("/login{next}")).into_response()
        };
        let Some(token) = session_token(app, &parts.headers) else {
            return Err(to_login(parts));
        };
        match accounts::session(app, &token).await {
            Ok(Some(session)) => Ok(SignedIn { session }),
            Ok(None) => Err(to_login(parts)),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

/// What a page answers when it cannot show what was asked.
#[derive(Debug)]
pub enum PageError {
    NotFound(String),
    Forbidden(String),
    Unavailable,
}

impl From<StoreError> for PageError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "database error");
        Self::Unavailable
    }
}

impl From<AccessError> for PageError {
    fn from(err: AccessError) -> Self {
        match err {
            AccessError::NotFound(_) => Self::NotFound(err.to_string()),
            AccessError::Forbidden { .. } => Self::Forbidden(err.to_string()),
            AccessError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "the database is unavailable; try again in a moment".to_string(),
            ),
        };
        (status, view::ErrorPage { title, message }).into_response()
    }
}
