//! Intake workers: a step function wrapped in a small loop. Tests drive
//! `step` until `Idle` instead of sleeping.

pub mod lag;
mod process;
pub mod retry;

use tokio_util::sync::CancellationToken;

pub use process::step;

use crate::App;

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Processed,
    Idle,
}

/// Runs `step` until shutdown; idles on the inbox's wake-up or the poll interval.
pub async fn run_worker(app: App, index: usize, shutdown: CancellationToken) {
    let owner = crate::ids::worker_tag(index);
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let intake = step(&app, &owner).await;
        let checks = crate::check::step(&app).await;
        let mut idle = true;
        for result in [intake, checks] {
            match result {
                Ok(Step::Processed) => idle = false,
                Ok(Step::Idle) => {}
                Err(e) => tracing::error!(error = %e, "worker step failed"),
            }
        }
        if idle {
            tokio::select! {
                _ = app.wake.notified() => {}
                _ = tokio::time::sleep(app.config.poll_interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

/// Sweeps for lagging events every `lag_sweep_interval`.
pub async fn run_lag_sweeper(app: App, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(app.config.lag_sweep_interval) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = lag::sweep(&app).await {
            tracing::error!(error = %e, "lag sweep failed");
        }
    }
}
