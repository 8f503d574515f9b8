//! The scan's pipeline: pagers read `created` slices from Stripe ahead of
//! the consumer, which stores each page with its checkpoint and hands
//! customers to batch checks; then the `/list` walk and unpaid candidates.

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
};

use tokio::task::JoinHandle;

use super::{
    BATCH, Ctx, IN_FLIGHT, PAGERS, Progress, ScanError, batch,
    slices::{self, Slice, SlicePlan},
};
use crate::{
    App,
    domain::{Scan, Subscription},
};

/// A batch check in flight.
type BatchTask = JoinHandle<Result<(), ScanError>>;

/// One page read from Stripe: which slice, its order in the slice, the
/// cursor it was read after (where a resume re-reads it from), and when it
/// was read (so it never overwrites a newer webhook sync).
struct Page {
    slice: usize,
    seq: u64,
    after: Option<String>,
    subs: Vec<Subscription>,
    has_more: bool,
    read_at: i64,
}

/// How the pipeline ended: customers it could not check, and why the scan
/// is partial when the app's `/list` could not be walked.
#[derive(Debug)]
pub(super) struct Ended {
    pub unchecked: i64,
    pub list_failed: bool,
    pub note: Option<String>,
}

/// Pages every unfinished slice, [`PAGERS`] at a time, ahead of the consumer:
/// fetching never waits for the database, and page latency is hidden.
fn spawn_pagers(
    ctx: Arc<Ctx>,
    plan: &SlicePlan,
) -> tokio::sync::mpsc::Receiver<Result<Page, ScanError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(32);
    let queue: Arc<Mutex<VecDeque<(usize, Slice)>>> = Arc::new(Mutex::new(
        plan.slices
            .iter()
            .cloned()
            .enumerate()
            .filter(|(_, s)| !s.done)
            .collect(),
    ));
    for _ in 0..PAGERS {
        let (ctx, tx, queue) = (ctx.clone(), tx.clone(), queue.clone());
        tokio::spawn(async move {
            loop {
                let Some((index, slice)) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                let mut after = slice.after.clone();
                for seq in 0.. {
                    let page = ctx
                        .subscriptions_page(after.as_deref(), Some((slice.gte, slice.lt)), 100)
                        .await;
                    let failed = page.is_err();
                    let page = page.map(|(subs, has_more, read_at)| Page {
                        slice: index,
                        seq,
                        after: after.clone(),
                        has_more: has_more && !subs.is_empty(),
                        subs,
                        read_at,
                    });
                    let next = page
                        .as_ref()
                        .ok()
                        .filter(|p| p.has_more)
                        .and_then(|p| p.subs.last())
                        .map(|s| s.id.clone());
                    if tx.send(page).await.is_err() || failed {
                        return;
                    }
                    match next {
                        Some(id) => after = Some(id),
                        None => break,
                    }
                }
            }
        });
    }
    rx
}

/// Pages received whose customers are not all checked yet, per slice: the
/// checkpoint of a slice never moves past them.
#[derive(Default)]
struct Unchecked {
    pages: BTreeMap<(usize, u64), Option<String>>,
}

impl Unchecked {
    fn plan(
        &self,
        base: &SlicePlan,
        latest: &[Option<String>],
        received_all: &[bool],
    ) -> SlicePlan {
        let slices = base
            .slices
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let oldest = self
                    .pages
                    .range((i, 0)..=(i, u64::MAX))
                    .next()
                    .map(|(_, after)| after.clone());
                Slice {
                    gte: s.gte,
                    lt: s.lt,
                    done: s.done || (received_all[i] && oldest.is_none()),
                    after: oldest.unwrap_or_else(|| latest[i].clone().or_else(|| s.after.clone())),
                }
            })
            .collect();
        SlicePlan { slices }
    }
}

pub(super) async fn execute(
    app: &App,
    scan: &Scan,
    owner: &str,
    progress: Option<Progress>,
) -> Result<Ended, ScanError> {
    let started = std::time::Instant::now();
    let ctx = Arc::new(Ctx::load(app, scan, owner).await?);
    let walker = (!scan.app_done)
        .then(|| tokio::spawn(batch::walk_app_list(ctx.clone(), scan.app_cursor.clone())));
    let plan = match SlicePlan::from_checkpoint(scan.stripe_cursor.as_deref()) {
        Some(plan) => plan,
        None if scan.stripe_done => SlicePlan::default(),
        None => slices::plan(&ctx).await?,
    };
    tracing::info!(scan_id = %scan.id, slices = plan.slices.len(), elapsed = ?started.elapsed(), "scan planned");
    let mut latest: Vec<Option<String>> = plan.slices.iter().map(|s| s.after.clone()).collect();
    let mut received_all: Vec<bool> = plan.slices.iter().map(|s| s.done).collect();
    let mut unchecked = Unchecked::default();
    let mut pages = spawn_pagers(ctx.clone(), &plan);
    let mut buffer: Vec<String> = Vec::with_capacity(BATCH);
    let mut in_buffer: HashSet<String> = HashSet::with_capacity(BATCH);
    let mut buffer_pages: Vec<(usize, u64)> = Vec::new();
    let mut in_flight: VecDeque<(BatchTask, Vec<(usize, u64)>)> = VecDeque::new();
    loop {
        let next = pages.recv().await.transpose()?;
        let batch = match &next {
            Some(page) => {
                ctx.count(|c| c.subscriptions_seen += page.subs.len() as i64);
                unchecked
                    .pages
                    .insert((page.slice, page.seq), page.after.clone());
                buffer_pages.push((page.slice, page.seq));
                for sub in &page.subs {
                    if crate::ids::CustomerId::parse(&sub.customer).is_some()
                        && !ctx.pending.contains(&sub.customer)
                        && in_buffer.insert(sub.customer.clone())
                    {
                        buffer.push(sub.customer.clone());
                    }
                }
                if let Some(last) = page.subs.last() {
                    latest[page.slice] = Some(last.id.clone());
                }
                received_all[page.slice] |= !page.has_more;
                (buffer.len() >= BATCH).then(|| {
                    in_buffer.clear();
                    (
                        std::mem::take(&mut buffer),
                        std::mem::take(&mut buffer_pages),
                    )
                })
            }
            None => {
                in_buffer.clear();
                Some((
                    std::mem::take(&mut buffer),
                    std::mem::take(&mut buffer_pages),
                ))
            }
        };
        // Reap finished batches; keep at most IN_FLIGHT running.
        while in_flight.front().is_some_and(|(h, _)| h.is_finished())
            || in_flight.len() >= IN_FLIGHT
        {
            let (handle, done_pages) = in_flight.pop_front().expect("non-empty");
            handle
                .await
                .map_err(|e| ScanError::Stripe(format!("batch task: {e}")))??;
            for key in done_pages {
                unchecked.pages.remove(&key);
            }
        }
        let checkpoint = unchecked
            .plan(&plan, &latest, &received_all)
            .to_checkpoint();
        let held = match &next {
            // The page is committed before its customers are checked against it.
            Some(page) => {
                app.store
                    .save_scan_page(
                        ctx.project.id.as_str(),
                        &page.subs,
                        page.read_at,
                        &scan.id,
                        owner,
                        &ctx.checkpoint(Some(checkpoint), false),
                        app.now_ms() + super::lease_ms(app),
                    )
                    .await?
            }
            None => checkpoint_scan(&ctx, Some(checkpoint), false).await?,
        };
        if !held {
            return Err(ScanError::LeaseLost);
        }
        if let Some((customers, batch_pages)) = batch {
            in_flight.push_back((
                tokio::spawn(batch::check_batch(ctx.clone(), customers)),
                batch_pages,
            ));
        }
        if let Some(p) = &progress {
            p(&ctx.summary());
        }
        if next.is_none() {
            break;
        }
    }
    for (handle, done_pages) in in_flight {
        handle
            .await
            .map_err(|e| ScanError::Stripe(format!("batch task: {e}")))??;
        for key in done_pages {
            unchecked.pages.remove(&key);
        }
    }
    tracing::info!(scan_id = %scan.id, elapsed = ?started.elapsed(), "Stripe read and batches checked");
    let finished = unchecked
        .plan(&plan, &latest, &vec![true; latest.len()])
        .to_checkpoint();
    if !checkpoint_scan(&ctx, Some(finished.clone()), false).await? {
        return Err(ScanError::LeaseLost);
    }
    if let Some(walker) = walker {
        walker
            .await
            .map_err(|e| ScanError::Stripe(format!("list walk: {e}")))??;
    }
    tracing::info!(scan_id = %scan.id, elapsed = ?started.elapsed(), "app /list walked");
    batch::check_unpaid_candidates(&ctx).await?;
    tracing::info!(scan_id = %scan.id, elapsed = ?started.elapsed(), "unpaid candidates confirmed");
    if !checkpoint_scan(&ctx, Some(finished), true).await? {
        return Err(ScanError::LeaseLost);
    }
    if let Some(p) = &progress {
        p(&ctx.summary());
    }
    let list_failure = ctx.list_failure.lock().expect("list failure").clone();
    let unchecked = ctx.unchecked();
    let note = if unchecked > 0 {
        Some(format!(
            "{unchecked} customers could not be checked: the app probe failed after retries"
        ))
    } else {
        list_failure.clone()
    };
    Ok(Ended {
        unchecked,
        list_failed: list_failure.is_some(),
        note,
    })
}

async fn checkpoint_scan(ctx: &Ctx, cursor: Option<String>, done: bool) -> Result<bool, ScanError> {
    Ok(ctx
        .app
        .store
        .checkpoint_scan(
            &ctx.scan_id,
            &ctx.owner,
            &ctx.checkpoint(cursor, done),
            ctx.app.now_ms() + super::lease_ms(&ctx.app),
        )
        .await?)
}
