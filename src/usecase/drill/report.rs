//! What a drill reports: each stage and what was seen there.

use serde::Serialize;

/// One stage of the drill and what was seen there.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stage {
    /// `accepted`, `stored`, `processed`, `stripe_read`, `probed`,
    /// `compared`, `incident_opened`.
    pub stage: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// What a drill proved.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DrillReport {
    pub drill: bool,
    pub project_id: String,
    pub event_id: String,
    pub customer: String,
    pub run_id: Option<String>,
    pub incident_id: Option<String>,
    /// Evidence fields the incident lacked (empty when complete).
    pub missing_evidence: Vec<&'static str>,
    pub stages: Vec<Stage>,
    /// Monitoring caught the drill: every stage passed and the evidence is complete.
    pub caught: bool,
}

impl DrillReport {
    /// The first stage that broke.
    pub fn broken(&self) -> Option<&Stage> {
        self.stages.iter().find(|s| !s.ok)
    }

    pub(super) fn pass(&mut self, stage: &'static str, detail: impl Into<String>) {
        self.stages.push(Stage {
            stage,
            ok: true,
            detail: detail.into(),
        });
    }

    pub(super) fn fail(mut self, stage: &'static str, detail: impl Into<String>) -> Self {
        self.stages.push(Stage {
            stage,
            ok: false,
            detail: detail.into(),
        });
        self
    }
}
