//! A project ParityRail has only scanned can be drilled (the quick start's
//! order: `scan`, then `drill`): a scan reads subscriptions, not customers,
//! and the drill still finds a real customer among them. Its incident is
//! labelled in the CLI and never counts as a real one.

use std::time::Duration;

use parityrail::usecase::{drill, incidents, overview};

use crate::{
    process::{cli, database_url, stdout},
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

    // Drill incidents never count: the overview and the inbox's tabs show
    // no incident, while the list shows the drill's, labelled.
    let glance = overview::glance(&w.t.app, &project).await.unwrap();
    assert_eq!(glance.open_total, 0);
    let inbox = incidents::inbox(&w.t.app, &project, Default::default(), None, 50)
        .await
        .unwrap();
    assert!(
        inbox.by_status.iter().all(|(_, n)| *n == 0),
        "{:?}",
        inbox.by_status
    );
    let listed = incidents::list(&w.t.app, &project).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].incident.drill);
    let db = database_url(&w.t.db.url);
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("PARITYRAIL_MASTER_KEY", w.t.master_key_hex.as_str()),
    ];
    for args in [["incidents", "list"], ["events", "list"]] {
        let out = cli(&env, &[args[0], args[1], w.project.as_str()]);
        let text = stdout(&out);
        assert!(
            out.status.success() && text.contains("[drill]"),
            "{args:?}: {text}"
        );
    }
}
