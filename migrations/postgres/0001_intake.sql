-- Intake foundation: projects, Stripe integrations, the webhook inbox and its
-- work items, normalized Stripe state, incidents.
-- Times are unix milliseconds (INTEGER) so both backends compare them the same way.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE projects (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    mode                   TEXT NOT NULL CHECK (mode IN ('live', 'test', 'demo')),
    user_metadata_key      TEXT NOT NULL DEFAULT 'parityrail_user_id',
    require_mapping        BOOLEAN NOT NULL DEFAULT FALSE,
    lag_threshold_secs     BIGINT NOT NULL DEFAULT 300,
    created_at             BIGINT NOT NULL,
    CONSTRAINT projects_name_key UNIQUE (name)
);

CREATE TABLE stripe_integrations (
    project_id     TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    api_key_enc    BYTEA NOT NULL,
    api_key_last4  TEXT NOT NULL,
    key_mode       TEXT NOT NULL CHECK (key_mode IN ('live', 'test')),
    account_id     TEXT,
    connected_at   BIGINT NOT NULL
);

CREATE TABLE webhook_secrets (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    secret_enc   BYTEA NOT NULL,
    fingerprint  TEXT NOT NULL,
    last4        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT webhook_secrets_fingerprint_key UNIQUE (project_id, fingerprint)
);

-- The inbox: every verified event, raw body byte-exact. `ignored_reason` is set
-- for events stored but deliberately not processed; every other event has
-- exactly one work item, written in the same transaction.
CREATE TABLE events (
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    livemode        BOOLEAN NOT NULL,
    api_version     TEXT,
    created         BIGINT NOT NULL,
    customer_id     TEXT,
    raw_body        BYTEA NOT NULL,
    ignored_reason  TEXT,
    received_at     BIGINT NOT NULL,
    PRIMARY KEY (project_id, event_id)
);
CREATE INDEX events_received_idx ON events (project_id, received_at);

CREATE TABLE work_items (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id    TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'leased', 'done', 'dead')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    run_after     BIGINT NOT NULL,
    locked_until  BIGINT,
    lease_owner   TEXT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    finished_at   BIGINT,
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
    cancel_at_period_end  BOOLEAN NOT NULL,
    current_period_end    BIGINT,
    items                 TEXT NOT NULL,
    metadata              TEXT NOT NULL,
    stripe_created        BIGINT NOT NULL,
    snapshot_at           BIGINT NOT NULL,
    PRIMARY KEY (project_id, subscription_id)
);
CREATE INDEX subscriptions_customer_idx ON subscriptions (project_id, customer_id);

CREATE TABLE customers (
    project_id    TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    customer_id   TEXT NOT NULL,
    app_user_id   TEXT,
    deleted       BOOLEAN NOT NULL,
    entitlements  TEXT NOT NULL,
    snapshot_at   BIGINT NOT NULL,
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
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    count        BIGINT NOT NULL DEFAULT 1,
    resolved_at  BIGINT
);
-- One standing incident per (project, customer, kind).
CREATE UNIQUE INDEX incidents_open_key ON incidents (project_id, customer_id, kind) WHERE status <> 'resolved';
