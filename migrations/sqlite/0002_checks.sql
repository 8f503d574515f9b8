-- Fulfillment checks: per-project policy, the app probe, the plan map, runs
-- with their evidence, incident evidence, API tokens.

ALTER TABLE projects ADD COLUMN past_due_grace_secs INTEGER NOT NULL DEFAULT 259200;
ALTER TABLE projects ADD COLUMN fulfillment_deadline_secs INTEGER NOT NULL DEFAULT 120;
ALTER TABLE projects ADD COLUMN use_entitlements INTEGER NOT NULL DEFAULT 0;

ALTER TABLE subscriptions ADD COLUMN past_due_since INTEGER;

-- When Stripe created the event: a check's fulfillment deadline runs from it.
ALTER TABLE work_items ADD COLUMN event_created INTEGER NOT NULL DEFAULT 0;

CREATE TABLE app_probes (
    project_id     TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    secret_enc     BLOB NOT NULL,
    secret_last4   TEXT NOT NULL,
    reconcile_url  TEXT,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE plan_rules (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    selector_kind   TEXT NOT NULL CHECK (selector_kind IN ('price', 'product', 'lookup_key')),
    selector_value  TEXT NOT NULL,
    plan            TEXT NOT NULL,
    rank            INTEGER NOT NULL,
    features        TEXT NOT NULL,
    limits          TEXT NOT NULL,
    CONSTRAINT plan_rules_selector_key UNIQUE (project_id, selector_kind, selector_value)
);

-- One fulfillment check. (trigger_kind, external_id) is unique so a redelivered
-- event never creates a second run.
CREATE TABLE runs (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    customer_id    TEXT NOT NULL,
    trigger_kind   TEXT NOT NULL CHECK (trigger_kind IN ('webhook', 'scan', 'manual', 'rerun', 'drill')),
    external_id    TEXT,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'passed', 'failed')),
    kind           TEXT,
    app_user_id    TEXT,
    expected       TEXT,
    observed       TEXT,
    deploy_sha     TEXT,
    summary        TEXT,
    probe_attempts INTEGER NOT NULL DEFAULT 0,
    deadline       INTEGER NOT NULL,
    next_at        INTEGER NOT NULL,
    locked_until   INTEGER,
    created_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    CONSTRAINT runs_external_key UNIQUE (project_id, trigger_kind, external_id)
);
CREATE INDEX runs_due_idx ON runs (status, next_at);
CREATE INDEX runs_customer_idx ON runs (project_id, customer_id, created_at);

-- The evidence a run gathered, in order.
CREATE TABLE run_steps (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    step     TEXT NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX run_steps_run_idx ON run_steps (run_id, id);

ALTER TABLE incidents ADD COLUMN app_user_id TEXT;
ALTER TABLE incidents ADD COLUMN subscription_id TEXT;
ALTER TABLE incidents ADD COLUMN subscription_status TEXT;
ALTER TABLE incidents ADD COLUMN expected TEXT;
ALTER TABLE incidents ADD COLUMN observed TEXT;
ALTER TABLE incidents ADD COLUMN deploy_sha TEXT;

CREATE TABLE incident_runs (
    incident_id  TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    run_id       TEXT NOT NULL,
    PRIMARY KEY (incident_id, run_id)
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    token_hash  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash)
);
