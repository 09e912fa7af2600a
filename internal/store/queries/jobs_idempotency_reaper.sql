-- The periodic reaper's: it forgets Idempotency-Keys past their retention (the API's table, kept by api;
-- deleting its expired rows is maintenance, so it lives with the jobs that run it).

-- name: ReapIdempotencyKeys :execrows
-- In batches, so the reaper never holds a long lock on a big table.
DELETE FROM idempotency_keys
WHERE (scope, method, path, key) IN (
    SELECT i.scope, i.method, i.path, i.key FROM idempotency_keys i
    WHERE i.created_at < sqlc.arg(before) LIMIT sqlc.arg(batch)
);
