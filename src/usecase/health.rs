//! What the service reports about itself: readiness and the queue.

use crate::{App, store::StoreError};

/// Which database backs the service (`sqlite` or `postgres`).
pub fn backend(app: &App) -> &'static str {
    app.store.backend_name()
}

/// Whether the database answers.
pub async fn ready(app: &App) -> Result<(), StoreError> {
    app.store.ping().await
}

/// Webhook work items by status.
pub async fn queue(app: &App) -> Result<Vec<(String, i64)>, StoreError> {
    app.store.work_counts().await
}
