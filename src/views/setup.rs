//! The views of a project's setup: members, tokens, the Stripe connection
//! and its signing secrets, and the settings.

use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    domain::{ApiToken, KeyMode, Member, Project, ProjectMode, Role},
    rfc3339,
    usecase::connection::{Connection, SecretView},
};

/// A member of a project: a dashboard user and their role.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    #[schema(example = "usr_01J9ZK3V4Q2W")]
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub since: String,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        Self {
            user_id: m.user.id.clone(),
            email: m.user.email.clone(),
            role: m.role,
            since: rfc3339(m.since),
        }
    }
}

/// An API token, never its secret (shown once, when created).
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    #[schema(example = "tok_01J9ZK3V4Q2W")]
    pub id: String,
    pub role: Role,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id.clone(),
            role: t.role,
            created_at: rfc3339(t.created_at),
            revoked_at: t.revoked_at.map(rfc3339),
        }
    }
}

/// The "Stripe connected" card: what was stored, secrets as last four only.
#[derive(Serialize, ToSchema)]
pub struct ConnectionView {
    pub mode: KeyMode,
    /// The Stripe account the key belongs to, when Stripe said.
    pub account_id: Option<String>,
    pub api_key_last4: String,
    pub connected_at: String,
    pub webhook_secrets: Vec<SigningSecretView>,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        Self {
            mode: c.mode,
            account_id: c.account_id.clone(),
            api_key_last4: c.api_key_last4.clone(),
            connected_at: rfc3339(c.connected_at),
            webhook_secrets: c.webhook_secrets.iter().map(Into::into).collect(),
        }
    }
}

/// A webhook signing secret as it may be shown: its last four characters.
#[derive(Serialize, ToSchema)]
pub struct SigningSecretView {
    /// `whs_…`: what removing it takes.
    #[schema(example = "whs_2")]
    pub id: String,
    pub last4: String,
    pub added_at: String,
    /// When a webhook last verified against it (`null`: never).
    pub last_matched_at: Option<String>,
}

impl From<&SecretView> for SigningSecretView {
    fn from(s: &SecretView) -> Self {
        Self {
            id: s.id.clone(),
            last4: s.last4.clone(),
            added_at: rfc3339(s.added_at),
            last_matched_at: s.last_matched_at.map(rfc3339),
        }
    }
}

/// A project's settings (onboarding step 1, `project config`, the API).
/// The names are `project config`'s flags.
#[derive(Serialize, ToSchema)]
pub struct SettingsView {
    #[schema(example = "prj_01J9ZK3V4Q2W")]
    pub id: String,
    pub name: String,
    pub mode: ProjectMode,
    /// How long `past_due` keeps access, from the first failed payment (whole days).
    pub past_due_grace_days: i64,
    /// The same, exactly.
    pub past_due_grace_secs: i64,
    /// Seconds after an event's `created` the app has to fulfil it.
    pub fulfillment_deadline: i64,
    /// The Stripe customer metadata key holding the app's user id.
    pub user_metadata_key: String,
    /// A paying customer without that key is an incident.
    pub require_mapping: bool,
    /// Seconds an event may wait before a `webhook_lag` incident.
    pub lag_threshold: i64,
    /// Features come from Stripe entitlements instead of the plan map.
    pub use_entitlements: bool,
    /// The daily scan, `HH:MM` UTC.
    #[schema(example = "03:00")]
    pub scan_at: String,
    /// Stripe requests per second a scan may spend; `null`: 80 with a live
    /// key, 20 with a test key.
    pub stripe_budget: Option<i64>,
}

impl From<&Project> for SettingsView {
    fn from(p: &Project) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            mode: p.mode,
            past_due_grace_days: p.past_due_grace_secs / 86_400,
            past_due_grace_secs: p.past_due_grace_secs,
            fulfillment_deadline: p.fulfillment_deadline_secs,
            user_metadata_key: p.user_metadata_key.clone(),
            require_mapping: p.require_mapping,
            lag_threshold: p.lag_threshold_secs,
            use_entitlements: p.use_entitlements,
            scan_at: p.scan_at.clone(),
            stripe_budget: p.stripe_budget_rps,
        }
    }
}
