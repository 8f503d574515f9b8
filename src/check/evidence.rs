//! How an attempt leaves its run, built up as data: the verdict, the
//! evidence steps, and the incidents it opens or resolves. Nothing here
//! touches the network or the database; the store applies the result in one
//! fenced transaction.

use serde_json::{Value, json};

use crate::{
    access::{ExpectedAccess, ObservedAccess, SubscriptionView},
    compare::{MismatchKind, Verdict},
    domain::{IncidentKind, Run, RunKind, RunStatus, StepName},
    store::{Evidence, NewIncident, Resolve, RunOutcome, RunSettlement},
};

/// One answered probe call, as its evidence step records it.
pub(super) struct ProbeCall {
    pub attempt: i64,
    pub http_status: u16,
    pub latency_ms: u64,
}

/// The state an attempt judged: the subscriptions and expected access.
pub(super) struct Base {
    /// The subscription that matters: a granting one if any, else the newest known.
    subscription: Option<(String, String)>,
    pub expected: Value,
}

impl Base {
    pub fn new(views: &[SubscriptionView], expected: &ExpectedAccess) -> Self {
        let sub = views
            .iter()
            .find(|v| matches!(v.status.as_str(), "active" | "trialing" | "past_due"))
            .or_else(|| views.last());
        Self {
            subscription: sub.map(|s| (s.id.clone(), s.status.clone())),
            expected: to_json(expected),
        }
    }
}

/// A settlement in the making.
pub(super) struct Draft {
    s: RunSettlement,
    run_id: String,
    customer_id: String,
    event_id: Option<String>,
    trigger: &'static str,
    base: Option<Base>,
    pub now: i64,
}

/// Every kind a passing check proves gone for its customer.
const CUSTOMER_KINDS: [IncidentKind; 4] = [
    IncidentKind::Unfulfilled,
    IncidentKind::UnpaidAccess,
    IncidentKind::UnmappedCustomer,
    IncidentKind::ProbeFailed,
];

impl Draft {
    pub fn new(run: &Run, owner: &str, now: i64) -> Self {
        Self {
            s: RunSettlement {
                run_id: run.id.clone(),
                project_id: run.project_id.to_string(),
                owner: owner.to_string(),
                generation: run.generation,
                now,
                outcome: RunOutcome::Finish {
                    status: RunStatus::Failed,
                    kind: None,
                },
                app_user_id: None,
                expected: None,
                observed: None,
                deploy_sha: None,
                summary: None,
                steps: Vec::new(),
                open: Vec::new(),
                resolve: Vec::new(),
                probe_answered: false,
            },
            run_id: run.id.clone(),
            customer_id: run.customer_id.clone(),
            event_id: run.event_id.clone(),
            trigger: run.trigger.as_str(),
            base: None,
            now,
        }
    }

    pub fn with_state(mut self, base: Base) -> Self {
        self.s.expected = Some(base.expected.clone());
        self.base = Some(base);
        self
    }

    pub fn base(&self) -> &Base {
        self.base.as_ref().expect("state recorded first")
    }

    /// Resolves what this run no longer shows, unless it is a drill's: a
    /// drill's expected access is made up, so it proves nothing resolved.
    fn resolve(&mut self, resolve: Resolve) {
        if self.trigger != crate::domain::Trigger::Drill.as_str() {
            self.s.resolve.push(resolve);
        }
    }

    pub fn step(&mut self, name: StepName, detail: Value) {
        self.s.steps.push((name, detail));
    }

    pub fn user(&mut self, user: &str) {
        self.s.app_user_id = Some(user.to_string());
    }

    pub fn finish(
        mut self,
        status: RunStatus,
        kind: Option<RunKind>,
        summary: &str,
    ) -> RunSettlement {
        self.s.outcome = RunOutcome::Finish { status, kind };
        self.s.summary = Some(summary.to_string());
        self.s
    }

    pub fn fail(self, kind: RunKind, summary: &str) -> RunSettlement {
        self.finish(RunStatus::Failed, Some(kind), summary)
    }

    pub fn reschedule(mut self, next_at: i64, summary: &str) -> RunSettlement {
        self.s.outcome = RunOutcome::Reschedule { next_at };
        self.s.summary = Some(summary.to_string());
        self.s
    }

    /// The key is the problem, not this customer: one incident for the project.
    pub fn stripe_auth(mut self, message: &str, permission: Option<&str>) -> RunSettlement {
        let mut details = json!({"message": message, "run": self.run_id});
        if let Some(permission) = permission {
            details["missing_permission"] = json!(permission);
        }
        let incident = self.incident(IncidentKind::StripeAuth, "", None, details);
        self.s.open.push(incident);
        self.fail(RunKind::StripeAuth, message)
    }

    pub fn unmapped(mut self) -> RunSettlement {
        let summary = "the Stripe customer cannot be mapped to an app user";
        let customer = self.customer_id.clone();
        let incident = self.incident(IncidentKind::UnmappedCustomer, &customer, None, json!({}));
        self.s.open.push(incident);
        self.fail(RunKind::UnmappedCustomer, summary)
    }

    /// The probe failed past the deadline: the customer's own incident when
    /// `alone` (others were answered meanwhile), else one for the project.
    pub fn probe_failed(mut self, message: &str, alone: bool) -> RunSettlement {
        let key = if alone {
            self.customer_id.clone()
        } else {
            String::new()
        };
        let details =
            json!({"message": message, "scope": if alone { "customer" } else { "project" }});
        let incident = self.incident(IncidentKind::ProbeFailed, &key, None, details);
        self.s.open.push(incident);
        self.fail(RunKind::ProbeFailed, message)
    }

    /// The app answered: compare, then pass, re-probe at `next`, or fail.
    pub fn judged(
        mut self,
        observed: &ObservedAccess,
        verdict: &Verdict,
        call: ProbeCall,
        next: Option<i64>,
    ) -> RunSettlement {
        let attempt_no = call.attempt;
        let observed_json = to_json(observed);
        let sha = observed.deploy_sha.clone();
        self.s.probe_answered = true;
        self.s.observed = Some(observed_json.clone());
        self.s.deploy_sha = sha.clone();
        self.step(
            StepName::Probe,
            json!({"attempt": attempt_no, "http_status": call.http_status,
                "latency_ms": call.latency_ms, "observed": observed_json, "deploy_sha": sha,
                "differences": verdict.differences}),
        );
        // The app answered: neither this customer's nor the project's probe is failing.
        let customer = self.customer_id.clone();
        self.resolve(Resolve {
            customer_id: String::new(),
            kinds: vec![IncidentKind::ProbeFailed],
        });
        if verdict.passed() {
            self.step(StepName::Verdict, json!({"verdict": RunStatus::Passed}));
            self.resolve(Resolve {
                customer_id: customer,
                kinds: CUSTOMER_KINDS.to_vec(),
            });
            return self.finish(
                RunStatus::Passed,
                None,
                "expected and observed access agree",
            );
        }
        let summary = verdict.summary();
        if let Some(next_at) = next {
            return self.reschedule(next_at, &summary);
        }
        let kinds: Vec<IncidentKind> = verdict.kinds().into_iter().map(incident_kind).collect();
        self.step(
            StepName::Verdict,
            json!({"verdict": RunStatus::Failed, "kinds": kinds, "summary": summary}),
        );
        // What this verdict does not show any more is resolved.
        self.resolve(Resolve {
            customer_id: customer.clone(),
            kinds: CUSTOMER_KINDS
                .into_iter()
                .filter(|k| !kinds.contains(k))
                .collect(),
        });
        let details = json!({"summary": summary, "differences": verdict.differences});
        for kind in &kinds {
            let incident = self.incident(
                *kind,
                &customer,
                Some((&observed_json, observed.deploy_sha.as_deref())),
                details.clone(),
            );
            self.s.open.push(incident);
        }
        let kind = kinds[0].as_run_kind();
        self.finish(RunStatus::Failed, kind, &summary)
    }

    fn incident(
        &self,
        kind: IncidentKind,
        customer_key: &str,
        observed: Option<(&Value, Option<&str>)>,
        mut details: Value,
    ) -> NewIncident {
        let base = self.base.as_ref();
        let sub = base.and_then(|b| b.subscription.clone());
        if let Value::Object(map) = &mut details {
            map.insert("customer".into(), json!(self.customer_id));
            map.insert("trigger".into(), json!(self.trigger));
            map.insert("run".into(), json!(self.run_id));
        }
        NewIncident {
            project_id: self.s.project_id.clone(),
            kind,
            customer_id: customer_key.to_string(),
            event_id: self.event_id.clone(),
            details,
            count: None,
            now: self.now,
            evidence: Evidence {
                app_user_id: self.s.app_user_id.clone(),
                subscription_id: sub.as_ref().map(|s| s.0.clone()),
                subscription_status: sub.map(|s| s.1),
                expected: base.map(|b| b.expected.clone()),
                observed: observed.map(|o| o.0.clone()),
                deploy_sha: observed.and_then(|o| o.1.map(str::to_string)),
                run_id: Some(self.run_id.clone()),
                drill: self.trigger == crate::domain::Trigger::Drill.as_str(),
            },
        }
    }
}

/// The JSON of a value that always serializes.
fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializes")
}

fn incident_kind(kind: MismatchKind) -> IncidentKind {
    match kind {
        MismatchKind::Unfulfilled => IncidentKind::Unfulfilled,
        MismatchKind::UnpaidAccess => IncidentKind::UnpaidAccess,
    }
}
