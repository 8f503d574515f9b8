-- Trust: runs fenced by a generation and a lease owner, replays as runs of
-- their own, scans that end `partial` and run once per project, signing
-- secrets that remember their last match, the app's last good probe.

-- Every newer event a pending run takes on bumps `generation`; a verdict
-- lands only for the generation it judged (`judged_generation` is the one
-- its evidence was last recorded for).
ALTER TABLE runs ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN judged_generation BIGINT NOT NULL DEFAULT -1;
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
-- The newest Stripe event whose state the run judges.
ALTER TABLE runs ADD COLUMN event_id TEXT;
-- Manual, rerun and scan checks read Stripe before their first probe.
ALTER TABLE runs ADD COLUMN needs_sync BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE runs SET event_id = external_id WHERE trigger_kind = 'webhook';
UPDATE runs SET needs_sync = TRUE WHERE trigger_kind <> 'webhook' AND status = 'pending' AND probe_attempts = 0;
-- One pending incident rerun per customer; replays (which carry an external
-- id) are runs of their own.
DROP INDEX runs_one_pending_rerun;
CREATE UNIQUE INDEX runs_one_pending_rerun ON runs (project_id, customer_id)
    WHERE status = 'pending' AND trigger_kind = 'rerun' AND external_id IS NULL;
CREATE INDEX runs_pending_customer_idx ON runs (project_id, customer_id, trigger_kind) WHERE status = 'pending';

-- A replayed event's work item names the run its sync starts.
ALTER TABLE work_items ADD COLUMN replay_run_id TEXT;

ALTER TABLE webhook_secrets ADD COLUMN last_matched_at BIGINT;

-- When a probe of this app last answered; a customer whose probe fails
-- while others succeed gets an incident of its own.
ALTER TABLE app_probes ADD COLUMN last_ok_at BIGINT;

-- Scans gain `partial`, a count of customers not checked and a lease owner.
ALTER TABLE scans DROP CONSTRAINT scans_status_check;
ALTER TABLE scans ADD CONSTRAINT scans_status_check
    CHECK (status IN ('running', 'completed', 'partial', 'failed'));
ALTER TABLE scans ADD COLUMN customers_unchecked BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN lease_owner TEXT;
-- At most one running scan per project: a second request gets the running one.
UPDATE scans SET status = 'failed', error = 'another scan of this project was running', finished_at = started_at
    WHERE status = 'running' AND EXISTS (SELECT 1 FROM scans s2 WHERE s2.project_id = scans.project_id
        AND s2.status = 'running' AND (s2.started_at > scans.started_at
            OR (s2.started_at = scans.started_at AND s2.id > scans.id)));
CREATE UNIQUE INDEX scans_one_running ON scans (project_id) WHERE status = 'running';
