//! `serve`: the HTTP server, the workers, the lag sweeper and the scan
//! scheduler, started into the [`App`]'s task set and stopped in order by
//! [`App::shutdown`] once the server has drained.

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{App, web, worker};

/// HTTP server + workers + lag sweeper + scheduler until `shutdown`; then
/// in-flight requests finish, every accepted event is committed, and
/// everything stops.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let stop = app.stopping();
    for index in 0..app.config.workers {
        app.spawn(worker::run_worker(app.clone(), index, stop.clone()));
    }
    app.spawn(worker::run_lag_sweeper(app.clone(), stop.clone()));
    app.spawn(crate::scan::schedule::run_scheduler(
        app.clone(),
        app.config.scan_tick,
        stop,
    ));
    serve_http(app, listener, shutdown).await
}

/// Only the HTTP server (tests drive the workers themselves); the same
/// ordered shutdown.
pub async fn serve_http(
    app: App,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = app.store.backend_name(), "parityrail listening on http://{addr}");
    let served = web::serve(
        listener,
        web::router(app.clone()),
        app.config.header_read_timeout,
        shutdown,
    )
    .await;
    // No request is in flight any more: stop the rest in order.
    app.shutdown().await;
    served.context("HTTP server failed")
}

/// `parityrail serve`: start everything on `config.listen`.
pub async fn run(config: crate::config::Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let app = App::start(config).await?;
    serve(app, listener, shutdown).await
}
