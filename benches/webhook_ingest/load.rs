//! The load: real Stripe payloads, re-identified and signed per send, sent in
//! a closed loop (C senders back to back) or an open loop (a fixed schedule).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use axum::body::Bytes;
use parityrail::ingress::verify::compute_signature;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;
use tokio::time::Instant;

use super::server::Target;

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// `concurrency` senders, each sending its next event as soon as the
    /// previous one is answered: measures the most the server sustains.
    Closed { concurrency: usize },
    /// One send every `1 / rate` s whatever the answers do.
    Open { rate: f64 },
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed { concurrency } => write!(f, "closed c={concurrency}"),
            Self::Open { rate } => write!(f, "open {rate}/s"),
        }
    }
}

/// The payload files of the integration tests, one per handled event type.
pub fn load_fixtures() -> anyhow::Result<Vec<Value>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stripe/events");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    let fixtures: Vec<Value> = paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| Ok(serde_json::from_slice(&std::fs::read(p)?)?))
        .collect::<anyhow::Result<_>>()?;
    // Events without `data.object` would measure only the 400 path.
    if fixtures.is_empty() || !fixtures.iter().all(|f| f["data"]["object"].is_object()) {
        anyhow::bail!("{} holds no usable Stripe events", dir.display());
    }
    Ok(fixtures)
}

/// Every send of one scenario, decided before the clock starts so the
/// senders only sign and send.
pub struct Plan {
    /// Serialized once per event; a re-send reuses the bytes, as Stripe does.
    pub bodies: Vec<Bytes>,
    pub ids: Vec<String>,
    /// For each send in order: the event it carries and whether it re-sends.
    pub sends: Vec<(u32, bool)>,
}

impl Plan {
    pub fn build(fixtures: &[Value], sends: usize, duplicates: f64, customers: &[String]) -> Self {
        // Seeded: two runs of one scenario send the same shape of traffic.
        let mut rng = StdRng::seed_from_u64(0x5eed);
        // Unique per run, so repeated runs against one `--target` never collide.
        let run = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let created = parityrail::now_ms() / 1000;
        let mut plan = Self {
            bodies: Vec::new(),
            ids: Vec::new(),
            sends: Vec::with_capacity(sends),
        };
        for _ in 0..sends {
            if !plan.bodies.is_empty() && rng.random_bool(duplicates) {
                let earlier = rng.random_range(0..plan.bodies.len());
                plan.sends.push((earlier as u32, true));
                continue;
            }
            let n = plan.bodies.len();
            let mut event = fixtures[n % fixtures.len()].clone();
            let id = format!("evt_bench_{run}_{n}");
            event["id"] = Value::from(id.as_str());
            event["created"] = Value::from(created);
            let customer = &customers[rng.random_range(0..customers.len())];
            event["data"]["object"]["customer"] = Value::from(customer.as_str());
            // Pretty, like Stripe's own deliveries (and their size).
            let body = serde_json::to_vec_pretty(&event).expect("a JSON value serializes");
            plan.bodies.push(Bytes::from(body));
            plan.ids.push(id);
            plan.sends.push((n as u32, false));
        }
        plan
    }
}

/// One answered (or failed) send.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub event: u32,
    pub duplicate: bool,
    /// HTTP status; 0 when the request failed without one.
    pub status: u16,
    pub latency_us: u64,
}

pub struct LoadResult {
    pub samples: Vec<Sample>,
    /// First send to last answer.
    pub elapsed: Duration,
}

struct Sender {
    http: reqwest::Client,
    url: String,
    secret: String,
    plan: Arc<Plan>,
}

impl Sender {
    /// Signs with a fresh timestamp, like each Stripe delivery attempt, and
    /// reads the whole answer so the connection goes back to the pool.
    async fn send(&self, index: usize, since: Instant) -> Sample {
        let (event, duplicate) = self.plan.sends[index];
        let body = self.plan.bodies[event as usize].clone();
        let t = parityrail::now_ms() / 1000;
        let signature = format!("t={t},v1={}", compute_signature(&self.secret, t, &body));
        let answer = self
            .http
            .post(&self.url)
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("stripe-signature", signature)
            .body(body)
            .send()
            .await;
        let status = match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(_) => status,
                    Err(_) => 0,
                }
            }
            Err(_) => 0,
        };
        Sample {
            event,
            duplicate,
            status,
            latency_us: since.elapsed().as_micros() as u64,
        }
    }
}

/// What the forged-signature flood did beside the load.
#[derive(Clone, Copy, Debug, Default)]
pub struct Forged {
    pub rate: f64,
    pub sent: usize,
    /// Answered 400, as a forged signature must be.
    pub refused: usize,
}

/// Sends signed-with-the-wrong-secret copies of the plan's events at `rate`
/// per second until `stop`, as an attacker who knows a project id would.
pub async fn forge(
    target: &Target,
    plan: Arc<Plan>,
    rate: f64,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Forged> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!(
        "{}/api/webhooks/stripe/{}",
        target.base_url.trim_end_matches('/'),
        target.project
    );
    let start = Instant::now();
    let mut tasks = Vec::new();
    for n in 0.. {
        let scheduled = start + Duration::from_secs_f64(n as f64 / rate);
        tokio::select! {
            () = tokio::time::sleep_until(scheduled) => {}
            () = stop.cancelled() => break,
        }
        let body = plan.bodies[n % plan.bodies.len()].clone();
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let t = parityrail::now_ms() / 1000;
            let signature = format!(
                "t={t},v1={}",
                compute_signature("whsec_forged_by_someone_else", t, &body)
            );
            let answer = http
                .post(&url)
                .header("stripe-signature", signature)
                .body(body)
                .send()
                .await;
            match answer {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    status
                }
                Err(_) => 0,
            }
        }));
    }
    let mut forged = Forged {
        rate,
        ..Forged::default()
    };
    for task in tasks {
        forged.sent += 1;
        forged.refused += usize::from(task.await? == 400);
    }
    Ok(forged)
}

pub async fn run(target: &Target, plan: Arc<Plan>, mode: Mode) -> anyhow::Result<LoadResult> {
    let pool = match mode {
        Mode::Closed { concurrency } => concurrency,
        Mode::Open { .. } => 256,
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(pool)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let sender = Arc::new(Sender {
        http,
        url: format!(
            "{}/api/webhooks/stripe/{}",
            target.base_url.trim_end_matches('/'),
            target.project
        ),
        secret: target.secret.clone(),
        plan,
    });
    let start = Instant::now();
    let samples = match mode {
        Mode::Closed { concurrency } => closed_loop(sender, concurrency).await?,
        Mode::Open { rate } => open_loop(sender, rate, start).await?,
    };
    Ok(LoadResult {
        samples,
        elapsed: start.elapsed(),
    })
}

async fn closed_loop(sender: Arc<Sender>, concurrency: usize) -> anyhow::Result<Vec<Sample>> {
    let next = Arc::new(AtomicUsize::new(0));
    let total = sender.plan.sends.len();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (sender, next) = (sender.clone(), next.clone());
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(total / concurrency + 1);
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= total {
                        return samples;
                    }
                    samples.push(sender.send(index, Instant::now()).await);
                }
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(total);
    for task in tasks {
        samples.extend(task.await?);
    }
    Ok(samples)
}

/// Latency counts from each send's scheduled time, not from when it went
/// out: a stalled server (or client) delays the sends behind it, and that
/// delay is part of what a sender at this rate would see (coordinated omission).
async fn open_loop(sender: Arc<Sender>, rate: f64, start: Instant) -> anyhow::Result<Vec<Sample>> {
    let total = sender.plan.sends.len();
    let mut tasks = Vec::with_capacity(total);
    for index in 0..total {
        let scheduled = start + Duration::from_secs_f64(index as f64 / rate);
        tokio::time::sleep_until(scheduled).await;
        let sender = sender.clone();
        tasks.push(tokio::spawn(
            async move { sender.send(index, scheduled).await },
        ));
    }
    let mut samples = Vec::with_capacity(total);
    for task in tasks {
        samples.push(task.await?);
    }
    Ok(samples)
}
