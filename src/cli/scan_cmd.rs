//! `parityrail scan PROJECT`: a full scan now, with a progress bar on stderr.

use std::sync::Arc;

use anyhow::Context;

use super::{find, print};
use crate::{App, config::Config, scan};

pub async fn scan(json_out: bool, config: Config, project: &str) -> anyhow::Result<()> {
    let (app, writer) = App::start(config).await?;
    let project = find(&app.store, project).await?;
    let created = scan::create(&app, &project.id, "manual").await?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .context("progress template")?,
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let shown = bar.clone();
    let progress: scan::Progress = Arc::new(move |s: &scan::ScanSummary| {
        let mismatches: i64 = s.mismatches.values().sum();
        shown.set_message(format!(
            "{} subscriptions · {} customers checked · {} mismatches · {} Stripe requests",
            s.subscriptions_seen, s.customers_checked, mismatches, s.stripe_requests
        ));
    });
    let outcome = scan::run(&app, created, Some(progress)).await;
    bar.finish_and_clear();
    app.inbox_stop.cancel();
    let _ = writer.await;
    let summary = outcome?;
    print(json_out, serde_json::to_value(&summary)?, || {
        let kinds: Vec<String> = summary
            .mismatches
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        format!(
            "scan {} {} in {:.1} s: {} subscriptions, {} customers checked, mismatches [{}], {} Stripe requests, {} probe requests",
            summary.scan_id,
            summary.status,
            summary.duration_ms as f64 / 1000.0,
            summary.subscriptions_seen,
            summary.customers_checked,
            kinds.join(", "),
            summary.stripe_requests,
            summary.probe_requests
        )
    });
    Ok(())
}
