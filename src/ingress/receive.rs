//! One delivery to `/api/webhooks/stripe/{projectId}`, decided row by row as
//! SPEC §2 orders it. The HTTP handler (in `web`) only maps the outcome to
//! a status and a body.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use super::{Intake, directory::ProjectEntry, verify};
use crate::{
    domain::{IncidentKind, ProjectMode},
    ids::{CustomerId, ProjectId},
    store::{InsertOutcome, NewEvent, NewIncident, StoreError},
    stripe::event::{VerifiedEvent, is_handled},
};

/// How often a project's signature refusals are written at most.
const REFUSAL_WRITE_EVERY_MS: i64 = 5_000;

/// How the project of a delivery was found.
pub enum Addressed {
    /// No such project (or an id that does not parse): 404.
    Unknown,
    /// A demo project: live traffic is ignored by design, nothing is read or
    /// stored; only the demo's own simulator delivers to it (`web::simulated_router`).
    Demo(Arc<ProjectEntry>),
    Project(Arc<ProjectEntry>),
}

/// How one delivery ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Receipt {
    /// Committed to the inbox; `ignored` names why it will not be processed.
    Stored { ignored: Option<String> },
    /// Already in the inbox.
    Duplicate,
    /// Refused before anything was stored (400).
    Rejected(Rejection),
    /// A redelivery of an event still unfinished past the lag threshold:
    /// re-queued, a `webhook_lag` incident open (500, so Stripe keeps trying).
    Lagging,
    /// The inbox write failed (500: Stripe redelivers).
    InboxUnavailable,
}

/// Why a delivery was refused (400).
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    NoSigningSecret,
    BadSignature(verify::VerifyError),
    NotAnEvent(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error(transparent)]
    Directory(#[from] super::directory::DirectoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Intake {
    /// Finds the project a delivery is addressed to.
    pub async fn address(&self, raw_id: &str) -> Result<Addressed, ReceiveError> {
        let Some(id) = ProjectId::parse(raw_id) else {
            return Ok(Addressed::Unknown);
        };
        Ok(match self.directory.get(&id).await? {
            None => Addressed::Unknown,
            Some(entry) if entry.project.mode == ProjectMode::Demo => Addressed::Demo(entry),
            Some(entry) => Addressed::Project(entry),
        })
    }

    /// Verifies the raw bytes, parses, stores durably, answers.
    pub async fn receive(
        &self,
        mut entry: Arc<ProjectEntry>,
        signature: Option<&str>,
        body: Bytes,
    ) -> Result<Receipt, ReceiveError> {
        let id = entry.project.id.clone();
        // Signature ages are about the wire: the wall clock, not the service's.
        let wall = crate::now_ms() / 1000;
        let mut verified = verify::verify_with_ids(signature, &body, &entry.secrets, wall);
        if matches!(
            verified,
            Err(verify::VerifyError::SignatureMismatch | verify::VerifyError::MissingSecret)
        ) && let Some(fresh) = self.directory.reload_after_miss(&id).await?
        {
            // A secret may have been added by another process.
            entry = fresh;
            verified = verify::verify_with_ids(signature, &body, &entry.secrets, wall);
        }
        let matched = match verified {
            Ok(matched) => {
                // A match ends the quiet spell: the next refusal is written
                // at once, so it is never older than this match.
                self.refusals_written
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(id.as_str());
                matched
            }
            Err(err) => {
                tracing::info!(project_id = %id, reason = err.as_str(), "webhook rejected");
                if err == verify::VerifyError::SignatureMismatch {
                    self.note_refusal(&id).await;
                }
                return Ok(Receipt::Rejected(match err {
                    verify::VerifyError::MissingSecret => Rejection::NoSigningSecret,
                    other => Rejection::BadSignature(other),
                }));
            }
        };
        let event = match VerifiedEvent::parse(&body) {
            Ok(event) => event,
            Err(e) => return Ok(Receipt::Rejected(Rejection::NotAnEvent(e.to_string()))),
        };
        let now = self.clock.now_ms();
        let ignored_reason = ignore_reason(&event, entry.key_mode.map(|m| m.is_live()));
        let new = NewEvent {
            project_id: id.to_string(),
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            livemode: event.livemode,
            api_version: event.api_version.clone(),
            created: event.created,
            customer_id: event.customer.clone(),
            raw_body: body,
            ignored_reason: ignored_reason.clone(),
            received_at: now,
            due_at: now + self.coalesce.as_millis() as i64,
            matched_secret: Some(matched),
        };
        let outcome = match self.inbox.submit(new).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(project_id = %id, event_id = %event.id, error = %e, "inbox write failed");
                return Ok(Receipt::InboxUnavailable);
            }
        };
        match outcome {
            InsertOutcome::Stored => {
                tracing::info!(project_id = %id, event_id = %event.id, event_type = %event.event_type,
                    ignored = ?ignored_reason, "webhook stored");
                Ok(Receipt::Stored {
                    ignored: ignored_reason,
                })
            }
            InsertOutcome::SecretRemoved => {
                // Removed by another process since this one cached it.
                self.directory.invalidate(&id);
                tracing::info!(project_id = %id, "webhook signed with a removed secret");
                Ok(Receipt::Rejected(Rejection::BadSignature(
                    verify::VerifyError::SignatureMismatch,
                )))
            }
            InsertOutcome::Duplicate {
                unfinished,
                received_at,
            } => {
                let lag_ms = entry.project.lag_threshold_secs.saturating_mul(1000);
                if unfinished && now - received_at > lag_ms {
                    self.redelivered_while_lagging(&id, &event, now).await?;
                    return Ok(Receipt::Lagging);
                }
                Ok(Receipt::Duplicate)
            }
        }
    }

    /// Records that a delivery failed signature verification, at most once
    /// per project every [`REFUSAL_WRITE_EVERY_MS`]; a failed write is only
    /// logged (the answer is a 400 either way).
    async fn note_refusal(&self, id: &ProjectId) {
        let now = self.clock.now_ms();
        {
            let mut written = self
                .refusals_written
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match written.get(id.as_str()) {
                Some(at) if now - at < REFUSAL_WRITE_EVERY_MS => return,
                _ => written.insert(id.to_string(), now),
            };
        }
        if let Err(error) = self.store.record_signature_refusal(id.as_str(), now).await {
            tracing::warn!(project_id = %id, %error, "could not record a signature refusal");
        }
    }

    /// Stripe redelivered an event we hold but have not finished past the
    /// lag threshold: make it due now and keep the incident open.
    async fn redelivered_while_lagging(
        &self,
        id: &ProjectId,
        event: &VerifiedEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let requeued = self
            .store
            .requeue_event(id.as_str(), &event.id, now)
            .await?;
        self.store
            .open_incident(&NewIncident {
                project_id: id.to_string(),
                kind: IncidentKind::WebhookLag,
                customer_id: event.customer.clone().unwrap_or_default(),
                event_id: Some(event.id.clone()),
                details: json!({"event_type": event.event_type, "redelivered": true}),
                count: None,
                now,
                evidence: Default::default(),
            })
            .await?;
        self.wake.notify_waiters();
        tracing::warn!(project_id = %id, event_id = %event.id, requeued, "redelivery of a lagging event");
        Ok(())
    }
}

/// Why a verified event is stored but not processed (answered 200: retrying cannot help).
fn ignore_reason(event: &VerifiedEvent, project_live: Option<bool>) -> Option<String> {
    if let Some(live) = project_live
        && live != event.livemode
    {
        let (got, want) = if event.livemode {
            ("live", "test")
        } else {
            ("test", "live")
        };
        return Some(format!(
            "livemode mismatch: a {got}-mode event for a {want}-mode key"
        ));
    }
    if !is_handled(&event.event_type) {
        return Some(format!("event type {} is not handled", event.event_type));
    }
    match event.customer.as_deref() {
        None => Some("event names no customer".into()),
        // Never let a payload's id reach a Stripe URL unchecked.
        Some(c) if CustomerId::parse(c).is_none() => Some(format!(
            "customer {:?} is not a Stripe customer id (cus_ and letters or digits)",
            c.chars().take(64).collect::<String>()
        )),
        Some(_) => None,
    }
}
