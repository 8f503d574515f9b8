//! One attempt of one run: read what it needs, probe the app (no
//! transaction open during network calls), and say how the run is left —
//! as a settlement the store applies only if the attempt still holds the
//! run and judged its current generation.

use std::time::Duration;

use serde_json::json;

use super::evidence::{Base, Draft, ProbeCall};
use crate::{
    App,
    access::{AccessPolicy, expected_access},
    backoff::Backoff,
    compare::compare,
    domain::{Project, Run, RunKind, StepName},
    ids::CustomerId,
    store::{CustomerState, RunSettlement, StoreError, SyncCommit},
    stripe::StripeError,
    vault::VaultError,
};

/// Re-probes after a mismatch: 1 s, doubling to 30 s, never past the deadline.
fn reprobe() -> Backoff {
    Backoff::exponential(Duration::from_secs(1), Duration::from_secs(30))
}

pub(super) async fn attempt(
    app: &App,
    run: &Run,
    owner: &str,
) -> Result<RunSettlement, StoreError> {
    let draft = Draft::new(run, owner, app.now_ms());
    let Some(project) = app.store.project(&run.project_id).await? else {
        return Ok(draft.fail(RunKind::Setup, "the project no longer exists"));
    };
    let Some(customer) = CustomerId::parse(&run.customer_id) else {
        return Ok(draft.fail(
            RunKind::Setup,
            "the customer is not a Stripe customer id (cus_ and letters or digits)",
        ));
    };
    if run.needs_sync
        && let Err(failure) = sync_from_stripe(app, &project, &customer).await?
    {
        return Ok(failure.settle(draft));
    }
    let views = app
        .store
        .subscription_views(run.project_id.as_str(), &run.customer_id)
        .await?;
    let row = app
        .store
        .customer_row(run.project_id.as_str(), &run.customer_id)
        .await?;
    let entitlements: Option<Vec<String>> = row
        .as_ref()
        .and_then(|(_, json, _)| serde_json::from_str(json).ok())
        .flatten();
    let map = app
        .store
        .plan_map(&project.id, project.use_entitlements)
        .await?;
    let policy = AccessPolicy {
        past_due_grace_secs: project.past_due_grace_secs,
    };
    let now = draft.now;
    let mut expected = expected_access(&views, entitlements.as_deref(), &map, &policy, now / 1000);
    if run.trigger == crate::domain::Trigger::Drill {
        super::drill_expectation(&mut expected);
    }
    let mut draft = draft.with_state(Base::new(&views, &expected));
    // Evidence of the state judged: once per generation.
    if run.probe_attempts == 0 || run.generation != run.judged_generation {
        draft.step(
            StepName::StripeSnapshot,
            json!({"subscriptions": views, "entitlements": entitlements, "generation": run.generation}),
        );
        draft.step(StepName::Expected, draft.base().expected.clone());
    }
    let user = match &row {
        Some((user, _, _)) => user.clone(),
        None => (!project.require_mapping).then(|| run.customer_id.clone()),
    };
    let Some(user) = user else {
        return Ok(draft.unmapped());
    };
    draft.user(&user);
    let target = match app.vault.probe_target(&app.store, &project).await {
        Ok(Some(target)) => target,
        Ok(None) => return Ok(draft.fail(RunKind::Setup, "no app probe is configured")),
        Err(VaultError::Store(e)) => return Err(e),
        Err(e) => return Ok(draft.fail(RunKind::Setup, &e.to_string())),
    };
    let attempt_no = run.probe_attempts + 1;
    let next = next_attempt(run, now);
    let started = std::time::Instant::now();
    let answer = app
        .probe
        .probe_answer(&target, customer.as_str(), &user)
        .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match answer {
        Err(err) => {
            let message = err.to_string();
            draft.step(
                StepName::Probe,
                json!({"attempt": attempt_no, "http_status": err.http_status(),
                    "latency_ms": latency_ms, "error": message}),
            );
            if let Some(next_at) = next {
                return Ok(draft.reschedule(next_at, &message));
            }
            // The app answered others since this check began: the failure is
            // this customer's. Otherwise the app is down for everyone, and
            // one incident stands for the project.
            let last_ok = app
                .store
                .probe_config(&project.id)
                .await?
                .and_then(|p| p.last_ok_at);
            let alone = last_ok.is_some_and(|ok| ok >= run.created_at);
            Ok(draft.probe_failed(&message, alone))
        }
        Ok((observed, http_status)) => {
            let verdict = compare(&expected, &observed, &map);
            let call = ProbeCall {
                attempt: attempt_no,
                http_status,
                latency_ms,
            };
            Ok(draft.judged(&observed, &verdict, call, next))
        }
    }
}

/// When to probe again, or `None` once the deadline has passed.
fn next_attempt(run: &Run, now: i64) -> Option<i64> {
    if now >= run.deadline {
        return None;
    }
    let retry = u32::try_from(run.probe_attempts.max(0)).unwrap_or(u32::MAX);
    let backoff = reprobe().delay(retry, None)?;
    Some((now + backoff.as_millis() as i64).min(run.deadline))
}

/// Why a check's own read of Stripe failed.
pub(super) enum SyncFailure {
    /// The key is the problem: rejected, or lacking a permission.
    Auth {
        message: String,
        permission: Option<&'static str>,
    },
    Unavailable(String),
}

impl SyncFailure {
    fn settle(self, draft: Draft) -> RunSettlement {
        match self {
            Self::Auth {
                message,
                permission,
            } => draft.stripe_auth(&message, permission),
            Self::Unavailable(message) => draft.fail(RunKind::StripeError, &message),
        }
    }
}

/// Reads the customer from Stripe and stores it (manual, rerun and scan
/// checks). `Ok(Err(_))` when Stripe cannot be read.
async fn sync_from_stripe(
    app: &App,
    project: &Project,
    customer: &CustomerId,
) -> Result<Result<(), SyncFailure>, StoreError> {
    let key = match app.vault.stripe_key(&app.store, project).await {
        Ok(Some((key, _))) => key,
        Ok(None) => {
            return Ok(Err(SyncFailure::Auth {
                message: "the project has no Stripe API key".into(),
                permission: None,
            }));
        }
        Err(VaultError::Store(e)) => return Err(e),
        Err(e) => return Ok(Err(SyncFailure::Unavailable(e.to_string()))),
    };
    let known = app
        .store
        .customer_row(project.id.as_str(), customer.as_str())
        .await?
        .and_then(|(user, _, _)| user);
    let read_at = app.now_ms();
    match app
        .stripe
        .customer_snapshot(&key, customer, project.use_entitlements, read_at)
        .await
    {
        Ok(snapshot) => {
            let state = CustomerState {
                project_id: project.id.to_string(),
                customer_id: customer.to_string(),
                app_user_id: snapshot.app_user(
                    &project.user_metadata_key,
                    project.require_mapping,
                    known.as_deref(),
                ),
                deleted: snapshot.deleted,
                entitlements: snapshot.entitlements,
                subscriptions: snapshot.subscriptions,
                snapshot_at: snapshot.read_at_ms,
            };
            app.store
                .complete_sync(&SyncCommit {
                    state: &state,
                    items: &[],
                    owner: "",
                    now: app.now_ms(),
                    check: None,
                    drill: None,
                })
                .await?;
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(sync_failure(&e))),
    }
}

fn sync_failure(e: &StripeError) -> SyncFailure {
    if e.is_auth() {
        SyncFailure::Auth {
            message: e.to_string(),
            permission: e.missing_permission(),
        }
    } else {
        SyncFailure::Unavailable(e.to_string())
    }
}
