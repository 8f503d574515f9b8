-- JSON API: bearer tokens are listed per project, and a rerun is idempotent:
-- at most one rerun check per customer is pending, so repeated or concurrent
-- rerun requests share one run (SPEC §6).

CREATE INDEX api_tokens_project_idx ON api_tokens (project_id, created_at);

CREATE UNIQUE INDEX runs_one_pending_rerun ON runs (project_id, customer_id)
    WHERE status = 'pending' AND trigger_kind = 'rerun';
