//! The daily schedule: each project's scan starts at its `HH:MM` (UTC) once
//! a day. Several instances may tick; the store lets one of them have the
//! day's scan, and a scan whose instance died is resumed by another.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{
    App,
    domain::ScanTrigger,
    store::{NewScan, StoreError},
};

/// `"03:00"` → `(3, 0)`.
pub fn parse_hhmm(raw: &str) -> Option<(u32, u32)> {
    let (h, m) = raw.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

/// The UTC day (`YYYY-MM-DD`) whose scan is due at `now_ms`, if its time has come.
pub fn due_day(scan_at: &str, now_ms: i64) -> Option<String> {
    let (h, m) = parse_hhmm(scan_at)?;
    let now = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000).ok()?;
    let minutes_now = u32::from(now.hour()) * 60 + u32::from(now.minute());
    (minutes_now >= h * 60 + m).then(|| {
        format!(
            "{:04}-{:02}-{:02}",
            now.year(),
            u8::from(now.month()),
            now.day()
        )
    })
}

/// Starts every scan that is due and resumes abandoned ones; returns their ids.
pub async fn tick(app: &App, now: i64) -> Result<Vec<String>, StoreError> {
    let mut started = start_due(app, now).await?;
    started.extend(resume_stale(app, now).await?);
    Ok(started)
}

/// Starts today's scan of every project whose scan time has come, unless an
/// instance already did.
pub async fn start_due(app: &App, now: i64) -> Result<Vec<String>, StoreError> {
    let mut started = Vec::new();
    for project in app.store.list_projects().await? {
        if !super::is_scannable(app, &project).await? {
            continue;
        }
        let Some(day) = due_day(&project.scan_at, now) else {
            continue;
        };
        let owner = crate::ids::worker_tag(0);
        let new = NewScan {
            project_id: project.id.as_str(),
            trigger: ScanTrigger::Schedule,
            scheduled_for: Some(&day),
            owner: &owner,
            now,
            lease_until: now + super::lease_ms(app),
        };
        // Not created: another instance has today's scan, or one is running.
        if let Some((scan, true)) = app.store.create_scan(&new).await? {
            tracing::info!(project_id = %project.id, scan_id = %scan.id, day, "scheduled scan starting");
            started.push(scan.id.clone());
            super::spawn(app, scan, owner);
        }
    }
    Ok(started)
}

/// Resumes scans whose instance stopped checkpointing (crashed or killed).
pub async fn resume_stale(app: &App, now: i64) -> Result<Vec<String>, StoreError> {
    let mut resumed = Vec::new();
    loop {
        let owner = crate::ids::worker_tag(0);
        let Some(scan) = app
            .store
            .claim_stale_scan(&owner, now, now + super::lease_ms(app))
            .await?
        else {
            break;
        };
        tracing::warn!(scan_id = %scan.id, "resuming an abandoned scan");
        resumed.push(scan.id.clone());
        super::spawn(app, scan, owner);
    }
    Ok(resumed)
}

/// Ticks every `every` until `stop`.
pub async fn run_scheduler(app: App, every: Duration, stop: CancellationToken) {
    loop {
        // Sleep first: a starting instance lets workers settle before scanning.
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = tick(&app, app.now_ms()).await {
            tracing::error!(error = %e, "scan scheduler tick failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hhmm() {
        assert_eq!(parse_hhmm("03:00"), Some((3, 0)));
        assert_eq!(parse_hhmm("23:59"), Some((23, 59)));
        for bad in ["24:00", "3:00", "03:60", "0300", "", "aa:bb"] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
    }

    #[test]
    fn due_only_after_the_time_of_day() {
        // 2026-11-22T02:59:00Z and 03:00:00Z
        let before = 1_795_316_340_000;
        let at = before + 60_000;
        assert_eq!(due_day("03:00", before), None);
        assert_eq!(due_day("03:00", at).as_deref(), Some("2026-11-22"));
        assert_eq!(due_day("00:00", before).as_deref(), Some("2026-11-22"));
    }
}
