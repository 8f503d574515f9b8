//! How an attempt leaves its run: rescheduled or finished, with its
//! evidence and the incidents it opens or resolves, in one transaction —
//! and only by the lease holder, for the generation it judged.

use serde_json::Value;

use super::{
    NewIncident, Resolve, Store, StoreError, dispatch,
    incidents::{open_incident_in, resolve_in},
};
use crate::domain::{RunKind, RunStatus, StepName};

/// How an attempt leaves its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Still pending, due again at `next_at`.
    Reschedule { next_at: i64 },
    /// A verdict.
    Finish {
        status: RunStatus,
        kind: Option<RunKind>,
    },
}

/// Everything one attempt writes, applied in one transaction and only if
/// the attempt still holds the run's lease and judged its current
/// generation: otherwise nothing at all is written.
#[derive(Clone, Debug)]
pub struct RunSettlement {
    pub run_id: String,
    pub project_id: String,
    pub owner: String,
    pub generation: i64,
    pub now: i64,
    pub outcome: RunOutcome,
    pub app_user_id: Option<String>,
    pub expected: Option<Value>,
    pub observed: Option<Value>,
    pub deploy_sha: Option<String>,
    pub summary: Option<String>,
    pub steps: Vec<(StepName, Value)>,
    pub open: Vec<NewIncident>,
    pub resolve: Vec<Resolve>,
    /// The app answered: remember when, so a lone failing customer is told
    /// apart from the app being down for everyone.
    pub probe_answered: bool,
}

const SETTLE: &str =
    "UPDATE runs SET status = $1, kind = $2, next_at = COALESCE($3, next_at), finished_at = $4,
        app_user_id = COALESCE($5, app_user_id), expected = COALESCE($6, expected),
        observed = COALESCE($7, observed), deploy_sha = COALESCE($8, deploy_sha),
        summary = COALESCE($9, summary), probe_attempts = probe_attempts + 1,
        locked_until = NULL, lease_owner = NULL, judged_generation = generation, needs_sync = $13
     WHERE id = $10 AND lease_owner = $11 AND generation = $12 AND status = 'pending'";

impl Store {
    /// Applies one attempt's settlement in one transaction; `false` (and
    /// nothing written) when the lease was lost or a newer event bumped the
    /// run's generation since the attempt read its state.
    pub async fn settle_run(&self, s: &RunSettlement) -> Result<bool, StoreError> {
        let (status, kind, next_at, finished_at) = match s.outcome {
            RunOutcome::Reschedule { next_at } => (RunStatus::Pending, None, Some(next_at), None),
            RunOutcome::Finish { status, kind } => (status, kind, None, Some(s.now)),
        };
        let landed = dispatch!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(SETTLE)
                .bind(status.as_str())
                .bind(kind.map(RunKind::as_str))
                .bind(next_at)
                .bind(finished_at)
                .bind(&s.app_user_id)
                .bind(s.expected.as_ref().map(Value::to_string))
                .bind(s.observed.as_ref().map(Value::to_string))
                .bind(&s.deploy_sha)
                .bind(&s.summary)
                .bind(&s.run_id)
                .bind(&s.owner)
                .bind(s.generation)
                .bind(false)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated != 1 {
                tx.rollback().await?;
                return Ok::<_, sqlx::Error>(false);
            }
            for (step, detail) in &s.steps {
                sqlx::query(
                    "INSERT INTO run_steps (run_id, at, step, detail) VALUES ($1, $2, $3, $4)",
                )
                .bind(&s.run_id)
                .bind(s.now)
                .bind(step.as_str())
                .bind(detail.to_string())
                .execute(&mut *tx)
                .await?;
            }
            for resolve in &s.resolve {
                resolve_in!(tx, &s.project_id, resolve, s.now);
            }
            for new in &s.open {
                open_incident_in!(tx, new);
            }
            if s.probe_answered {
                sqlx::query("UPDATE app_probes SET last_ok_at = $1 WHERE project_id = $2")
                    .bind(s.now)
                    .bind(&s.project_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        }
        .await)?;
        Ok(landed)
    }
}
