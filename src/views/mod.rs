//! JSON views shared by the CLI (`--json`) and the API (`/api/v1`): one
//! type per record, so both answer the same shape and the OpenAPI document
//! describes exactly what is sent. Field names are a contract (SPEC §8):
//! fields may be added, never renamed.

mod setup;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    domain::{
        EventRecord, EventStatus, Incident, IncidentKind, IncidentStatus, Run, RunKind, RunStatus,
        RunStep, Scan, ScanStatus, ScanTrigger, StepName, Trigger,
    },
    rfc3339,
};

/// A JSON text column as JSON (`null` when absent or unreadable).
pub fn stored_json(raw: Option<&str>) -> Value {
    raw.and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null)
}

pub use setup::{ConnectionView, MemberView, SettingsView, SigningSecretView, TokenView};

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
