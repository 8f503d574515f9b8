//! Commands that configure checks (probe, plan map, settings) and run one.

use serde_json::{Value, json};

use super::{CheckFailed, ConfigArgs, PlanSetArgs, find, print};
use crate::{
    App,
    access::Selector,
    config::Secret,
    domain::{Project, Run, RunStatus},
    usecase::{
        checks,
        projects::{self, Configure, PlanRuleRequest},
    },
    views::{SettingsView, stored_json},
};

pub async fn probe_set(
    json_out: bool,
    app: &App,
    project: &str,
    url: &str,
    secret: &str,
    reconcile_url: Option<&str>,
) -> anyhow::Result<()> {
    let project = find(app, project).await?;
    let probe =
        projects::set_probe(app, &project, url, &Secret::new(secret), reconcile_url).await?;
    print(
        json_out,
        json!({"project": project.id, "url": probe.url, "reconcile_url": probe.reconcile_url,
            "secret_last4": probe.secret_last4}),
        || format!("app probe set for {}: {}", project.id, probe.url),
    );
    Ok(())
}

pub async fn plan_set(json_out: bool, app: &App, args: PlanSetArgs) -> anyhow::Result<()> {
    let selector = match (args.price, args.product, args.lookup_key) {
        (Some(p), None, None) => Selector::Price(p),
        (None, Some(p), None) => Selector::Product(p),
        (None, None, Some(k)) => Selector::LookupKey(k),
        _ => anyhow::bail!("give exactly one of --price, --product, --lookup-key"),
    };
    let project = find(app, &args.project).await?;
    let rule = projects::set_plan_rule(
        app,
        &project,
        PlanRuleRequest {
            selector,
            plan: args.plan,
            rank: args.rank,
            features: args.features,
            limits: args.limits,
        },
    )
    .await?;
    print(json_out, serde_json::to_value(&rule)?, || {
        format!("plan rule saved: {:?} → {}", rule.selector, rule.plan)
    });
    Ok(())
}

pub async fn config(json_out: bool, app: &App, args: ConfigArgs) -> anyhow::Result<()> {
    let project = find(app, &args.project).await?;
    let p = projects::configure(
        app,
        &project,
        Configure {
            past_due_grace_days: args.past_due_grace_days,
            fulfillment_deadline_secs: args.fulfillment_deadline,
            user_metadata_key: args.user_metadata_key,
            require_mapping: args.require_mapping.map(|v| v.unwrap_or(true)),
            lag_threshold_secs: args.lag_threshold,
            use_entitlements: args.use_entitlements.map(|v| v.unwrap_or(true)),
            scan_at: args.scan_at,
            stripe_budget_rps: args.stripe_budget,
        },
    )
    .await?;
    print(json_out, settings_json(&p), || {
        format!("settings saved for {}", p.id)
    });
    Ok(())
}

fn settings_json(p: &Project) -> Value {
    serde_json::to_value(SettingsView::from(p)).unwrap_or(Value::Null)
}

/// Prints a driven run's verdict (JSON gets `extra`'s fields too); a failed
/// check is [`CheckFailed`] (exit 1): `check` and `incidents rerun` both end so.
pub(super) fn report_verdict(json_out: bool, run: &Run, extra: Value) -> anyhow::Result<()> {
    let verdict = run.status;
    let mut out = json!({"run_id": run.id, "verdict": verdict, "kind": run.kind,
        "expected": stored_json(run.expected.as_deref()), "observed": stored_json(run.observed.as_deref()),
        "user": run.app_user_id, "deploy_sha": run.deploy_sha, "summary": run.summary});
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    print(json_out, out, || {
        format!(
            "{verdict}{}  {}  ({})",
            run.kind.map(|k| format!(" [{k}]")).unwrap_or_default(),
            run.summary.as_deref().unwrap_or(""),
            run.id
        )
    });
    if verdict == RunStatus::Failed {
        return Err(CheckFailed.into());
    }
    Ok(())
}

pub async fn check(json_out: bool, app: &App, project: &str, customer: &str) -> anyhow::Result<()> {
    let project = find(app, project).await?;
    let run_id = checks::start(app, &project, customer).await?;
    let run = checks::drive(app, &run_id, std::time::Duration::from_secs(60))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the run vanished"))?;
    report_verdict(json_out, &run, json!({}))
}

/// `parityrail drill`: the stages as they passed, then exit 0 only when
/// monitoring caught the drill.
pub async fn drill(
    json_out: bool,
    app: &App,
    project: &str,
    url: &str,
    wait: f64,
) -> anyhow::Result<()> {
    let project = find(app, project).await?;
    let report =
        crate::usecase::drill::run(app, &project, url, std::time::Duration::from_secs_f64(wait))
            .await?;
    print(json_out, serde_json::to_value(&report)?, || {
        let mut out = format!("drill {} for {}\n", report.event_id, report.customer);
        for s in &report.stages {
            let mark = if s.ok { "ok  " } else { "FAIL" };
            out.push_str(&format!("  {mark} {:<16} {}\n", s.stage, s.detail));
        }
        out.push_str(if report.caught {
            "monitoring works: the drill was caught"
        } else {
            "monitoring did NOT catch the drill"
        });
        out
    });
    if report.caught {
        Ok(())
    } else {
        Err(CheckFailed.into())
    }
}
