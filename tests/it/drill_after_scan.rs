//! A project ParityRail has only scanned can be drilled (the quick start's
//! order: `scan`, then `drill`): a scan reads subscriptions, not customers,
//! and the drill still finds a real customer among them.

use std::time::Duration;

use parityrail::usecase::drill;

use crate::{
    support::Backend,
    world::{Options, world},
};

crate::backend_tests!(a_project_only_scanned_is_drilled_with_a_scanned_customer,);

async fn a_project_only_scanned_is_drilled_with_a_scanned_customer(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let (customer, _) = w.subscribe("u_scanned", &w.pro);
    w.grant(&customer, "u_scanned", "pro");
    let project = w.t.project_of(&w.project).await;
    // Nothing read yet: nothing to drill with, and nothing sent.
    let none = drill::run(&w.t.app, &project, &w.t.url(""), Duration::from_secs(1)).await;
    assert!(
        matches!(none, Err(drill::DrillError::NoCustomer)),
        "{none:?}"
    );
    w.scan().await.unwrap();

    let base = w.t.url("");
    let drilled = drill::run(&w.t.app, &project, &base, Duration::from_secs(30));
    let work = async {
        for _ in 0..300 {
            w.t.drain_all().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let report = tokio::select! {
        report = drilled => report.unwrap(),
        () = work => panic!("the drill never ended"),
    };
    assert_eq!(report.customer, customer, "{report:#?}");
    assert!(report.caught, "{report:#?}");
}
