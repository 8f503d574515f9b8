//! Whether a drill can start: what is missing (nothing is sent then), and
//! whether Stripe's own deliveries pass the signature check.

use crate::{App, domain::Project, store::StoreError, vault::VaultError};

/// Why a drill could not start: nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error(
        "no webhook signing secret: add the endpoint's whsec_… first (`parityrail stripe secrets add PROJECT whsec_…`)"
    )]
    NoSigningSecret,
    #[error("no app probe: set one first (`parityrail probe set PROJECT --url U --secret S`)")]
    NoProbe,
    #[error(
        "no Stripe key: connect Stripe first (`parityrail stripe connect PROJECT --api-key K`)"
    )]
    NoStripeKey,
    #[error(
        "no customer to drill with: ParityRail has read none of this project's customers yet (run `parityrail scan PROJECT`)"
    )]
    NoCustomer,
    #[error(
        "a demo project ignores traffic to its public webhook URL by design: drill a test or live project"
    )]
    DemoProject,
    #[error("cannot open the project's secrets: {0}")]
    Vault(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<VaultError> for DrillError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Store(e) => Self::Store(e),
            other => Self::Vault(other.to_string()),
        }
    }
}

/// Why Stripe's deliveries are refused, when one failed signature
/// verification after the last that matched a stored secret.
pub(super) async fn refused_by_signature(
    app: &App,
    project: &Project,
) -> Result<Option<String>, StoreError> {
    let Some((refused, matched)) =
        crate::usecase::connection::refused_since_last_match(app, project).await?
    else {
        return Ok(None);
    };
    let since = matched.map_or("none ever has".to_string(), |m| {
        format!("none has since the last match at {}", crate::rfc3339(m))
    });
    Ok(Some(format!(
        "nothing sent: a delivery at {} matched no stored signing secret, and {since}. \
         The stored whsec_ is not the Stripe endpoint's (add it: `parityrail stripe secrets \
         add PROJECT whsec_…`), or someone sends forged events",
        crate::rfc3339(refused)
    )))
}
