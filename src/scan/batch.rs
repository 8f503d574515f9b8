//! The per-batch work of a scan: expected access from stored state, one
//! batch probe, compare; and the `/list` walk for unpaid access.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde_json::json;

use super::{BATCH, Ctx, ScanError};
use crate::{
    access::{ExpectedAccess, expected_access},
    compare::compare,
    store::{Evidence, IncidentKind, NewIncident, NewRun, Trigger},
};

/// Checks up to [`BATCH`] customers against one batch probe.
pub(crate) async fn check_batch(ctx: Arc<Ctx>, customers: Vec<String>) -> Result<(), ScanError> {
    let store = &ctx.app.store;
    let project_id = ctx.project.id.as_str();
    let views = store
        .subscription_views_many(project_id, &customers)
        .await?;
    let known_users = store.app_users_many(project_id, &customers).await?;
    let now = crate::now_ms();
    let key = &ctx.project.user_metadata_key;
    let mut pairs = Vec::with_capacity(customers.len());
    let mut expectations: BTreeMap<String, ExpectedAccess> = BTreeMap::new();
    let mut unmapped = Vec::new();
    for customer in &customers {
        let subs = views.get(customer).map(Vec::as_slice).unwrap_or_default();
        // SPEC §3 from what a page carries: subscription metadata, then the
        // user a webhook sync mapped, then (unless required) the customer id.
        let user = subs
            .iter()
            .rev()
            .find_map(|(_, metadata)| {
                serde_json::from_str::<BTreeMap<String, String>>(metadata)
                    .ok()?
                    .remove(key)
                    .filter(|u| !u.is_empty())
            })
            .or_else(|| known_users.get(customer).cloned().flatten())
            .or_else(|| (!ctx.project.require_mapping).then(|| customer.clone()));
        let Some(user) = user else {
            unmapped.push(customer.clone());
            continue;
        };
        let plain: Vec<_> = subs.iter().map(|(v, _)| v.clone()).collect();
        expectations.insert(
            customer.clone(),
            expected_access(&plain, None, &ctx.map, &ctx.policy, now / 1000),
        );
        pairs.push((customer.clone(), user));
    }
    let mut suspects: Vec<String> = unmapped;
    for chunk in pairs.chunks(BATCH) {
        ctx.count(|c| c.probe_requests += 1);
        let answers = match ctx.app.probe.probe_batch(&ctx.target, chunk).await {
            Ok(answers) => answers,
            Err(e) => {
                probe_failed(&ctx, &e.to_string()).await?;
                continue;
            }
        };
        for answer in answers {
            let Some(expected) = expectations.get(&answer.customer) else {
                continue;
            };
            ctx.count(|c| c.customers_checked += 1);
            let verdict = compare(expected, &answer.observed, |plan| ctx.map.rank_of(plan));
            if verdict.passed() {
                if ctx.with_incidents.contains(&answer.customer) {
                    let kinds = [IncidentKind::Unfulfilled, IncidentKind::UnpaidAccess];
                    ctx.app
                        .store
                        .resolve_customer_incidents(project_id, &answer.customer, &kinds, now)
                        .await?;
                }
            } else {
                suspects.push(answer.customer);
            }
        }
    }
    for customer in suspects {
        confirm(&ctx, &customer).await?;
    }
    Ok(())
}

/// Confirms a suspected mismatch before it alarms: a `scan` run re-reads the
/// customer from Stripe (inside the budget) and probes again; only a
/// mismatch that survives opens an incident.
async fn confirm(ctx: &Ctx, customer: &str) -> Result<(), ScanError> {
    let now = crate::now_ms();
    let external = format!("{}:{customer}", ctx.scan_id);
    let (run_id, created) = ctx
        .app
        .store
        .insert_run(&NewRun {
            project_id: ctx.project.id.as_str(),
            customer_id: customer,
            trigger: Trigger::Scan,
            external_id: Some(&external),
            deadline: now,
            now,
        })
        .await?;
    if !created {
        return Ok(()); // checked before a resume
    }
    // The run reads the customer, its subscriptions and entitlements.
    for _ in 0..3 {
        ctx.pacer.wait().await;
    }
    ctx.count(|c| {
        c.stripe_requests += 3;
        c.probe_requests += 1;
    });
    let run = crate::check::drive(&ctx.app, &run_id, Duration::from_secs(30)).await?;
    if let Some(kind) = run.and_then(|r| (r.status == "failed").then_some(r.kind).flatten()) {
        ctx.count(|c| *c.mismatches.entry(kind).or_default() += 1);
    }
    Ok(())
}

async fn probe_failed(ctx: &Ctx, message: &str) -> Result<(), ScanError> {
    ctx.count(|c| {
        *c.mismatches
            .entry(IncidentKind::ProbeFailed.as_str().into())
            .or_default() += 1
    });
    ctx.app
        .store
        .open_incident(NewIncident {
            project_id: ctx.project.id.as_str(),
            kind: IncidentKind::ProbeFailed,
            customer_id: "",
            event_id: None,
            details: json!({"scan": ctx.scan_id, "message": message}),
            count: None,
            now: crate::now_ms(),
            evidence: Evidence::default(),
        })
        .await?;
    Ok(())
}

/// Walks the app's `/list` (when offered), recording who has access.
pub(crate) async fn walk_app_list(
    ctx: Arc<Ctx>,
    mut cursor: Option<String>,
) -> Result<(), ScanError> {
    let mut failures = 0;
    loop {
        ctx.count(|c| c.probe_requests += 1);
        let page = match ctx
            .app
            .probe
            .list_page(&ctx.target, cursor.as_deref())
            .await
        {
            Ok(Some(page)) => page,
            Ok(None) => {
                ctx.app
                    .store
                    .record_app_access(&ctx.scan_id, &[], None, true)
                    .await?;
                return Ok(()); // the app does not offer /list
            }
            Err(e) if failures < 5 => {
                failures += 1;
                tracing::warn!(scan_id = %ctx.scan_id, error = %e, "app /list failed; retrying");
                tokio::time::sleep(Duration::from_millis(500 << failures)).await;
                continue;
            }
            Err(e) => {
                probe_failed(&ctx, &format!("/list: {e}")).await?;
                return Ok(());
            }
        };
        let active: Vec<(String, Option<String>)> = page
            .answers
            .into_iter()
            .filter(|a| a.observed.found && a.observed.access.active)
            .map(|a| (a.customer, a.user))
            .collect();
        let done = page.next_cursor.is_none();
        cursor = page.next_cursor;
        ctx.app
            .store
            .record_app_access(&ctx.scan_id, &active, cursor.as_deref(), done)
            .await?;
        if done {
            return Ok(());
        }
    }
}

/// After Stripe is fully read: app users with access but no subscription
/// that could pay for it are confirmed one by one.
pub(crate) async fn check_unpaid_candidates(ctx: &Ctx) -> Result<(), ScanError> {
    let mut after = String::new();
    loop {
        let page = ctx
            .app
            .store
            .unpaid_candidates(&ctx.scan_id, ctx.project.id.as_str(), &after, BATCH as i64)
            .await?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        after = last.clone();
        for (customer, user) in &page {
            if ctx.pending.contains(customer) {
                continue;
            }
            if let Some(user) = user {
                ctx.app
                    .store
                    .remember_app_user(ctx.project.id.as_str(), customer, user)
                    .await?;
            }
            ctx.count(|c| c.customers_checked += 1);
            confirm(ctx, customer).await?;
        }
    }
}
