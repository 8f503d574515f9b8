//! Figures of one scenario and the summary table.

use std::{collections::BTreeMap, time::Duration};

use super::{
    cpu::Usage,
    load::{Forged, LoadResult, Mode},
};

/// What one scenario measured.
pub struct Outcome {
    pub backend: String,
    pub mode: Mode,
    pub sends: usize,
    pub duplicates: usize,
    pub acks: usize,
    pub duplicate_acks: usize,
    /// Non-2xx answers by status (0: no answer at all).
    pub failures: BTreeMap<u16, usize>,
    pub elapsed: Duration,
    /// p50, p95, p99, max in ms.
    pub latency_ms: [f64; 4],
    /// Last ack to an empty work queue; `None` when not measured.
    pub drain: Option<Duration>,
    pub work_done: i64,
    pub work_dead: i64,
    /// Acknowledged events missing from the store; `None` when not checked.
    pub lost: Option<usize>,
    /// Cores busy while the load ran.
    pub cpu: Usage,
    /// The forged-signature flood beside the load, if any.
    pub forged: Option<Forged>,
    /// Projects the server read from its database during the load (a flood
    /// of forged signatures must not add one each).
    pub directory_loads: Option<u64>,
}

impl Outcome {
    pub fn new(backend: &str, mode: Mode, result: &LoadResult) -> Self {
        let mut latencies: Vec<u64> = result.samples.iter().map(|s| s.latency_us).collect();
        latencies.sort_unstable();
        let mut failures = BTreeMap::new();
        let (mut acks, mut duplicate_acks) = (0, 0);
        for s in &result.samples {
            if (200..300).contains(&s.status) {
                acks += 1;
                duplicate_acks += usize::from(s.duplicate);
            } else {
                *failures.entry(s.status).or_insert(0) += 1;
            }
        }
        Self {
            backend: backend.to_string(),
            mode,
            sends: result.samples.len(),
            duplicates: result.samples.iter().filter(|s| s.duplicate).count(),
            acks,
            duplicate_acks,
            failures,
            elapsed: result.elapsed,
            latency_ms: [0.50, 0.95, 0.99, 1.0].map(|q| percentile(&latencies, q)),
            drain: None,
            work_done: 0,
            work_dead: 0,
            lost: None,
            cpu: Usage::default(),
            forged: None,
            directory_loads: None,
        }
    }

    pub fn throughput(&self) -> f64 {
        self.acks as f64 / self.elapsed.as_secs_f64()
    }

    pub fn print(&self) {
        let [p50, p95, p99, max] = self.latency_ms;
        println!("  backend      {}", self.backend);
        println!("  mode         {}", self.mode);
        if let Some(f) = self.forged {
            println!(
                "  forged       {} sent at {:.0}/s, {} refused 400; project reads from the database meanwhile: {}",
                f.sent,
                f.rate,
                f.refused,
                self.directory_loads
                    .map_or("-".to_string(), |n| n.to_string())
            );
        }
        println!(
            "  sent         {} ({} re-sends of an earlier event)",
            self.sends, self.duplicates
        );
        println!(
            "  acks (2xx)   {} ({} of them re-sends)",
            self.acks, self.duplicate_acks
        );
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|(status, n)| match status {
                0 => format!("no answer: {n}"),
                _ => format!("{status}: {n}"),
            })
            .collect();
        println!("  non-2xx      {}", none_or(&failures.join(", ")));
        println!("  duration     {:.2} s", self.elapsed.as_secs_f64());
        println!("  throughput   {:.0} acks/s", self.throughput());
        println!(
            "  ack latency  p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms, max {max:.2} ms"
        );
        println!(
            "  cpu (cores)  server {}, bench client + Stripe sim {}, other {}",
            cores(self.cpu.server),
            cores(self.cpu.bench),
            cores(self.cpu.other)
        );
        if let Some(drain) = self.drain {
            println!(
                "  processing   queue empty {:.2} s after the last ack; work items done {}, dead {}",
                drain.as_secs_f64(),
                self.work_done,
                self.work_dead
            );
        }
        match self.lost {
            Some(lost) => println!("  lost: {lost}"),
            None => println!("  lost: not checked"),
        }
    }
}

fn cores(used: Option<f64>) -> String {
    used.map_or("-".to_string(), |c| format!("{c:.2}"))
}

fn none_or(text: &str) -> &str {
    if text.is_empty() { "none" } else { text }
}

/// Nearest-rank percentile of sorted microseconds, in ms.
fn percentile(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

/// A Markdown table, pasteable into the README.
pub fn print_table(outcomes: &[Outcome]) {
    println!(
        "| backend | scenario | sent (re-sends) | acks | non-2xx | duration s | acks/s | p50 ms | p95 ms | p99 ms | max ms | queue drained after s | lost | CPU server / bench / other |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        let [p50, p95, p99, max] = o.latency_ms;
        let failed: usize = o.failures.values().sum();
        let scenario = match o.forged {
            Some(f) => format!("{} + {:.0} forged/s", o.mode, f.rate),
            None => o.mode.to_string(),
        };
        let drain = o
            .drain
            .map_or("-".to_string(), |d| format!("{:.1}", d.as_secs_f64()));
        let lost = o.lost.map_or("-".to_string(), |l| l.to_string());
        println!(
            "| {} | {scenario} | {} ({}) | {} | {failed} | {:.2} | {:.0} | {p50:.2} | {p95:.2} | {p99:.2} | {max:.2} | {drain} | {lost} | {} / {} / {} |",
            o.backend,
            o.sends,
            o.duplicates,
            o.acks,
            o.elapsed.as_secs_f64(),
            o.throughput(),
            cores(o.cpu.server),
            cores(o.cpu.bench),
            cores(o.cpu.other),
        );
    }
}
