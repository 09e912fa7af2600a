-- name: InsertWebhook :one
-- A duplicate (same gateway and event id) inserts nothing and returns no row.
INSERT INTO webhook_inbox (gateway, event_id, event_kind, order_id, payload, received_at)
VALUES (@gateway, @event_id, @event_kind, sqlc.narg(order_id), @payload, @received_at)
ON CONFLICT (gateway, event_id) DO NOTHING
RETURNING received_at;

-- name: ClaimUndispatchedWebhooks :many
-- The dispatcher's batch: the oldest rows nobody has enqueued, marked dispatched. SKIP LOCKED lets every
-- replica's dispatcher (and the leader's watch) run at once without waiting on, or repeating, each other.
UPDATE webhook_inbox w SET dispatched_at = @dispatched_at
FROM (SELECT gateway, event_id FROM webhook_inbox WHERE dispatched_at IS NULL
      ORDER BY received_at LIMIT @max FOR UPDATE SKIP LOCKED) AS b
WHERE w.gateway = b.gateway AND w.event_id = b.event_id
RETURNING w.gateway, w.event_id, w.received_at;

-- name: GetWebhook :one
SELECT * FROM webhook_inbox WHERE gateway = @gateway AND event_id = @event_id;

-- name: MarkWebhookProcessed :execrows
UPDATE webhook_inbox SET processed_at = @processed_at, result = @result
WHERE gateway = @gateway AND event_id = @event_id AND processed_at IS NULL;

-- name: UnprocessedWebhooks :many
-- Rows dispatched long enough ago whose job evidently did not run to the end (lost or discarded).
SELECT gateway, event_id, received_at FROM webhook_inbox
WHERE processed_at IS NULL AND dispatched_at IS NOT NULL AND received_at <= @before
ORDER BY received_at LIMIT @max;

-- name: AttemptByOrderID :one
SELECT * FROM payment_attempts WHERE order_id = $1;

-- name: LastWebhookAt :one
SELECT received_at FROM webhook_inbox WHERE gateway = $1 ORDER BY received_at DESC LIMIT 1;

-- name: CountGatewayCharges :one
-- Charges that reached the card (so the gateway announces them) created in [from, to), counted up to
-- @max_count: the webhook watch only needs to know whether there were any. On a billing day the window
-- holds every renewal's attempt: counting them all took 29-43 s per run during a 1M day (cmd/bench),
-- longer than the watch's 30 s interval.
SELECT count(*)::int FROM (
    SELECT 1 FROM payment_attempts
    WHERE gateway = @gateway AND created_at >= @from_at AND created_at < @to_at AND status IN ('succeeded', 'declined')
    LIMIT @max_count
) AS recent;

-- name: ExpireWebhooks :execrows
-- A batch of processed inbox rows older than the retention. Unprocessed rows are never deleted: an
-- event nobody acted on yet is still the only record of it.
DELETE FROM webhook_inbox w
USING (SELECT o.gateway, o.event_id FROM webhook_inbox o
       WHERE o.processed_at IS NOT NULL AND o.processed_at < @before::timestamptz
       ORDER BY o.processed_at LIMIT @batch::int) AS old
WHERE w.gateway = old.gateway AND w.event_id = old.event_id;

-- name: ClaimWebhookLookup :execrows
-- A webhook may make us look an attempt's order up once per window: the claim succeeds when no webhook
-- did since cutoff (wall clock).
UPDATE payment_attempts SET webhook_lookup_at = @now::timestamptz
WHERE id = @id AND (webhook_lookup_at IS NULL OR webhook_lookup_at <= @cutoff::timestamptz);

-- name: UnprocessedWebhooksOfOrder :many
-- The events of one order still waiting, which the lookup about to start answers as well.
SELECT event_id FROM webhook_inbox
WHERE gateway = @gateway AND order_id = @order_id AND processed_at IS NULL
ORDER BY received_at LIMIT @max::int;

-- name: MarkWebhooksProcessed :execrows
UPDATE webhook_inbox SET processed_at = @processed_at, result = @result
WHERE gateway = @gateway AND event_id = ANY(@event_ids::text[]) AND processed_at IS NULL;
