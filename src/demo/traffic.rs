//! The demo's weather: every few seconds a lively customer upgrades,
//! downgrades, fails a payment, recovers, cancels or comes back. Stripe
//! sends the webhooks; the sample app follows, usually within seconds,
//! sometimes only after the deadline (an incident opens) and then "fixes"
//! the customer, after which the next event's check resolves it. Some
//! deliveries arrive twice or out of order, as Stripe's may.

use std::time::Duration;

use rand::Rng;
use sample_app::SampleApp;
use stripe_sim::{StripeSim, SubscriptionChange};
use tokio_util::sync::CancellationToken;

use super::seed::{self, Customer, DEADLINE_SECS, Plan, Role};

struct Lively {
    id: String,
    user: String,
    subscription: Option<String>,
    plan: usize,
    past_due: bool,
}

/// Runs until `stop`: one change every `every`.
pub async fn run(
    sim: StripeSim,
    sample: SampleApp,
    plans: Vec<Plan>,
    customers: Vec<Customer>,
    every: Duration,
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
        })
        .collect();
    if lively.is_empty() {
        return;
    }
    let plans = std::sync::Arc::new(plans);
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
        // One change in four, the app is late: past the deadline, then fixed.
        let late = rng.random_ratio(1, 4);
        let follow = if late {
            Duration::from_secs(DEADLINE_SECS as u64 + 10)
        } else {
            Duration::from_millis(rng.random_range(300..3_000))
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
            follow_with(&sim, &sample, c, &plans, follow, late, Some(plan));
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
                follow_with(&sim, &sample, c, &plans, follow, late, Some(plan));
            }
            5..=7 => {
                // A renewal payment fails: past_due keeps access in its grace.
                sim.fail_invoice_payment(&sub);
                c.past_due = true;
            }
            _ => {
                sim.cancel_subscription(&sub);
                c.subscription = None;
                follow_with(&sim, &sample, c, &plans, follow, late, None);
            }
        }
    }
}

/// The app applies the change after `after`; a late app's fix is then
/// announced by a small metadata update, whose webhook re-checks the
/// customer (a passing check resolves the incident).
fn follow_with(
    sim: &StripeSim,
    sample: &SampleApp,
    c: &Lively,
    plans: &std::sync::Arc<Vec<Plan>>,
    after: Duration,
    late: bool,
    plan: Option<usize>,
) {
    let (customer, user, plans) = (c.id.clone(), c.user.clone(), plans.clone());
    let touch = late.then(|| (sim.clone(), c.subscription.clone()));
    sample.apply_after(after, move |app| {
        match plan {
            Some(p) => seed::grant(app, &customer, &user, &plans[p]),
            None => app.revoke(&customer),
        }
        if let Some((sim, Some(sub))) = touch {
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
