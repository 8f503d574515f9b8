//! Members and API tokens (admin): invite by creating a user with a role
//! (a password typed, or generated and shown once), change roles, create a
//! token (shown once, on the answer to the post, never again) and revoke.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    PageError, SignedIn,
    view::{Chrome, When},
};
use crate::{
    App,
    domain::Role,
    usecase::{
        accounts::{self, AccountError, Membership},
        members,
        tokens::{self, Action},
    },
};

pub struct MemberLine {
    pub user_id: String,
    pub email: String,
    pub role: &'static str,
    pub since: When,
    pub you: bool,
}

pub struct TokenLine {
    pub id: String,
    pub role: &'static str,
    pub created: When,
    pub revoked: Option<When>,
}

#[derive(Template, WebTemplate)]
#[template(path = "members.html")]
pub struct MembersPage {
    pub chrome: Chrome,
    pub members: Vec<MemberLine>,
    pub tokens: Vec<TokenLine>,
    pub roles: Vec<&'static str>,
    /// What the invite form held, to show it again beside its error.
    pub email: String,
    pub role: String,
    pub error: Option<String>,
    /// The field the error belongs to: `email`, `password`, `role`, `token`.
    pub field: &'static str,
    pub notice: Option<String>,
    /// Shown once: a generated password or a new API token.
    pub once: Option<(&'static str, String)>,
}

impl MembersPage {
    fn error(mut self, field: &'static str, message: String) -> Self {
        self.field = field;
        self.error = Some(message);
        self
    }
}

#[derive(Deserialize, Default)]
pub struct MembersQuery {
    #[serde(default)]
    done: String,
}

/// `GET /projects/{id}/members` (admin).
pub async fn page(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<MembersQuery>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let mut page = members_page(&app, &signed_in, &membership).await?;
    page.notice = match q.done.as_str() {
        "role" => Some("Role changed.".into()),
        "revoked" => Some("Token revoked: it no longer works.".into()),
        _ => None,
    };
    Ok(page.into_response())
}

async fn members_page(
    app: &App,
    signed_in: &SignedIn,
    membership: &Membership,
) -> Result<MembersPage, PageError> {
    let now = app.now_ms();
    let project = &membership.project;
    let members = members::members(app, project)
        .await?
        .into_iter()
        .map(|m| MemberLine {
            you: m.user.id == signed_in.user().id,
            role: m.role.as_str(),
            since: When::at(m.since, now),
            email: m.user.email,
            user_id: m.user.id,
        })
        .collect();
    let tokens = tokens::list(app, project)
        .await?
        .into_iter()
        .rev()
        .map(|t| TokenLine {
            role: t.role.as_str(),
            created: When::at(t.created_at, now),
            revoked: When::maybe(t.revoked_at, now),
            id: t.id,
        })
        .collect();
    Ok(MembersPage {
        chrome: Chrome::new(signed_in, Some(membership), "members"),
        members,
        tokens,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        email: String::new(),
        role: Role::Viewer.as_str().into(),
        error: None,
        field: "",
        notice: None,
        once: None,
    })
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

/// `POST /projects/{id}/members`: creates a user with a role in this
/// project. A blank password is generated and shown once.
pub async fn invite(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<InviteForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let mut page = members_page(&app, &signed_in, &membership).await?;
    page.email = form.email.chars().take(254).collect();
    page.role = form.role.clone();
    let project = &membership.project;
    let actor = signed_in.actor();
    match members::invite(
        &app,
        project,
        &actor,
        &form.email,
        &form.password,
        &form.role,
    )
    .await
    {
        Ok(invited) => {
            let mut page = members_page(&app, &signed_in, &membership).await?;
            page.notice = Some(format!(
                "{} can now sign in as {}.",
                invited.member.user.email, invited.member.role
            ));
            if let Some(p) = invited.generated {
                page.once = Some(("password", p.expose().to_string()));
            }
            Ok((StatusCode::CREATED, page).into_response())
        }
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(e) => {
            let field = e.field().unwrap_or("email");
            Ok(refused(page.error(field, e.to_string())))
        }
    }
}

fn refused(page: MembersPage) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /projects/{id}/members/{user_id}/role`: the last admin stays admin.
pub async fn change_role(
    State(app): State<App>,
    signed_in: SignedIn,
    Path((id, user_id)): Path<(String, String)>,
    Form(form): Form<RoleForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let project = &membership.project;
    let outcome =
        members::change_role(&app, project, &signed_in.actor(), &user_id, &form.role).await;
    match outcome {
        Ok(_) => Ok(
            Redirect::to(&format!("/projects/{}/members?done=role", project.id)).into_response(),
        ),
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(AccountError::NoMember(_)) => Err(PageError::NotFound("no such member".into())),
        Err(e) => {
            let page = members_page(&app, &signed_in, &membership).await?;
            Ok(refused(page.error("role", e.to_string())))
        }
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    role: String,
}

/// `POST /projects/{id}/tokens`: a new API token, shown on this answer only.
pub async fn create_token(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let project = &membership.project;
    let issued = match members::create_token(&app, project, &signed_in.actor(), &form.role).await {
        Ok(issued) => issued,
        Err(AccountError::Store(e)) => return Err(e.into()),
        Err(e) => {
            let page = members_page(&app, &signed_in, &membership).await?;
            return Ok(refused(page.error("token", e.to_string())));
        }
    };
    let mut page = members_page(&app, &signed_in, &membership).await?;
    page.notice = Some(format!(
        "Token {} created. Copy it now: it is not shown again.",
        issued.record.id
    ));
    page.once = Some(("token", issued.token.expose().to_string()));
    Ok((StatusCode::CREATED, page).into_response())
}

/// `POST /projects/{id}/tokens/{token_id}/revoke`.
pub async fn revoke_token(
    State(app): State<App>,
    signed_in: SignedIn,
    Path((id, token_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Configure).await?;
    let project = &membership.project;
    match members::revoke_token(&app, project, &signed_in.actor(), &token_id).await? {
        Some(_) => Ok(
            Redirect::to(&format!("/projects/{}/members?done=revoked", project.id)).into_response(),
        ),
        None => Err(PageError::NotFound("no such token in this project".into())),
    }
}
