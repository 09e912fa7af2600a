-- The dunning history the policy simulator replays (dunning/simulate).

-- name: DunningEpisodes :many
-- Invoices that failed at least once in [@since, @until], with what the simulator needs about them.
SELECT i.id, i.customer_id, i.total, i.currency, i.status, i.first_failed_at::timestamptz AS first_failed_at,
       i.paid_at, i.voided_at, p.dunning_policy AS plan_policy, c.time_zone
FROM invoices i
JOIN customers c ON c.id = i.customer_id
LEFT JOIN subscriptions s ON s.id = i.subscription_id
LEFT JOIN plans p ON p.id = s.plan_id
WHERE i.first_failed_at >= @since AND i.first_failed_at <= @until
ORDER BY i.first_failed_at, i.id;

-- name: EpisodeCharges :many
-- The charges that reached a card (declined or succeeded) on those invoices, in order.
SELECT invoice_id, billing_key_id, status, decline_code, decline_class, created_at, backup
FROM payment_attempts
WHERE invoice_id = ANY(@invoice_ids::text[]) AND status IN ('declined', 'succeeded')
ORDER BY invoice_id, seq;
