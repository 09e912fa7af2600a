-- name: InsertEndpoint :one
INSERT INTO webhook_endpoints (id, url, events, secret_ciphertext, secret_key_version, status, created_at)
VALUES (@id, @url, @events::text[], @secret_ciphertext, @secret_key_version, 'enabled', now())
RETURNING id, url, events, status, created_at, deleted_at;

-- name: GetEndpoint :one
SELECT id, url, events, status, created_at, deleted_at FROM webhook_endpoints WHERE id = $1;

-- name: ListEndpoints :many
SELECT id, url, events, status, created_at, deleted_at FROM webhook_endpoints
WHERE status = 'enabled'
  AND (NOT @has_cursor::boolean OR (created_at, id) > (@after_time::timestamptz, @after_id::text))
ORDER BY created_at, id
LIMIT @max;

-- name: DeleteEndpoint :one
UPDATE webhook_endpoints SET status = 'deleted', deleted_at = coalesce(deleted_at, now())
WHERE id = $1
RETURNING id, url, events, status, created_at, deleted_at;

-- name: AbandonEndpointDeliveries :execrows
UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deleted', next_attempt_at = NULL
WHERE endpoint_id = $1 AND status = 'pending';

-- name: ListDeliveries :many
SELECT d.id, d.event_id, e.type AS event_type, d.endpoint_id, d.status, d.attempts, d.next_attempt_at,
       d.last_status, d.last_error, d.created_at, d.delivered_at
FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
WHERE d.endpoint_id = @endpoint_id
  AND (NOT @has_cursor::boolean OR (d.created_at, d.id) > (@after_time::timestamptz, @after_id::bigint))
ORDER BY d.created_at, d.id
LIMIT @max;

-- name: StaleSecretsForUpdate :many
SELECT id, secret_ciphertext, secret_key_version FROM webhook_endpoints
WHERE secret_key_version <> @current_version
ORDER BY id
LIMIT @lim
FOR UPDATE SKIP LOCKED;

-- name: ReencryptSecret :exec
UPDATE webhook_endpoints SET secret_ciphertext = @secret_ciphertext, secret_key_version = @secret_key_version
WHERE id = @id;

-- name: GetDelivery :one
SELECT d.id, d.event_id, e.type AS event_type, d.endpoint_id, d.status, d.attempts, d.next_attempt_at,
       d.last_status, d.last_error, d.created_at, d.delivered_at
FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
WHERE d.id = @id AND d.endpoint_id = @endpoint_id;

-- name: ResendDelivery :one
-- A failed delivery to an enabled endpoint becomes pending again, due now: one more attempt.
UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = @now::timestamptz
FROM webhook_endpoints w
WHERE d.id = @id AND d.endpoint_id = @endpoint_id AND d.status = 'failed' AND w.id = d.endpoint_id AND w.status = 'enabled'
RETURNING d.attempts;
