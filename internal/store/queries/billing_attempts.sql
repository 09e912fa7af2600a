-- name: CreateAttempt :one
INSERT INTO payment_attempts (id, invoice_id, customer_id, billing_key_id, gateway, seq, order_id, idempotency_key,
    amount, currency, status, next_lookup_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12)
RETURNING *;

-- name: GetAttempt :one
SELECT * FROM payment_attempts WHERE id = $1;

-- name: LockAttempt :one
SELECT * FROM payment_attempts WHERE id = $1 FOR UPDATE;

-- name: InFlightAttempt :one
SELECT * FROM payment_attempts WHERE invoice_id = $1 AND status IN ('pending', 'unknown');

-- name: MarkAttemptSent :exec
UPDATE payment_attempts SET send_count = send_count + 1, sent_at = @sent_at WHERE id = @id;

-- name: ResolveAttempt :one
UPDATE payment_attempts SET
    status = @status, decline_code = @decline_code, decline_class = @decline_class, failure_reason = @failure_reason,
    gateway_payment_key = @gateway_payment_key, resolved_at = @resolved_at, next_lookup_at = @next_lookup_at,
    lookup_count = @lookup_count
WHERE id = @id AND status = @from_status
RETURNING *;

-- name: InvoiceAttempts :many
SELECT * FROM payment_attempts WHERE invoice_id = $1 ORDER BY seq;

-- name: CountDeclines :one
SELECT count(*)::int FROM payment_attempts WHERE invoice_id = $1 AND status = 'declined' AND NOT backup;

-- name: CountConsecutiveTechnicalFailures :one
-- Technical failures since the last attempt that reached the customer's card (declined or succeeded).
SELECT count(*)::int FROM payment_attempts a
WHERE a.invoice_id = $1 AND a.status = 'failed'
  AND a.seq > coalesce((SELECT max(seq) FROM payment_attempts b WHERE b.invoice_id = $1 AND b.status IN ('declined', 'succeeded')), 0);

-- name: CountCardAttempts :one
SELECT count(*)::int FROM payment_attempts
WHERE billing_key_id = $1 AND created_at > @since AND status IN ('succeeded', 'declined', 'unknown', 'pending');

-- name: DueAttemptLookups :many
SELECT id, next_lookup_at::timestamptz AS due_at FROM payment_attempts
WHERE status IN ('pending', 'unknown') AND next_lookup_at <= @now
ORDER BY next_lookup_at LIMIT @max;

-- name: UnresolvedAttemptsForSubscription :many
SELECT a.* FROM payment_attempts a JOIN invoices i ON i.id = a.invoice_id
WHERE i.subscription_id = $1 AND a.status IN ('pending', 'unknown');

-- name: UnresolvedAttemptsForCustomer :many
SELECT * FROM payment_attempts WHERE customer_id = $1 AND status IN ('pending', 'unknown');

-- name: LookUpSubscriptionAttemptsNow :many
-- Resuming dunning: the subscription's unresolved attempts are looked up at once, so a resend the pause
-- held goes out if the gateway still has not seen the order. The caller holds the subscription's lock.
UPDATE payment_attempts a SET next_lookup_at = @now
FROM invoices i
WHERE i.id = a.invoice_id AND i.subscription_id = @subscription_id AND a.status IN ('pending', 'unknown')
RETURNING a.id;
