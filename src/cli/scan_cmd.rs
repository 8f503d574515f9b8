//! `parityrail scan PROJECT`: a full scan now, with a progress bar on stderr.
//! When the project's scan is already running (a `serve` started it), this
//! follows that scan to its end instead of starting a second one.

use std::{sync::Arc, time::Duration};

use anyhow::Context;

use super::{find, print};
use crate::{
    App,
    domain::{ScanStatus, ScanTrigger},
    scan::{self, ScanSummary},
};

pub async fn scan(json_out: bool, app: &App, project: &str) -> anyhow::Result<()> {
    let project = find(app, project).await?;
    let started = scan::create(app, &project.id, ScanTrigger::Manual).await?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .context("progress template")?,
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let shown = bar.clone();
    let progress: scan::Progress = Arc::new(move |s: &ScanSummary| {
        let mismatches: i64 = s.mismatches.values().sum();
        shown.set_message(format!(
            "{} subscriptions · {} customers checked · {} mismatches · {} Stripe requests",
            s.subscriptions_seen, s.customers_checked, mismatches, s.stripe_requests
        ));
    });
    let outcome = if started.created {
        scan::run(app, started.scan, &started.owner, Some(progress)).await
    } else {
        bar.println(format!(
            "scan {} of this project is already running; following it",
            started.scan.id
        ));
        follow(app, &project, &started.scan.id, &progress).await
    };
    bar.finish_and_clear();
    let summary = outcome?;
    print(json_out, serde_json::to_value(&summary)?, || {
        let kinds: Vec<String> = summary
            .mismatches
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        format!(
            "scan {} {} in {:.1} s: {} subscriptions, {} customers checked{}, mismatches [{}], {} Stripe requests, {} probe requests",
            summary.scan_id,
            summary.status,
            summary.duration_ms as f64 / 1000.0,
            summary.subscriptions_seen,
            summary.customers_checked,
            if summary.customers_unchecked > 0 {
                format!(" ({} could not be checked)", summary.customers_unchecked)
            } else {
                String::new()
            },
            kinds.join(", "),
            summary.stripe_requests,
            summary.probe_requests
        )
    });
    Ok(())
}

/// Polls a scan another process runs until it ends.
async fn follow(
    app: &App,
    project: &crate::domain::Project,
    scan_id: &str,
    progress: &scan::Progress,
) -> Result<ScanSummary, scan::ScanError> {
    loop {
        let scan = crate::usecase::scans::get(app, project, scan_id)
            .await?
            .ok_or(scan::ScanError::NotScannable("scan vanished"))?;
        let summary = ScanSummary::from_scan(&scan, app.now_ms());
        if scan.status != ScanStatus::Running {
            return Ok(summary);
        }
        progress(&summary);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
