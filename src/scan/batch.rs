//! The per-batch work of a scan: expected access from stored state (with
//! the customers' entitlements read inside the budget when the project uses
//! them), one batch probe with retries, compare; and the `/list` walk for
//! unpaid access.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::json;

use super::{BATCH, Ctx, ScanError};
use crate::{
    access::{ExpectedAccess, SubscriptionView, expected_access},
    backoff::Backoff,
    compare::compare,
    domain::{IncidentKind, RunStatus, Trigger},
    ids::CustomerId,
    store::{NewIncident, Resolve},
};

/// Entitlement reads in flight at once (the pacer keeps them in budget).
const ENTITLEMENT_READS: usize = 8;

/// A failed batch probe or `/list` page is tried again after 1 s and 2 s
/// (on top of the probe client's own quick retries) before it counts.
fn app_retry() -> Backoff {
    Backoff::exponential(Duration::from_secs(1), Duration::from_secs(4)).retries(2)
}

/// Checks up to [`BATCH`] customers against one batch probe.
pub(crate) async fn check_batch(ctx: Arc<Ctx>, customers: Vec<String>) -> Result<(), ScanError> {
    let store = &ctx.app.store;
    let project_id = ctx.project.id.as_str();
    let views = store
        .subscription_views_many(project_id, &customers)
        .await?;
    let known_users = store.app_users_many(project_id, &customers).await?;
    let now = ctx.app.now_ms();
    let key = &ctx.project.user_metadata_key;
    let mut pairs = Vec::with_capacity(customers.len());
    let mut plain: BTreeMap<String, Vec<SubscriptionView>> = BTreeMap::new();
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
        plain.insert(
            customer.clone(),
            subs.iter().map(|(v, _)| v.clone()).collect(),
        );
        pairs.push((customer.clone(), user));
    }
    let expectations = expect(&ctx, &plain, now).await?;
    let mut suspects: Vec<String> = unmapped;
    for chunk in pairs.chunks(BATCH) {
        let Some(answers) = probe_batch(&ctx, chunk).await? else {
            continue;
        };
        for answer in answers {
            let Some(expected) = expectations.get(&answer.customer) else {
                continue;
            };
            ctx.count(|c| c.customers_checked += 1);
            let verdict = compare(expected, &answer.observed, &ctx.map);
            if !verdict.passed() {
                suspects.push(answer.customer);
            } else if ctx.with_incidents.contains(&answer.customer) {
                let resolve = Resolve {
                    customer_id: answer.customer.clone(),
                    kinds: vec![
                        IncidentKind::Unfulfilled,
                        IncidentKind::UnpaidAccess,
                        IncidentKind::UnmappedCustomer,
                        IncidentKind::ProbeFailed,
                    ],
                };
                store.resolve_incidents(project_id, &resolve, now).await?;
            }
        }
    }
    for customer in suspects {
        confirm(&ctx, &customer).await?;
    }
    Ok(())
}

/// Expected access of each customer. With Entitlements, the features are
/// the customer's active entitlements, read for every customer a
/// subscription grants access (the others expect none whatever they hold),
/// so a healthy customer passes on the first look.
async fn expect(
    ctx: &Ctx,
    plain: &BTreeMap<String, Vec<SubscriptionView>>,
    now: i64,
) -> Result<BTreeMap<String, ExpectedAccess>, ScanError> {
    let derive = |subs: &[SubscriptionView], ents: Option<&[String]>| {
        expected_access(subs, ents, &ctx.map, &ctx.policy, now / 1000)
    };
    let mut out: BTreeMap<String, ExpectedAccess> = plain
        .iter()
        .map(|(c, subs)| (c.clone(), derive(subs, None)))
        .collect();
    if !ctx.map.use_entitlements {
        return Ok(out);
    }
    let needed: Vec<CustomerId> = out
        .iter()
        .filter(|(_, e)| e.access.active)
        .filter_map(|(c, _)| CustomerId::parse(c))
        .collect();
    let read: Vec<(CustomerId, Vec<String>)> = stream::iter(needed)
        .map(|customer| async move {
            let ents = ctx.entitlements(&customer).await?;
            Ok::<_, ScanError>((customer, ents))
        })
        .buffer_unordered(ENTITLEMENT_READS)
        .try_collect()
        .await?;
    for (customer, ents) in read {
        let subs = &plain[customer.as_str()];
        out.insert(customer.to_string(), derive(subs, Some(&ents)));
    }
    Ok(out)
}

/// One batch probe, tried again on failure; `None` (the customers counted
/// as not checked, and a `probe_failed` incident) once retries are spent.
async fn probe_batch(
    ctx: &Ctx,
    chunk: &[(String, String)],
) -> Result<Option<Vec<crate::probe::ProbeAnswer>>, ScanError> {
    let mut retry = 0;
    loop {
        ctx.count(|c| c.probe_requests += 1);
        let err = match ctx.app.probe.probe_batch(&ctx.target, chunk).await {
            Ok(answers) => return Ok(Some(answers)),
            Err(e) => e,
        };
        if let Some(wait) = app_retry().delay(retry, err.retry_after()) {
            tracing::warn!(scan_id = %ctx.scan_id, error = %err, ?wait, "batch probe failed; retrying");
            tokio::time::sleep(wait).await;
            retry += 1;
            continue;
        }
        let count = chunk.len() as i64;
        ctx.count(|c| c.customers_unchecked += count);
        let message = format!("{count} customers could not be checked: {err}");
        probe_failed(ctx, &message, json!({"customers_unchecked": count})).await?;
        return Ok(None);
    }
}

/// Confirms a suspected mismatch before it alarms: a `scan` run re-reads the
/// customer from Stripe (inside the budget) and probes again; only a
/// mismatch that survives opens an incident.
async fn confirm(ctx: &Ctx, customer: &str) -> Result<(), ScanError> {
    let Some(id) = CustomerId::parse(customer) else {
        tracing::warn!(scan_id = %ctx.scan_id, "skipping a customer id that is not cus_…");
        return Ok(());
    };
    let external = format!("{}:{customer}", ctx.scan_id);
    let (run_id, created) = crate::check::start(
        &ctx.app,
        &ctx.project.id,
        &id,
        Trigger::Scan,
        Some(&external),
    )
    .await
    .map_err(|e| match e {
        crate::check::CheckError::Store(e) => ScanError::Store(e),
        other => ScanError::Stripe(other.to_string()),
    })?;
    if !created {
        return Ok(()); // checked before a resume
    }
    // The run reads the customer and its subscriptions (and entitlements).
    let reads = if ctx.project.use_entitlements { 3 } else { 2 };
    for _ in 0..reads {
        ctx.pacer.wait().await;
    }
    ctx.count(|c| {
        c.stripe_requests += reads;
        c.probe_requests += 1;
    });
    let run = crate::check::drive(&ctx.app, &run_id, Duration::from_secs(30)).await?;
    if let Some(kind) =
        run.and_then(|r| (r.status == RunStatus::Failed).then_some(r.kind).flatten())
    {
        ctx.count(|c| *c.mismatches.entry(kind.as_str().to_string()).or_default() += 1);
    }
    Ok(())
}

async fn probe_failed(ctx: &Ctx, message: &str, extra: serde_json::Value) -> Result<(), ScanError> {
    ctx.count(|c| {
        *c.mismatches
            .entry(IncidentKind::ProbeFailed.as_str().into())
            .or_default() += 1
    });
    let mut details = json!({"scan": ctx.scan_id, "message": message});
    if let (Some(d), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
        d.extend(extra);
    }
    ctx.app
        .store
        .open_incident(&NewIncident::for_project(
            ctx.project.id.as_str(),
            IncidentKind::ProbeFailed,
            details,
            ctx.app.now_ms(),
        ))
        .await?;
    Ok(())
}

/// Walks the app's `/list` (when offered), recording who has access.
pub(crate) async fn walk_app_list(
    ctx: Arc<Ctx>,
    mut cursor: Option<String>,
) -> Result<(), ScanError> {
    let mut retry = 0;
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
                record(&ctx, &[], None, true).await?;
                return Ok(()); // the app does not offer /list
            }
            Err(e) => {
                if let Some(wait) = app_retry().delay(retry, e.retry_after()) {
                    retry += 1;
                    tracing::warn!(scan_id = %ctx.scan_id, error = %e, ?wait, "app /list failed; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                let message = format!(
                    "the app's /list failed after retries, so access Stripe never paid for was not looked \
                     for past this point: {e}"
                );
                probe_failed(&ctx, &message, json!({"list_incomplete": true})).await?;
                *ctx.list_failure.lock().expect("list failure") = Some(message);
                return Ok(());
            }
        };
        retry = 0;
        let active: Vec<(String, Option<String>)> = page
            .answers
            .into_iter()
            .filter(|a| a.observed.found && a.observed.access.active)
            // The app's ids go to Stripe URLs: only real customer ids.
            .filter(|a| CustomerId::parse(&a.customer).is_some())
            .map(|a| (a.customer, a.user))
            .collect();
        let done = page.next_cursor.is_none();
        cursor = page.next_cursor;
        record(&ctx, &active, cursor.as_deref(), done).await?;
        if done {
            return Ok(());
        }
    }
}

async fn record(
    ctx: &Ctx,
    active: &[(String, Option<String>)],
    cursor: Option<&str>,
    done: bool,
) -> Result<(), ScanError> {
    if ctx
        .app
        .store
        .record_app_access(&ctx.scan_id, &ctx.owner, active, cursor, done)
        .await?
    {
        Ok(())
    } else {
        Err(ScanError::LeaseLost)
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
