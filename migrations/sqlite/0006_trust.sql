-- Trust: runs fenced by a generation and a lease owner, replays as runs of
-- their own, scans that end `partial` and run once per project, signing
-- secrets that remember their last match, the app's last good probe.

-- Every newer event a pending run takes on bumps `generation`; a verdict
-- lands only for the generation it judged (`judged_generation` is the one
-- its evidence was last recorded for).
ALTER TABLE runs ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN judged_generation INTEGER NOT NULL DEFAULT -1;
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
-- The newest Stripe event whose state the run judges.
ALTER TABLE runs ADD COLUMN event_id TEXT;
-- Manual, rerun and scan checks read Stripe before their first probe.
ALTER TABLE runs ADD COLUMN needs_sync INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET event_id = external_id WHERE trigger_kind = 'webhook';
UPDATE runs SET needs_sync = 1 WHERE trigger_kind <> 'webhook' AND status = 'pending' AND probe_attempts = 0;
-- One pending incident rerun per customer; replays (which carry an external
-- id) are runs of their own.
DROP INDEX runs_one_pending_rerun;
CREATE UNIQUE INDEX runs_one_pending_rerun ON runs (project_id, customer_id)
    WHERE status = 'pending' AND trigger_kind = 'rerun' AND external_id IS NULL;
CREATE INDEX runs_pending_customer_idx ON runs (project_id, customer_id, trigger_kind) WHERE status = 'pending';

-- A replayed event's work item names the run its sync starts.
ALTER TABLE work_items ADD COLUMN replay_run_id TEXT;

ALTER TABLE webhook_secrets ADD COLUMN last_matched_at INTEGER;

-- When a probe of this app last answered; a customer whose probe fails
-- while others succeed gets an incident of its own.
ALTER TABLE app_probes ADD COLUMN last_ok_at INTEGER;

-- Scans gain `partial`, a count of customers not checked and a lease owner.
-- SQLite cannot alter a CHECK constraint: the table is rebuilt (the
-- transient /list rows of running scans go with it; a resumed scan walks
-- the list again).
CREATE TABLE scans_new (
    id                   TEXT PRIMARY KEY,
    project_id           TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    trigger_kind         TEXT NOT NULL CHECK (trigger_kind IN ('schedule', 'cron', 'manual')),
    scheduled_for        TEXT,
    status               TEXT NOT NULL CHECK (status IN ('running', 'completed', 'partial', 'failed')),
    stripe_cursor        TEXT,
    stripe_done          INTEGER NOT NULL DEFAULT 0,
    app_cursor           TEXT,
    app_done             INTEGER NOT NULL DEFAULT 0,
    subscriptions_seen   INTEGER NOT NULL DEFAULT 0,
    customers_checked    INTEGER NOT NULL DEFAULT 0,
    customers_unchecked  INTEGER NOT NULL DEFAULT 0,
    mismatches           TEXT NOT NULL DEFAULT '{}',
    stripe_requests      INTEGER NOT NULL DEFAULT 0,
    probe_requests       INTEGER NOT NULL DEFAULT 0,
    error                TEXT,
    locked_until         INTEGER,
    lease_owner          TEXT,
    started_at           INTEGER NOT NULL,
    finished_at          INTEGER,
    CONSTRAINT scans_day_key UNIQUE (project_id, scheduled_for)
);
INSERT INTO scans_new (id, project_id, trigger_kind, scheduled_for, status, stripe_cursor, stripe_done,
        app_cursor, app_done, subscriptions_seen, customers_checked, mismatches, stripe_requests,
        probe_requests, error, locked_until, started_at, finished_at)
    SELECT id, project_id, trigger_kind, scheduled_for, status, stripe_cursor, stripe_done,
        NULL, 0, subscriptions_seen, customers_checked, mismatches, stripe_requests,
        probe_requests, error, locked_until, started_at, finished_at
    FROM scans;
DROP TABLE scans;
ALTER TABLE scans_new RENAME TO scans;
CREATE INDEX scans_project_idx ON scans (project_id, started_at);
-- At most one running scan per project: a second request gets the running one.
UPDATE scans SET status = 'failed', error = 'another scan of this project was running', finished_at = started_at
    WHERE status = 'running' AND EXISTS (SELECT 1 FROM scans s2 WHERE s2.project_id = scans.project_id
        AND s2.status = 'running' AND (s2.started_at > scans.started_at
            OR (s2.started_at = scans.started_at AND s2.id > scans.id)));
CREATE UNIQUE INDEX scans_one_running ON scans (project_id) WHERE status = 'running';
