//! Runs the Stripe simulator standalone and prints its base URL.
//!
//! ```text
//! stripe-sim [--listen ADDR] [--key KEY]... [--live] [--rate-limit N]
//!            [--webhook URL,SECRET]... [--time-scale N] [--seed N]
//! ```
//! Simulated time passes `--time-scale` times faster than real time
//! (default 3600: an hour a second), so trials end, periods renew and failed
//! payments are retried as Stripe would, each change emitting its events.
//! Failed webhook deliveries are retried on Stripe's schedule for the mode
//! (live: three days of backoff; test: three retries over a few hours),
//! compressed the same way.
//! Environment fallbacks: `STRIPE_SIM_LISTEN`, `STRIPE_SIM_KEYS` (comma
//! separated), `STRIPE_SIM_RATE_LIMIT`.

use std::process::ExitCode;
use std::time::Duration;

use stripe_sim::{RetrySchedule, StripeSim};

const USAGE: &str = "usage: stripe-sim [--listen ADDR] [--key KEY]... [--live] [--rate-limit N] \
                     [--webhook URL,SECRET]... [--time-scale N] [--seed N]";
const HELP: &str = "A stateful Stripe API simulator on loopback: prints its base URL, serves
/v1 behind the given keys and delivers signed webhooks.

  --listen ADDR          where to listen (default 127.0.0.1:12111; STRIPE_SIM_LISTEN)
  --key KEY              an API key it accepts, repeatable (STRIPE_SIM_KEYS, comma separated)
  --live                 a live-mode account (livemode objects, live retry schedule)
  --rate-limit N         requests per second per key, 429 beyond (STRIPE_SIM_RATE_LIMIT)
  --webhook URL,SECRET   a webhook endpoint, repeatable
  --time-scale N         simulated seconds per real second (default 3600: an hour a second):
                         periods renew, trials end, retries happen, webhook retries follow
                         Stripe's schedule (a failed delivery's three days pass in 72 s live)
  --seed N               N customers (metadata parityrail_user_id = user_N), each with an
                         active Pro subscription";
const DEFAULT_KEY: &str = "sk_test_stripe_sim_default";

#[derive(Debug, Default)]
struct Args {
    listen: Option<String>,
    keys: Vec<String>,
    live: bool,
    rate_limit: Option<u32>,
    webhooks: Vec<(String, String)>,
    time_scale: Option<f64>,
    seed: usize,
}

/// Simulated seconds per real second of the retry schedule by default.
const DEFAULT_TIME_SCALE: f64 = 3600.0;

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    while let Some(flag) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = Some(value("--listen")?),
            "--key" => args.keys.push(value("--key")?),
            "--live" => args.live = true,
            "--rate-limit" => {
                let n = value("--rate-limit")?;
                args.rate_limit = Some(n.parse().map_err(|_| format!("bad --rate-limit {n:?}"))?);
            }
            "--webhook" => {
                let spec = value("--webhook")?;
                let (url, secret) = spec
                    .rsplit_once(',')
                    .ok_or_else(|| format!("--webhook wants URL,SECRET, got {spec:?}"))?;
                args.webhooks.push((url.to_owned(), secret.to_owned()));
            }
            "--time-scale" => {
                let n = value("--time-scale")?;
                let scale: f64 = n.parse().map_err(|_| format!("bad --time-scale {n:?}"))?;
                RetrySchedule::stripe_test(scale).map_err(|e| format!("bad --time-scale: {e}"))?;
                args.time_scale = Some(scale);
            }
            "--seed" => {
                let n = value("--seed")?;
                args.seed = n.parse().map_err(|_| format!("bad --seed {n:?}"))?;
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.listen.is_none() {
        args.listen = std::env::var("STRIPE_SIM_LISTEN").ok();
    }
    if args.keys.is_empty()
        && let Ok(keys) = std::env::var("STRIPE_SIM_KEYS")
    {
        args.keys = keys
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
    }
    if args.rate_limit.is_none()
        && let Ok(n) = std::env::var("STRIPE_SIM_RATE_LIMIT")
    {
        let n = n
            .parse()
            .map_err(|_| format!("bad STRIPE_SIM_RATE_LIMIT {n:?}"))?;
        args.rate_limit = Some(n);
    }
    Ok(args)
}

/// `n` customers, each with one active subscription to a product granting
/// `pro-features`, so a checker has something to look at.
fn seed(sim: &StripeSim, n: usize) {
    let product = sim.create_product("Pro");
    let price = sim.create_price(&product, Some("pro_monthly"), 2000);
    sim.set_product_features(&product, &["pro-features"]);
    for i in 0..n {
        let user = format!("user_{i}");
        let customer = sim.create_customer(
            &format!("{user}@example.com"),
            &[("parityrail_user_id", &user)],
        );
        sim.create_subscription(
            &customer,
            &[&price],
            "active",
            &[("parityrail_user_id", &user)],
        );
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().skip(1).any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}\n\n{HELP}");
        return ExitCode::SUCCESS;
    }
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let sim = if args.live {
        StripeSim::new_live()
    } else {
        StripeSim::new()
    };
    let keys = if args.keys.is_empty() {
        vec![DEFAULT_KEY.to_owned()]
    } else {
        args.keys.clone()
    };
    for key in &keys {
        sim.add_api_key(key);
    }
    sim.set_rate_limit(args.rate_limit);
    let scale = args.time_scale.unwrap_or(DEFAULT_TIME_SCALE);
    let schedule = if args.live {
        RetrySchedule::stripe_live(scale)
    } else {
        RetrySchedule::stripe_test(scale)
    };
    sim.set_retry_schedule(schedule.expect("the time scale was checked when parsed"));
    for (url, secret) in &args.webhooks {
        sim.add_webhook_endpoint(url, secret);
    }
    seed(&sim, args.seed);

    let listen = args.listen.as_deref().unwrap_or("127.0.0.1:12111");
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("stripe-sim: cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| listen.to_owned(), |a| a.to_string());
    println!("http://{addr}");
    if args.keys.is_empty() {
        eprintln!("stripe-sim: no --key given; accepting {DEFAULT_KEY}");
    }
    eprintln!("stripe-sim: account {}", sim.account_id());

    if !args.webhooks.is_empty() {
        let sim = sim.clone();
        tokio::spawn(async move {
            loop {
                // Each batch on its own task: its retries wait on the
                // schedule while later events go out.
                let sim = sim.clone();
                tokio::spawn(async move {
                    for report in sim.deliver_pending(u32::MAX).await {
                        if !report.delivered {
                            eprintln!(
                                "stripe-sim: gave up on {} -> {} after {} attempts (last status {:?})",
                                report.event_id,
                                report.endpoint,
                                report.attempts,
                                report.last_status
                            );
                        }
                    }
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    // Time passes: renewals, trial ends and payment retries, with events.
    {
        let sim = sim.clone();
        let step = scale.round().max(1.0) as i64;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                sim.pass_time(step);
            }
        });
    }

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match sim.serve(listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stripe-sim: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_flags() {
        let a = args(&[
            "--listen",
            "0.0.0.0:1",
            "--key",
            "sk_test_a",
            "--key",
            "rk_live_b",
            "--rate-limit",
            "25",
            "--webhook",
            "http://h/w,whsec_x",
            "--seed",
            "3",
            "--time-scale",
            "86400",
            "--live",
        ])
        .unwrap();
        assert_eq!(a.listen.as_deref(), Some("0.0.0.0:1"));
        assert_eq!(a.keys, ["sk_test_a", "rk_live_b"]);
        assert_eq!(a.rate_limit, Some(25));
        assert_eq!(
            a.webhooks,
            [("http://h/w".to_owned(), "whsec_x".to_owned())]
        );
        assert_eq!(a.seed, 3);
        assert_eq!(a.time_scale, Some(86_400.0));
        assert!(a.live);
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--rate-limit", "x"]).is_err());
        assert!(args(&["--time-scale", "0"]).is_err());
        assert!(args(&["--time-scale", "fast"]).is_err());
    }
}
