-- name: CreateSubscription :one
INSERT INTO subscriptions (id, customer_id, plan_id, quantity, status, billing_anchor, current_period_start,
    current_period_end, next_renewal_at, trial_end, incomplete_expires_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
RETURNING *;

-- name: GetSubscription :one
SELECT * FROM subscriptions WHERE id = $1;

-- name: LockSubscription :one
SELECT * FROM subscriptions WHERE id = $1 FOR UPDATE;

-- name: ListCustomerSubscriptions :many
SELECT * FROM subscriptions
WHERE customer_id = $1
  AND (NOT @has_cursor::boolean OR (created_at, id) > (@after_time::timestamptz, @after_id::text))
ORDER BY created_at, id
LIMIT $2;

-- name: UpdateSubscription :one
-- Compare-and-set on the version: a concurrent writer makes this return no row.
UPDATE subscriptions SET
    plan_id = @plan_id, quantity = @quantity, status = @status, billing_anchor = @billing_anchor,
    current_period_start = @current_period_start, current_period_end = @current_period_end,
    next_renewal_at = @next_renewal_at, trial_end = @trial_end,
    cancel_at_period_end = @cancel_at_period_end, canceled_at = @canceled_at, cancel_reason = @cancel_reason,
    pending_plan_id = @pending_plan_id, pending_quantity = @pending_quantity, paused_at = @paused_at,
    incomplete_expires_at = @incomplete_expires_at,
    past_due_since = @past_due_since, grace_ends_at = @grace_ends_at, dunning_ends_at = @dunning_ends_at,
    dunning_paused = @dunning_paused, dunning_paused_until = @dunning_paused_until,
    version = version + 1, updated_at = @updated_at
WHERE id = @id AND version = @version
RETURNING *;

-- name: DueRenewals :many
-- Index range scan on subscriptions_due: the cost grows with what is due, not with what exists.
SELECT id, next_renewal_at::timestamptz AS due_at FROM subscriptions
WHERE next_renewal_at <= @now AND status IN ('active', 'trialing', 'past_due')
ORDER BY next_renewal_at
LIMIT @max;

-- name: DueGraceEnds :many
SELECT id, grace_ends_at::timestamptz AS due_at FROM subscriptions
WHERE status = 'past_due' AND grace_ends_at <= @now AND NOT dunning_paused
ORDER BY grace_ends_at LIMIT @max;

-- name: DueDunningEnds :many
-- Also the ends of support's timed dunning pauses (the dunning-end step resumes them first).
SELECT id, (CASE WHEN dunning_paused THEN dunning_paused_until ELSE dunning_ends_at END)::timestamptz AS due_at
FROM subscriptions
WHERE status IN ('past_due', 'suspended')
  AND ((NOT dunning_paused AND dunning_ends_at <= @now) OR (dunning_paused AND dunning_paused_until <= @now))
ORDER BY 2 LIMIT @max;

-- name: DueIncompleteExpiries :many
SELECT id, incomplete_expires_at::timestamptz AS due_at FROM subscriptions
WHERE status = 'incomplete' AND incomplete_expires_at <= @now
ORDER BY incomplete_expires_at LIMIT @max;

-- name: NextDueTime :one
-- The earliest time after @after at which any domain work falls due (the test clock steps through these);
-- 9999-12-31 when nothing is scheduled.
SELECT coalesce(least(
    (SELECT min(s.next_renewal_at) FROM subscriptions s WHERE s.next_renewal_at > @after AND s.status IN ('active', 'trialing', 'past_due')),
    (SELECT min(s.grace_ends_at) FROM subscriptions s WHERE s.status = 'past_due' AND s.grace_ends_at > @after AND NOT s.dunning_paused),
    (SELECT min(s.dunning_ends_at) FROM subscriptions s WHERE s.status IN ('past_due', 'suspended') AND s.dunning_ends_at > @after AND NOT s.dunning_paused),
    (SELECT min(s.dunning_paused_until) FROM subscriptions s WHERE s.status IN ('past_due', 'suspended') AND s.dunning_paused AND s.dunning_paused_until > @after),
    (SELECT min(s.incomplete_expires_at) FROM subscriptions s WHERE s.status = 'incomplete' AND s.incomplete_expires_at > @after),
    (SELECT min(i.next_attempt_at) FROM invoices i WHERE i.status = 'open' AND i.next_attempt_at > @after),
    (SELECT min(a.next_lookup_at) FROM payment_attempts a WHERE a.status IN ('pending', 'unknown') AND a.next_lookup_at > @after),
    (SELECT min(r.next_lookup_at) FROM refunds r WHERE r.status IN ('pending', 'unknown') AND r.next_lookup_at > @after)
), '9999-12-31T00:00:00Z')::timestamptz AS next;

-- name: SubscriptionDunningSummary :one
-- Dunning facts for the API: declines on open invoices, the next retry, the latest decline.
SELECT
    (SELECT count(*) FROM payment_attempts a JOIN invoices i ON i.id = a.invoice_id
        WHERE i.subscription_id = @subscription_id AND i.status = 'open' AND a.status = 'declined')::int AS attempts,
    (SELECT min(i.next_attempt_at) FROM invoices i WHERE i.subscription_id = @subscription_id AND i.status = 'open') AS next_attempt_at,
    (SELECT a.decline_code FROM payment_attempts a JOIN invoices i ON i.id = a.invoice_id
        WHERE i.subscription_id = @subscription_id AND a.status = 'declined' ORDER BY a.created_at DESC, a.seq DESC LIMIT 1) AS last_decline_code;

-- name: RecordSubscriptionCreation :execrows
-- A row older than the retention is a forgotten key: it is replaced. A live one is kept (0 rows: the same
-- key was recorded first by another run).
INSERT INTO subscription_creations (idem_key, request_hash, subscription_id) VALUES (@idem_key, @request_hash, @subscription_id)
ON CONFLICT (idem_key) DO UPDATE SET request_hash = EXCLUDED.request_hash, subscription_id = EXCLUDED.subscription_id,
    created_at = now()
WHERE subscription_creations.created_at <= now() - make_interval(hours => @retention_hours::int);

-- name: SubscriptionByCreation :one
SELECT c.request_hash, s.id AS subscription_id FROM subscription_creations c JOIN subscriptions s ON s.id = c.subscription_id
WHERE c.idem_key = @idem_key AND c.created_at > now() - make_interval(hours => @retention_hours::int);

-- name: LiveSubscriptionCurrencies :many
-- The currencies a customer's live (not ended) subscriptions are billed in, each with one of those
-- subscriptions: the customer's default key must be able to charge every one of them.
SELECT p.currency, min(s.id)::text AS subscription_id
FROM subscriptions s JOIN plans p ON p.id = s.plan_id
WHERE s.customer_id = $1 AND s.status NOT IN ('canceled', 'incomplete_expired')
GROUP BY p.currency
ORDER BY p.currency;
