//! What the store hands back: rows decoded into typed records at its edge.

use serde::Serialize;

use super::{
    EventStatus, IncidentKind, IncidentStatus, ProjectMode, Role, RunKind, RunStatus, ScanStatus,
    ScanTrigger, StepName, Trigger,
};
use crate::ids::ProjectId;

/// One monitored app.
#[derive(Clone, Debug, Serialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub mode: ProjectMode,
    pub user_metadata_key: String,
    pub require_mapping: bool,
    pub lag_threshold_secs: i64,
    pub past_due_grace_secs: i64,
    pub fulfillment_deadline_secs: i64,
    pub use_entitlements: bool,
    /// Daily scan time, `HH:MM` UTC.
    pub scan_at: String,
    /// Stripe requests per second a scan may spend; `None` = 20 test, 80 live.
    pub stripe_budget_rps: Option<i64>,
    pub created_at: i64,
}

/// Settings `parityrail project config` may change; `None` leaves a value as is.
#[derive(Clone, Debug, Default)]
pub struct ProjectSettings {
    pub past_due_grace_secs: Option<i64>,
    pub fulfillment_deadline_secs: Option<i64>,
    pub user_metadata_key: Option<String>,
    pub require_mapping: Option<bool>,
    pub lag_threshold_secs: Option<i64>,
    pub use_entitlements: Option<bool>,
    pub scan_at: Option<String>,
    pub stripe_budget_rps: Option<i64>,
}

/// One fulfillment check of one customer.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub id: String,
    pub project_id: ProjectId,
    pub customer_id: String,
    pub trigger: Trigger,
    /// Unique per trigger: the first Stripe event of a webhook run, the
    /// scan and customer of a scan run, the replay of a replayed event.
    pub external_id: Option<String>,
    /// The newest Stripe event whose state this run judges, if any.
    pub event_id: Option<String>,
    pub status: RunStatus,
    pub kind: Option<RunKind>,
    pub app_user_id: Option<String>,
    pub expected: Option<String>,
    pub observed: Option<String>,
    pub deploy_sha: Option<String>,
    pub summary: Option<String>,
    pub probe_attempts: i64,
    pub deadline: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// Bumped by every newer event the run takes on: a verdict lands only
    /// for the generation it judged, so newer state is always judged.
    pub generation: i64,
    /// The generation whose evidence (snapshot, expected) was last recorded.
    pub judged_generation: i64,
    /// Whether the run reads Stripe before probing (manual, rerun and scan
    /// checks); a webhook run and a replay follow a fresh sync.
    pub needs_sync: bool,
}

impl Run {
    pub fn is_pending(&self) -> bool {
        self.status == RunStatus::Pending
    }
}

/// Evidence a run gathered, in order.
#[derive(Clone, Debug, Serialize)]
pub struct RunStep {
    pub at: i64,
    pub step: StepName,
    /// JSON text.
    pub detail: String,
}

/// A standing disagreement or failure (SPEC §6).
#[derive(Clone, Debug, Serialize)]
pub struct Incident {
    pub id: String,
    pub kind: IncidentKind,
    pub status: IncidentStatus,
    /// Empty for an incident of the whole project (the app down, the key rejected).
    #[serde(rename = "customer")]
    pub customer_id: String,
    pub event_id: Option<String>,
    #[serde(skip)]
    pub details: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub count: i64,
    pub app_user_id: Option<String>,
    pub subscription_id: Option<String>,
    pub subscription_status: Option<String>,
    pub expected: Option<String>,
    pub observed: Option<String>,
    pub deploy_sha: Option<String>,
    /// Opened by a drill (SPEC §8b), never a real incident.
    pub drill: bool,
}

impl Incident {
    pub fn is_resolved(&self) -> bool {
        self.status == IncidentStatus::Resolved
    }
}

/// A full pass over a project's customers (SPEC §7).
#[derive(Clone, Debug, Serialize)]
pub struct Scan {
    pub id: String,
    pub project_id: ProjectId,
    pub trigger: ScanTrigger,
    pub scheduled_for: Option<String>,
    pub status: ScanStatus,
    pub stripe_cursor: Option<String>,
    pub stripe_done: bool,
    pub app_cursor: Option<String>,
    pub app_done: bool,
    pub subscriptions_seen: i64,
    pub customers_checked: i64,
    /// Customers the app could not be asked about, even after retries.
    pub customers_unchecked: i64,
    /// JSON object: mismatch kind → count.
    pub mismatches: String,
    pub stripe_requests: i64,
    pub probe_requests: i64,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// The event log's view of one event (SPEC §8 `events list`).
#[derive(Clone, Debug, Serialize)]
pub struct EventRecord {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: EventStatus,
    pub reason: Option<String>,
    pub customer: Option<String>,
    pub received_at: i64,
    pub processed_at: Option<i64>,
    pub attempts: i64,
}

/// A stored API token, without anything that reveals it.
#[derive(Clone, Debug, Serialize)]
pub struct ApiToken {
    pub id: String,
    pub project_id: ProjectId,
    pub role: Role,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A person who signs in to the dashboard (never the password or its hash).
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: String,
    /// Lower-case, as typed otherwise.
    pub email: String,
    pub created_at: i64,
}

/// A user's role in one project.
#[derive(Clone, Debug, Serialize)]
pub struct Member {
    pub user: User,
    pub project_id: ProjectId,
    pub role: Role,
    pub since: i64,
}

/// A live dashboard session (never its token).
#[derive(Clone, Debug)]
pub struct Session {
    /// The SHA-256 of the cookie's token: how the store names the session.
    pub token_hash: String,
    pub user: User,
    /// The form token every unsafe request of this session must carry.
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// Who did what to an incident or an event, and when.
#[derive(Clone, Debug, Serialize)]
pub struct Activity {
    pub subject: String,
    /// `user:EMAIL`, `token:tok_…` or `cli`.
    pub actor: String,
    pub action: String,
    pub detail: Option<String>,
    pub at: i64,
}
