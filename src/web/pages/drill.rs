//! "Run drill" on the project page (SPEC §8b): the same drill as
//! `parityrail drill`, its stages shown as they passed or broke.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::{PageError, SignedIn, view::Chrome};
use crate::{
    App,
    usecase::{
        accounts,
        drill::{self, DrillError, DrillReport},
        tokens::Action,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "drill.html")]
pub struct DrillPage {
    pub chrome: Chrome,
    pub report: Option<DrillReport>,
    /// Why the drill could not start (nothing was sent).
    pub error: Option<String>,
}

/// `POST /projects/{id}/drill` (admin): runs a drill and shows its stages.
pub async fn run(
    State(app): State<App>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let membership = accounts::authorize(&app, signed_in.user(), &id, Action::Manage).await?;
    let base = app.config.public_url.clone();
    let chrome = Chrome::new(&signed_in, Some(&membership), "overview");
    match drill::run(&app, &membership.project, &base, drill::SERVED_WAIT).await {
        Ok(report) => {
            tracing::info!(project_id = %membership.project.id, user_id = %signed_in.user().id,
                caught = report.caught, "drill from the project page");
            Ok(DrillPage {
                chrome,
                report: Some(report),
                error: None,
            }
            .into_response())
        }
        Err(DrillError::Store(e)) => Err(e.into()),
        Err(e) => Ok((
            StatusCode::CONFLICT,
            DrillPage {
                chrome,
                report: None,
                error: Some(e.to_string()),
            },
        )
            .into_response()),
    }
}
