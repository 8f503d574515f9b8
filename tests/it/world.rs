//! One world for the stories: the real server on a fresh database, the
//! Stripe simulator, the sample app, a connected project with a probe and a
//! plan map (basic: export, 3 seats; pro: export + sso, 10 seats), and an
//! optional clock the story moves by hand.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use parityrail::{
    access::{PlanRule, Selector},
    clock::ManualClock,
    domain::{Incident, IncidentStatus, ProjectSettings, Run},
    ids::ProjectId,
};
use sample_app::SampleApp;
use serde_json::Value;
use stripe_sim::StripeSim;

use crate::support::{Backend, TEST_KEY, TestApp, TestOptions};

pub const PROBE_SECRET: &str = "probe_secret_for_story_tests_01234";

pub struct Options {
    pub test: TestOptions,
    /// Ranks of basic and pro (equal ranks: ordered by containment).
    pub ranks: (i64, i64),
    /// A hand-moved clock for deadlines, grace and leases.
    pub manual_clock: bool,
    /// Seconds after an event's creation before a mismatch is an incident.
    pub deadline_secs: i64,
    /// Stripe emits (and the story delivers) webhook events.
    pub events: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            test: TestOptions::default(),
            ranks: (1, 2),
            manual_clock: false,
            deadline_secs: 5,
            events: true,
        }
    }
}

pub struct World {
    pub t: TestApp,
    pub sim: StripeSim,
    pub app: SampleApp,
    pub clock: Option<Arc<ManualClock>>,
    pub project: ProjectId,
    pub product: String,
    pub basic: String,
    pub pro: String,
    delivered: std::sync::Mutex<BTreeSet<String>>,
    _handles: (stripe_sim::SimHandle, sample_app::SampleHandle),
}

pub async fn world(backend: Backend, options: Options) -> Option<World> {
    let sim = StripeSim::new();
    sim.add_api_key(TEST_KEY);
    sim.set_emit_events(options.events);
    let sim_handle = sim.start().await;
    let app = SampleApp::new(PROBE_SECRET);
    app.set_deploy_sha("abc123");
    let app_handle = app.start().await;
    let clock = options.manual_clock.then(ManualClock::new);
    let t = TestApp::spawn_with(
        backend,
        TestOptions {
            stripe_api_base: sim_handle.base_url(),
            clock: clock.clone(),
            ..options.test
        },
    )
    .await?;
    let project = t.connected_project().await;
    t.set_probe(
        &project,
        &app_handle.probe_url(),
        PROBE_SECRET,
        Some(&app_handle.reconcile_url()),
    )
    .await;
    let product = sim.create_product("App");
    let basic = sim.create_price(&product, Some("basic"), 1000);
    let pro = sim.create_price(&product, Some("pro"), 3000);
    for (price, plan, rank, features, seats) in [
        (&basic, "basic", options.ranks.0, vec!["export"], 3),
        (&pro, "pro", options.ranks.1, vec!["export", "sso"], 10),
    ] {
        let rule = PlanRule {
            selector: Selector::Price(price.clone()),
            plan: plan.into(),
            rank,
            features: features.into_iter().map(String::from).collect(),
            limits: [("seats".to_string(), seats)].into(),
        };
        t.store().upsert_plan_rule(&project, &rule).await.unwrap();
    }
    let w = World {
        t,
        sim,
        app,
        clock,
        project,
        product,
        basic,
        pro,
        delivered: Default::default(),
        _handles: (sim_handle, app_handle),
    };
    w.settings(ProjectSettings {
        fulfillment_deadline_secs: Some(options.deadline_secs),
        stripe_budget_rps: Some(500),
        ..Default::default()
    })
    .await;
    Some(w)
}

impl World {
    pub async fn settings(&self, settings: ProjectSettings) {
        self.t
            .store()
            .update_project_settings(&self.project, &settings)
            .await
            .unwrap();
    }

    /// A customer mapped to `user` subscribed to `price`: (customer, subscription).
    pub fn subscribe(&self, user: &str, price: &str) -> (String, String) {
        let customer = self
            .sim
            .create_customer(&format!("{user}@example.com"), &[]);
        let sub = self.sim.create_subscription(
            &customer,
            &[price],
            "active",
            &[("parityrail_user_id", user)],
        );
        (customer, sub)
    }

    /// The app grants `plan` as the plan map defines it.
    pub fn grant(&self, customer: &str, user: &str, plan: &str) {
        let (features, seats): (&[&str], i64) = match plan {
            "basic" => (&["export"], 3),
            "pro" => (&["export", "sso"], 10),
            "team" => (&["export", "audit"], 3),
            other => panic!("no plan {other} in the story's map"),
        };
        self.app
            .grant(customer, user, Some(plan), features, &[("seats", seats)]);
    }

    /// Delivers the simulator's handled events for `customer` not yet delivered.
    pub async fn deliver(&self, customer: &str) -> Vec<String> {
        // With a hand clock, a later delivery's run is later too (runs are
        // listed newest first).
        if let Some(clock) = &self.clock {
            clock.advance(Duration::from_millis(10));
        }
        let mut ids = Vec::new();
        for event in self.sim.events() {
            let id = event["id"].as_str().unwrap().to_string();
            let handled = parityrail::stripe::event::is_handled(event["type"].as_str().unwrap());
            if !handled
                || event["data"]["object"]["customer"] != customer
                || !self.delivered.lock().unwrap().insert(id.clone())
            {
                continue;
            }
            let body = serde_json::to_vec(&event).unwrap();
            assert_eq!(self.t.deliver(&self.project, &body).await.status(), 200);
            ids.push(id);
        }
        ids
    }

    /// Moves the hand clock (when the world has one).
    pub fn advance(&self, by: Duration) {
        self.clock
            .as_ref()
            .expect("a world with a manual clock")
            .advance(by);
    }

    /// Drives intake and checks until the customer's newest run has a
    /// verdict. With a hand clock, time jumps 5 s whenever nothing is due,
    /// so a 120 s fulfillment window passes in a few dozen steps.
    pub async fn verdict(&self, customer: &str) -> Run {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            self.t.drain_all().await;
            if let Some(run) = self.runs(customer).await.into_iter().next()
                && !run.is_pending()
            {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "no verdict for {customer} within 30 s"
            );
            match &self.clock {
                Some(clock) => {
                    clock.advance(Duration::from_secs(5));
                    tokio::task::yield_now().await;
                }
                None => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }

    /// The customer's runs, newest first.
    pub async fn runs(&self, customer: &str) -> Vec<Run> {
        self.t
            .store()
            .list_runs(self.project.as_str(), Some(customer), 100)
            .await
            .unwrap()
    }

    pub async fn incidents(&self) -> Vec<Incident> {
        self.t
            .store()
            .list_incidents(self.project.as_str())
            .await
            .unwrap()
    }

    /// Incidents not resolved, as (kind, customer).
    pub async fn standing(&self) -> BTreeSet<(String, String)> {
        self.incidents()
            .await
            .into_iter()
            .filter(|i| i.status != IncidentStatus::Resolved)
            .map(|i| (i.kind.as_str().to_string(), i.customer_id))
            .collect()
    }

    /// The evidence steps of a run, as JSON.
    pub async fn steps(&self, run_id: &str) -> Vec<(String, Value)> {
        self.t
            .store()
            .run_steps(run_id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| {
                (
                    s.step.as_str().to_string(),
                    serde_json::from_str(&s.detail).unwrap(),
                )
            })
            .collect()
    }

    /// A manual scan run here to its end.
    pub async fn scan(&self) -> Result<parityrail::scan::ScanSummary, parityrail::scan::ScanError> {
        let started = parityrail::scan::create(
            &self.t.app,
            &self.project,
            parityrail::domain::ScanTrigger::Manual,
        )
        .await?;
        assert!(started.created, "no other scan was running");
        parityrail::scan::run(&self.t.app, started.scan, &started.owner, None).await
    }

    /// Stripe requests whose path starts with `prefix`.
    pub fn stripe_reads(&self, prefix: &str) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }
}

/// `(kind, customer)` for the expectations of `standing`.
pub fn standing_of(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(k, c)| (k.to_string(), c.to_string()))
        .collect()
}
