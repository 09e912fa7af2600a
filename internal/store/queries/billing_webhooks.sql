-- name: InsertWebhook :one
-- A duplicate (same gateway and event id) inserts nothing and returns no row.
INSERT INTO webhook_inbox (gateway, event_id, event_kind, order_id, payload, received_at)
VALUES (@gateway, @event_id, @event_kind, sqlc.narg(order_id), @payload, @received_at)
ON CONFLICT (gateway, event_id) DO NOTHING
RETURNING received_at;

-- name: GetWebhook :one
SELECT * FROM webhook_inbox WHERE gateway = @gateway AND event_id = @event_id;

-- name: MarkWebhookProcessed :execrows
UPDATE webhook_inbox SET processed_at = @processed_at, result = @result
WHERE gateway = @gateway AND event_id = @event_id AND processed_at IS NULL;

-- name: UnprocessedWebhooks :many
SELECT gateway, event_id, received_at FROM webhook_inbox
WHERE processed_at IS NULL AND received_at <= @before
ORDER BY received_at LIMIT @max;

-- name: AttemptByOrderID :one
SELECT * FROM payment_attempts WHERE order_id = $1;

-- name: LastWebhookAt :one
SELECT received_at FROM webhook_inbox WHERE gateway = $1 ORDER BY received_at DESC LIMIT 1;

-- name: CountGatewayCharges :one
-- Charges that reached the card (so the gateway announces them) created in [from, to).
SELECT count(*)::int FROM payment_attempts
WHERE gateway = @gateway AND created_at >= @from_at AND created_at < @to_at AND status IN ('succeeded', 'declined');
