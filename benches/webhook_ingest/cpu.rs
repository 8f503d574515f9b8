//! Where the CPU went during a load, from `/proc` (Linux; elsewhere the
//! figures are simply absent). On a 2-core machine the client, the
//! simulated Stripe and the server share the cores, so a throughput figure
//! means little without knowing who was busy.

use std::time::Instant;

/// `USER_HZ`: the unit of `/proc` CPU times, 100 on every Linux ABI we run on.
const TICKS_PER_SEC: f64 = 100.0;

pub struct Snapshot {
    at: Instant,
    server: Option<u64>,
    bench: Option<u64>,
    machine: Option<u64>,
}

/// Average cores busy between two snapshots.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// The `parityrail serve` process.
    pub server: Option<f64>,
    /// This process: the load generator and the simulated Stripe API.
    pub bench: Option<f64>,
    /// Everything else: PostgreSQL, and anything that should not be running.
    pub other: Option<f64>,
}

pub fn snapshot(server_pid: Option<u32>) -> Snapshot {
    Snapshot {
        at: Instant::now(),
        server: server_pid.and_then(|pid| process_ticks(&format!("/proc/{pid}/stat"))),
        bench: process_ticks("/proc/self/stat"),
        machine: machine_busy_ticks(),
    }
}

impl Snapshot {
    pub fn usage_since(&self, start: &Snapshot) -> Usage {
        let secs = self.at.duration_since(start.at).as_secs_f64().max(1e-9);
        let cores = |a: Option<u64>, b: Option<u64>| {
            Some(a?.saturating_sub(b?) as f64 / TICKS_PER_SEC / secs)
        };
        let server = cores(self.server, start.server);
        let bench = cores(self.bench, start.bench);
        let machine = cores(self.machine, start.machine);
        let other = machine.map(|m| (m - server.unwrap_or(0.0) - bench.unwrap_or(0.0)).max(0.0));
        Usage {
            server,
            bench,
            other,
        }
    }
}

/// utime + stime of one process (fields 14 and 15 of `stat`, counted after
/// the parenthesised command name, which may itself contain spaces).
fn process_ticks(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Busy time of all cores: everything in the `cpu` line but idle and iowait.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .take(8)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some(ticks.iter().sum::<u64>() - idle)
}
