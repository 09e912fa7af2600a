-- name: InsertEvent :exec
INSERT INTO events (id, type, customer_id, subscription_id, invoice_id, attempt_id, data, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: SubscriptionTimeline :many
SELECT * FROM events
WHERE subscription_id = $1 AND seq > @after_seq
ORDER BY seq LIMIT @max;
