//! The HTTP face of the simulator: an axum router with one gate middleware
//! (latency, faults, rate limit, API key, `Request-Id`, request log) in
//! front of Stripe-shaped handlers.

pub(crate) mod error;
mod query;
mod routes;
mod webhook_endpoints;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::StripeSim;
use crate::control::{Rejection, RequestRecord};
use crate::ids;
use error::ApiError;

/// How long the [`crate::Fault::Timeout`] fault stalls a request.
const TIMEOUT_FAULT_DELAY: Duration = Duration::from_secs(30);

/// Router state: the sim plus a flag that flips on shutdown, so stalled
/// requests end instead of holding graceful shutdown for 30 s.
#[derive(Clone)]
pub(crate) struct App {
    pub sim: StripeSim,
    shutdown: watch::Receiver<bool>,
}

/// A running simulator server; dropping it stops the server.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, to use as the Stripe API base.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        // Dropping the sender resolves the server's shutdown future.
        self.stop.take();
    }
}

impl StripeSim {
    /// Serves the HTTP API on `listener` until `shutdown` resolves, then
    /// finishes in-flight requests and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let app = App {
            sim: self,
            shutdown: stop_rx,
        };
        axum::serve(listener, routes::router(app))
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await
    }

    /// Binds `127.0.0.1:0` and serves in the background until the returned
    /// handle is dropped. Panics if binding fails (a test-environment bug).
    pub async fn start(&self) -> SimHandle {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("stripe-sim: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("stripe-sim: local_addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.clone().serve(listener, async move {
            let _ = stopped.await;
        }));
        SimHandle {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// The API key from `Authorization: Bearer <key>` or HTTP Basic with the key
/// as user name (both accepted by Stripe).
fn api_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(base64_decode(rest.trim())?).ok()?;
        decoded
            .split_once(':')
            .map_or(decoded.as_str(), |(user, _)| user)
            .to_owned()
    } else {
        return None;
    };
    (!key.is_empty()).then_some(key)
}

/// Standard base64 with optional padding; `None` on any invalid character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.trim_end_matches('=').bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

pub(crate) async fn gate(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let latency = app.sim.control().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let admitted = app.sim.control().admit(api_key(req.headers()).as_deref());
    let mut response = match admitted {
        Ok(caller) => {
            let denied = caller
                .denied
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix.as_str()))
                .map(|(_, permission)| permission.clone());
            if let Some(permission) = denied {
                let account = app.sim.account_id();
                ApiError::lacks_permission(&caller.redacted_key, &account, &permission)
                    .into_response()
            } else {
                req.extensions_mut().insert(caller);
                let response = next.run(req).await;
                // Held after the data was read: the answer is late, not the read.
                let generation = app.sim.release_generation();
                let hold = app.sim.control().take_hold(&path, &query);
                if let Some(delay) = hold {
                    app.sim.wait_hold(delay, generation).await;
                }
                response
            }
        }
        Err(Rejection::Error(error)) => error.into_response(),
        Err(Rejection::Timeout) => {
            let mut shutdown = app.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(TIMEOUT_FAULT_DELAY) => {}
                _ = shutdown.wait_for(|stopped| *stopped) => {}
            }
            ApiError::server_error().into_response()
        }
    };
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&ids::request_id()) {
        headers.insert("request-id", id);
    }
    // Stripe names the version it rendered with; clients may log it.
    headers.insert(
        "stripe-version",
        HeaderValue::from_static(crate::API_VERSION),
    );
    tracing::debug!(%method, %path, status = response.status().as_u16(), "stripe-sim request");
    app.sim.finish_request(RequestRecord {
        method,
        path,
        query,
        status: response.status().as_u16(),
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_and_basic_keys() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk_test_abc"),
        );
        assert_eq!(api_key(&h).as_deref(), Some("sk_test_abc"));
        // "sk_test_abc:" in base64.
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic c2tfdGVzdF9hYmM6"),
        );
        assert_eq!(api_key(&h).as_deref(), Some("sk_test_abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(api_key(&h), None);
    }
}
