//! Runs the Stripe simulator standalone and prints its base URL.
//!
//! ```text
//! stripe-sim [--listen ADDR] [--key KEY]... [--live] [--rate-limit N]
//!            [--webhook URL,SECRET]... [--seed N]
//! ```
//! Environment fallbacks: `STRIPE_SIM_LISTEN`, `STRIPE_SIM_KEYS` (comma
//! separated), `STRIPE_SIM_RATE_LIMIT`.

use std::process::ExitCode;
use std::time::Duration;

use stripe_sim::StripeSim;

const USAGE: &str = "usage: stripe-sim [--listen ADDR] [--key KEY]... [--live] [--rate-limit N] \
                     [--webhook URL,SECRET]... [--seed N]";
const DEFAULT_KEY: &str = "sk_test_stripe_sim_default";

#[derive(Debug, Default)]
struct Args {
    listen: Option<String>,
    keys: Vec<String>,
    live: bool,
    rate_limit: Option<u32>,
    webhooks: Vec<(String, String)>,
    seed: usize,
}

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
            "--seed" => {
                let n = value("--seed")?;
                args.seed = n.parse().map_err(|_| format!("bad --seed {n:?}"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
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
        let customer =
            sim.create_customer(&format!("{user}@example.com"), &[("app_user_id", &user)]);
        sim.create_subscription(&customer, &[&price], "active", &[("app_user_id", &user)]);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
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
                for report in sim.deliver_pending(3).await {
                    if !report.delivered {
                        eprintln!(
                            "stripe-sim: gave up on {} -> {} after {} attempts (last status {:?})",
                            report.event_id, report.endpoint, report.attempts, report.last_status
                        );
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
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
        assert!(a.live);
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--rate-limit", "x"]).is_err());
    }
}
