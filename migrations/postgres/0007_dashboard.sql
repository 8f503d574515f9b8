-- The dashboard: people who sign in, their role per project, their sessions,
-- and an activity log of who did what to an incident or an event.
-- A session cookie carries a random token; only its SHA-256 is stored here.

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE memberships (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, project_id)
);

CREATE INDEX memberships_project_idx ON memberships (project_id, created_at);

CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);

CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE activity (
    id          BIGSERIAL PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT,
    at          BIGINT NOT NULL
);

CREATE INDEX activity_subject_idx ON activity (project_id, subject, id);

-- The incident inbox: a tab (status) newest first, keyset-paginated.
CREATE INDEX incidents_inbox_idx ON incidents (project_id, status, last_seen, id);
