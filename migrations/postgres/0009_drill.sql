-- Drill incidents (SPEC §8b) are labelled, and never merge with a real
-- incident of the same customer and kind (nor a real one with a drill's).
ALTER TABLE incidents ADD COLUMN drill BOOLEAN NOT NULL DEFAULT FALSE;
DROP INDEX incidents_open_key;
CREATE UNIQUE INDEX incidents_open_key ON incidents (project_id, customer_id, kind, drill) WHERE status <> 'resolved';
