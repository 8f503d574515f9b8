//! JSON views shared by the CLI (`--json`) and the API (`/api/v1`): one
//! function per record, so both answer the same shape. Field names are a
//! contract (SPEC §8): fields may be added, never renamed.

use serde_json::{Value, json};

use crate::{
    domain::{EventRecord, Incident, Run, RunStep},
    rfc3339,
};

/// A JSON text column as JSON (`null` when absent or unreadable).
pub fn stored_json(raw: Option<&str>) -> Value {
    raw.and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null)
}

/// One run (a fulfillment check) with its verdict and evidence summary.
pub fn run_json(run: &Run) -> Value {
    json!({"id": run.id, "customer": run.customer_id, "trigger": run.trigger,
        "external_id": run.external_id, "event_id": run.event_id, "status": run.status,
        "kind": run.kind, "user": run.app_user_id, "expected": stored_json(run.expected.as_deref()),
        "observed": stored_json(run.observed.as_deref()), "deploy_sha": run.deploy_sha,
        "summary": run.summary, "probe_attempts": run.probe_attempts,
        "deadline": rfc3339(run.deadline), "created_at": rfc3339(run.created_at),
        "finished_at": run.finished_at.map(rfc3339)})
}

/// A run with every step of evidence it gathered, in order.
pub fn run_with_steps_json(run: &Run, steps: &[RunStep]) -> Value {
    let mut value = run_json(run);
    value["steps"] = steps
        .iter()
        .map(|s| json!({"at": rfc3339(s.at), "step": s.step, "detail": stored_json(Some(&s.detail))}))
        .collect();
    value
}

/// One entry of the webhook event log.
pub fn event_json(e: &EventRecord) -> Value {
    json!({"event_id": e.event_id, "type": e.event_type, "status": e.status,
        "reason": e.reason, "customer": e.customer, "received_at": rfc3339(e.received_at),
        "processed_at": e.processed_at.map(rfc3339), "attempts": e.attempts})
}

/// An incident as `incidents list --json` and the API show it, with the
/// runs that prove it.
pub fn incident_json(i: &Incident, runs: &[String]) -> Value {
    let customer = if i.customer_id.is_empty() {
        Value::Null
    } else {
        json!(i.customer_id)
    };
    json!({"id": i.id, "kind": i.kind, "status": i.status, "customer": customer,
        "user": i.app_user_id, "subscription": i.subscription_id,
        "subscription_status": i.subscription_status,
        "expected": stored_json(i.expected.as_deref()), "observed": stored_json(i.observed.as_deref()),
        "deploy_sha": i.deploy_sha, "event_id": i.event_id, "first_seen": rfc3339(i.first_seen),
        "last_seen": rfc3339(i.last_seen), "count": i.count,
        "guidance": i.kind.guidance(), "runs": runs,
        "details": stored_json(Some(&i.details))})
}
