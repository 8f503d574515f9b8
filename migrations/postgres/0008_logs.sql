-- The run history and the event log, newest first and keyset-paginated,
-- whole or narrowed to a verdict; an event's runs.
CREATE INDEX runs_history_idx ON runs (project_id, created_at, id);
CREATE INDEX runs_verdict_idx ON runs (project_id, status, created_at, id);
CREATE INDEX runs_event_idx ON runs (project_id, event_id);
CREATE INDEX events_log_idx ON events (project_id, received_at, event_id);
CREATE INDEX events_type_idx ON events (project_id, event_type, received_at, event_id);
DROP INDEX events_received_idx;
