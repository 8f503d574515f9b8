//! What the simulator does to requests before they reach a handler: API
//! keys, the rate limiter, injected faults, latency and the request log.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::http::error::ApiError;

/// A failure to inject into upcoming API requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 `api_error`.
    ServerError,
    /// Waits 30 s, then answers 500 (for client timeout tests).
    Timeout,
    /// 429 `rate_limit` with `Retry-After: 1`.
    RateLimited,
    /// 429 `lock_timeout`, Stripe's retryable 429.
    LockTimeout,
    /// 401 as for an invalid API key.
    Unauthorized,
}

/// A fault in webhook delivery, like the network and Stripe's at-least-once
/// delivery produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryFault {
    /// The next delivery never arrives (and is not retried).
    Drop,
    /// The next delivery arrives twice.
    Duplicate,
    /// The next batch of deliveries arrives in reverse order.
    Reorder,
}

/// One served API request, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path without the query, e.g. `/v1/subscriptions`.
    pub path: String,
    /// Raw query string (still percent-encoded), empty when absent.
    pub query: String,
    /// Response status code.
    pub status: u16,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub livemode: bool,
    pub redacted_key: String,
    pub account_access: bool,
    /// Path prefixes this (restricted) key may not read, with the
    /// permission Stripe names for each.
    pub denied: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct KeyInfo {
    livemode: bool,
    account_access: bool,
    revoked: bool,
    denied: Vec<(String, String)>,
}

/// Responses to hold back after they are computed: the data is read at
/// once, the answer arrives `delay` later (a slow network between a read
/// and its use).
#[derive(Debug, Clone)]
pub(crate) struct Hold {
    pub path_prefix: String,
    /// Only requests whose raw query contains this.
    pub query_contains: String,
    pub delay: Duration,
    pub left: u32,
}

/// Why a request was answered before reaching its handler.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// The `Timeout` fault: the caller sleeps, then answers 500.
    Timeout,
    Error(ApiError),
}

/// Token bucket holding at most one second's worth of requests.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_second: u32) -> Bucket {
        let rate = f64::from(per_second.max(1));
        Bucket {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    /// Takes a token, or says how many whole seconds until one is free.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / self.rate).ceil() as u64).max(1))
        }
    }
}

/// Requests kept for [`RequestRecord`] assertions; older ones are dropped so
/// a long-running demo does not grow without bound.
const LOG_CAPACITY: usize = 100_000;

#[derive(Debug)]
pub(crate) struct Control {
    keys: HashMap<String, KeyInfo>,
    /// Requests per second each API key may make (`None`: unlimited).
    rate_limit: Option<u32>,
    /// One bucket per key, as Stripe limits each key of an account.
    buckets: HashMap<String, Bucket>,
    faults: VecDeque<(Fault, u32)>,
    pub latency: Duration,
    pub log: VecDeque<RequestRecord>,
    pub retry_schedule: crate::RetrySchedule,
    pub delivery_timeout: Duration,
    /// Delivery faults still to apply, oldest first.
    pub delivery_faults: std::collections::VecDeque<DeliveryFault>,
    pub holds: Vec<Hold>,
}

impl Default for Control {
    fn default() -> Control {
        Control {
            holds: Vec::new(),
            keys: HashMap::new(),
            rate_limit: None,
            buckets: HashMap::new(),
            faults: VecDeque::new(),
            latency: Duration::ZERO,
            log: VecDeque::new(),
            retry_schedule: crate::RetrySchedule::backoff(Duration::from_millis(50)),
            delivery_timeout: Duration::from_secs(10),
            delivery_faults: std::collections::VecDeque::new(),
        }
    }
}

/// Mode of a key from its prefix; anything not marked live is test mode.
fn key_is_live(key: &str) -> bool {
    key.starts_with("sk_live_") || key.starts_with("rk_live_")
}

/// `sk_test_****abcd`: the prefix and at most the last four characters,
/// never the whole key.
pub(crate) fn redact(key: &str) -> String {
    let prefix_len = key
        .match_indices('_')
        .nth(1)
        .map_or(0, |(i, _)| i + 1)
        .min(key.len());
    let rest = &key[prefix_len..];
    let chars: Vec<char> = rest.chars().collect();
    let tail: String = if chars.len() >= 8 {
        chars[chars.len() - 4..].iter().collect()
    } else {
        String::new()
    };
    format!("{}****{tail}", &key[..prefix_len])
}

impl Control {
    pub(crate) fn add_key(&mut self, key: &str, account_access: bool) {
        let info = KeyInfo {
            livemode: key_is_live(key),
            account_access,
            revoked: false,
            denied: Vec::new(),
        };
        self.keys.insert(key.to_owned(), info);
    }

    pub(crate) fn deny(&mut self, key: &str, path_prefix: &str, permission: &str) {
        if let Some(info) = self.keys.get_mut(key) {
            info.denied
                .push((path_prefix.to_owned(), permission.to_owned()));
        }
    }

    /// The delay to hold a response to `path` for, if one is queued.
    pub(crate) fn take_hold(&mut self, path: &str, query: &str) -> Option<Duration> {
        let hold = self.holds.iter_mut().find(|h| {
            h.left > 0 && path.starts_with(&h.path_prefix) && query.contains(&h.query_contains)
        })?;
        hold.left -= 1;
        let delay = hold.delay;
        self.holds.retain(|h| h.left > 0);
        Some(delay)
    }

    pub(crate) fn revoke_key(&mut self, key: &str) {
        let info = self.keys.entry(key.to_owned()).or_insert(KeyInfo {
            livemode: key_is_live(key),
            account_access: true,
            revoked: true,
            denied: Vec::new(),
        });
        info.revoked = true;
    }

    pub(crate) fn set_rate_limit(&mut self, per_second: Option<u32>) {
        self.rate_limit = per_second;
        self.buckets.clear();
    }

    pub(crate) fn inject(&mut self, fault: Fault, count: u32) {
        if count > 0 {
            self.faults.push_back((fault, count));
        }
    }

    fn next_fault(&mut self) -> Option<Fault> {
        let (fault, left) = self.faults.front_mut()?;
        let fault = *fault;
        *left -= 1;
        if *left == 0 {
            self.faults.pop_front();
        }
        Some(fault)
    }

    /// Faults first (they stand for Stripe failing), then the rate limit,
    /// then the API key.
    pub(crate) fn admit(&mut self, key: Option<&str>) -> Result<Caller, Rejection> {
        let redacted = key.map(redact);
        if let Some(fault) = self.next_fault() {
            let error = match fault {
                Fault::Timeout => return Err(Rejection::Timeout),
                Fault::ServerError => ApiError::server_error(),
                Fault::RateLimited => ApiError::rate_limited(1),
                Fault::LockTimeout => ApiError::lock_timeout(),
                Fault::Unauthorized => match &redacted {
                    Some(r) => ApiError::invalid_key(r),
                    None => ApiError::no_key(),
                },
            };
            return Err(Rejection::Error(error));
        }
        if let Some(rate) = self.rate_limit {
            self.buckets
                .entry(key.unwrap_or_default().to_owned())
                .or_insert_with(|| Bucket::new(rate))
                .take(Instant::now())
                .map_err(|secs| Rejection::Error(ApiError::rate_limited(secs)))?;
        }
        let (Some(key), Some(redacted)) = (key, redacted) else {
            return Err(Rejection::Error(ApiError::no_key()));
        };
        match self.keys.get(key) {
            None => Err(Rejection::Error(ApiError::invalid_key(&redacted))),
            Some(info) if info.revoked => Err(Rejection::Error(ApiError::expired_key(&redacted))),
            Some(info) => Ok(Caller {
                livemode: info.livemode,
                redacted_key: redacted,
                account_access: info.account_access,
                denied: info.denied.clone(),
            }),
        }
    }

    pub(crate) fn record(&mut self, record: RequestRecord) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_keys() {
        assert_eq!(redact("sk_test_51Habcdefghijklmnabcd"), "sk_test_****abcd");
        assert_eq!(redact("rk_live_short"), "rk_live_****");
        assert_eq!(redact("garbage"), "****");
        assert!(!redact("sk_test_0123456789").contains("0123"));
    }

    #[test]
    fn bucket_refills() {
        let start = Instant::now();
        let mut b = Bucket::new(2);
        assert!(b.take(start).is_ok());
        assert!(b.take(start).is_ok());
        assert_eq!(b.take(start), Err(1));
        assert!(b.take(start + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn faults_run_out() {
        let mut c = Control::default();
        c.add_key("sk_test_x", true);
        c.inject(Fault::ServerError, 2);
        assert!(c.admit(Some("sk_test_x")).is_err());
        assert!(c.admit(Some("sk_test_x")).is_err());
        assert!(c.admit(Some("sk_test_x")).is_ok());
    }
}
