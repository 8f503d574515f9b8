//! Scans: start one (or join the one running), read past ones.

use crate::{
    App,
    domain::{Project, Scan, ScanTrigger},
    scan::{self, ScanError, Started},
    store::StoreError,
};

/// Starts a scan of the project in the background, or returns the one
/// already running (`created: false`).
pub async fn start(
    app: &App,
    project: &Project,
    trigger: ScanTrigger,
) -> Result<Started, ScanError> {
    let started = scan::create(app, &project.id, trigger).await?;
    if started.created {
        scan::spawn(app, started.scan.clone(), started.owner.clone());
    }
    Ok(started)
}

/// Starts a scan of every project that can be scanned (the cron endpoint).
pub async fn start_all(app: &App, trigger: ScanTrigger) -> Result<Vec<Started>, StoreError> {
    let mut started = Vec::new();
    for project in app.store.list_projects().await? {
        if !scan::is_scannable(app, &project).await? {
            continue;
        }
        match start(app, &project, trigger).await {
            Ok(s) => started.push(s),
            Err(ScanError::Store(e)) => return Err(e),
            Err(e) => tracing::warn!(project_id = %project.id, error = %e, "scan not started"),
        }
    }
    Ok(started)
}

/// Newest first.
pub async fn list(app: &App, project: &Project, limit: i64) -> Result<Vec<Scan>, StoreError> {
    app.store.list_scans(project.id.as_str(), limit).await
}

/// One scan of the project.
pub async fn get(app: &App, project: &Project, scan_id: &str) -> Result<Option<Scan>, StoreError> {
    Ok(app
        .store
        .scan(scan_id)
        .await?
        .filter(|s| s.project_id == project.id))
}
