//! Demo benchmark: `parityrail demo` (release binary, child process) from
//! start to its banner, its memory while the traffic runs, and how fast it
//! stops on Ctrl-C, against the targets of issue 9 (banner within 5 s,
//! under 100 MB RSS, stopped within 5 s). Exits 1 when a target is missed.
//!
//! `cargo bench --bench demo -- --secs 30 --every 1`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "demo", about = "Time and measure `parityrail demo`")]
struct Options {
    /// How long the demo runs after its banner before it is stopped.
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// The demo's --every: seconds between simulated changes.
    #[arg(long, default_value_t = 1.0)]
    every: f64,
    /// Check the flags and exit without running (CI checks every
    /// benchmark line of the README so).
    #[arg(long)]
    check: bool,
    #[arg(long, hide = true)]
    bench: bool,
}

const BANNER_TARGET: Duration = Duration::from_secs(5);
const RSS_TARGET_MB: f64 = 100.0;
const STOP_TARGET: Duration = Duration::from_secs(5);

/// `VmRSS` and `VmHWM` of `pid`, in MB.
fn memory(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<f64>()
            .ok()
            .map(|kb| kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn main() -> anyhow::Result<()> {
    let opts = Options::parse();
    if opts.check {
        println!("{opts:?}");
        return Ok(());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_parityrail"))
        .args(["demo", "--every", &opts.every.to_string()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", std::env::temp_dir())
        .env("PARITYRAIL_LISTEN", format!("127.0.0.1:{port}"))
        .env("PARITYRAIL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut banner = None;
    for line in BufReader::new(stdout).lines() {
        if line?.starts_with("Press Ctrl-C") {
            banner = Some(started.elapsed());
            break;
        }
    }
    let Some(banner) = banner else {
        let _ = child.kill();
        anyhow::bail!("the demo printed no banner");
    };
    let mut peak_rss = 0.0_f64;
    let mut hwm = 0.0_f64;
    let mut rss = 0.0;
    for _ in 0..opts.secs {
        std::thread::sleep(Duration::from_secs(1));
        if let Some((now, high)) = memory(child.id()) {
            rss = now;
            peak_rss = peak_rss.max(now);
            hwm = hwm.max(high);
        }
    }
    let stopping = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    let status = child.wait()?;
    let stopped = stopping.elapsed();

    println!(
        "demo (release, --every {}): banner {:.2} s, RSS {:.0} MB after {} s (peak {:.0} MB), \
         stopped {:.2} s after SIGINT, exit {}",
        opts.every,
        banner.as_secs_f64(),
        rss,
        opts.secs,
        hwm.max(peak_rss),
        stopped.as_secs_f64(),
        status
            .code()
            .map_or("by signal".to_string(), |c| c.to_string())
    );
    let mut missed = Vec::new();
    if banner > BANNER_TARGET {
        missed.push(format!(
            "banner after {banner:?} (target {BANNER_TARGET:?})"
        ));
    }
    if hwm.max(peak_rss) > RSS_TARGET_MB {
        missed.push(format!(
            "peak RSS {:.0} MB (target {RSS_TARGET_MB} MB)",
            hwm.max(peak_rss)
        ));
    }
    if stopped > STOP_TARGET || !status.success() {
        missed.push(format!(
            "stopped after {stopped:?} with {status} (target exit 0 within {STOP_TARGET:?})"
        ));
    }
    if !missed.is_empty() {
        eprintln!("missed: {}", missed.join("; "));
        std::process::exit(1);
    }
    println!("targets met: banner within 5 s, under 100 MB, stopped within 5 s");
    Ok(())
}
