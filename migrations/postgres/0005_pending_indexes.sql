-- The queue's indexes hold only unfinished work. Finished items (the event
-- log's history, which only grows) leave them on completion, so a claim
-- walks and updates small indexes however long the history is. Queries that
-- use them repeat the predicate `status IN ('queued', 'leased')` verbatim,
-- which is how SQLite matches a partial index.
DROP INDEX work_items_ready_idx;
CREATE INDEX work_items_ready_idx ON work_items (status, run_after, id)
    WHERE status IN ('queued', 'leased');
DROP INDEX work_items_customer_idx;
CREATE INDEX work_items_customer_idx ON work_items (project_id, customer_id, status)
    WHERE status IN ('queued', 'leased');
