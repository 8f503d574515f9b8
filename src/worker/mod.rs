//! Intake workers: a step function wrapped in a small loop, which also
//! drives due checks. Tests drive `step` until `Idle` instead of sleeping.

pub mod lag;
mod process;

use tokio_util::sync::CancellationToken;

pub use process::step;

use crate::App;

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Processed,
    Idle,
}

/// Runs intake steps and check attempts until `stop`; idles on the inbox's
/// wake-up or the poll interval.
pub async fn run_worker(app: App, index: usize, stop: CancellationToken) {
    let owner = crate::ids::worker_tag(index);
    loop {
        if stop.is_cancelled() {
            return;
        }
        let intake = step(&app, &owner).await.map(|s| s == Step::Processed);
        let checks = crate::check::advance(&app, &owner).await;
        let mut idle = true;
        for result in [intake, checks] {
            match result {
                Ok(true) => idle = false,
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "worker step failed"),
            }
        }
        if idle {
            tokio::select! {
                _ = app.wake.notified() => {}
                _ = tokio::time::sleep(app.config.poll_interval) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// Sweeps for lagging events every `lag_sweep_interval`.
pub async fn run_lag_sweeper(app: App, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(app.config.lag_sweep_interval) => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = lag::sweep(&app).await {
            tracing::error!(error = %e, "lag sweep failed");
        }
    }
}
