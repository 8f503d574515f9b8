//! JSON views shared by the CLI (`--json`) and the API (`/api/v1`): one
//! type per record, so both answer the same shape and the OpenAPI document
//! describes exactly what is sent. Field names are a contract (SPEC §8):
//! fields may be added, never renamed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    domain::{
        ApiToken, EventRecord, EventStatus, Incident, IncidentKind, IncidentStatus, KeyMode,
        Member, Project, ProjectMode, Role, Run, RunKind, RunStatus, RunStep, Scan, ScanStatus,
        ScanTrigger, StepName, Trigger,
    },
    rfc3339,
    usecase::connection::{Connection, SecretView},
};

/// A JSON text column as JSON (`null` when absent or unreadable).
pub fn stored_json(raw: Option<&str>) -> Value {
    raw.and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null)
}

fn json_of(view: impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// One run (a fulfillment check) with its verdict and evidence summary.
#[derive(Serialize, ToSchema)]
pub struct RunView {
    #[schema(example = "run_01J9ZK3V4Q2W")]
    pub id: String,
    pub customer: String,
    pub trigger: Trigger,
    /// Unique per trigger (the first event of a webhook run, the scan and
    /// customer of a scan run, the replay of a replayed event).
    pub external_id: Option<String>,
    /// The newest Stripe event whose state the run judges.
    pub event_id: Option<String>,
    pub status: RunStatus,
    /// The verdict once the run is done.
    pub kind: Option<RunKind>,
    /// The app's user id of the customer.
    pub user: Option<String>,
    /// The access Stripe says was paid for.
    pub expected: Value,
    /// The access the app answered.
    pub observed: Value,
    pub deploy_sha: Option<String>,
    pub summary: Option<String>,
    pub probe_attempts: i64,
    /// RFC 3339.
    pub deadline: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// A drill's run (trigger `drill`, SPEC §8b).
    pub drill: bool,
    /// Every step of evidence, in order (a single run only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepView>>,
}

/// One step of a run's evidence.
#[derive(Serialize, ToSchema)]
pub struct StepView {
    pub at: String,
    pub step: StepName,
    /// What the step saw: the Stripe snapshot, the expected access, a probe
    /// attempt (with `http_status` and `latency_ms`), the verdict.
    pub detail: Value,
}

impl From<&Run> for RunView {
    fn from(run: &Run) -> Self {
        Self {
            id: run.id.clone(),
            customer: run.customer_id.clone(),
            trigger: run.trigger,
            drill: run.trigger == Trigger::Drill,
            external_id: run.external_id.clone(),
            event_id: run.event_id.clone(),
            status: run.status,
            kind: run.kind,
            user: run.app_user_id.clone(),
            expected: stored_json(run.expected.as_deref()),
            observed: stored_json(run.observed.as_deref()),
            deploy_sha: run.deploy_sha.clone(),
            summary: run.summary.clone(),
            probe_attempts: run.probe_attempts,
            deadline: rfc3339(run.deadline),
            created_at: rfc3339(run.created_at),
            finished_at: run.finished_at.map(rfc3339),
            steps: None,
        }
    }
}

impl RunView {
    /// A run with every step of evidence it gathered, in order.
    pub fn with_steps(run: &Run, steps: &[RunStep]) -> Self {
        Self {
            steps: Some(
                steps
                    .iter()
                    .map(|s| StepView {
                        at: rfc3339(s.at),
                        step: s.step,
                        detail: stored_json(Some(&s.detail)),
                    })
                    .collect(),
            ),
            ..Self::from(run)
        }
    }
}

pub fn run_json(run: &Run) -> Value {
    json_of(RunView::from(run))
}

pub fn run_with_steps_json(run: &Run, steps: &[RunStep]) -> Value {
    json_of(RunView::with_steps(run, steps))
}

/// One entry of the webhook event log.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    #[schema(example = "evt_1PqR2sT3uV4w")]
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: EventStatus,
    pub reason: Option<String>,
    pub customer: Option<String>,
    pub received_at: String,
    pub processed_at: Option<String>,
    pub attempts: i64,
    /// A drill's labelled event (SPEC §8b).
    pub drill: bool,
}

impl From<&EventRecord> for EventView {
    fn from(e: &EventRecord) -> Self {
        Self {
            event_id: e.event_id.clone(),
            event_type: e.event_type.clone(),
            status: e.status,
            reason: e.reason.clone(),
            customer: e.customer.clone(),
            received_at: rfc3339(e.received_at),
            processed_at: e.processed_at.map(rfc3339),
            attempts: e.attempts,
            drill: crate::domain::is_drill_event(&e.event_id),
        }
    }
}

pub fn event_json(e: &EventRecord) -> Value {
    json_of(EventView::from(e))
}

/// An incident as `incidents list --json` and the API show it, with the
/// runs that prove it.
#[derive(Serialize, ToSchema)]
pub struct IncidentView {
    #[schema(example = "inc_01J9ZK3V4Q2W")]
    pub id: String,
    pub kind: IncidentKind,
    pub status: IncidentStatus,
    /// `null` for an incident of the whole project (the app down, the key rejected).
    pub customer: Option<String>,
    pub user: Option<String>,
    pub subscription: Option<String>,
    pub subscription_status: Option<String>,
    pub expected: Value,
    pub observed: Value,
    pub deploy_sha: Option<String>,
    pub event_id: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub count: i64,
    /// What to do next.
    pub guidance: String,
    /// The runs that prove it, newest first.
    pub runs: Vec<String>,
    pub details: Value,
    /// Opened by a drill (SPEC §8b): never a real incident.
    pub drill: bool,
}

impl IncidentView {
    pub fn new(i: &Incident, runs: &[String]) -> Self {
        Self {
            id: i.id.clone(),
            kind: i.kind,
            status: i.status,
            customer: (!i.customer_id.is_empty()).then(|| i.customer_id.clone()),
            user: i.app_user_id.clone(),
            subscription: i.subscription_id.clone(),
            subscription_status: i.subscription_status.clone(),
            expected: stored_json(i.expected.as_deref()),
            observed: stored_json(i.observed.as_deref()),
            deploy_sha: i.deploy_sha.clone(),
            event_id: i.event_id.clone(),
            first_seen: rfc3339(i.first_seen),
            last_seen: rfc3339(i.last_seen),
            count: i.count,
            guidance: i.kind.guidance().to_string(),
            runs: runs.to_vec(),
            details: stored_json(Some(&i.details)),
            drill: i.drill,
        }
    }
}

pub fn incident_json(i: &Incident, runs: &[String]) -> Value {
    json_of(IncidentView::new(i, runs))
}

/// A scan: running (with its progress so far) or done (its summary).
#[derive(Serialize, ToSchema)]
pub struct ScanView {
    #[schema(example = "scn_01J9ZK3V4Q2W")]
    pub id: String,
    pub trigger: ScanTrigger,
    pub status: ScanStatus,
    /// The scheduled slot a daily scan is for.
    pub scheduled_for: Option<String>,
    /// Whether every Stripe subscription has been read.
    pub stripe_done: bool,
    /// Whether every app user has been read.
    pub app_done: bool,
    pub subscriptions_seen: i64,
    pub customers_checked: i64,
    /// Customers the app could not be asked about, even after retries.
    pub customers_unchecked: i64,
    /// Mismatch kind → count.
    pub mismatches: BTreeMap<String, i64>,
    pub stripe_requests: i64,
    pub probe_requests: i64,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
}

impl From<&Scan> for ScanView {
    fn from(s: &Scan) -> Self {
        Self {
            id: s.id.clone(),
            trigger: s.trigger,
            status: s.status,
            scheduled_for: s.scheduled_for.clone(),
            stripe_done: s.stripe_done,
            app_done: s.app_done,
            subscriptions_seen: s.subscriptions_seen,
            customers_checked: s.customers_checked,
            customers_unchecked: s.customers_unchecked,
            mismatches: serde_json::from_str(&s.mismatches).unwrap_or_default(),
            stripe_requests: s.stripe_requests,
            probe_requests: s.probe_requests,
            error: s.error.clone(),
            started_at: rfc3339(s.started_at),
            finished_at: s.finished_at.map(rfc3339),
        }
    }
}

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
