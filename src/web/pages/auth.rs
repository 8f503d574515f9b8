//! Sign in, sign out (here or everywhere), and the one-time `/setup` page
//! that creates the first admin while no user exists.

use std::net::SocketAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{PageError, SignedIn, safe_next, session_cookie, session_token};
use crate::{
    App,
    usecase::accounts::{self, AccountError, SignInError},
};

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub email: String,
    pub next: String,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
pub struct SetupPage {
    pub email: String,
    pub error: Option<String>,
    pub field: &'static str,
    pub min_password: usize,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    signed_out: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `GET /login`: the form; `/setup` first while no user exists.
pub async fn login_page(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    if accounts::needs_setup(&app).await? {
        return Ok(Redirect::to("/setup").into_response());
    }
    if let Some(token) = session_token(&app, &headers)
        && accounts::session(&app, &token).await?.is_some()
    {
        return Ok(Redirect::to(safe_next(&q.next).unwrap_or("/")).into_response());
    }
    Ok(LoginPage {
        email: String::new(),
        next: safe_next(&q.next).unwrap_or_default().to_string(),
        error: None,
        notice: q.signed_out.map(|_| "You are signed out."),
    }
    .into_response())
}

/// `POST /login` (`email`, `password`): a session cookie and a redirect to
/// `next`; the form again with "wrong email or password" (401) or the rate
/// limit's message (429).
pub async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(&form.next).unwrap_or("/").to_string();
    match accounts::sign_in(&app, peer.ip(), &form.email, &form.password).await {
        Ok(new) => {
            tracing::info!(user_id = %new.session.user.id, "signed in");
            let cookie = session_cookie(&app, Some(new.token.expose()));
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
        }
        Err(SignInError::Store(e)) => Err(e.into()),
        Err(e) => {
            let status = match e {
                SignInError::Limited => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let page = LoginPage {
                email: form.email.trim().chars().take(254).collect(),
                next: if next == "/" { String::new() } else { next },
                error: Some(e.to_string()),
                notice: None,
            };
            Ok((status, page).into_response())
        }
    }
}

/// `POST /logout`: ends this session.
pub async fn logout(State(app): State<App>, signed_in: SignedIn) -> Result<Response, PageError> {
    accounts::sign_out(&app, &signed_in.session).await?;
    Ok(signed_out(&app))
}

/// `POST /logout/everywhere`: ends every session of this user.
pub async fn logout_everywhere(
    State(app): State<App>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    let ended = accounts::sign_out_everywhere(&app, signed_in.user()).await?;
    tracing::info!(user_id = %signed_in.user().id, sessions = ended, "signed out everywhere");
    Ok(signed_out(&app))
}

fn signed_out(app: &App) -> Response {
    (
        [(header::SET_COOKIE, session_cookie(app, None))],
        Redirect::to("/login?signed_out=1"),
    )
        .into_response()
}

fn setup_form(email: String, error: Option<AccountError>) -> SetupPage {
    SetupPage {
        email,
        field: error.as_ref().and_then(AccountError::field).unwrap_or(""),
        error: error.map(|e| e.to_string()),
        min_password: accounts::MIN_PASSWORD,
    }
}

/// `GET /setup`: the first admin's form, only while no user exists.
pub async fn setup_page(State(app): State<App>) -> Result<Response, PageError> {
    if !accounts::needs_setup(&app).await? {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(setup_form(String::new(), None).into_response())
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /setup`: creates the first admin (of every project) and signs in.
pub async fn setup(
    State(app): State<App>,
    Form(form): Form<SetupForm>,
) -> Result<Response, PageError> {
    match accounts::setup_first_admin(&app, &form.email, &form.password).await {
        Ok(new) => {
            tracing::info!(user_id = %new.session.user.id, "first admin created");
            let cookie = session_cookie(&app, Some(new.token.expose()));
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
        }
        Err(AccountError::SetupDone) => {
            Err(PageError::Forbidden(AccountError::SetupDone.to_string()))
        }
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(e) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            setup_form(form.email.trim().chars().take(254).collect(), Some(e)),
        )
            .into_response()),
    }
}
