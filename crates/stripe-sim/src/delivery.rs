//! Webhook delivery: signed like Stripe, retried on a [`RetrySchedule`],
//! reported per (event, endpoint).

use std::time::Duration;

use crate::StripeSim;
use crate::clock::real_now;
use crate::retry::RetrySchedule;
use crate::signing::sign_header;
use crate::state::Endpoint;

/// Outcome of delivering one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The `evt_…` id.
    pub event_id: String,
    /// The endpoint URL.
    pub endpoint: String,
    /// Attempts made (at least 1).
    pub attempts: u32,
    /// Status of the last attempt; `None` when it got no HTTP response.
    pub last_status: Option<u16>,
    /// Whether an attempt got a 2xx.
    pub delivered: bool,
}

#[derive(Clone)]
struct Job {
    event_id: String,
    body: Vec<u8>,
    endpoint: Endpoint,
}

fn client(timeout: Duration) -> reqwest::Client {
    // reqwest is built without a bundled crypto provider; an Err only means
    // one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        // Stripe counts a 3xx as a failed delivery, so never follow one.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("stripe-sim: build the webhook HTTP client")
}

impl StripeSim {
    /// Registers a webhook endpoint; every event emitted from now on is
    /// queued for it. Returns its `we_…` id.
    pub fn add_webhook_endpoint(&self, url: &str, secret: &str) -> String {
        self.store_mut()
            .add_endpoint(url, secret, vec!["*".to_owned()])
    }

    /// Queues an already emitted event again for every endpoint, to test
    /// that receivers tolerate Stripe's at-least-once delivery. Returns
    /// `false` for an unknown event id.
    pub fn requeue_event(&self, event_id: &str) -> bool {
        let mut store = self.store_mut();
        match store.find_event(event_id) {
            Some(e) => {
                store.requeue(e);
                true
            }
            None => false,
        }
    }

    /// Number of (event, endpoint) deliveries waiting.
    pub fn pending_deliveries(&self) -> usize {
        self.store().outbox.len()
    }

    /// Sets the first retry delay (doubled per attempt, capped at 2 s;
    /// default 50 ms) and the per-attempt timeout (default 10 s). The delay
    /// replaces any schedule [`StripeSim::set_retry_schedule`] set: call
    /// that one after this to keep the timeout and use Stripe's schedule.
    pub fn set_delivery_timing(&self, backoff: Duration, timeout: Duration) {
        let mut control = self.control();
        control.retry_schedule = RetrySchedule::backoff(backoff);
        control.delivery_timeout = timeout;
    }

    /// Retries failed deliveries on `schedule`, for instance Stripe's own
    /// compressed by a time scale ([`RetrySchedule::stripe_test`]).
    pub fn set_retry_schedule(&self, schedule: RetrySchedule) {
        self.control().retry_schedule = schedule;
    }

    /// Delivers every queued event to every endpoint, in emission order.
    ///
    /// Each attempt POSTs the event JSON (the exact bytes that are signed)
    /// with a fresh `Stripe-Signature` over the current real time, so
    /// receivers with a 300 s tolerance accept it whatever the sim clock
    /// says. Non-2xx answers and connection errors are retried on the retry
    /// schedule, at most `max_attempts` attempts in all (0 counts as 1).
    /// First attempts go out in order; a delivery that failed retries on its
    /// own, so one failing endpoint holds back nothing else. Returns once
    /// every delivery has succeeded or given up. Deliveries that run out of
    /// attempts are dropped from the queue, as Stripe eventually gives up;
    /// [`StripeSim::requeue_event`] queues one again.
    pub async fn deliver_pending(&self, max_attempts: u32) -> Vec<DeliveryReport> {
        let mut jobs: Vec<Job> = {
            let mut store = self.store_mut();
            let queued: Vec<(u32, usize)> = store.outbox.drain(..).collect();
            queued
                .into_iter()
                .map(|(e, endpoint)| {
                    let event = &store.events[e as usize].json;
                    Job {
                        event_id: store.event_id(e),
                        // Pretty, as Stripe sends it; serialized once per job
                        // and never re-encoded after signing.
                        body: serde_json::to_vec_pretty(event).expect("JSON values serialize"),
                        endpoint: store.endpoints[endpoint].clone(),
                    }
                })
                .collect()
        };
        if jobs.is_empty() {
            return Vec::new();
        }
        let (schedule, timeout) = {
            let control = self.control();
            (control.retry_schedule, control.delivery_timeout)
        };
        let client = client(timeout);
        let max_attempts = max_attempts.max(1);
        let mut retrying = tokio::task::JoinSet::new();
        let mut reports = Vec::with_capacity(jobs.len());
        // One first attempt; a failure goes on retrying in the background.
        // Reports are kept in queue order, numbered by `seq`.
        let mut start = async |seq: usize, job: Job, reports: &mut Vec<(usize, DeliveryReport)>| {
            let report = attempt(&client, &job, new_report(&job)).await;
            if report.delivered || max_attempts == 1 {
                reports.push((seq, report));
            } else {
                let retried = retry(client.clone(), job, report, max_attempts, schedule);
                retrying.spawn(async move { (seq, retried.await) });
            }
        };
        let mut index = 0;
        while index < jobs.len() {
            let fault = self.control().delivery_faults.pop_front();
            match fault {
                Some(crate::DeliveryFault::Reorder) => {
                    jobs[index..].reverse();
                    continue;
                }
                Some(crate::DeliveryFault::Drop) => {
                    reports.push((index, new_report(&jobs[index])));
                }
                Some(crate::DeliveryFault::Duplicate) => {
                    start(index, jobs[index].clone(), &mut reports).await;
                    start(index, jobs[index].clone(), &mut reports).await;
                }
                None => start(index, jobs[index].clone(), &mut reports).await,
            }
            index += 1;
        }
        while let Some(done) = retrying.join_next().await {
            reports.push(done.expect("stripe-sim: a delivery task panicked"));
        }
        // Stable: a duplicated delivery keeps its two reports in order.
        reports.sort_by_key(|(seq, _)| *seq);
        reports.into_iter().map(|(_, report)| report).collect()
    }

    /// The next `count` deliveries (for [`DeliveryFault::Reorder`]: the
    /// next `count` batches) suffer `fault`.
    ///
    /// [`DeliveryFault::Reorder`]: crate::DeliveryFault::Reorder
    pub fn inject_delivery_faults(&self, fault: crate::DeliveryFault, count: u32) {
        let mut control = self.control();
        for _ in 0..count {
            control.delivery_faults.push_back(fault);
        }
    }
}

fn new_report(job: &Job) -> DeliveryReport {
    DeliveryReport {
        event_id: job.event_id.clone(),
        endpoint: job.endpoint.url.clone(),
        attempts: 0,
        last_status: None,
        delivered: false,
    }
}

/// Retries after a failed first attempt, on `schedule`, until one succeeds,
/// `max_attempts` are spent or the schedule gives up.
async fn retry(
    client: reqwest::Client,
    job: Job,
    mut report: DeliveryReport,
    max_attempts: u32,
    schedule: RetrySchedule,
) -> DeliveryReport {
    while !report.delivered && report.attempts < max_attempts {
        let Some(wait) = schedule.wait(report.attempts) else {
            break;
        };
        tokio::time::sleep(wait).await;
        report = attempt(&client, &job, report).await;
    }
    report
}

/// One signed POST of `job`, counted in `report`.
async fn attempt(
    client: &reqwest::Client,
    job: &Job,
    mut report: DeliveryReport,
) -> DeliveryReport {
    report.attempts += 1;
    let signature = sign_header(&job.endpoint.secret, real_now(), &job.body);
    let sent = client
        .post(&job.endpoint.url)
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .header("stripe-signature", signature)
        .body(job.body.clone())
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status();
            report.last_status = Some(status.as_u16());
            report.delivered = status.is_success();
        }
        Err(error) => {
            report.last_status = None;
            tracing::debug!(%error, url = %report.endpoint, "stripe-sim webhook attempt failed");
        }
    }
    report
}
