//! Commands that configure checks (probe, plan map, settings), run one, and
//! list incidents with their evidence.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{ConfigArgs, PlanSetArgs, find, open, print, rfc3339};
use crate::{
    App,
    access::{PlanRule, Selector},
    config::{Config, last4},
    ingress::directory::secret_context,
    store::{ProbeConfig, Project, ProjectSettings, Run, Store, Trigger},
    views::stored_json,
};

fn parse_url(raw: &str, flag: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(raw).with_context(|| format!("{flag} is not a URL: {raw:?}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("{flag} must be an http(s) URL with a host");
    }
    Ok(raw.trim_end_matches('/').to_string())
}

pub async fn probe_set(
    json_out: bool,
    config: &Config,
    project: &str,
    url: &str,
    secret: &str,
    reconcile_url: Option<String>,
) -> anyhow::Result<()> {
    let url = parse_url(url, "--url")?;
    let reconcile_url = reconcile_url
        .map(|u| parse_url(&u, "--reconcile-url"))
        .transpose()?;
    if secret.trim().len() < 16 {
        bail!("--secret must be at least 16 characters (it signs every probe request)");
    }
    let master = config.master_key.as_ref().context(
        "PARITYRAIL_MASTER_KEY is required to store secrets (generate one with `parityrail keygen`)",
    )?;
    let store = open(config).await?;
    crate::app::check_master_key(&store, Some(master), false).await?;
    let project = find(&store, project).await?;
    let probe = ProbeConfig {
        url: url.clone(),
        secret_sealed: master.seal(&secret_context("probe_secret", &project.id), secret.trim()),
        secret_last4: last4(secret.trim()),
        reconcile_url: reconcile_url.clone(),
    };
    store.save_probe(&project.id, &probe).await?;
    print(
        json_out,
        json!({"project": project.id, "url": url, "reconcile_url": reconcile_url,
            "secret_last4": probe.secret_last4}),
        || format!("app probe set for {}: {url}", project.id),
    );
    Ok(())
}

pub async fn plan_set(json_out: bool, config: &Config, args: PlanSetArgs) -> anyhow::Result<()> {
    let selector = match (args.price, args.product, args.lookup_key) {
        (Some(p), None, None) => Selector::Price(p),
        (None, Some(p), None) => Selector::Product(p),
        (None, None, Some(k)) => Selector::LookupKey(k),
        _ => bail!("give exactly one of --price, --product, --lookup-key"),
    };
    let plan = args.plan.trim().to_string();
    if plan.is_empty() {
        bail!("--plan must not be empty");
    }
    let mut limits = BTreeMap::new();
    for raw in &args.limits {
        let Some((name, value)) = raw.split_once('=') else {
            bail!("--limit must be NAME=NUMBER, got {raw:?}");
        };
        let value: i64 = value
            .trim()
            .parse()
            .with_context(|| format!("--limit {name}: {value:?} is not a whole number"))?;
        limits.insert(name.trim().to_string(), value);
    }
    let features: BTreeSet<String> = args.features.iter().map(|f| f.trim().to_string()).collect();
    let store = open(config).await?;
    let project = find(&store, &args.project).await?;
    let rule = PlanRule {
        selector,
        plan,
        rank: args.rank,
        features,
        limits,
    };
    store.upsert_plan_rule(&project.id, &rule).await?;
    print(json_out, serde_json::to_value(&rule)?, || {
        format!("plan rule saved: {:?} → {}", rule.selector, rule.plan)
    });
    Ok(())
}

pub async fn config(json_out: bool, store: &Store, args: ConfigArgs) -> anyhow::Result<()> {
    let project = find(store, &args.project).await?;
    for (flag, value) in [
        ("--past-due-grace-days", args.past_due_grace_days),
        ("--fulfillment-deadline", args.fulfillment_deadline),
        ("--lag-threshold", args.lag_threshold),
    ] {
        if value.is_some_and(|v| v < 0) {
            bail!("{flag} must not be negative");
        }
    }
    if let Some(at) = &args.scan_at
        && crate::scan::schedule::parse_hhmm(at).is_none()
    {
        bail!("--scan-at must be HH:MM (UTC), got {at:?}");
    }
    if args.stripe_budget.is_some_and(|r| !(1..=1000).contains(&r)) {
        bail!("--stripe-budget must be 1 to 1000 requests per second");
    }
    if args
        .user_metadata_key
        .as_deref()
        .is_some_and(|k| k.trim().is_empty())
    {
        bail!("--user-metadata-key must not be empty");
    }
    let settings = ProjectSettings {
        past_due_grace_secs: args.past_due_grace_days.map(|d| d * 86_400),
        fulfillment_deadline_secs: args.fulfillment_deadline,
        user_metadata_key: args.user_metadata_key.map(|k| k.trim().to_string()),
        require_mapping: args.require_mapping.map(|v| v.unwrap_or(true)),
        lag_threshold_secs: args.lag_threshold,
        use_entitlements: args.use_entitlements.map(|v| v.unwrap_or(true)),
        scan_at: args.scan_at.clone(),
        stripe_budget_rps: args.stripe_budget,
    };
    store
        .update_project_settings(&project.id, &settings)
        .await?;
    let p = store
        .project(&project.id)
        .await?
        .context("project vanished")?;
    print(json_out, settings_json(&p), || {
        format!("settings saved for {}", p.id)
    });
    Ok(())
}

fn settings_json(p: &Project) -> Value {
    json!({"id": p.id, "past_due_grace_days": p.past_due_grace_secs / 86_400,
        "fulfillment_deadline": p.fulfillment_deadline_secs, "user_metadata_key": p.user_metadata_key,
        "require_mapping": p.require_mapping, "lag_threshold": p.lag_threshold_secs,
        "use_entitlements": p.use_entitlements, "scan_at": p.scan_at,
        "stripe_budget": p.stripe_budget_rps})
}

/// Prints a driven run's verdict (JSON gets `extra`'s fields too) and exits
/// non-zero when the check failed: `check` and `incidents rerun` both end so.
pub(super) fn report_verdict(json_out: bool, run: &Run, extra: Value) {
    let verdict = match run.status.as_str() {
        "passed" => "passed",
        "failed" => "failed",
        _ => "pending",
    };
    let mut out = json!({"run_id": run.id, "verdict": verdict, "kind": run.kind,
        "expected": stored_json(run.expected.as_deref()), "observed": stored_json(run.observed.as_deref()),
        "user": run.app_user_id, "deploy_sha": run.deploy_sha, "summary": run.summary});
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    print(json_out, out, || {
        format!(
            "{verdict}{}  {}  ({})",
            run.kind
                .as_deref()
                .map(|k| format!(" [{k}]"))
                .unwrap_or_default(),
            run.summary.as_deref().unwrap_or(""),
            run.id
        )
    });
    if verdict == "failed" {
        std::process::exit(1);
    }
}

pub async fn check(
    json_out: bool,
    config: Config,
    project: &str,
    customer: &str,
) -> anyhow::Result<()> {
    let (app, writer) = App::start(config).await?;
    let project = find(&app.store, project).await?;
    let run_id = crate::check::start(&app, &project.id, customer, Trigger::Manual).await?;
    let run = crate::check::drive(&app, &run_id, std::time::Duration::from_secs(60))
        .await?
        .context("the run vanished")?;
    app.inbox_stop.cancel();
    let _ = writer.await;
    report_verdict(json_out, &run, json!({}));
    Ok(())
}

pub async fn incidents_list(
    json_out: bool,
    store: &Store,
    project: &Project,
) -> anyhow::Result<()> {
    let incidents = store.list_incidents(project.id.as_str()).await?;
    let mut rows = Vec::with_capacity(incidents.len());
    for i in &incidents {
        rows.push(crate::incidents::incident_json(store, i).await?);
    }
    print(json_out, json!(rows), || {
        incidents
            .iter()
            .map(|i| {
                format!(
                    "{}  {:<18} {:<12} {:<22} x{}  last {}",
                    i.id,
                    i.kind,
                    i.status,
                    i.customer_id,
                    i.count,
                    rfc3339(i.last_seen)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
