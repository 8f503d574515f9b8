//! Step 4, the plan map: which price, product or lookup key grants which
//! plan, its rank, features and limits.

use std::collections::{BTreeMap, BTreeSet};

use super::{SetupError, invalid};
use crate::{
    App,
    access::{PlanMap, PlanRule, Selector},
    domain::Project,
};

/// One plan-map rule as a user gives it.
pub struct PlanRuleRequest {
    pub selector: Selector,
    pub plan: String,
    pub rank: i64,
    pub features: Vec<String>,
    /// `NAME=NUMBER` each.
    pub limits: Vec<String>,
}

pub async fn set_plan_rule(
    app: &App,
    project: &Project,
    r: PlanRuleRequest,
) -> Result<PlanRule, SetupError> {
    let (Selector::Price(v) | Selector::Product(v) | Selector::LookupKey(v)) = &r.selector;
    if v.trim().is_empty() || v.len() > 200 {
        return Err(invalid(
            "selector",
            "give a price id, a product id or a lookup key",
        ));
    }
    let plan = r.plan.trim().to_string();
    if plan.is_empty() || plan.len() > 100 {
        return Err(invalid("plan", "must be 1 to 100 characters"));
    }
    let mut limits = BTreeMap::new();
    for raw in &r.limits {
        let Some((name, value)) = raw.split_once('=') else {
            return Err(invalid(
                "limit",
                format!("must be NAME=NUMBER, got {raw:?}"),
            ));
        };
        let value: i64 = value.trim().parse().map_err(|_| {
            invalid(
                "limit",
                format!("{}: {value:?} is not a whole number", name.trim()),
            )
        })?;
        if name.trim().is_empty() {
            return Err(invalid(
                "limit",
                format!("must be NAME=NUMBER, got {raw:?}"),
            ));
        }
        limits.insert(name.trim().to_string(), value);
    }
    let features: BTreeSet<String> = r
        .features
        .iter()
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    let rule = PlanRule {
        selector: r.selector,
        plan,
        rank: r.rank,
        features,
        limits,
    };
    app.store.upsert_plan_rule(&project.id, &rule).await?;
    Ok(rule)
}

pub async fn plan_map(app: &App, project: &Project) -> Result<PlanMap, SetupError> {
    Ok(app
        .store
        .plan_map(&project.id, project.use_entitlements)
        .await?)
}

/// Removes the rule for `selector`; `false` when there was none.
pub async fn remove_plan_rule(
    app: &App,
    project: &Project,
    selector: &Selector,
) -> Result<bool, SetupError> {
    Ok(app.store.remove_plan_rule(&project.id, selector).await?)
}
