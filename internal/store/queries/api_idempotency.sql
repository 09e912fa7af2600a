-- name: ClaimIdempotencyKey :execrows
-- The first request with a key inserts it in progress; a concurrent one inserts nothing (0 rows).
INSERT INTO idempotency_keys (scope, method, path, key, request_hash, status, locked_until, created_at)
VALUES ($1, $2, $3, $4, $5, 'in_progress', $6, $7)
ON CONFLICT DO NOTHING;

-- name: GetIdempotencyKey :one
SELECT request_hash, status, response_status, response_body, response_headers, locked_until
FROM idempotency_keys WHERE scope = $1 AND method = $2 AND path = $3 AND key = $4;

-- name: TakeOverIdempotencyKey :execrows
-- A request whose owner died (lock expired) is taken over by exactly one of its retries.
UPDATE idempotency_keys SET locked_until = sqlc.arg(locked_until)
WHERE scope = $1 AND method = $2 AND path = $3 AND key = $4
  AND status = 'in_progress' AND locked_until <= sqlc.arg(now);

-- name: ExtendIdempotencyLock :exec
UPDATE idempotency_keys SET locked_until = $5
WHERE scope = $1 AND method = $2 AND path = $3 AND key = $4 AND status = 'in_progress';

-- name: CompleteIdempotencyKey :exec
UPDATE idempotency_keys
SET status = 'completed', response_status = $5, response_body = $6, response_headers = $7,
    locked_until = NULL, completed_at = $8
WHERE scope = $1 AND method = $2 AND path = $3 AND key = $4 AND status = 'in_progress';

-- name: ReleaseIdempotencyKey :exec
DELETE FROM idempotency_keys
WHERE scope = $1 AND method = $2 AND path = $3 AND key = $4 AND status = 'in_progress';

-- name: ReleaseIdempotencyClaim :execrows
-- Releases a key only while its claim is still the releasing request's (its lock unchanged since), so a
-- release retried after a database outage cannot drop a claim another retry has taken over meanwhile.
DELETE FROM idempotency_keys
WHERE scope = $1 AND method = $2 AND path = $3 AND key = $4 AND status = 'in_progress'
  AND locked_until = sqlc.arg(locked_until);
