-- name: EnsureCursor :exec
INSERT INTO notify_cursor (name, seq) SELECT sqlc.arg(name)::text, coalesce(max(seq), 0) FROM events
ON CONFLICT (name) DO NOTHING;

-- name: LockCursor :one
SELECT seq, gap_seq, gap_snapshot, gap_seen_at, clock_timestamp()::timestamptz AS db_now
FROM notify_cursor WHERE name = @name
FOR UPDATE SKIP LOCKED;

-- name: SetCursor :exec
UPDATE notify_cursor
SET seq = @seq, gap_seq = sqlc.narg(gap_seq), gap_snapshot = sqlc.narg(gap_snapshot),
    gap_seen_at = sqlc.narg(gap_seen_at), updated_at = clock_timestamp()
WHERE name = @name;

-- name: EventsAfter :many
SELECT coalesce(seq, 0)::bigint AS seq, id, type FROM events WHERE seq > @after::bigint ORDER BY seq LIMIT @max;

-- name: CurrentSnapshot :one
SELECT pg_current_snapshot()::text AS snapshot;

-- name: SnapshotFinished :one
SELECT coalesce(bool_and(pg_xact_status(x) IS DISTINCT FROM 'in progress'), true)::boolean AS finished
FROM pg_snapshot_xip(CAST(@snapshot::text AS pg_snapshot)) AS x;

-- name: CreateDeliveries :many
INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at)
SELECT e.id, w.id, 'pending', 0, @now::timestamptz, @now::timestamptz
FROM events e
JOIN webhook_endpoints w ON w.status = 'enabled' AND w.created_at <= e.created_at
     AND (e.type = ANY (w.events) OR '*' = ANY (w.events))
WHERE e.seq > @from_seq::bigint AND e.seq <= @to_seq::bigint
ORDER BY e.seq, w.id
ON CONFLICT (event_id, endpoint_id) DO NOTHING
RETURNING id;

-- name: DueDeliveries :many
SELECT id, attempts FROM webhook_deliveries
WHERE status = 'pending' AND next_attempt_at <= @now::timestamptz
ORDER BY next_attempt_at, id
LIMIT @max;

-- name: GetDeliveryForSend :one
SELECT d.id, d.status, d.attempts, d.endpoint_id, e.id AS event_id, e.type AS event_type, e.customer_id,
       e.subscription_id, e.invoice_id, e.attempt_id, e.data, e.occurred_at, w.url,
       w.status AS endpoint_status, w.secret_ciphertext, w.secret_key_version
FROM webhook_deliveries d
JOIN events e ON e.id = d.event_id
JOIN webhook_endpoints w ON w.id = d.endpoint_id
WHERE d.id = $1;

-- name: RecordAttempt :execrows
UPDATE webhook_deliveries
SET attempts = @attempts, status = @status, last_status = sqlc.narg(last_status),
    last_error = sqlc.narg(last_error), next_attempt_at = sqlc.narg(next_attempt_at),
    delivered_at = sqlc.narg(delivered_at)
WHERE id = @id AND status = 'pending' AND attempts = @prev_attempts;

-- name: AbandonDelivery :execrows
UPDATE webhook_deliveries SET status = 'failed', last_error = @last_error::text, next_attempt_at = NULL
WHERE id = @id AND status = 'pending';
