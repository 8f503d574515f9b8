//! The HTTP face: one gate (record, down, delay, signature) in front of four
//! small handlers that answer from the store.

use std::future::Future;
use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::SampleApp;
use crate::signature::{SIGNATURE_HEADER, now, verify_signature};
use crate::store::Render;

const ACCESS: &str = "/parityrail/access";
const BATCH: &str = "/parityrail/access/batch";
const LIST: &str = "/parityrail/access/list";
const RECONCILE: &str = "/parityrail/reconcile";
/// The protocol's batch limit (SPEC §5).
const MAX_BATCH: usize = 500;
const MAX_BODY: usize = 4 << 20;

/// Router state: the app plus a flag that flips on shutdown, so delayed
/// requests end instead of holding graceful shutdown.
#[derive(Clone)]
struct AppState {
    app: SampleApp,
    shutdown: watch::Receiver<bool>,
}

/// A running sample app; dropping it stops the server.
#[derive(Debug)]
pub struct SampleHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SampleHandle {
    /// `http://127.0.0.1:PORT/parityrail/access`, the probe URL to configure.
    pub fn probe_url(&self) -> String {
        format!("http://{}{ACCESS}", self.addr)
    }

    /// `http://127.0.0.1:PORT/parityrail/reconcile`, the reconcile hook.
    pub fn reconcile_url(&self) -> String {
        format!("http://{}{RECONCILE}", self.addr)
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

impl Drop for SampleHandle {
    fn drop(&mut self) {
        // Dropping the sender resolves the server's shutdown future.
        self.stop.take();
    }
}

impl SampleApp {
    /// Serves the probe routes on `listener` until `shutdown` resolves, then
    /// finishes in-flight requests and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = AppState {
            app: self,
            shutdown: stop_rx,
        };
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            })
            .await
    }

    /// Binds `127.0.0.1:0` and serves in the background until the returned
    /// handle is dropped. Panics if binding fails (a test-environment bug).
    pub async fn start(&self) -> SampleHandle {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("sample-app: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("sample-app: local_addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.clone().serve(listener, async move {
            let _ = stopped.await;
        }));
        SampleHandle {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route(ACCESS, get(single))
        .route(BATCH, post(batch))
        .route(LIST, get(list))
        .route(RECONCILE, post(reconcile))
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let app = &state.app;
    // The signature covers the target exactly as it arrived on the wire.
    let target = req.uri().path_and_query().map_or_else(
        || req.uri().path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    let path = req.uri().path();
    app.record_request(&target, path.starts_with(ACCESS), path == BATCH);
    if app.is_down() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the app is down");
    }
    let delay = app.delay();
    if !delay.is_zero() {
        let mut shutdown = state.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|stopped| *stopped) => {
                return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
            }
        }
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let header = parts
        .headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !verify_signature(header, app.secret(), &target, &bytes, now()) {
        tracing::debug!(%target, "sample-app: bad or missing ParityRail-Signature");
        return error(StatusCode::UNAUTHORIZED, "invalid ParityRail-Signature");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[derive(Deserialize)]
struct Pair {
    customer: String,
    #[serde(default)]
    user: String,
}

async fn single(State(state): State<AppState>, Query(q): Query<Pair>) -> Response {
    if state.app.is_failing(&q.customer) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this customer breaks the app",
        );
    }
    let sha = state.app.deploy_sha();
    let render = Render {
        deploy_sha: &sha,
        wrong: state.app.is_wrong(),
    };
    match state.app.store().answer(&q.customer, &q.user, render) {
        Some(answer) => Json(answer).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such user"),
    }
}

#[derive(Deserialize)]
struct BatchRequest {
    customers: Vec<Pair>,
}

async fn batch(State(state): State<AppState>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<BatchRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "expected {\"customers\":[…]}");
    };
    if request.customers.len() > MAX_BATCH {
        return error(StatusCode::BAD_REQUEST, "at most 500 customers per batch");
    }
    let sha = state.app.deploy_sha();
    let render = Render {
        deploy_sha: &sha,
        wrong: state.app.is_wrong(),
    };
    let store = state.app.store();
    let customers: Vec<Value> = request
        .customers
        .iter()
        .map(|p| {
            store
                .answer(&p.customer, &p.user, render)
                .unwrap_or_else(|| json!({ "customer": p.customer, "found": false }))
        })
        .collect();
    Json(json!({ "customers": customers })).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    cursor: Option<String>,
}

async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    if !state.app.list_enabled() {
        return error(StatusCode::NOT_FOUND, "listing is not offered");
    }
    let sha = state.app.deploy_sha();
    let render = Render {
        deploy_sha: &sha,
        wrong: state.app.is_wrong(),
    };
    let cursor = q.cursor.as_deref().filter(|c| !c.is_empty());
    let (data, next) = state
        .app
        .store()
        .page(cursor, state.app.page_size(), render);
    Json(json!({ "data": data, "next_cursor": next })).into_response()
}

async fn reconcile(State(state): State<AppState>, body: Bytes) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    state.app.record_reconcile(value);
    (StatusCode::ACCEPTED, Json(json!({ "accepted": true }))).into_response()
}
