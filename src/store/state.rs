//! Normalized Stripe state: one row per subscription and per customer, only
//! ever moved forward in snapshot time; and the commit that ends a sync,
//! where the state, the finished work and the check it starts are one
//! transaction.

use super::{
    ClaimedItem, Resolve, Store, StoreError,
    batch::{UPSERT_SUBSCRIPTION_CONFLICT, encode, past_due_since},
    dispatch,
    incidents::resolve_in,
    runs::INSERT_RUN,
};
use crate::domain::{IncidentKind, Subscription, Trigger};

/// What one Stripe read established about a customer.
#[derive(Clone, Debug)]
pub struct CustomerState {
    pub project_id: String,
    pub customer_id: String,
    pub app_user_id: Option<String>,
    pub deleted: bool,
    pub entitlements: Option<Vec<String>>,
    pub subscriptions: Vec<Subscription>,
    /// Unix ms when the read started; a row is replaced only by a later one.
    pub snapshot_at: i64,
}

/// A stored subscription row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredSubscription {
    pub subscription_id: String,
    pub customer_id: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<i64>,
    pub past_due_since: Option<i64>,
    pub items: String,
    pub snapshot_at: i64,
}

/// The check a webhook sync starts, or extends when one is still pending.
#[derive(Clone, Debug)]
pub struct WebhookCheck<'a> {
    /// The newest event of the claim: the run judges its state.
    pub event_id: &'a str,
    /// When a mismatch becomes an incident (unix ms).
    pub deadline: i64,
}

/// Everything a finished sync writes.
pub struct SyncCommit<'a> {
    pub state: &'a CustomerState,
    /// The claimed work items (none for a check's own read of Stripe).
    pub items: &'a [ClaimedItem],
    /// The lease holder of `items`.
    pub owner: &'a str,
    pub now: i64,
    pub check: Option<WebhookCheck<'a>>,
    /// A drill's run, apart from `check` (SPEC §8b).
    pub drill: Option<WebhookCheck<'a>>,
}

/// What a committed sync started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The webhook run started or extended.
    pub run_id: Option<String>,
    /// Replay runs made due by this sync.
    pub replay_runs: Vec<String>,
    /// The drill run started.
    pub drill_run_id: Option<String>,
}

// `past_due_since` is when Stripe recorded the first failed payment of the
// unpaid latest invoice (SPEC §4); a read that could not see the invoice
// keeps the value an earlier read found, and any other status clears it.
const UPSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (project_id, subscription_id, customer_id, status,
        cancel_at_period_end, current_period_end, items, metadata, stripe_created, snapshot_at, past_due_since)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

const UPSERT_CUSTOMER: &str = "INSERT INTO customers (project_id, customer_id, app_user_id, deleted, entitlements, snapshot_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (project_id, customer_id) DO UPDATE SET app_user_id = excluded.app_user_id,
        deleted = excluded.deleted, entitlements = excluded.entitlements, snapshot_at = excluded.snapshot_at
    WHERE customers.snapshot_at <= excluded.snapshot_at";

/// Finishes the claimed items the owner still holds.
const FINISH_ITEMS: &str =
    "UPDATE work_items SET status = 'done', finished_at = $1, last_error = NULL,
    locked_until = NULL, lease_owner = NULL, replay_run_id = NULL
    WHERE lease_owner = $3 AND status = 'leased' AND ";

/// Inserts the run a sync starts (`$check`: a [`WebhookCheck`]) under
/// `$external`; its id, or `None` when that external id already has a run.
macro_rules! insert_check_run {
    ($tx:expr, $state:expr, $c:expr, $trigger:expr, $external:expr, $check:expr) => {{
        let id = format!("run_{}", crate::ids::random_id());
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{INSERT_RUN} ON CONFLICT (project_id, trigger_kind, external_id) DO NOTHING"
        )))
        .bind(&id)
        .bind(&$state.project_id)
        .bind(&$state.customer_id)
        .bind($trigger.as_str())
        .bind($external)
        .bind($check.event_id)
        .bind($check.deadline)
        .bind($c.now)
        .bind($c.now)
        .bind(false)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        (inserted == 1).then_some(id)
    }};
}

/// A pending webhook run of the customer takes on the newer event: its
/// generation moves, so an attempt still judging older state cannot close it.
const EXTEND_RUN: &str = "UPDATE runs SET generation = generation + 1, next_at = $1, event_id = $2,
        deadline = CASE WHEN deadline < $3 THEN $3 ELSE deadline END
    WHERE project_id = $4 AND customer_id = $5 AND trigger_kind = 'webhook' AND status = 'pending'
    RETURNING id";

/// A replay's run becomes due once the replayed event is synced.
const ACTIVATE_REPLAY: &str =
    "UPDATE runs SET next_at = $1, deadline = $1, generation = generation + 1
    WHERE id = $2 AND status = 'pending'";

impl Store {
    /// Commits a finished sync in one short transaction, opened after every
    /// network call has ended: the customer's state (forward-only), the
    /// claimed items done, the webhook check started or extended, replay
    /// runs made due, and `stripe_auth` resolved (Stripe answered).
    ///
    /// `Ok(None)` — and nothing written — when the owner no longer holds
    /// every claimed item: another worker took them over.
    pub async fn complete_sync(
        &self,
        c: &SyncCommit<'_>,
    ) -> Result<Option<SyncOutcome>, StoreError> {
        let state = c.state;
        let entitlements = serde_json::to_string(&state.entitlements).expect("strings serialize");
        let subs = encode(&state.subscriptions);
        let finish = self.with_id_list(FINISH_ITEMS, 2);
        let ids = super::id_list(c.items);
        let replays: Vec<&str> = c
            .items
            .iter()
            .filter_map(|i| i.replay_run_id.as_deref())
            .collect();
        let stripe_answered = Resolve {
            customer_id: String::new(),
            kinds: vec![IncidentKind::StripeAuth],
        };
        let outcome = dispatch!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                if !c.items.is_empty() {
                    let finished = sqlx::query(sqlx::AssertSqlSafe(finish.as_str()))
                        .bind(c.now)
                        .bind(&ids)
                        .bind(c.owner)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if finished != c.items.len() as u64 {
                        tx.rollback().await?;
                        return Ok::<_, sqlx::Error>(None);
                    }
                }
                for (sub, (items_json, metadata_json)) in state.subscriptions.iter().zip(&subs) {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "{UPSERT_SUBSCRIPTION}{UPSERT_SUBSCRIPTION_CONFLICT}"
                    )))
                    .bind(&state.project_id)
                    .bind(&sub.id)
                    .bind(&state.customer_id)
                    .bind(&sub.status)
                    .bind(sub.cancel_at_period_end)
                    .bind(sub.current_period_end)
                    .bind(items_json)
                    .bind(metadata_json)
                    .bind(sub.created)
                    .bind(state.snapshot_at)
                    .bind(past_due_since(sub))
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(UPSERT_CUSTOMER)
                    .bind(&state.project_id)
                    .bind(&state.customer_id)
                    .bind(&state.app_user_id)
                    .bind(state.deleted)
                    .bind(&entitlements)
                    .bind(state.snapshot_at)
                    .execute(&mut *tx)
                    .await?;
                resolve_in!(tx, &state.project_id, &stripe_answered, c.now);
                let mut outcome = SyncOutcome::default();
                if let Some(check) = &c.check {
                    let extended: Option<(String,)> = sqlx::query_as(EXTEND_RUN)
                        .bind(c.now)
                        .bind(check.event_id)
                        .bind(check.deadline)
                        .bind(&state.project_id)
                        .bind(&state.customer_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    outcome.run_id = match extended {
                        Some((id,)) => Some(id),
                        None => {
                            // The first run of an event is keyed by its id; should
                            // that id already have a finished run, the new one
                            // gets a suffix: a check is never absorbed.
                            let mut external = check.event_id.to_string();
                            loop {
                                let id = insert_check_run!(
                                    tx,
                                    state,
                                    c,
                                    Trigger::Webhook,
                                    &external,
                                    check
                                );
                                if id.is_some() {
                                    break id;
                                }
                                external =
                                    format!("{}:{}", check.event_id, crate::ids::random_id());
                            }
                        }
                    };
                }
                if let Some(drill) = &c.drill {
                    outcome.drill_run_id =
                        insert_check_run!(tx, state, c, Trigger::Drill, drill.event_id, drill);
                }
                for run_id in &replays {
                    let activated = sqlx::query(ACTIVATE_REPLAY)
                        .bind(c.now)
                        .bind(run_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if activated == 1 {
                        outcome.replay_runs.push(run_id.to_string());
                    }
                }
                tx.commit().await?;
                Ok(Some(outcome))
            }
            .await
        })?;
        Ok(outcome)
    }

    /// Records the app's own user id for a customer ParityRail has no row
    /// for yet (found through the app's `/list`); never overrides a mapping.
    pub async fn remember_app_user(
        &self,
        project_id: &str,
        customer_id: &str,
        user: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, |pool| {
            sqlx::query(
                "INSERT INTO customers (project_id, customer_id, app_user_id, deleted, entitlements, snapshot_at)
                 VALUES ($1, $2, $3, $4, 'null', 0) ON CONFLICT (project_id, customer_id) DO NOTHING",
            )
            .bind(project_id)
            .bind(customer_id)
            .bind(user)
            .bind(false)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn subscriptions_of(
        &self,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Vec<StoredSubscription>, StoreError> {
        let rows = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT subscription_id, customer_id, status, cancel_at_period_end, current_period_end,
                    past_due_since, items, snapshot_at
                 FROM subscriptions WHERE project_id = $1 AND customer_id = $2 ORDER BY subscription_id",
            )
            .bind(project_id)
            .bind(customer_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// `(app_user_id, entitlements JSON, snapshot_at)` of a customer.
    pub async fn customer_row(
        &self,
        project_id: &str,
        customer_id: &str,
    ) -> Result<Option<(Option<String>, String, i64)>, StoreError> {
        let row = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT app_user_id, entitlements, snapshot_at FROM customers
                 WHERE project_id = $1 AND customer_id = $2",
            )
            .bind(project_id)
            .bind(customer_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row)
    }
}
