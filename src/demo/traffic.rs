//! The demo's weather: every few seconds a lively customer upgrades,
//! downgrades, fails a payment, recovers, cancels or comes back. Stripe
//! sends the webhooks; the sample app follows, usually within seconds, but
//! one change in five it is late (it keeps the old access past the
//! deadline) and one in five it is wrong (a feature short). Either way an
//! incident opens, the app then "fixes" the customer, and the re-check that
//! follows resolves it. Some deliveries arrive twice or out of order, as
//! Stripe's may.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};
use std::time::Duration;

use rand::Rng;
use sample_app::SampleApp;
use stripe_sim::{StripeSim, SubscriptionChange};
use tokio_util::sync::CancellationToken;

use super::seed::{self, Customer, Plan, Role};

struct Lively {
    id: String,
    user: String,
    subscription: Option<String>,
    plan: usize,
    past_due: bool,
    /// Bumped by every change the app must follow: a delayed update of an
    /// older change never lands over a newer one.
    generation: Arc<AtomicU64>,
}

/// How the app follows one change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Follow {
    OnTime,
    /// The old access stays past the deadline.
    Late,
    /// At once, but a feature short; right only past the deadline.
    Wrong,
}

/// Runs until `stop`: one change every `every`.
pub async fn run(
    sim: StripeSim,
    sample: SampleApp,
    plans: Vec<Plan>,
    customers: Vec<Customer>,
    every: Duration,
    deadline: Duration,
    stop: CancellationToken,
) {
    let mut lively: Vec<Lively> = customers
        .into_iter()
        .filter(|c| c.role == Role::Lively)
        .map(|c| Lively {
            id: c.id,
            user: c.user,
            subscription: Some(c.subscription),
            plan: c.plan,
            past_due: false,
            generation: Arc::default(),
        })
        .collect();
    if lively.is_empty() {
        return;
    }
    let plans = Arc::new(plans);
    let mut tick = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        tick += 1;
        let mut rng = rand::rng();
        let who = rng.random_range(0..lively.len());
        let c = &mut lively[who];
        let follow = match rng.random_range(0..5) {
            0 => Follow::Late,
            1 => Follow::Wrong,
            _ => Follow::OnTime,
        };
        // Stripe delivers at least once, in no promised order.
        if tick.is_multiple_of(5) {
            sim.inject_delivery_faults(stripe_sim::DeliveryFault::Duplicate, 1);
        }
        if tick.is_multiple_of(9) {
            sim.inject_delivery_faults(stripe_sim::DeliveryFault::Reorder, 1);
        }
        // Now and then the app is slow to answer for a while.
        sample.set_delay(if tick.is_multiple_of(7) {
            Duration::from_millis(800)
        } else {
            Duration::ZERO
        });
        let app = Follower {
            sim: &sim,
            sample: &sample,
            plans: &plans,
            deadline,
        };
        let Some(sub) = c.subscription.clone() else {
            // Cancelled: comes back on a plan.
            let plan = rng.random_range(0..plans.len());
            c.subscription = Some(sim.create_subscription(
                &c.id,
                &[&plans[plan].price],
                "active",
                &[("parityrail_user_id", &c.user)],
            ));
            c.plan = plan;
            app.follow(c, follow, Some(plan));
            continue;
        };
        if c.past_due {
            // Recovers: the retry succeeds.
            sim.update_subscription(
                &sub,
                SubscriptionChange {
                    status: Some("active".into()),
                    ..SubscriptionChange::default()
                },
            );
            c.past_due = false;
            continue;
        }
        match rng.random_range(0..10) {
            0..=4 => {
                // Upgrade or downgrade.
                let plan = (c.plan + rng.random_range(1..plans.len())) % plans.len();
                sim.update_subscription(
                    &sub,
                    SubscriptionChange {
                        prices: Some(vec![plans[plan].price.clone()]),
                        ..SubscriptionChange::default()
                    },
                );
                c.plan = plan;
                app.follow(c, follow, Some(plan));
            }
            5..=7 => {
                // A renewal payment fails: past_due keeps access in its grace.
                sim.fail_invoice_payment(&sub);
                c.past_due = true;
            }
            _ => {
                sim.cancel_subscription(&sub);
                c.subscription = None;
                app.follow(c, follow, None);
            }
        }
    }
}

/// The sample app following changes.
struct Follower<'a> {
    sim: &'a StripeSim,
    sample: &'a SampleApp,
    plans: &'a Arc<Vec<Plan>>,
    deadline: Duration,
}

impl Follower<'_> {
    /// The app applies `plan` (`None`: revokes) as `follow` says. A late or
    /// wrong app's fix lands past the deadline and is announced by a small
    /// metadata update, whose webhook re-checks the customer; a cancelled
    /// one has no subscription left to update, and the demo's periodic scan
    /// re-checks it.
    fn follow(&self, c: &Lively, follow: Follow, plan: Option<usize>) {
        let generation = c.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let current = c.generation.clone();
        let (customer, user, plans) = (c.id.clone(), c.user.clone(), self.plans.clone());
        let apply = move |app: &SampleApp, short: bool| {
            // A newer change overtook this one: the app follows that instead.
            if current.load(Ordering::SeqCst) != generation {
                return false;
            }
            match plan {
                Some(p) if short => {
                    let mut wrong = plans[p].clone();
                    wrong.features = &wrong.features[..wrong.features.len().saturating_sub(1)];
                    seed::grant(app, &customer, &user, &wrong);
                }
                Some(p) => seed::grant(app, &customer, &user, &plans[p]),
                None => app.revoke(&customer),
            }
            true
        };
        // On time: well inside the deadline. Late or wrong: fixed half a
        // deadline after it passed.
        let inside = (self.deadline / 2).clamp(Duration::from_millis(400), Duration::from_secs(3));
        let soon = Duration::from_millis(
            rand::rng().random_range(200..inside.as_millis().max(201) as u64),
        );
        let fixed = self.deadline + self.deadline / 2 + Duration::from_secs(1);
        if follow == Follow::OnTime {
            self.sample.apply_after(soon, move |app| {
                apply(app, false);
            });
            return;
        }
        if follow == Follow::Wrong && plan.is_some() {
            let apply = apply.clone();
            self.sample.apply_after(soon, move |app| {
                apply(app, true);
            });
        }
        let touch = (self.sim.clone(), c.subscription.clone());
        self.sample.apply_after(fixed, move |app| {
            if apply(app, false)
                && let (sim, Some(sub)) = touch
            {
                sim.update_subscription(
                    &sub,
                    SubscriptionChange {
                        metadata: Some(vec![("fixed_at".into(), crate::now_ms().to_string())]),
                        ..SubscriptionChange::default()
                    },
                );
            }
        });
    }
}
