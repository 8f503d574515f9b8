-- Intake foundation: projects, Stripe integrations, the webhook inbox and its
-- work items, normalized Stripe state, incidents.
-- Times are unix milliseconds (INTEGER) so both backends compare them the same way.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE projects (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    mode                   TEXT NOT NULL CHECK (mode IN ('live', 'test', 'demo')),
    user_metadata_key      TEXT NOT NULL DEFAULT 'parityrail_user_id',
    require_mapping        INTEGER NOT NULL DEFAULT 0,
    lag_threshold_secs     INTEGER NOT NULL DEFAULT 300,
    created_at             INTEGER NOT NULL,
    CONSTRAINT projects_name_key UNIQUE (name)
);

CREATE TABLE stripe_integrations (
    project_id     TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    api_key_enc    BLOB NOT NULL,
    api_key_last4  TEXT NOT NULL,
    key_mode       TEXT NOT NULL CHECK (key_mode IN ('live', 'test')),
    account_id     TEXT,
    connected_at   INTEGER NOT NULL
);

CREATE TABLE webhook_secrets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    secret_enc   BLOB NOT NULL,
    fingerprint  TEXT NOT NULL,
    last4        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    CONSTRAINT webhook_secrets_fingerprint_key UNIQUE (project_id, fingerprint)
);

-- The inbox: every verified event, raw body byte-exact. `ignored_reason` is set
-- for events stored but deliberately not processed; every other event has
-- exactly one work item, written in the same transaction.
CREATE TABLE events (
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    livemode        INTEGER NOT NULL,
    api_version     TEXT,
    created         INTEGER NOT NULL,
    customer_id     TEXT,
    raw_body        BLOB NOT NULL,
    ignored_reason  TEXT,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (project_id, event_id)
);
CREATE INDEX events_received_idx ON events (project_id, received_at);

CREATE TABLE work_items (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'leased', 'done', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    run_after     INTEGER NOT NULL,
    locked_until  INTEGER,
    lease_owner   TEXT,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    CONSTRAINT work_items_event_key UNIQUE (project_id, event_id),
    FOREIGN KEY (project_id, event_id) REFERENCES events (project_id, event_id) ON DELETE CASCADE
);
CREATE INDEX work_items_ready_idx ON work_items (status, run_after, id);
CREATE INDEX work_items_customer_idx ON work_items (project_id, customer_id, status);

-- One normalized record per Stripe subscription, only ever moved forward:
-- a snapshot older than the stored one never overwrites it.
CREATE TABLE subscriptions (
    project_id            TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    subscription_id       TEXT NOT NULL,
    customer_id           TEXT NOT NULL,
    status                TEXT NOT NULL,
    cancel_at_period_end  INTEGER NOT NULL,
    current_period_end    INTEGER,
    items                 TEXT NOT NULL,
    metadata              TEXT NOT NULL,
    stripe_created        INTEGER NOT NULL,
    snapshot_at           INTEGER NOT NULL,
    PRIMARY KEY (project_id, subscription_id)
);
CREATE INDEX subscriptions_customer_idx ON subscriptions (project_id, customer_id);

CREATE TABLE customers (
    project_id    TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    customer_id   TEXT NOT NULL,
    app_user_id   TEXT,
    deleted       INTEGER NOT NULL,
    entitlements  TEXT NOT NULL,
    snapshot_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, customer_id)
);

CREATE TABLE incidents (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    customer_id  TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    event_id     TEXT,
    details      TEXT NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    count        INTEGER NOT NULL DEFAULT 1,
    resolved_at  INTEGER
);
-- One standing incident per (project, customer, kind).
CREATE UNIQUE INDEX incidents_open_key ON incidents (project_id, customer_id, kind) WHERE status <> 'resolved';
