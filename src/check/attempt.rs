//! One probe attempt of one run, with no transaction open during network calls.

use serde_json::{Value, json};

use crate::{
    App,
    access::{
        AccessPolicy, ExpectedAccess, ObservedAccess, PlanMap, SubscriptionView, expected_access,
    },
    compare::{MismatchKind, compare},
    config::Secret,
    ids::ProjectId,
    ingress::directory::secret_context,
    probe::ProbeTarget,
    store::{
        CustomerState, Evidence, IncidentKind, NewIncident, Project, Run, RunProgress, StoreError,
    },
};

/// First re-probe after a mismatch; doubles up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 30_000;

pub async fn run_attempt(app: &App, run: &Run) -> Result<(), StoreError> {
    let Some(project_id) = ProjectId::parse(&run.project_id) else {
        return fail(app, run, None, "invalid project id", &blank()).await;
    };
    let Some(project) = app.store.project(&project_id).await? else {
        return fail(app, run, None, "project no longer exists", &blank()).await;
    };
    // A webhook run follows a fresh sync; other triggers read Stripe first.
    if run.trigger != "webhook"
        && run.probe_attempts == 0
        && let Err(reason) = sync_from_stripe(app, &project, &run.customer_id).await?
    {
        if reason.0 == "stripe_auth" {
            // The key is the problem, not this customer: one incident for the project.
            app.store
                .open_incident(NewIncident {
                    project_id: &run.project_id,
                    kind: IncidentKind::StripeAuth,
                    customer_id: "",
                    event_id: None,
                    details: json!({"message": reason.1, "run": run.id}),
                    count: None,
                    now: crate::now_ms(),
                    evidence: Evidence {
                        run_id: Some(&run.id),
                        ..Evidence::default()
                    },
                })
                .await?;
        }
        return fail(app, run, Some(reason.0), &reason.1, &blank()).await;
    }
    let now = crate::now_ms();
    let views = app
        .store
        .subscription_views(&run.project_id, &run.customer_id)
        .await?;
    let customer = app
        .store
        .customer_row(&run.project_id, &run.customer_id)
        .await?;
    let entitlements: Option<Vec<String>> = customer
        .as_ref()
        .and_then(|(_, json, _)| serde_json::from_str(json).ok())
        .flatten();
    let map = app
        .store
        .plan_map(&project_id, project.use_entitlements)
        .await?;
    let policy = AccessPolicy {
        past_due_grace_secs: project.past_due_grace_secs,
    };
    let expected = expected_access(&views, entitlements.as_deref(), &map, &policy, now / 1000);
    let expected_json = serde_json::to_value(&expected).expect("serializes");
    let app_user = match &customer {
        Some((user, _, _)) => user.clone(),
        None => (!project.require_mapping).then(|| run.customer_id.clone()),
    };
    let evidence = EvidenceBase {
        views: &views,
        expected: &expected_json,
    };
    if run.probe_attempts == 0 {
        app.store
            .add_run_step(
                &run.id,
                "stripe_snapshot",
                &json!({"subscriptions": views, "entitlements": entitlements}),
            )
            .await?;
        app.store
            .add_run_step(&run.id, "expected", &expected_json)
            .await?;
    }
    let Some(user) = app_user else {
        let summary = "the Stripe customer cannot be mapped to an app user";
        let progress = progress(None, &expected_json, None, None, summary);
        app.store
            .finish_run(
                &run.id,
                false,
                Some(IncidentKind::UnmappedCustomer.as_str()),
                now,
                &progress,
            )
            .await?;
        open(
            app,
            run,
            IncidentKind::UnmappedCustomer,
            &run.customer_id,
            &evidence,
            None,
            None,
        )
        .await?;
        return Ok(());
    };
    let Some(target) = probe_target(app, &project_id).await? else {
        return fail(app, run, None, "no app probe is configured", &expected_json).await;
    };
    let attempt_no = run.probe_attempts + 1;
    match app.probe.probe(&target, &run.customer_id, &user).await {
        Err(err) => {
            let message = err.to_string();
            app.store
                .add_run_step(
                    &run.id,
                    "probe",
                    &json!({"attempt": attempt_no, "error": message}),
                )
                .await?;
            if let Some(next) = next_attempt(run, now) {
                let p = progress(Some(&user), &expected_json, None, None, &message);
                return app.store.reschedule_run(&run.id, next, &p).await;
            }
            let p = progress(Some(&user), &expected_json, None, None, &message);
            app.store
                .finish_run(
                    &run.id,
                    false,
                    Some(IncidentKind::ProbeFailed.as_str()),
                    now,
                    &p,
                )
                .await?;
            // One incident for the project, not one per customer: the app is down for everyone.
            open(
                app,
                run,
                IncidentKind::ProbeFailed,
                "",
                &evidence,
                Some(&user),
                None,
            )
            .await?;
            Ok(())
        }
        Ok(observed) => judge(app, run, &map, &user, &expected, &observed, &evidence, now).await,
    }
}

struct EvidenceBase<'a> {
    views: &'a [SubscriptionView],
    expected: &'a Value,
}

#[allow(clippy::too_many_arguments)]
async fn judge(
    app: &App,
    run: &Run,
    map: &PlanMap,
    user: &str,
    expected: &ExpectedAccess,
    observed: &ObservedAccess,
    evidence: &EvidenceBase<'_>,
    now: i64,
) -> Result<(), StoreError> {
    let verdict = compare(expected, observed, |plan| map.rank_of(plan));
    let observed_json = serde_json::to_value(observed).expect("serializes");
    let summary = if verdict.passed() {
        "expected and observed access agree".to_string()
    } else {
        verdict.summary()
    };
    let sha = observed.deploy_sha.as_deref();
    app.store
        .add_run_step(
            &run.id,
            "probe",
            &json!({"attempt": run.probe_attempts + 1, "observed": observed_json,
            "deploy_sha": sha, "differences": verdict.differences}),
        )
        .await?;
    let p = progress(
        Some(user),
        evidence.expected,
        Some(&observed_json),
        sha,
        &summary,
    );
    if verdict.passed() {
        app.store
            .add_run_step(&run.id, "verdict", &json!({"verdict": "passed"}))
            .await?;
        app.store.finish_run(&run.id, true, None, now, &p).await?;
        let kinds = [IncidentKind::Unfulfilled, IncidentKind::UnpaidAccess];
        app.store
            .resolve_customer_incidents(&run.project_id, &run.customer_id, &kinds, now)
            .await?;
        app.store
            .resolve_customer_incidents(&run.project_id, "", &[IncidentKind::ProbeFailed], now)
            .await?;
        return Ok(());
    }
    if let Some(next) = next_attempt(run, now) {
        return app.store.reschedule_run(&run.id, next, &p).await;
    }
    let kinds = verdict.kinds();
    app.store
        .add_run_step(
            &run.id,
            "verdict",
            &json!({"verdict": "failed", "kinds": kinds, "summary": summary}),
        )
        .await?;
    app.store
        .finish_run(&run.id, false, Some(kinds[0].as_str()), now, &p)
        .await?;
    app.store
        .resolve_customer_incidents(&run.project_id, "", &[IncidentKind::ProbeFailed], now)
        .await?;
    for kind in kinds {
        let kind = match kind {
            MismatchKind::Unfulfilled => IncidentKind::Unfulfilled,
            MismatchKind::UnpaidAccess => IncidentKind::UnpaidAccess,
        };
        open(
            app,
            run,
            kind,
            &run.customer_id,
            evidence,
            Some(user),
            Some((&observed_json, sha)),
        )
        .await?;
    }
    Ok(())
}

/// When to probe again, or `None` once the deadline has passed.
fn next_attempt(run: &Run, now: i64) -> Option<i64> {
    if now >= run.deadline {
        return None;
    }
    let backoff = (FIRST_BACKOFF_MS << run.probe_attempts.clamp(0, 10)).min(MAX_BACKOFF_MS);
    Some((now + backoff).min(run.deadline))
}

async fn open(
    app: &App,
    run: &Run,
    kind: IncidentKind,
    customer_key: &str,
    base: &EvidenceBase<'_>,
    user: Option<&str>,
    observed: Option<(&Value, Option<&str>)>,
) -> Result<(), StoreError> {
    // The subscription that matters: a granting one if any, else the newest known.
    let sub = base
        .views
        .iter()
        .find(|v| matches!(v.status.as_str(), "active" | "trialing" | "past_due"))
        .or_else(|| base.views.last());
    let event_id = (run.trigger == "webhook")
        .then_some(run.external_id.as_deref())
        .flatten();
    let details = json!({"customer": run.customer_id, "trigger": run.trigger, "run": run.id});
    app.store
        .open_incident(NewIncident {
            project_id: &run.project_id,
            kind,
            customer_id: customer_key,
            event_id,
            details,
            count: None,
            now: crate::now_ms(),
            evidence: Evidence {
                app_user_id: user,
                subscription_id: sub.map(|s| s.id.as_str()),
                subscription_status: sub.map(|s| s.status.as_str()),
                expected: Some(base.expected),
                observed: observed.map(|o| o.0),
                deploy_sha: observed.and_then(|o| o.1),
                run_id: Some(&run.id),
            },
        })
        .await?;
    Ok(())
}

fn blank() -> Value {
    Value::Null
}

fn progress<'a>(
    user: Option<&'a str>,
    expected: &'a Value,
    observed: Option<&'a Value>,
    sha: Option<&'a str>,
    summary: &'a str,
) -> RunProgress<'a> {
    RunProgress {
        app_user_id: user,
        expected: (!expected.is_null()).then_some(expected),
        observed,
        deploy_sha: sha,
        summary: Some(summary),
    }
}

async fn fail(
    app: &App,
    run: &Run,
    kind: Option<&str>,
    summary: &str,
    expected: &Value,
) -> Result<(), StoreError> {
    let p = progress(None, expected, None, None, summary);
    app.store
        .finish_run(&run.id, false, kind, crate::now_ms(), &p)
        .await
}

async fn probe_target(app: &App, project: &ProjectId) -> Result<Option<ProbeTarget>, StoreError> {
    let Some(config) = app.store.probe_config(project).await? else {
        return Ok(None);
    };
    let Some(key) = app.config.master_key.as_ref() else {
        return Ok(None);
    };
    let secret = key
        .open(
            &secret_context("probe_secret", project),
            &config.secret_sealed,
        )
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some(ProbeTarget {
        url: config.url,
        secret: Secret::new(secret),
    }))
}

/// Reads the customer from Stripe and stores it (manual, rerun and scan
/// checks). `Ok(Err((kind, reason)))` when Stripe cannot be read.
async fn sync_from_stripe(
    app: &App,
    project: &Project,
    customer: &str,
) -> Result<Result<(), (&'static str, String)>, StoreError> {
    let key = match app.directory.api_key(&project.id).await {
        Ok(Some((key, _))) => key,
        Ok(None) => {
            return Ok(Err((
                "stripe_auth",
                "the project has no Stripe API key".into(),
            )));
        }
        Err(e) => return Err(StoreError::Corrupt(e.to_string())),
    };
    let known = app
        .store
        .customer_row(project.id.as_str(), customer)
        .await?
        .and_then(|(user, _, _)| user);
    match app.stripe.customer_snapshot(&key, customer).await {
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
                .complete_sync(&state, &[], crate::now_ms())
                .await?;
            Ok(Ok(()))
        }
        Err(e) if e.is_auth() => Ok(Err(("stripe_auth", e.to_string()))),
        Err(e) => Ok(Err(("stripe_error", e.to_string()))),
    }
}
