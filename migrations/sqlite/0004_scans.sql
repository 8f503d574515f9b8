-- Daily scans: one row per scan with resumable cursors and a summary.

ALTER TABLE projects ADD COLUMN scan_at TEXT NOT NULL DEFAULT '03:00';
ALTER TABLE projects ADD COLUMN stripe_budget_rps INTEGER;

CREATE TABLE scans (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    trigger_kind        TEXT NOT NULL CHECK (trigger_kind IN ('schedule', 'cron', 'manual')),
    -- The UTC day a scheduled scan is for: with several instances, only the
    -- first to insert (project, day) runs it.
    scheduled_for       TEXT,
    status              TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    stripe_cursor       TEXT,
    stripe_done         INTEGER NOT NULL DEFAULT 0,
    app_cursor          TEXT,
    app_done            INTEGER NOT NULL DEFAULT 0,
    subscriptions_seen  INTEGER NOT NULL DEFAULT 0,
    customers_checked   INTEGER NOT NULL DEFAULT 0,
    mismatches          TEXT NOT NULL DEFAULT '{}',
    stripe_requests     INTEGER NOT NULL DEFAULT 0,
    probe_requests      INTEGER NOT NULL DEFAULT 0,
    error               TEXT,
    locked_until        INTEGER,
    started_at          INTEGER NOT NULL,
    finished_at         INTEGER,
    CONSTRAINT scans_day_key UNIQUE (project_id, scheduled_for)
);
CREATE INDEX scans_project_idx ON scans (project_id, started_at);

-- Customers the app's /list says have access, gathered while Stripe is paged;
-- those without a paying subscription are checked at the end.
CREATE TABLE scan_app_access (
    scan_id      TEXT NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    customer_id  TEXT NOT NULL,
    user_id      TEXT,
    PRIMARY KEY (scan_id, customer_id)
);
