-- name: ListDelinquent :many
-- Oldest delinquency first: a range scan on subscriptions_delinquent (past_due_since, partial on the
-- delinquent statuses); the per-row facts are lateral lookups on the invoice and attempt indexes, so a
-- page costs its rows, not the table.
SELECT s.id, s.customer_id, s.status, s.past_due_since::timestamptz AS past_due_since, s.dunning_paused,
    coalesce(due.amount_due, 0)::numeric AS amount_due, coalesce(due.currency, p.currency)::text AS currency,
    att.attempts::int AS attempts, due.next_attempt_at, last.decline_code, last.decline_class,
    coalesce(last.gateway, '')::text AS gateway
FROM subscriptions s
JOIN plans p ON p.id = s.plan_id
LEFT JOIN LATERAL (
    SELECT sum(i.amount_due) AS amount_due, max(i.currency) AS currency,
        min(i.next_attempt_at) FILTER (WHERE i.status = 'open') AS next_attempt_at
    FROM invoices i
    WHERE i.subscription_id = s.id AND i.status IN ('open', 'uncollectible') AND i.amount_due > 0
) due ON true
CROSS JOIN LATERAL (
    SELECT count(*) AS attempts
    FROM invoices i JOIN payment_attempts a ON a.invoice_id = i.id
    WHERE i.subscription_id = s.id AND i.status IN ('open', 'uncollectible') AND a.status = 'declined'
) att
LEFT JOIN LATERAL (
    SELECT a.decline_code, a.decline_class, a.gateway
    FROM invoices i JOIN payment_attempts a ON a.invoice_id = i.id
    WHERE i.subscription_id = s.id AND a.status <> 'failed'
    ORDER BY a.created_at DESC, a.seq DESC
    LIMIT 1
) last ON true
WHERE s.status IN ('past_due', 'suspended', 'unpaid') AND s.past_due_since IS NOT NULL
  AND (sqlc.narg(status)::text IS NULL OR s.status = sqlc.narg(status))
  AND (sqlc.narg(since_before)::timestamptz IS NULL OR s.past_due_since <= sqlc.narg(since_before))
  AND (sqlc.narg(gateway)::text IS NULL OR last.gateway = sqlc.narg(gateway))
  AND (sqlc.narg(decline_class)::text IS NULL OR last.decline_class = sqlc.narg(decline_class))
  AND (NOT @has_cursor::boolean OR (s.past_due_since, s.id) > (@after_time::timestamptz, @after_id::text))
ORDER BY s.past_due_since, s.id
LIMIT @max;

-- name: SetDunningPausedAt :exec
-- Only support's pause and resume touch this column, in the transaction that sets the pause flags.
UPDATE subscriptions SET dunning_paused_at = sqlc.narg(paused_at) WHERE id = @id;

-- name: OfflinePaymentRecorded :one
SELECT EXISTS (SELECT 1 FROM ledger_transactions WHERE kind = 'offline_payment' AND reference = $1);
