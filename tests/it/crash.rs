//! SIGKILL mid-stream: every event that got a 200 is processed exactly once
//! after a restart, and nothing that got a non-2xx was half-stored.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use parityrail::{crypto::MasterKey, ids::ProjectId, store::Store};
use serde_json::Value;
use stripe_sim::StripeSim;

use crate::{
    process::{Server, cli, database_url, free_port, stderr, stdout},
    support::{Backend, TEST_KEY, TEST_SECRET, TestDb, eventually, sign},
};

crate::backend_tests!(sigkill_mid_stream_loses_no_acknowledged_event);

#[derive(Default)]
struct Ledger {
    acked: BTreeSet<String>,
    refused: BTreeSet<String>,
}

async fn sigkill_mid_stream_loses_no_acknowledged_event(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let sim = StripeSim::new();
    sim.add_api_key(TEST_KEY);
    sim.set_emit_events(false);
    let customers: Vec<String> = (0..20)
        .map(|n| sim.create_customer(&format!("c{n}@example.com"), &[]))
        .collect();
    let handle = sim.start().await;
    let (url, key, base) = (
        database_url(&db.url),
        MasterKey::generate_hex(),
        handle.base_url(),
    );
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("PARITYRAIL_MASTER_KEY", key.as_str()),
        ("STRIPE_API_BASE", base.as_str()),
        ("PARITYRAIL_WORKERS", "2"),
        // Leases held by the killed process expire quickly after restart.
        ("PARITYRAIL_LEASE_SECS", "1"),
        ("PARITYRAIL_RETRY_SCHEDULE", "0.1,0.1,0.1,0.1,0.1"),
    ];
    let out = cli(&env, &["project", "create", "--name", "crash", "--json"]);
    let project: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let project = project["id"].as_str().unwrap().to_string();
    let out = cli(
        &env,
        &[
            "stripe",
            "connect",
            &project,
            "--api-key",
            TEST_KEY,
            "--webhook-secret",
            TEST_SECRET,
            "--no-verify",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let port = free_port();
    let mut server = Server::spawn(&env, port);
    server.ready().await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let endpoint = format!("{}/api/webhooks/stripe/{project}", server.base);
    // Four concurrent senders, each a stream of distinct events.
    let senders: Vec<_> = (0..4)
        .map(|lane| {
            let (ledger, endpoint, customers) =
                (ledger.clone(), endpoint.clone(), customers.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                for n in 0..150 {
                    let id = format!("evt_crash_{lane}_{n}");
                    let customer = &customers[(n + lane) % customers.len()];
                    let body = crate::support::event_json(
                        &id,
                        "customer.subscription.updated",
                        customer,
                        false,
                    );
                    let sent = client
                        .post(&endpoint)
                        .header("Stripe-Signature", sign(TEST_SECRET, &body))
                        .body(body)
                        .send()
                        .await;
                    let mut ledger = ledger.lock().unwrap();
                    match sent {
                        Ok(r) if r.status().is_success() => ledger.acked.insert(id),
                        _ => ledger.refused.insert(id),
                    };
                }
            })
        })
        .collect();
    // Kill once a good part of the stream is acknowledged.
    eventually(Duration::from_secs(60), || async {
        (ledger.lock().unwrap().acked.len() >= 200).then_some(())
    })
    .await;
    server.kill9();
    for sender in senders {
        sender.await.unwrap();
    }
    let (acked, refused) = {
        let l = ledger.lock().unwrap();
        (l.acked.clone(), l.refused.clone())
    };
    assert!(!refused.is_empty(), "the kill happened mid-stream");
    assert!(acked.len() >= 200);

    let mut server = Server::spawn(&env, port);
    server.ready().await;
    let store = Store::connect(&db.url).await.unwrap();
    let pid = ProjectId::parse(&project).unwrap();
    let events = eventually(Duration::from_secs(60), || async {
        let events = store.list_events(pid.as_str(), 100_000).await.unwrap();
        events
            .iter()
            .all(|e| e.status.as_str() == "processed")
            .then_some(events)
    })
    .await;
    let stored: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let unique: BTreeSet<&str> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    for id in &acked {
        assert!(unique.contains(id.as_str()), "acknowledged {id} was lost");
    }
    // A refused event may have been committed just before the kill (its 200
    // never arrived); if so it is whole: one event, one work item, processed.
    for id in unique.iter().filter(|id| !acked.contains(**id)) {
        assert!(refused.contains(*id), "{id} came from nowhere");
    }
    let work: i64 = store
        .work_counts()
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        work as usize,
        stored.len(),
        "every stored event has exactly one work item"
    );
    let done: i64 = store
        .work_counts()
        .await
        .unwrap()
        .iter()
        .filter(|(s, _)| s == "done")
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(done as usize, stored.len());
    store.close().await;
    drop(server);
}
