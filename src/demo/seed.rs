//! The demo's account: three plans on a ranked plan map, and twenty
//! customers whose access in the sample app is right, except for the three
//! mismatches a user should find in the inbox.

use stripe_sim::StripeSim;

use sample_app::SampleApp;

use crate::{
    App,
    access::Selector,
    domain::{Project, ProjectMode, ProjectSettings},
    usecase::projects::{self, PlanRuleRequest, SetupError},
};

/// One plan of the demo's catalogue.
#[derive(Clone)]
pub struct Plan {
    pub name: &'static str,
    pub price: String,
    pub features: &'static [&'static str],
    pub seats: i64,
}

/// A customer the demo made, and what it is meant to show.
pub struct Customer {
    pub id: String,
    pub user: String,
    pub subscription: String,
    /// The plan index it pays for.
    pub plan: usize,
    pub role: Role,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Paid and granted: never an incident.
    Steady,
    /// Changed by the traffic loop every few seconds.
    Lively,
    /// Pays, has no access in the app.
    PaidWithoutAccess,
    /// Cancelled, still has access.
    CancelledKeptAccess,
    /// Pays for a higher plan than the app gives.
    LowerPlan,
}

pub struct Seeded {
    pub project: Project,
    pub plans: Vec<Plan>,
    pub customers: Vec<Customer>,
}

/// "Demo", or "Demo 2", "Demo 3"… in a kept demo database.
async fn create_project(app: &App) -> Result<Project, SetupError> {
    let mut n = 1;
    loop {
        let name = if n == 1 {
            "Demo".to_string()
        } else {
            format!("Demo {n}")
        };
        match projects::create(app, &name, ProjectMode::Demo).await {
            Err(SetupError::NameTaken(_)) if n < 100 => n += 1,
            other => return other,
        }
    }
}

pub async fn seed(
    app: &App,
    sim: &StripeSim,
    sample: &SampleApp,
    deadline: std::time::Duration,
) -> anyhow::Result<Seeded> {
    let project = create_project(app).await?;
    app.store
        .update_project_settings(
            &project.id,
            &ProjectSettings {
                fulfillment_deadline_secs: Some(deadline.as_secs() as i64),
                stripe_budget_rps: Some(50),
                ..ProjectSettings::default()
            },
        )
        .await?;
    let product = sim.create_product("Acme Analytics");
    let plans: Vec<Plan> = [
        ("starter", 1_000, &["export"][..], 3),
        ("pro", 3_000, &["export", "sso"][..], 10),
        ("team", 8_000, &["export", "sso", "audit_log"][..], 50),
    ]
    .into_iter()
    .map(|(name, amount, features, seats)| Plan {
        name,
        price: sim.create_price(&product, Some(name), amount),
        features,
        seats,
    })
    .collect();
    for (rank, plan) in plans.iter().enumerate() {
        projects::set_plan_rule(
            app,
            &project,
            PlanRuleRequest {
                selector: Selector::LookupKey(plan.name.to_string()),
                plan: plan.name.to_string(),
                rank: rank as i64 + 1,
                features: plan.features.iter().map(|f| f.to_string()).collect(),
                limits: vec![format!("seats={}", plan.seats)],
            },
        )
        .await?;
    }
    let project = app
        .store
        .project(&project.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo project vanished"))?;

    const NAMES: [&str; 20] = [
        "ada", "grace", "alan", "edsger", "barbara", "donald", "margaret", "ken", "dennis",
        "frances", "john", "radia", "tim", "shafi", "leslie", "niklaus", "lynn", "robin", "judea",
        "hedy",
    ];
    let mut customers = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let role = match i {
            0 => Role::PaidWithoutAccess,
            1 => Role::CancelledKeptAccess,
            2 => Role::LowerPlan,
            16..=19 => Role::Lively,
            _ => Role::Steady,
        };
        let plan = match role {
            Role::LowerPlan => 2,
            _ => i % 3,
        };
        let user = format!("usr_{name}");
        let id = sim.create_customer(
            &format!("{name}@example.com"),
            &[("parityrail_user_id", &user)],
        );
        // Customer 3 is on a trial, 4 is past_due inside its grace.
        let status = if i == 3 { "trialing" } else { "active" };
        let subscription = sim.create_subscription(
            &id,
            &[&plans[plan].price],
            status,
            &[("parityrail_user_id", &user)],
        );
        if i == 4 {
            sim.fail_invoice_payment(&subscription);
        }
        match role {
            Role::PaidWithoutAccess => {}
            Role::CancelledKeptAccess => {
                sim.cancel_subscription(&subscription);
                grant(sample, &id, &user, &plans[plan]);
            }
            Role::LowerPlan => grant(sample, &id, &user, &plans[0]),
            Role::Steady | Role::Lively => grant(sample, &id, &user, &plans[plan]),
        }
        customers.push(Customer {
            id,
            user,
            subscription,
            plan,
            role,
        });
    }
    Ok(Seeded {
        project,
        plans,
        customers,
    })
}

/// The app grants `plan` as the plan map defines it.
pub fn grant(sample: &SampleApp, customer: &str, user: &str, plan: &Plan) {
    sample.grant(
        customer,
        user,
        Some(plan.name),
        plan.features,
        &[("seats", plan.seats)],
    );
}
