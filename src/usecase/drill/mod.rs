//! The drill (SPEC §8b): proves monitoring works end to end. One labelled
//! event (`evt_parityrail_drill_…`) for a real customer goes to the
//! project's real webhook URL, signed with its stored secret. Its check
//! expects a feature no app grants ([`DRILL_FEATURE`]), so delivery
//! succeeds while the app-state assertion fails. The drill watches each
//! stage, checks the incident's evidence, and resolves what it opened.

use std::time::Duration;

use serde_json::json;

mod ready;
mod report;

pub use ready::DrillError;
use ready::refused_by_signature;
pub use report::{DrillReport, Stage};

use crate::{
    App,
    check::DRILL_FEATURE,
    domain::{
        DRILL_EVENT_PREFIX, EventStatus, IncidentStatus, Project, RunKind, RunStatus, StepName,
        Trigger,
    },
    ids::random_id,
    ingress::verify::compute_signature,
};

/// How long the pages and the API wait for a drill's stages.
pub const SERVED_WAIT: Duration = Duration::from_secs(30);

/// Runs a drill of `project` against the service at `base_url` (its
/// public URL), waiting at most `wait` for each stage.
pub async fn run(
    app: &App,
    project: &Project,
    base_url: &str,
    wait: Duration,
) -> Result<DrillReport, DrillError> {
    let report = walk(app, project, base_url, wait).await?;
    // However it ended, nothing of it stays open. (A drill that gave up
    // before its check ran leaves an incident opened later; the next drill
    // resolves it as it starts.)
    resolve_leftovers(app, project).await?;
    Ok(report)
}

/// Resolves the project's open drill incidents.
async fn resolve_leftovers(app: &App, project: &Project) -> Result<(), DrillError> {
    let resolved = app
        .store
        .resolve_drill_incidents(project.id.as_str(), app.now_ms())
        .await?;
    if resolved > 0 {
        tracing::info!(project_id = %project.id, resolved, "drill incidents resolved");
    }
    Ok(())
}

/// The drill's stages in order; the first that breaks ends it.
async fn walk(
    app: &App,
    project: &Project,
    base_url: &str,
    wait: Duration,
) -> Result<DrillReport, DrillError> {
    if project.mode == crate::domain::ProjectMode::Demo {
        return Err(DrillError::DemoProject);
    }
    let secrets = app.vault.webhook_secrets(&app.store, project).await?;
    let Some((_, secret)) = secrets.last() else {
        return Err(DrillError::NoSigningSecret);
    };
    if app.vault.probe_target(&app.store, project).await?.is_none() {
        return Err(DrillError::NoProbe);
    }
    let Some((_, key_mode)) = app.vault.stripe_key(&app.store, project).await? else {
        return Err(DrillError::NoStripeKey);
    };
    let Some(customer) = app.store.drill_customer(project.id.as_str()).await? else {
        return Err(DrillError::NoCustomer);
    };
    let event_id = format!("{DRILL_EVENT_PREFIX}{}", random_id());
    let created = crate::now_ms() / 1000;
    let body = serde_json::to_vec(&json!({
        "id": event_id,
        "object": "event",
        "api_version": crate::stripe::client::STRIPE_VERSION,
        "created": created,
        "livemode": key_mode.is_live(),
        "type": "customer.subscription.updated",
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": {"object": "subscription", "customer": customer,
            "metadata": {"parityrail_drill": "true"}}},
    }))
    .expect("JSON serializes");
    let mut report = DrillReport {
        drill: true,
        project_id: project.id.to_string(),
        event_id: event_id.clone(),
        customer: customer.clone(),
        run_id: None,
        incident_id: None,
        missing_evidence: Vec::new(),
        stages: Vec::new(),
        caught: false,
    };
    resolve_leftovers(app, project).await?;
    tracing::info!(project_id = %project.id, %event_id, %customer, "drill started");

    // 0. Stripe's own deliveries pass the signature check. The drill signs
    // with the stored secret, so it cannot see a wrong one by sending.
    if let Some(refused) = refused_by_signature(app, project).await? {
        return Ok(report.fail("accepted", refused));
    }

    // 1. The real webhook URL accepts it.
    let url = format!(
        "{}/api/webhooks/stripe/{}",
        base_url.trim_end_matches('/'),
        project.id
    );
    let signature = format!(
        "t={created},v1={}",
        compute_signature(secret.expose(), created, &body)
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let sent = client
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if !text.contains("\"queued\"") {
                return Ok(report.fail("accepted", format!("HTTP {status} but not queued: {text}")));
            }
            report.pass("accepted", format!("HTTP {status} from {url}"));
        }
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Ok(report.fail("accepted", format!("HTTP {status} from {url}: {text}")));
        }
        Err(e) => {
            return Ok(report.fail(
                "accepted",
                format!(
                    "no answer from {url} (is `parityrail serve` running there?): {}",
                    e.without_url()
                ),
            ));
        }
    }

    // 2–3. Stored, then processed by a worker.
    let give_up = tokio::time::Instant::now() + wait;
    let mut stored = false;
    loop {
        match app
            .store
            .event_record(project.id.as_str(), &event_id)
            .await?
        {
            Some(e) => {
                if !stored {
                    stored = true;
                    report.pass("stored", "in the inbox");
                }
                match e.status {
                    EventStatus::Processed => {
                        report.pass("processed", "a worker synced the customer from Stripe");
                        break;
                    }
                    EventStatus::Ignored | EventStatus::Failed | EventStatus::Dead => {
                        return Ok(report.fail(
                            "processed",
                            format!("{}: {}", e.status, e.reason.unwrap_or_default()),
                        ));
                    }
                    _ => {}
                }
            }
            None if !stored && tokio::time::Instant::now() >= give_up => {
                return Ok(report.fail("stored", "the accepted event is not in the inbox"));
            }
            None => {}
        }
        if tokio::time::Instant::now() >= give_up {
            return Ok(report.fail(
                "processed",
                format!("not processed within {wait:?}: are the workers running?"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 4–6. The drill run reads Stripe, probes the app, compares.
    let run = loop {
        let runs = app.store.event_runs(project.id.as_str(), &event_id).await?;
        if let Some(run) = runs.into_iter().find(|r| r.trigger == Trigger::Drill)
            && !run.is_pending()
        {
            break run;
        }
        if tokio::time::Instant::now() >= give_up {
            return Ok(report.fail(
                "stripe_read",
                format!("no drill check finished within {wait:?}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    report.run_id = Some(run.id.clone());
    let steps = app.store.run_steps(&run.id).await?;
    let has = |name: StepName| steps.iter().any(|s| s.step == name);
    if !has(StepName::StripeSnapshot) {
        let why = run.summary.clone().unwrap_or_default();
        return Ok(report.fail(
            "stripe_read",
            format!("the check did not read Stripe: {why}"),
        ));
    }
    report.pass("stripe_read", "the customer's subscriptions were read");
    let probe_ok = steps
        .iter()
        .filter(|s| s.step == StepName::Probe)
        .any(|s| !s.detail.contains("\"error\""));
    if !probe_ok {
        let why = run.summary.clone().unwrap_or_default();
        return Ok(report.fail(
            "probed",
            format!("the app was not asked, or did not answer: {why}"),
        ));
    }
    report.pass("probed", "the app answered");
    // The check must find access missing, at least the drill's feature. The
    // customer's own mismatch, if it has one, may name the verdict (a plan
    // difference outranks a feature).
    let saw_drill = steps
        .iter()
        .any(|s| s.step == StepName::Probe && s.detail.contains(DRILL_FEATURE));
    if run.status != RunStatus::Failed || !(saw_drill || run.kind == Some(RunKind::Unfulfilled)) {
        return Ok(report.fail(
            "compared",
            format!(
                "expected the check to find {DRILL_FEATURE:?} missing, got {} {:?}",
                run.status, run.kind
            ),
        ));
    }
    let verdict = run.kind.map_or("failed", |k| k.as_str());
    report.pass(
        "compared",
        if run.kind == Some(RunKind::Unfulfilled) {
            format!("unfulfilled: the app lacks {DRILL_FEATURE:?}, as the drill intended")
        } else {
            format!(
                "{verdict}: the app lacks {DRILL_FEATURE:?}, as the drill intended, and the \
                 customer has a mismatch of its own"
            )
        },
    );

    // 7. The incident, labelled, with every evidence field.
    let Some(incident) = app
        .store
        .incident_of_run(project.id.as_str(), &run.id)
        .await?
    else {
        return Ok(report.fail("incident_opened", "the failed check opened no incident"));
    };
    report.incident_id = Some(incident.id.clone());
    for (field, present) in [
        (
            "event_id",
            incident.event_id.as_deref() == Some(event_id.as_str()),
        ),
        ("customer", incident.customer_id == customer),
        ("subscription_state", incident.subscription_status.is_some()),
        ("expected", incident.expected.is_some()),
        ("observed", incident.observed.is_some()),
        ("deploy_sha", incident.deploy_sha.is_some()),
        ("guidance", !incident.kind.guidance().is_empty()),
        ("drill", incident.drill),
    ] {
        if !present {
            report.missing_evidence.push(field);
        }
    }
    // The drill ends: what it opened is resolved, whatever it found.
    app.store
        .set_incident_status(
            project.id.as_str(),
            &incident.id,
            IncidentStatus::Resolved,
            app.now_ms(),
        )
        .await?;
    super::accounts::record(
        app,
        project,
        &incident.id,
        "drill",
        "resolve",
        Some("the drill ended".into()),
    )
    .await?;
    if !report.missing_evidence.is_empty() {
        let missing = report.missing_evidence.join(", ");
        return Ok(report.fail(
            "incident_opened",
            format!("{} lacks {missing}", incident.id),
        ));
    }
    report.pass(
        "incident_opened",
        format!(
            "{} with complete evidence (resolved: the drill ended)",
            incident.id
        ),
    );
    report.caught = true;
    tracing::info!(project_id = %project.id, %event_id, incident_id = %incident.id, "drill caught");
    Ok(report)
}
